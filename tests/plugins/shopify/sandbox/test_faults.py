"""Authentication, API versions, the client credentials grant and the fault switches."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from shopify_app.exchange.client_credentials import exchange_using_client_credentials

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.server import INVALID_TOKEN

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
SCOPES = "{ currentAppInstallation { accessScopes { handle } } }"


@pytest.fixture
def faulty() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=150, seed=4, end=END, bucket_size=10**7, restore_rate=10**7) as s:
        yield s


def test_a_wrong_token_gets_shopifys_401(shop: ShopifySandbox, client_for: Any) -> None:
    response = client_for(shop, token="shpat_wrong").post(SCOPES)
    assert response.status_code == 401
    assert response.json() == {"errors": INVALID_TOKEN}


def test_only_the_pinned_api_version_answers(shop: ShopifySandbox) -> None:
    headers = {"X-Shopify-Access-Token": shop.access_token}
    response = httpx.post(
        f"{shop.url}/admin/api/2023-01/graphql.json", json={"query": SCOPES}, headers=headers
    )
    assert response.status_code == 404
    assert httpx.post(shop.graphql_url, json={"query": SCOPES}, headers=headers).status_code == 200


def test_client_credentials_give_a_working_token(shop: ShopifySandbox, client_for: Any) -> None:
    body = {
        "grant_type": "client_credentials",
        "client_id": shop.client_id,
        "client_secret": shop.client_secret,
    }
    response = httpx.post(f"{shop.url}/admin/oauth/access_token", json=body)
    assert response.status_code == 200
    token = response.json()
    assert set(token) == {"access_token", "scope", "expires_in"}
    assert token["access_token"].startswith("shpat_") and token["expires_in"] == 86_399
    assert "read_all_orders" in token["scope"].split(",")
    assert "errors" not in client_for(shop, token=token["access_token"]).run(SCOPES)
    form = httpx.post(f"{shop.url}/admin/oauth/access_token", data=body)
    assert form.status_code == 200, "a form-encoded request works as well"
    wrong = httpx.post(
        f"{shop.url}/admin/oauth/access_token", json={**body, "client_secret": "nope"}
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
    shop.expire_tokens()
    assert client_for(shop, token=token["access_token"]).post(SCOPES).status_code == 401


def test_shopifyapp_exchanges_against_the_sandbox(shop: ShopifySandbox) -> None:
    """shopifyapp builds https://SHOP.myshopify.com/...; a transport sends it to loopback."""

    class Reroute(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.url = httpx.URL(shop.url + request.url.raw_path.decode())
            return self.inner.handle_request(request)

    with httpx.Client(transport=Reroute()) as http:
        result = exchange_using_client_credentials(
            shop.shop.removesuffix(".myshopify.com"),
            {"client_id": shop.client_id, "client_secret": shop.client_secret},  # type: ignore[typeddict-item]
            http_client=http,
        )
    assert result.ok and result.access_token is not None
    assert result.access_token.token in shop.tokens


def test_the_next_requests_fail_with_5xx_then_recover(
    faulty: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(faulty)
    faulty.fail_next(2, status=502)
    first, second = admin.post(SCOPES), admin.post(SCOPES)
    assert (first.status_code, second.status_code) == (502, 502)
    assert first.headers["content-type"].startswith("text/html"), "an HTML error page"
    assert admin.post(SCOPES).status_code == 200
    faulty.fail_next(status=503)
    assert admin.post(SCOPES).status_code == 503


def test_429_with_retry_after(faulty: ShopifySandbox, client_for: Any) -> None:
    faulty.rate_limit_next(retry_after=2.5)
    response = client_for(faulty).post(SCOPES)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2.5"
    assert "errors" in response.json()


def test_a_malformed_body(faulty: ShopifySandbox, client_for: Any) -> None:
    admin = client_for(faulty)
    faulty.malform_next()
    response = admin.post(SCOPES)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert admin.post(SCOPES).json()["data"]


def test_a_slow_answer_times_the_client_out(faulty: ShopifySandbox) -> None:
    faulty.delay_next(seconds=1.5)
    headers = {"X-Shopify-Access-Token": faulty.access_token}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(faulty.graphql_url, json={"query": SCOPES}, headers=headers, timeout=0.3)
    fine = httpx.post(faulty.graphql_url, json={"query": SCOPES}, headers=headers, timeout=5)
    assert fine.status_code == 200


def test_denying_read_all_orders_hides_orders_older_than_60_days(
    faulty: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(faulty)
    faulty.data.clock = lambda: END.timestamp() + 3600
    everything = admin.data(queries.ORDERS_COUNT, "OrdersCount")["ordersCount"]["count"]
    old = admin.data(queries.ORDERS, "Orders", first=1, lines=1)["orders"]["nodes"][0]
    faulty.deny_read_all_orders()
    scopes = admin.data(queries.ACCESS_SCOPES, "AccessScopes")
    handles = [s["handle"] for s in scopes["currentAppInstallation"]["accessScopes"]]
    assert "read_all_orders" not in handles and "read_orders" in handles
    recent = admin.data(queries.ORDERS_COUNT, "OrdersCount")["ordersCount"]["count"]
    assert 0 < recent < everything / 4
    cutoff = (END + dt.timedelta(hours=1) - dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = admin.data(queries.ORDERS, "Orders", first=20, lines=1)["orders"]["nodes"]
    assert page and all(o["createdAt"] >= cutoff for o in page)
    assert admin.data("query($id: ID!) { order(id: $id) { id } }", id=old["id"])["order"] is None
    faulty.deny_read_all_orders(False)
    assert admin.data(queries.ORDERS_COUNT, "OrdersCount")["ordersCount"]["count"] == everything


def test_faults_can_be_cleared_and_switched_from_another_process(faulty: ShopifySandbox) -> None:
    control = f"{faulty.url}/_sandbox/control"
    assert httpx.post(control, json={"action": "fail", "count": 3, "status": 500}).json()["ok"]
    assert httpx.post(control, json={"action": "clear_faults"}).json()["ok"]
    headers = {"X-Shopify-Access-Token": faulty.access_token}
    assert httpx.post(faulty.graphql_url, json={"query": SCOPES}, headers=headers).is_success
    changes = httpx.post(control, json={"action": "tick", "count": 4}).json()["changes"]
    assert len(changes) == 4 and all(gid.startswith("gid://shopify/") for _, gid in changes)
    stats = httpx.get(f"{faulty.url}/_sandbox/stats").json()
    assert stats["graphql"] >= 1 and stats["orders_ready"] is True
    assert httpx.post(control, json={"action": "nope"}).status_code == 400
