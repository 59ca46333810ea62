"""The storefront endpoint under load: offers/s and latency from a second process.

The app of ``omnicrm webhooks serve`` (which serves ``/storefront/...``) runs in this
process on loopback with uvicorn (uvloop, httptools), over a fresh store (SQLite in a
temporary directory, or ``--store-url``) seeded with a shop of ``--customers`` customers,
their orders (2 to 4 lines each over 60 products, so the recommenders have baskets to
learn from), the catalogue, profiles, and two offers: a second-visit popup for prospects
(a segment expression, A/B variants, a cap) and a banner for everyone on product pages.

A second process asks ``GET /storefront/offers`` ``--requests`` times, ``--concurrency``
at a time over keep-alive connections: each request is a visitor (one of
``--visitors``) on a product page, a third of them signed in with a customer token, one
in five beginning a visit. Every request writes (the visitor's visit) and reads (the
visitor's state, the segment, the caps, the recommendations). Queries are built and
signed before the clock starts. It prints offers/s and the latency percentiles, with
PASS/FAIL against the goal: at least 1,000 offers/s with p99 under 50 ms from one
process (exit 1 on a miss).

    .venv/bin/python benchmarks/storefront_load.py
    .venv/bin/python benchmarks/storefront_load.py --requests 2000 --concurrency 8
    .venv/bin/python benchmarks/storefront_load.py --store-url postgresql+psycopg://127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import BaseModel, SecretStr

from omnicrm.app.config import Config, Connection, SchedulerSection, Shop
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.core.channels import Stream
from omnicrm.core.heap import settle_heap
from omnicrm.core.host import Host
from omnicrm.core.records import Customer, Order, OrderLine, Product, ProductVariant
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.onsite.settings import OfferSettings, StorefrontSettings
from omnicrm.engage.onsite.tokens import customer_token

SHOP = "bench-shop"
KEY = "pk-bench-shop-0001"
SECRET = "bench-token-secret"
PRODUCTS = 60
GOAL_RATE = 1000.0
GOAL_P99 = 0.050


class SiteSettings(BaseModel):
    """The settings of the benchmark's one connection (no plugin reads them)."""


def make_runtime(store_url: str) -> Runtime:
    shop = Shop(
        id=SHOP,
        name="ベンチ茶舗",
        storefront=StorefrontSettings(
            domains=["https://bench-shop.jp"],
            public_key=KEY,
            customer_connection="web",
            token_secret=SecretStr(SECRET),
        ),
        offers={
            "second-visit": OfferSettings.model_validate(
                {
                    "kind": "popup",
                    "text": "2回目のご来店ありがとうございます",
                    "coupon": "WELCOME10",
                    "segment": "lifecycle_stage = 'prospect'",
                    "min_visits": 2,
                    "no_purchase_yet": True,
                    "max_impressions": 3,
                    "variants": [{"name": "A"}, {"name": "B", "coupon": "WELCOME15"}],
                }
            ),
            "free-shipping": OfferSettings.model_validate(
                {"kind": "banner", "text": "5,000円以上で送料無料", "page": "/products/*"}
            ),
        },
    )
    connection = Connection("web", "site", SiteSettings(), shop=SHOP)
    config = Config(None, store_url, SchedulerSection(), {"web": connection}, shops={SHOP: shop})
    return Runtime(Host.load(), config)


def seed(runtime: Runtime, customers: int) -> None:
    """Customers (a quarter without orders: prospects), their orders, the catalogue."""
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    store = runtime.store
    people = [
        Customer(
            id=f"C{i}",
            family_name="山田",
            given_name=f"花子{i}",
            email=f"c{i}@example.jp",
            updated_at=now,
        )
        for i in range(customers)
    ]
    store.write_batch("web", Stream.CUSTOMERS, people)
    orders = []
    for i in range(customers):
        if i % 4 == 0:
            continue
        for n in range(rng.randint(1, 3)):
            placed = now - dt.timedelta(days=rng.randint(1, 300))
            skus = rng.sample(range(PRODUCTS), rng.randint(2, 4))
            orders.append(
                Order(
                    id=f"O{i}-{n}",
                    customer_id=f"C{i}",
                    status="paid",  # type: ignore[arg-type]
                    placed_at=placed,
                    updated_at=placed,
                    subtotal=Decimal(1000 * len(skus)),
                    total=Decimal(1000 * len(skus)),
                    lines=[
                        OrderLine(
                            product_name=f"商品{s}",
                            sku=f"SKU-{s:03d}",
                            quantity=1,
                            unit_price=Decimal(1000),
                        )
                        for s in skus
                    ],
                )
            )
    for start in range(0, len(orders), 1000):
        store.write_batch("web", Stream.ORDERS, orders[start : start + 1000])
    store.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            Product(
                id=f"P{s}",
                title=f"商品{s}",
                url=f"https://bench-shop.jp/products/{s}",
                variants=[
                    ProductVariant(
                        id=f"V{s}", sku=f"SKU-{s:03d}", price=Decimal(1000), available=s % 10 != 0
                    )
                ],
                updated_at=now,
            )
            for s in range(PRODUCTS)
        ],
    )
    refresh(store, CrmSettings(shop=SHOP), now=now)


