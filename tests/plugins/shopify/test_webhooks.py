"""Shopify webhooks end to end over HTTP, fed with Shopify's own sample payloads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from omnicrm import ChannelType, Stream, hookimpl
from omnicrm.core.config import Config, Connection, SchedulerSection
from omnicrm.core.host import Host
from omnicrm.core.runtime import Runtime
from omnicrm.core.store import Store
from omnicrm.core.webhook_app import create_app
from omnicrm.core.webhooks import Delete, Export, Redact, Upsert, WebhookRejected, hmac_sha256
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.webhooks import ShopifyWebhooks
from tests.support.http import serve
from tests.support.webhooks import settled
from tests.support.reference import shopify_webhook_sample

SHOP = "tokyo-tea.myshopify.com"
SECRET = "shpss_test_secret"


def sample(topic: str) -> dict[str, Any]:
    """Shopify's sample for ``topic``, its ``{shop}`` placeholder filled in with ours."""
    body = shopify_webhook_sample(topic)
    if isinstance(body.get("shop_domain"), str):
        body["shop_domain"] = body["shop_domain"].replace("{shop}", SHOP.split(".")[0])
    return body


def connection() -> Connection:
    settings = ShopifySettings(
        shop=SHOP, access_token=SecretStr("shpat_x"), client_secret=SecretStr(SECRET)
    )
    return Connection("tokyo", "shopify", settings)


def headers(body: bytes, topic: str, event: str, *, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac_sha256(secret, body)).decode(),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": event,
        "Content-Type": "application/json",
    }


def test_verify_accepts_genuine_and_rejects_forged_bodies() -> None:
    receiver = ShopifyWebhooks()
    body = json.dumps(sample("customers/update")).encode()
    event = receiver.verify(headers(body, "customers/update", "e1"), body, [connection()])
    assert (event.connection, event.event_id, event.topic) == ("tokyo", "e1", "customers/update")
    with pytest.raises(WebhookRejected, match="HMAC"):
        receiver.verify(headers(body, "customers/update", "e1"), body + b" ", [connection()])
    with pytest.raises(WebhookRejected, match="HMAC"):
        receiver.verify(
            headers(body, "customers/update", "e1", secret="other"), body, [connection()]
        )
    with pytest.raises(WebhookRejected, match="no connection"):
        receiver.verify(
            {**headers(body, "x", "e1"), "X-Shopify-Shop-Domain": "evil.myshopify.com"},
            body,
            [connection()],
        )


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("customers/create", Upsert),
        ("customers/update", Upsert),
        ("orders/create", Upsert),
        ("orders/updated", Upsert),
        ("orders/paid", Upsert),
        ("orders/cancelled", Upsert),
        ("customers/delete", Delete),
        ("orders/delete", Delete),
        ("customers/redact", Redact),
        ("customers/data_request", Export),
    ],
)
def test_every_sample_maps_to_its_action(topic: str, kind: type) -> None:
    body = json.dumps(sample(topic)).encode()
    receiver = ShopifyWebhooks()
    event = receiver.verify(headers(body, topic, "e"), body, [connection()])
    (action,) = list(receiver.actions(event))
    assert isinstance(action, kind)
    if isinstance(action, Upsert):
        # The sample's numeric ids lost precision; the GID carries the true one.
        assert action.record.id == sample(topic)["admin_graphql_api_id"]


class ShopifyHooksOnly:
    """The Shopify channel type as the webhook app sees it (no sync needed here)."""

    @hookimpl
    def omnicrm_register(self, register: Any) -> None:
        register(
            ChannelType(
                "shopify", ShopifySettings, streams=(Stream.CUSTOMERS,), webhooks=ShopifyWebhooks()
            )
        )

    @hookimpl
    def omnicrm_sync_customers(self, ctx: Any) -> Iterator[Any]:
        yield from ()


@pytest.fixture
def app(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"shopify": ShopifyHooksOnly()})
    runtime = Runtime(host, Config(None, store_url, SchedulerSection(), {"tokyo": connection()}))
    web = create_app(runtime)
    with serve(web) as url:
        yield url
    web.state.inbox.close()
    runtime.close()


def deliver(url: str, topic: str, event: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    return httpx.post(
        f"{url}/webhooks/shopify", content=raw, headers=headers(raw, topic, event), timeout=10
    )


def test_samples_through_the_app(app: str, store_url: str, tmp_path: Path) -> None:
    customer = sample("customers/create")
    order = sample("orders/create")
    assert deliver(app, "customers/create", "e1", customer).json() == {"status": "queued"}
    assert deliver(app, "customers/create", "e1", customer).json() == {"status": "duplicate"}
    assert deliver(app, "orders/create", "e2", order).status_code == 200
    store = Store(store_url)
    settled(store)
    assert [c.id for c in store.customers("tokyo")] == [customer["admin_graphql_api_id"]]
    assert [o.id for o in store.orders("tokyo")] == [order["admin_graphql_api_id"]]
    forged = json.dumps(customer).encode()
    bad = httpx.post(
        f"{app}/webhooks/shopify",
        content=forged,
        headers=headers(forged + b"x", "customers/create", "e3"),
        timeout=10,
    )
    assert bad.status_code == 401
    assert deliver(app, "shop/redact", "e9", sample("shop/redact")).status_code == 200
    settled(store)
    assert list(store.customers("tokyo")) == [] and list(store.orders("tokyo")) == []
    store.close()
