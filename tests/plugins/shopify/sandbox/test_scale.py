"""Size: a large shop is generated lazily and served correctly (speed: benchmarks/)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.mark.slow
def test_a_large_shop_serves_every_page_and_its_orders(client_for: Any) -> None:
    # How fast is benchmarks/shopify_sandbox.py's business; this checks that a shop far
    # larger than the tests' others is generated lazily and still served correctly.
    shop = ShopifySandbox(customers=200_000, end=END, bucket_size=10**7, restore_rate=10**7)
    with shop:
        admin = client_for(shop)
        page = admin.data(
            queries.CUSTOMERS, "Customers", first=100, query="updated_at:>='2025-12-01'"
        )
        assert len(page["customers"]["nodes"]) == 100
        seen: set[str] = set()
        cursor = None
        for _ in range(5):
            page = admin.data(queries.CUSTOMERS, "Customers", first=100, after=cursor)
            nodes = page["customers"]["nodes"]
            assert len(nodes) == 100
            seen.update(node["id"] for node in nodes)
            cursor = page["customers"]["pageInfo"]["endCursor"]
        assert len(seen) == 500, "pages do not overlap"
        shop.data.wait_for_orders()
        assert shop.data.base_orders > 200_000
        orders = admin.data(queries.ORDERS, "Orders", first=15, lines=5)["orders"]["nodes"]
        assert len(orders) == 15


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