# -- the client (the second process) ------------------------------------------------------


def build(requests: int, visitors: int, customers: int) -> list[str]:
    """The request targets: path and query, a third signed in, one in five a new visit."""
    rng = random.Random(11)
    expires = int(time.time()) + 3600
    targets = []
    for i in range(requests):
        v = rng.randrange(visitors)
        params = {"key": KEY, "visitor": f"bench-visitor-{v:08d}", "page": f"/products/{v % 60}"}
        params["product"] = f"SKU-{rng.randrange(PRODUCTS):03d}"
        if v % 3 == 0:
            params["token"] = customer_token(f"C{v % customers}", expires, SECRET)
        if i % 5 == 0:
            params["new_visit"] = "1"
        targets.append("/storefront/offers?" + urllib.parse.urlencode(params))
    return targets


async def send(url: str, targets: list[str], concurrency: int) -> dict[str, Any]:
    """GET every target over ``concurrency`` keep-alive connections, with a bare HTTP/1.1
    client on asyncio streams (httpx would cost the client more CPU than the server)."""
    parsed = httpx.URL(url)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    offers = 0
    queue = iter(targets)

    async def worker() -> None:
        nonlocal offers
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            for target in queue:
                began = time.perf_counter()
                writer.write(
                    f"GET {target} HTTP/1.1\r\nHost: {parsed.host}\r\n"
                    "Origin: https://bench-shop.jp\r\n\r\n".encode()
                )
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b"{}"
                latencies.append(time.perf_counter() - began)
                status = status_line.split()[1].decode()
                statuses[status] = statuses.get(status, 0) + 1
                if status == "200":
                    offers += len(json.loads(body)["offers"])
        finally:
            writer.close()

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {
        "took": took,
        "cpu": cpu,
        "latencies": latencies,
        "statuses": statuses,
        "offers_shown": offers,
    }


def client_main(url: str, requests: int, visitors: int, customers: int, concurrency: int) -> None:
    targets = build(requests, visitors, customers)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    print(json.dumps(asyncio.run(send(url, targets, concurrency))), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave the collector as CPython starts it (no settle_heap), to compare",
    )
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.requests, args.visitors, args.customers, args.concurrency)
        return 0

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        store_url = args.store_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        runtime = make_runtime(store_url)
        began = time.perf_counter()
        seed(runtime, args.customers)
        print(f"seeded {args.customers} customers in {time.perf_counter() - began:.1f} s")
        if not args.default_gc:
            # The server as `omnicrm webhooks serve` runs it: that command settles the
            # heap once its runtime is loaded (omnicrm.core.heap). The seeding above is
            # the benchmark's own, not the server's: its garbage goes first.
            gc.collect()
            settle_heap()
        app = create_app(runtime)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                access_log=False,  # as `omnicrm webhooks serve` runs it
                lifespan="on",
            )
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        # One request first: the recommenders fit on the shop's history once, as they do
        # on a server's first visitor; the load measures the steady state after it.
        warm = httpx.get(
            f"{url}/storefront/offers",
            params={"key": KEY, "visitor": "bench-warm-up-00000", "product": "SKU-001"},
        )
        assert warm.status_code == 200, warm.text
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                url,
                "--requests",
                str(args.requests),
                "--visitors",
                str(args.visitors),
                "--customers",
                str(args.customers),
                "--concurrency",
                str(args.concurrency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        client.stdout.readline()  # ready: targets built and signed
        cpu = time.process_time()
        client.stdin.write("go\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        server_cpu = time.process_time() - cpu
        client.wait()
        server.should_exit = True
        thread.join(30)
        app.state.inbox.close()
        runtime.close()

    latencies = result["latencies"]
    n = len(latencies)
    rate = n / result["took"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"store: {store_url.split(':')[0]}; {n} requests, {args.concurrency} at a time")
    print(f"answers: {result['statuses']}; offers shown: {result['offers_shown']}")
    print(
        f"offers: {rate:,.0f} answers/s ({n} in {result['took']:.2f} s); latency p50 "
        f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print(
        f"cpu per answer: server {server_cpu / n * 1000:.2f} ms, client "
        f"{result['cpu'] / n * 1000:.2f} ms; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    ok = rate >= GOAL_RATE and p99 < GOAL_P99 and result["statuses"] == {"200": n}
    print(
        f"goal: >= {GOAL_RATE:.0f} offers/s, p99 < {GOAL_P99 * 1000:.0f} ms, all answered 200: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
