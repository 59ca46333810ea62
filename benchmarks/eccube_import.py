"""EC-CUBE import benchmark: orders/s end to end against an in-memory floor.

The sandbox runs in its own process (``python -m omnicrm.plugins.ec_cube.sandbox``,
authorised through its own OAuth2 endpoints, stopped by its pid at the end) with
``--orders`` orders (100,000 by default; about 15% are unfinished checkouts, which the
plugin never asks for). The importer runs ``SyncEngine`` on the orders stream into a
fresh SQLite store: update-date windows of at most ``window_size`` orders, each read by
first pages of 100 (the next window read while this one is mapped and written). The
floor, measured in the same run, takes the very answers the sync received, already in
memory, parses them (``orjson.loads``), keeps each order once, maps them
(``mapping.order_from_node``) and writes them (``Store.write_batch``, same batch size)
into another fresh store, with no network. Goal: orders/s end to end at least 0.7 of the
floor's. Prints the figures, the goal and PASS/FAIL (exit 1 on a miss).

    .venv/bin/python benchmarks/eccube_import.py                    # 100,000 orders
    .venv/bin/python benchmarks/eccube_import.py --orders 10000     # a shared machine
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from _processes import announced, responses
from shopify_sync import Floor, _vm_hwm_mb, _write_all

from omnicrm.app.config import Connection
from omnicrm.core.channels import Stream
from omnicrm.core.heap import settle_heap
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import SyncEngine
from omnicrm.plugins.ec_cube.api.mapping import order_from_node
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings

GOAL = 0.7  # end-to-end orders/s over the floor's


@contextlib.contextmanager
def sandbox(orders: int, customers: int, seed: int, tokens: Path) -> Iterator[dict[str, Any]]:
    """The sandbox in a process of its own, ready; stopped (by its pid) afterwards."""
    command = [sys.executable, "-m", "omnicrm.plugins.ec_cube.sandbox"]
    command += ["--orders", str(orders), "--customers", str(customers), "--seed", str(seed)]
    command += ["--tokens", str(tokens)]
    with announced(command) as (pid, ready):
        ready["pid"] = pid
        print(
            f"sandbox (pid {pid}): {ready['orders']:,} orders, {ready['customers']:,}"
            f" customers, ready in {ready['ready_seconds']:.1f} s",
            flush=True,
        )
        yield ready


def _keep(bodies: list[bytes], request: httpx.Request, answer: httpx.Response) -> None:
    """Keep the body of every Orders answer (a reference, no copy)."""
    if request.url.path == "/api" and b'"operationName":"Orders"' in request.content:
        bodies.append(answer.content)


def floor(bodies: list[bytes], store: Store, batch: int) -> Floor:
    """Parse the recorded answers, keep each order once, map and write them: the
    pipeline without HTTP."""
    result = Floor()
    t = time.perf_counter()
    nodes: dict[str, Any] = {}
    for body in bodies:
        for node in orjson.loads(body)["data"]["orders"]["nodes"]:
            nodes[node["id"]] = node
    ordered = sorted(nodes.values(), key=lambda n: (n["update_date"], int(n["id"])))
    result.parse_s = time.perf_counter() - t
    t = time.perf_counter()
    orders = [o for n in ordered if (o := order_from_node(n)) is not None]
    result.map_s = time.perf_counter() - t
    result.orders = len(orders)
    result.lines = sum(len(o.lines) for o in orders)
    _write_all(store, orders, batch, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=0, help="default: orders / 20")
    parser.add_argument("--batch", type=int, default=1000, help="the connection's batch_size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    customers = args.customers or max(50, args.orders // 20)
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.json"
        with sandbox(args.orders, customers, args.seed, tokens) as ready:
            host = Host.load()
            channel_type = host.channel_type("ec_cube")
            host.channel_types["ec_cube"] = dataclasses.replace(
                channel_type, streams=(Stream.ORDERS,)
            )
            connection = Connection(
                name="bench",
                channel="ec_cube",
                settings=EccubeSettings.model_validate(ready["settings"]),
                batch_size=args.batch,
            )
            store = Store.open(f"sqlite:///{Path(tmp) / 'sync.db'}")
            bodies: list[bytes] = []
            t = time.perf_counter()
            with responses(lambda request, answer: _keep(bodies, request, answer)):
                engine = SyncEngine(host, store)
                settle_heap()  # as `omnicrm sync` does once its runtime is loaded
                result = engine.sync(connection)
            e2e_s = time.perf_counter() - t
            store.close()
            if result.status is not RunStatus.COMPLETE:
                raise SystemExit(f"the sync ended {result.status.value}: {result.error}")
            floor_store = Store.open(f"sqlite:///{Path(tmp) / 'floor.db'}")
            measured = floor(bodies, floor_store, args.batch)
            floor_store.close()
            if result.written != measured.orders:
                raise SystemExit(
                    f"the sync wrote {result.written:,} orders, the floor {measured.orders:,}"
                )
            orders = measured.orders
            e2e_rate, floor_rate = orders / e2e_s, orders / measured.seconds
            ratio = e2e_rate / floor_rate
            verdict = "PASS" if ratio >= GOAL else "FAIL"
            print(
                f"import of {orders:,} orders ({measured.lines:,} product lines,"
                f" {len(bodies):,} answers)\n"
                f"  end to end {e2e_s:8.2f} s  {e2e_rate:>9,.0f} orders/s\n"
                f"  floor      {measured.seconds:8.2f} s  {floor_rate:>9,.0f} orders/s  (parse"
                f" {measured.parse_s:.2f} s, order_from_node {measured.map_s:.2f} s,"
                f" write_batch {measured.write_s:.2f} s)\n"
                f"  sandbox peak RSS {_vm_hwm_mb(ready['pid']) or 0:.0f} MB\n"
                f"  ratio end-to-end/floor {ratio:.2f} (goal >= {GOAL}: {verdict})",
                flush=True,
            )
            return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
