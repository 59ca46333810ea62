"""Smaregi import benchmark: transaction details/s end to end against an in-memory floor.

The sandbox runs in its own process (``python -m omnicrm.plugins.pos.smaregi.sandbox``,
stopped by its pid at the end) with enough sales for ``--details`` transaction details
(1,000,000 by default: ~470,000 receipts of the seed's basket sizes). The importer runs
``SyncEngine`` on the orders stream into a fresh SQLite store: the token, 31-day windows,
pages of 100 sales with their details. The floor, measured in the same run, takes the
very responses the sync received, already in memory, parses them (``orjson.loads``, as
the client does), maps them (``mapping.order_from_transaction``) and writes them
(``Store.write_batch``, same batch size) into another fresh store, with no network.
Goal: details/s end to end at least 0.7 of the floor's. Prints the figures, the goal
and PASS/FAIL (exit 1 on a miss).

    .venv/bin/python benchmarks/pos_smaregi.py                      # 1,000,000 details
    .venv/bin/python benchmarks/pos_smaregi.py --details 100000     # a shared machine
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import os
import pstats
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
from omnicrm.plugins.pos.smaregi.mapping import order_from_transaction, store_names
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings

GOAL = 0.7  # end-to-end details/s over the floor's
MEAN_BASKET = 2.13  # the seed's details per receipt, measured


@contextlib.contextmanager
def sandbox(sales: int, members: int, seed: int) -> Iterator[dict[str, Any]]:
    """The sandbox in a process of its own, ready; stopped (by its pid) afterwards."""
    command = [sys.executable, "-m", "omnicrm.plugins.pos.smaregi.sandbox"]
    command += ["--sales", str(sales), "--members", str(members), "--seed", str(seed)]
    with announced(command) as (pid, ready):
        ready["pid"] = pid
        print(
            f"sandbox (pid {pid}): {ready['sales']:,} sales, {ready['details']:,}"
            f" details, {ready['members']:,} members, ready in {ready['ready_seconds']:.1f} s",
            flush=True,
        )
        yield ready


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Collections:
    """Counts the cyclic collector's runs and the time they take, while installed."""

    def __init__(self) -> None:
        self.count, self.seconds, self._began = 0, 0.0, 0.0
        self.by_generation = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            took = time.perf_counter() - self._began
            self.count += 1
            self.seconds += took
            self.by_generation[info["generation"]] += took

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        gc.callbacks.append(self)
        try:
            yield
        finally:
            gc.callbacks.remove(self)


def _keep(bodies: dict[str, list[bytes]], request: httpx.Request, answer: httpx.Response) -> None:
    """Keep the body of every /stores and /transactions answer (a reference, no copy)."""
    kept = bodies.get(request.url.path.rsplit("/", 1)[-1])
    if kept is not None:
        kept.append(answer.content)


