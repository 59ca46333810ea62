"""The channel's sandbox factory: settings the plugin accepts, tuned by environment."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest

from omnicrm.core.channels import SandboxFactory
from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import sandbox
from omnicrm.plugins.shopify.settings import ShopifySettings


def test_the_factory_yields_settings_that_reach_a_live_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPIFY_SANDBOX_CUSTOMERS", "120")
    monkeypatch.setenv("SHOPIFY_SANDBOX_LIVE", "0")
    factory: SandboxFactory = sandbox
    with factory() as settings:
        assert set(settings) == {"domain", "access_token", "client_id", "client_secret", "api_url"}
        parsed = ShopifySettings.model_validate(dict(settings))
        assert parsed.domain == "omnicrm-demo.myshopify.com"
        assert parsed.base_url.startswith("http://127.0.0.1:")
        response = httpx.post(
            f"{parsed.base_url}/admin/api/{queries.API_VERSION}/graphql.json",
            json={"query": queries.CUSTOMERS_COUNT},
            headers={"X-Shopify-Access-Token": settings["access_token"]},
        )
        body = response.json()
        assert body["data"]["customersCount"]["count"] == 120
        # A standard shop's bucket as Shopify documents it today: 100 points a second.
        throttle = body["extensions"]["cost"]["throttleStatus"]
        assert (throttle["maximumAvailable"], throttle["restoreRate"]) == (2000.0, 100.0)
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{parsed.base_url}/admin/api/{queries.API_VERSION}/graphql.json")


@pytest.mark.parametrize(
    ("name", "value"),
    [("SHOPIFY_SANDBOX_CUSTOMERS", "5"), ("SHOPIFY_SANDBOX_RESTORE_RATE", "fast")],
)
def test_bad_environment_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name), sandbox():
        pass


def test_a_live_sandbox_changes_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_SANDBOX_CUSTOMERS", "100")
    monkeypatch.setenv("SHOPIFY_SANDBOX_LIVE", "0.05")
    with sandbox() as settings:
        headers = {"X-Shopify-Access-Token": settings["access_token"]}
        url = f"{settings['api_url']}/admin/api/{queries.API_VERSION}/graphql.json"

        # Customers change on every tick; orders arrive at the seeded history's pace
        # (tests/plugins/shopify/sandbox/test_live.py), too rarely to wait for here.
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def changed() -> Any:
            body = httpx.post(
                url,
                json={
                    "query": queries.CUSTOMERS_COUNT,
                    "variables": {"query": f"updated_at:>='{started}'"},
                },
                headers=headers,
            ).json()
            return body["data"]["customersCount"]["count"]

        deadline = time.monotonic() + 5
        while changed() == 0:
            assert time.monotonic() < deadline, "nothing changed in a live shop"
            time.sleep(0.05)
