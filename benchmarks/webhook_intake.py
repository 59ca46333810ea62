"""Webhook intake under a flash sale's burst: accepted/s, latency, each applied once.

The webhook app (``omnicrm webhooks serve``'s, with the built-in Shopify receiver and one
Shopify connection) runs in this process on loopback, over a fresh store (SQLite in a
temporary directory, or ``--store-url``), accepting only (``serve --no-apply``) while
``--appliers`` processes apply the inbox as ``omnicrm webhooks work`` does (``--appliers
0``: the server's own thread applies, as ``webhooks serve`` alone). A second process
sends ``--events`` signed webhooks, two thirds ``customers/update`` and one third
``orders/create`` (the sandbox's realistic Japanese payloads, each about a different
record), ``--concurrency`` at a time, and reports when each was answered. Bodies are
built and signed before the clock starts.

Then this process waits for the appliers to apply everything and checks that every
event is recorded applied after exactly one attempt, that the inbox (raw bodies) is
empty, and that the store holds exactly one record per event. It prints accepted/s, the
latency percentiles and the time to apply the backlog, with PASS/FAIL against the goal
(at least 500 accepted/s, p99 under 100 ms, every event applied once; exit 1 on a miss).

    .venv/bin/python benchmarks/webhook_intake.py
    .venv/bin/python benchmarks/webhook_intake.py --events 5000 --concurrency 32
    .venv/bin/python benchmarks/webhook_intake.py --store-url postgresql+psycopg://127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select

from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import applying, create_app
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.store import Store, inbox
from omnicrm.core.store.inbox import EventStatus
from omnicrm.core.store.schema import webhook_events
from omnicrm.plugins.shopify.sandbox import webhooks as payloads
from omnicrm.plugins.shopify.sandbox.data import ShopData
from omnicrm.plugins.shopify.settings import ShopifySettings

SHOP = "bench-shop.myshopify.com"
SECRET = "shpss_bench_secret"
GOAL_RATE = 500.0
GOAL_P99 = 0.100


# -- the sender (the second process) ------------------------------------------------------


def build(events: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed deliveries: bodies and headers, each event about a record of its own."""
    n_orders = events // 3
    n_customers = events - n_orders
    data = ShopData(max(n_customers, 100), seed=7)
    data.wait_for_orders()
    sent: list[tuple[bytes, dict[str, str]]] = []
    for i in range(events):
        if i % 3 == 2:
            topic, body = "orders/create", payloads.order_payload(data, i // 3, SHOP)
        else:
            topic = "customers/update"
            body = payloads.customer_payload(data.customer(i - i // 3))
        raw = payloads.encode(body)
        head = payloads.headers(
            topic, raw, secret=SECRET, shop=SHOP, api_version="2026-04", event_id=f"bench-{i}"
        )
        sent.append((raw, head))
    return sent


async def send(url: str, deliveries: list[tuple[bytes, dict[str, str]]], concurrency: int) -> Any:
    """Post every delivery over ``concurrency`` keep-alive connections.

    A bare HTTP/1.1 client on asyncio streams: httpx costs the sender several times the
    receiver's CPU per request, which would measure the sender rather than the intake.
    """
    parsed = httpx.URL(url)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    queue = iter(deliveries)

    def request(body: bytes, head: dict[str, str]) -> bytes:
        lines = [f"POST {parsed.raw_path.decode()} HTTP/1.1", f"Host: {parsed.host}"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            for body, head in queue:
                began = time.perf_counter()
                writer.write(request(body, head))
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                answer = json.loads(await reader.readexactly(length)) if length else {}
                latencies.append(time.perf_counter() - began)
                key = f"{status_line.split()[1].decode()} {answer.get('status', '')}"
                statuses[key] = statuses.get(key, 0) + 1
        finally:
            writer.close()

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"took": took, "cpu": cpu, "latencies": latencies, "statuses": statuses}


def client_main(url: str, events: int, concurrency: int) -> None:
    deliveries = build(events)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    print(json.dumps(asyncio.run(send(url, deliveries, concurrency))), flush=True)


# -- the receiving side ------------------------------------------------------------------


def make_runtime(store_url: str) -> Runtime:
    """The runtime of ``omnicrm webhooks serve``/``work`` with one Shopify connection."""
    settings = ShopifySettings(
        domain=SHOP, access_token=SecretStr("shpat_bench"), client_secret=SecretStr(SECRET)
    )
    config = Config(
        None, store_url, SchedulerSection(), {"bench": Connection("bench", "shopify", settings)}
    )
    return Runtime(Host.load(), config)


def applier_main(store_url: str) -> None:
    """What ``omnicrm webhooks work`` does: drain the inbox until told to stop on stdin;
    prints this process's CPU time."""
    runtime = make_runtime(store_url)
    cpu = time.process_time()
    with applying(runtime, poll=0.1):
        print("ready", flush=True)
        sys.stdin.readline()  # stop
    runtime.close()
    print(json.dumps({"cpu": time.process_time() - cpu}), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--appliers",
        type=int,
        default=1,
        help="processes applying the inbox, as `webhooks work` (default 1); 0: the "
        "server's own thread applies, as `webhooks serve` alone",
    )
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="uvicorn on asyncio and h11 instead of uvloop and httptools",
    )
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--applier", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.events, args.concurrency)
        return 0
    if args.applier:
        applier_main(args.applier)
        return 0

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        store_url = args.store_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        runtime = make_runtime(store_url)
        app = create_app(runtime, apply=args.appliers == 0)
        # uvicorn's "auto" takes uvloop and httptools, as `omnicrm webhooks serve` does.
        loop, http = ("asyncio", "h11") if args.plain_http else ("auto", "auto")
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                loop=loop,
                http=http,
            )
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}/webhooks/shopify"
        print(
            f"store: {Store(store_url)!r}; {args.events} events, {args.concurrency} at a time; "
            f"http: {'asyncio, h11' if args.plain_http else 'uvloop, httptools'}; applied by "
            + (f"{args.appliers} process(es) of their own" if args.appliers else "the server")
        )
        appliers = [
            subprocess.Popen(
                [sys.executable, __file__, "--applier", store_url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.appliers)
        ]
        for applier in appliers:
            assert applier.stdout is not None
            applier.stdout.readline()  # ready
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                url,
                "--events",
                str(args.events),
                "--concurrency",
                str(args.concurrency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        client.stdout.readline()  # ready: bodies built and signed
        sent_at, cpu = time.perf_counter(), time.process_time()
        client.stdin.write("go\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        server_cpu = time.process_time() - cpu  # intake and whatever the worker did meanwhile
        client.wait()
        store = runtime.store
        deadline = time.monotonic() + 600
        while inbox.pending(store) and time.monotonic() < deadline:
            time.sleep(0.05)
        applied_after = time.perf_counter() - sent_at
        applier_cpu = 0.0
        for applier in appliers:
            assert applier.stdin is not None and applier.stdout is not None
            applier.stdin.write("stop\n")
            applier.stdin.flush()
            applier_cpu += json.loads(applier.stdout.readline())["cpu"]
            applier.wait()
        with store.engine.connect() as conn:
            outcomes = dict(
                conn.execute(
                    select(webhook_events.c.status, func.count()).group_by(webhook_events.c.status)
                ).all()
            )
            retried = conn.execute(
                select(func.count()).where(webhook_events.c.attempts != 1)
            ).scalar_one()
        customers = store.count(Stream.CUSTOMERS, "bench")
        orders = store.count(Stream.ORDERS, "bench")
        left = inbox.pending(store)
        server.should_exit = True
        thread.join(30)
        runtime.close()

    latencies = result["latencies"]
    rate = len(latencies) / result["took"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    expected_orders = args.events // 3
    once = (
        outcomes == {EventStatus.APPLIED.value: args.events}
        and retried == 0
        and left == 0
        and customers == args.events - expected_orders
        and orders == expected_orders
    )
    print(f"answers: {result['statuses']}")
    print(
        f"accepted: {rate:,.0f} webhooks/s ({len(latencies)} in {result['took']:.2f} s); "
        f"latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    n = len(latencies)
    print(
        f"cpu per webhook while sending: server {server_cpu / n * 1000:.2f} ms "
        f"({'intake only' if appliers else 'intake and the worker'}), client "
        f"{result['cpu'] / n * 1000:.2f} ms"
        + (f"; applying (all, in the appliers) {applier_cpu / n * 1000:.2f} ms" if appliers else "")
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"applied: all {args.events} {applied_after:.2f} s after the first was sent; "
        f"outcomes {outcomes}, retried {retried}, left in the inbox {left}; "
        f"store: {customers} customers, {orders} orders"
        if once
        else f"NOT applied exactly once: outcomes {outcomes}, retried {retried}, inbox {left}, "
        f"customers {customers}, orders {orders}"
    )
    ok = rate >= GOAL_RATE and p99 < GOAL_P99 and once
    print(
        f"goal: >= {GOAL_RATE:.0f}/s accepted, p99 < {GOAL_P99 * 1000:.0f} ms, each applied "
        f"once: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
