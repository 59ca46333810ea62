"""Size: a million customers start in seconds and answer pages fast."""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.mark.slow
def test_a_million_customers_start_in_seconds_and_serve_pages(client_for: Any) -> None:
    began = time.perf_counter()
    shop = ShopifySandbox(customers=1_000_000, end=END, bucket_size=10**7, restore_rate=10**7)
    with shop:
        started = time.perf_counter() - began
        admin = client_for(shop)
        t = time.perf_counter()
        page = admin.data(
            queries.CUSTOMERS, "Customers", first=100, query="updated_at:>='2025-12-01'"
        )
        first_page = time.perf_counter() - t
        assert len(page["customers"]["nodes"]) == 100
        cursor, t, pages = page["customers"]["pageInfo"]["endCursor"], time.perf_counter(), 10
        for _ in range(pages):
            page = admin.data(queries.CUSTOMERS, "Customers", first=100, after=cursor)
            cursor = page["customers"]["pageInfo"]["endCursor"]
        per_second = pages / (time.perf_counter() - t)
        shop.data.wait_for_orders()
        orders_ready = time.perf_counter() - began
        t = time.perf_counter()
        orders = admin.data(queries.ORDERS, "Orders", first=15, lines=5)["orders"]["nodes"]
        orders_page = time.perf_counter() - t
        assert len(orders) == 15
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"\n1M customers ({shop.data.base_orders} orders): customers served after "
            f"{started:.1f}s, orders after {orders_ready:.1f}s; first page {first_page:.3f}s, "
            f"{per_second:.1f} pages of 100 customers/s, orders page {orders_page:.3f}s, "
            f"max RSS {rss:.0f} MB"
        )
        assert started < 15, "customers are served within seconds"
        assert first_page < 2 and per_second > 3


def test_the_command_line_runs_a_sandbox_in_its_own_process() -> None:
    command = [
        sys.executable, "-m", "omnicrm.plugins.shopify.sandbox", "--customers", "200",
        "--seed", "3", "--bucket-size", "1000", "--restore-rate", "100",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "ready" and ready["customers"] == 200
        settings = ready["settings"]
        response = httpx.post(
            f"{settings['api_url']}/admin/api/{queries.API_VERSION}/graphql.json",
            json={"query": queries.ACCESS_SCOPES},
            headers={"X-Shopify-Access-Token": settings["access_token"]},
        )
        status = response.json()["extensions"]["cost"]["throttleStatus"]
        assert status["maximumAvailable"] == 1000.0 and status["restoreRate"] == 100.0
    finally:
        process.terminate()
        process.wait(10)
