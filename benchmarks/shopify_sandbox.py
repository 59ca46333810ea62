"""The Shopify sandbox at a million customers: start-up, page times and memory.

The sandbox generates its shop lazily, so a million-customer shop answers within seconds
instead of after building every record; its order index is built in the background
meanwhile. This prints how long it takes to serve its first customers, the time of a
first (filtered) page asked for at once (while the order index is being built), pages of
100 customers per second while paging on, the slowest page of all those asked until the
order index is ready (paging goes on until then: a page that waited for the build shows
there), when the order index was ready, an orders page, and the process's peak RSS, each
against its goal, and exits 1 when one is missed. Figures vary with machine load.

    .venv/bin/python benchmarks/shopify_sandbox.py
    .venv/bin/python benchmarks/shopify_sandbox.py --customers 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import threading
import time
from typing import Any

import httpx

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
GOALS = {"customers served (s)": 15.0, "first page (s)": 2.0}
PAGES_PER_SECOND_GOAL = 3.0


def _data(http: httpx.Client, document: str, name: str, **variables: Any) -> dict[str, Any]:
    body = {"query": document, "operationName": name, "variables": variables}
    response = http.post(f"/admin/api/{queries.API_VERSION}/graphql.json", json=body)
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages of 100 to time")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    shop = ShopifySandbox(customers=args.customers, end=END, bucket_size=1e7, restore_rate=1e7)
    # Stamped by a thread of its own: waiting only after paging would time the paging.
    orders_ready: list[float] = []

    def stamp_orders() -> None:
        shop.data.wait_for_orders()
        orders_ready.append(time.perf_counter())

    watcher = threading.Thread(target=stamp_orders)
    watcher.start()
    with (
        shop,
        httpx.Client(
            base_url=shop.url, headers={"X-Shopify-Access-Token": shop.access_token}, timeout=60
        ) as http,
    ):
        started = time.perf_counter() - began
        building = 0  # pages asked while the order index was still being built
        slowest = 0.0

        def customers(**variables: Any) -> dict[str, Any]:
            nonlocal building, slowest
            building += not shop.data.orders_ready.is_set()
            asked = time.perf_counter()
            page = _data(http, queries.CUSTOMERS, "Customers", first=100, **variables)
            slowest = max(slowest, time.perf_counter() - asked)
            return page

        t = time.perf_counter()
        page = customers(query="updated_at:>='2025-12-01'")
        first_page = time.perf_counter() - t
        cursor = page["customers"]["pageInfo"]["endCursor"]
        t = time.perf_counter()
        for _ in range(args.pages):
            page = customers(after=cursor)
            cursor = page["customers"]["pageInfo"]["endCursor"]
        per_second = args.pages / (time.perf_counter() - t)
        # Paging on until the index is ready: one first page meets a stall of the build
        # or not by chance, the slowest of all these shows whether the build has any.
        while watcher.is_alive():
            page = customers(after=cursor)
            cursor = page["customers"]["pageInfo"]["endCursor"]
        watcher.join()
        t = time.perf_counter()
        _data(http, queries.ORDERS, "Orders", first=15, lines=5)
        orders_page = time.perf_counter() - t
        orders = shop.data.base_orders
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"sandbox of {args.customers:,} customers ({orders:,} orders)")
    measured = {"customers served (s)": started, "first page (s)": first_page}
    failed = False
    for name, value in measured.items():
        ok = value < GOALS[name]
        failed |= not ok
        print(f"  {name:<24} {value:8.3f}   goal < {GOALS[name]:g}   {'PASS' if ok else 'FAIL'}")
    ok = per_second > PAGES_PER_SECOND_GOAL
    failed |= not ok
    print(
        f"  {'pages of 100 per second':<24} {per_second:8.2f}   goal > "
        f"{PAGES_PER_SECOND_GOAL:g}   {'PASS' if ok else 'FAIL'}"
    )
    print(f"  {'slowest page (s)':<24} {slowest:8.3f}   of {building} asked during the build")
    print(f"  {'orders ready (s)':<24} {orders_ready[0] - began:8.3f}")
    print(f"  {'orders page (s)':<24} {orders_page:8.3f}")
    print(f"  {'peak RSS (MB)':<24} {rss:8.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
