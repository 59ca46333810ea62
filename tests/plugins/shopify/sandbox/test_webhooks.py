"""Webhooks: Shopify's REST shapes, signed with the app's client secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from shopify_app.verify.webhook import verify_webhook_req

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.webhooks import TOPICS
from tests.support.reference import shopify_webhook_sample

sample = shopify_webhook_sample


class Receiver:
    """A loopback HTTP server that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _gids(shop: ShopifySandbox, admin: Any) -> tuple[str, str]:
    customer = admin.data(queries.CUSTOMERS, "Customers", first=50)["customers"]["nodes"]
    with_address = next(c for c in customer if c["defaultAddress"] and int(c["numberOfOrders"]))
    orders = admin.data(queries.ORDERS, "Orders", first=20, lines=1)["orders"]["nodes"]
    order = next(o for o in orders if o["customer"] and o["refunds"] == [])
    return with_address["id"], order["id"]


def _keys(value: Any) -> Any:
    """The key structure of a JSON value (lists by their first item)."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return None


@pytest.mark.parametrize("topic", TOPICS)
def test_payloads_have_the_keys_of_shopifys_samples(
    topic: str, shop: ShopifySandbox, admin: Any
) -> None:
    customer, order = _gids(shop, admin)
    gid = order if topic.startswith("orders/") else customer
    payload = shop.webhook_payload(topic, None if topic == "shop/redact" else gid)
    expected = sample(topic)
    assert list(payload) == list(expected), "the same keys in the same order"
    mine, theirs = _keys(payload), _keys(expected)
    for key, shape in theirs.items():
        if isinstance(shape, dict) and isinstance(mine.get(key), dict):
            assert set(mine[key]) == set(shape), key
        if key == "line_items":
            assert set(mine[key][0]) == set(shape[0])


def test_payload_values_are_the_sandboxs_records(shop: ShopifySandbox, admin: Any) -> None:
    customer_gid, order_gid = _gids(shop, admin)
    customer = shop.customer(customer_gid)
    payload = shop.webhook_payload("customers/update", customer_gid)
    assert payload["admin_graphql_api_id"] == customer_gid
    assert payload["id"] == int(customer_gid.rsplit("/", 1)[1]), "full precision"
    assert payload["email"] == customer["email"] and payload["state"] == customer["state"].lower()
    assert payload["default_address"]["province_code"] == customer["defaultAddress"]["provinceCode"]
    assert payload["updated_at"].endswith("+09:00")
    order = shop.order(order_gid)
    body = shop.webhook_payload("orders/create", order_gid)
    assert body["admin_graphql_api_id"] == order_gid and body["name"] == order["name"]
    assert body["total_price"] == order["totalPriceSet"]["shopMoney"]["amount"].removesuffix(".0")
    assert body["currency"] == "JPY" and body["taxes_included"] is True
    assert [li["admin_graphql_api_id"] for li in body["line_items"]] == [
        li["id"] for li in order["_lines"]
    ]
    assert body["customer"]["admin_graphql_api_id"] == order["customer"]["id"]
    redact = shop.webhook_payload("customers/redact", customer_gid)
    assert redact["shop_domain"] == shop.shop and redact["orders_to_redact"]
    assert shop.webhook_payload("orders/delete", order_gid) == {"id": int(order_gid.split("/")[-1])}


def test_delivery_is_signed_with_the_client_secret(
    shop: ShopifySandbox, admin: Any, receiver: Receiver
) -> None:
    customer_gid, _ = _gids(shop, admin)
    response = shop.deliver_webhook(receiver.url, "customers/update", gid=customer_gid)
    assert response.status_code == 200
    headers, body = receiver.received[-1]
    assert headers["X-Shopify-Topic"] == "customers/update"
    assert headers["X-Shopify-Shop-Domain"] == shop.shop
    assert headers["X-Shopify-API-Version"] == queries.API_VERSION
    assert headers["X-Shopify-Webhook-Id"] and headers["X-Shopify-Triggered-At"].endswith("Z")
    digest = hmac.new(shop.client_secret.encode(), body, hashlib.sha256).digest()
    assert hmac.compare_digest(headers["X-Shopify-Hmac-Sha256"], base64.b64encode(digest).decode())
    request = {
        "method": "POST",
        "headers": headers,
        "url": receiver.url,
        "body": body.decode("utf-8"),
    }
    config = {"client_id": shop.client_id, "client_secret": shop.client_secret}
    result = verify_webhook_req(request, config)  # type: ignore[arg-type]
    assert result.ok, result.log
    assert json.loads(body)["admin_graphql_api_id"] == customer_gid


def test_events_have_unique_ids_and_a_redelivery_keeps_its_id(
    shop: ShopifySandbox, receiver: Receiver
) -> None:
    payload = shop.webhook_payload("shop/redact")
    for _ in range(3):
        shop.deliver_webhook(receiver.url, "shop/redact", payload)
    shop.deliver_webhook(receiver.url, "shop/redact", payload, event_id="evt-1")
    shop.deliver_webhook(receiver.url, "shop/redact", payload, event_id="evt-1")
    ids = [h["X-Shopify-Event-Id"] for h, _ in receiver.received]
    assert len(set(ids[:3])) == 3 and ids[3] == ids[4] == "evt-1"


def test_a_wrong_secret_fails_verification(shop: ShopifySandbox, receiver: Receiver) -> None:
    shop.deliver_webhook(receiver.url, "shop/redact", {"shop_id": 1}, secret="not-the-secret")
    headers, body = receiver.received[-1]
    request = {"method": "POST", "headers": headers, "url": receiver.url, "body": body.decode()}
    config = {"client_id": shop.client_id, "client_secret": shop.client_secret}
    assert not verify_webhook_req(request, config).ok  # type: ignore[arg-type]