def floor(bodies: dict[str, list[bytes]], store: Store, batch: int) -> Floor:
    """Parse the recorded answers, map them and write them: the pipeline without HTTP."""
    result = Floor()
    t = time.perf_counter()
    stores = [s for body in bodies["stores"] for s in orjson.loads(body)]
    records = [r for body in bodies["transactions"] for r in orjson.loads(body)]
    result.parse_s = time.perf_counter() - t
    t = time.perf_counter()
    names = store_names(stores)
    orders = [o for r in records if (o := order_from_transaction(r, names)) is not None]
    result.map_s = time.perf_counter() - t
    result.orders = len(orders)
    result.lines = sum(len(r.get("details") or ()) for r in records)
    _write_all(store, orders, batch, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--details", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=0, help="default: sales / 20")
    parser.add_argument("--batch", type=int, default=1000, help="the connection's batch_size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        help="write a cProfile (CPU time of the main thread) of the sync here and of the"
        " floor to FILE.floor; print the sync's top functions",
    )
    args = parser.parse_args(argv)
    sales = max(1, round(args.details / MEAN_BASKET))
    members = args.members or max(50, sales // 20)
    with tempfile.TemporaryDirectory() as tmp, sandbox(sales, members, args.seed) as ready:
        host = Host.load()
        pos = host.channel_type("smaregi")
        host.channel_types["smaregi"] = dataclasses.replace(pos, streams=(Stream.ORDERS,))
        connection = Connection(
            name="bench",
            channel="smaregi",
            settings=SmaregiSettings.model_validate(ready["settings"]),
            batch_size=args.batch,
        )
        store = Store.open(f"sqlite:///{Path(tmp) / 'sync.db'}")
        bodies: dict[str, list[bytes]] = {"stores": [], "transactions": []}
        # CPU time of this thread: not the waits for the page fetched beside it.
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        sandbox_cpu, t, cpu = _cpu_s(ready["pid"]), time.perf_counter(), time.process_time()
        collections = _Collections()
        keeping = responses(lambda request, answer: _keep(bodies, request, answer))
        with keeping, collections.installed():
            engine = SyncEngine(host, store)
            settle_heap()  # as `omnicrm sync` does once its runtime is loaded
            if profiler is not None:
                profiler.enable()
            result = engine.sync(connection)
            if profiler is not None:
                profiler.disable()
        e2e_s, e2e_cpu = time.perf_counter() - t, time.process_time() - cpu
        sandbox_cpu = _cpu_s(ready["pid"]) - sandbox_cpu
        store.close()
        if result.status is not RunStatus.COMPLETE:
            raise SystemExit(f"the sync ended {result.status.value}: {result.error}")
        if result.written != ready["sales"]:
            raise SystemExit(f"the sync wrote {result.written:,} sales of {ready['sales']:,}")
        floor_store = Store.open(f"sqlite:///{Path(tmp) / 'floor.db'}")
        cpu, floor_collections = time.process_time(), _Collections()
        floor_profiler = cProfile.Profile(time.thread_time) if args.profile else None
        with floor_collections.installed():
            if floor_profiler is not None:
                floor_profiler.enable()
            measured = floor(bodies, floor_store, args.batch)
            if floor_profiler is not None:
                floor_profiler.disable()
        floor_cpu = time.process_time() - cpu
        floor_store.close()
        if (measured.orders, measured.lines) != (ready["sales"], ready["details"]):
            raise SystemExit("the floor did not see what the sync read")
        details = ready["details"]
        e2e_rate, floor_rate = details / e2e_s, details / measured.seconds
        ratio = e2e_rate / floor_rate
        verdict = "PASS" if ratio >= GOAL else "FAIL"
        pages = len(bodies["transactions"])
        print(
            f"import of {details:,} details ({ready['sales']:,} sales, {pages:,} pages)\n"
            f"  end to end {e2e_s:8.2f} s  {e2e_rate:>9,.0f} details/s  (CPU: importer"
            f" {e2e_cpu:.2f} s, sandbox {sandbox_cpu:.2f} s; {collections.count:,} cyclic"
            f" collections, {collections.seconds:.2f} s)\n"
            f"  floor      {measured.seconds:8.2f} s  {floor_rate:>9,.0f} details/s  (CPU"
            f" {floor_cpu:.2f} s, {floor_collections.count:,} cyclic collections,"
            f" {floor_collections.seconds:.2f} s; parse"
            f" {measured.parse_s:.2f} s, order_from_transaction {measured.map_s:.2f} s,"
            f" write_batch {measured.write_s:.2f} s)\n"
            f"  sandbox peak RSS {_vm_hwm_mb(ready['pid']) or 0:.0f} MB\n"
            f"  ratio end-to-end/floor {ratio:.2f} (goal >= {GOAL}: {verdict})",
            flush=True,
        )
        print(
            "  seconds in cyclic collections of generation 0/1/2: sync "
            + "/".join(f"{s:.2f}" for s in collections.by_generation)
            + ", floor "
            + "/".join(f"{s:.2f}" for s in floor_collections.by_generation)
        )
        if profiler is not None:
            profiler.dump_stats(args.profile)
            if floor_profiler is not None:
                floor_profiler.dump_stats(f"{args.profile}.floor")
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)
        return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
