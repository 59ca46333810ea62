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
from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.core.host import Host
from omnicrm.core.store import Store, inbox
from omnicrm.core.store.inbox import EventStatus
from omnicrm.core.webhooks import (
    Delete,
    Export,
    Redact,
    Upsert,
    WebhookInvalid,
    WebhookRejected,
    hmac_sha256,
)
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.webhooks import ShopifyWebhooks
from tests.support.http import serve
from tests.support.reference import shopify_webhook_sample
from tests.support.webhooks import quiet_webhook_app, settled

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
        domain=SHOP, access_token=SecretStr("shpat_x"), client_secret=SecretStr(SECRET)
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
    (action,) = list(receiver.actions(event, connection()))
    assert isinstance(action, kind)
    if isinstance(action, Upsert):
        # The sample's numeric ids lost precision; the GID carries the true one.
        assert action.record.id == sample(topic)["admin_graphql_api_id"]


class ShopifyHooksOnly:
    """The Shopify channel type as the webhook app sees it (no sync needed here)."""

    @hookimpl
    def omnicrm_register(self, register: Any) -> None:
        register.channel_type(
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


@pytest.fixture
def quiet_app(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app without profile refreshes: none is left running for the next test."""
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"shopify": ShopifyHooksOnly()})
    with quiet_webhook_app(host, store_url, {"tokyo": connection()}) as url:
        yield url


def test_a_data_request_without_an_id_never_names_a_file_after_the_event_header(
    quiet_app: str, store_url: str, tmp_path: Path
) -> None:
    app = quiet_app
    body = {k: v for k, v in sample("customers/data_request").items() if k != "data_request"}
    answer = deliver(app, "customers/data_request", "../../../../tmp/x", body)
    assert answer.status_code == 200, answer.text
    store = Store(store_url)
    try:
        settled(store)
    finally:
        store.close()
    # Shopify's payload requires the request's id: without one it is refused, and
    # whatever happens, no file is named after the unsigned event-id header.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".json"]
    assert all(p.parent == tmp_path / "data" / "exports" / "tokyo" for p in written)
    assert all("tmp" not in p.name and ".." not in p.name for p in written)
    assert not (tmp_path.parent / "x.json").exists()


DESTRUCTIVE = ("shop/redact", "customers/redact", "customers/delete", "orders/delete")
SAMPLES = (
    "customers/create",
    "customers/update",
    "orders/create",
    "orders/paid",
    "customers/delete",
    "orders/delete",
    "customers/redact",
    "customers/data_request",
    "shop/redact",
)


@pytest.mark.parametrize(
    ("body_of", "sent_as"),
    [(b, t) for b in SAMPLES for t in DESTRUCTIVE if b != t],
)
def test_an_unsigned_topic_cannot_make_a_genuine_body_destructive(
    body_of: str, sent_as: str
) -> None:
    body = json.dumps(sample(body_of)).encode()
    with pytest.raises(WebhookInvalid, match=f"not a {sent_as} payload") as caught:
        ShopifyWebhooks().verify(headers(body, sent_as, "e2"), body, [connection()])
    assert (caught.value.connection, caught.value.event_id) == ("tokyo", "e2")


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "customers/data_request"])
def test_a_privacy_request_must_name_the_connections_shop(topic: str) -> None:
    # One app secret signs for every shop: the unsigned domain header proves nothing.
    body = json.dumps({**sample(topic), "shop_domain": "other-shop.myshopify.com"}).encode()
    with pytest.raises(WebhookInvalid, match="another shop"):
        ShopifyWebhooks().verify(headers(body, topic, "e3"), body, [connection()])


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    receiver = ShopifyWebhooks()
    nested = b"[" * 100_000 + b"]" * 100_000
    forged = {**headers(nested, "customers/update", "e4"), "X-Shopify-Hmac-Sha256": "AAAA"}
    with pytest.raises(WebhookRejected, match="HMAC"):
        receiver.verify(forged, nested, [connection()])
    # Signed, it is read, and refused as what it is rather than crashing the parser.
    with pytest.raises(WebhookInvalid, match="not JSON"):
        receiver.verify(headers(nested, "customers/update", "e4"), nested, [connection()])


def test_a_body_missing_what_its_topic_needs_is_invalid_without_its_values() -> None:
    body = sample("customers/update")
    del body["updated_at"]
    body["admin_graphql_api_id"] = "secret-looking@example.jp"
    raw = json.dumps(body).encode()
    with pytest.raises(WebhookInvalid) as caught:
        ShopifyWebhooks().verify(headers(raw, "customers/update", "e5"), raw, [connection()])
    assert "updated_at" in str(caught.value) and "admin_graphql_api_id" in str(caught.value)
    assert "@" not in str(caught.value)


def test_a_replayed_body_under_shop_redact_erases_nothing(app: str, store_url: str) -> None:
    customer = sample("customers/update")
    assert deliver(app, "customers/update", "u1", customer).json() == {"status": "queued"}
    store = Store(store_url)
    try:
        settled(store)
        answer = deliver(app, "shop/redact", "forged-1", customer)
        assert answer.status_code == 200 and answer.json()["status"] == "rejected"
        assert [c.id for c in store.customers("tokyo")] == [customer["admin_graphql_api_id"]]
        (refused,) = inbox.events(store, "tokyo", status=EventStatus.REJECTED)
        assert (refused.event_id, refused.topic) == ("forged-1", "shop/redact")
    finally:
        store.close()


def test_an_oversized_body_with_a_fake_signature_is_413(app: str) -> None:
    body = b"[" * (3 * 1024 * 1024)
    forged = {**headers(b"", "customers/update", "big"), "X-Shopify-Hmac-Sha256": "AAAA"}
    answer = httpx.post(f"{app}/webhooks/shopify", content=body, headers=forged, timeout=30)
    assert answer.status_code == 413


def test_a_redaction_purges_the_queued_events_of_its_customer(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        gid = "gid://shopify/Customer/1"
        inbox.enqueue(
            store, "tokyo", "q1", "customers/update", b"{}", customer_id=gid, record_id=gid
        )
        order = "gid://shopify/Order/9"
        inbox.enqueue(
            store, "tokyo", "q2", "orders/create", b"{}", customer_id=gid, record_id=order
        )
        inbox.enqueue(
            store, "tokyo", "q3", "orders/delete", b"{}", record_id="gid://shopify/Order/8"
        )
        other = "gid://shopify/Customer/2"
        inbox.enqueue(store, "tokyo", "q4", "customers/update", b"{}", customer_id=other)
        assert inbox.purge(store, "tokyo", [gid, "gid://shopify/Order/8"]) == 3
        assert inbox.pending(store) == 1
        statuses = {e.event_id: e.status for e in inbox.events(store, "tokyo")}
        assert statuses == {
            "q1": EventStatus.REJECTED,
            "q2": EventStatus.REJECTED,
            "q3": EventStatus.REJECTED,
            "q4": EventStatus.QUEUED,
        }
        assert inbox.purge(store, "tokyo", None) == 1 and inbox.pending(store) == 0
    finally:
        store.close()


@pytest.fixture
def app_without_worker(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The app with its inbox worker stopped: what is queued stays queued."""
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"shopify": ShopifyHooksOnly()})
    runtime = Runtime(host, Config(None, store_url, SchedulerSection(), {"tokyo": connection()}))
    web = create_app(runtime)
    with serve(web) as url:
        web.state.inbox.close()
        yield url
    runtime.close()


def test_a_redaction_over_http_purges_what_waits_for_its_customer(
    app_without_worker: str, store_url: str
) -> None:
    app = app_without_worker
    redact = sample("customers/redact")
    gid = f"gid://shopify/Customer/{redact['customer']['id']}"
    store = Store(store_url)
    try:
        # A genuine update of theirs, queued as if the worker had not reached it yet.
        update = json.dumps({**sample("customers/update"), "admin_graphql_api_id": gid})
        inbox.enqueue(store, "tokyo", "w1", "customers/update", update.encode(), customer_id=gid)
        assert deliver(app, "customers/redact", "r1", redact).json() == {"status": "applied"}
        settled(store)
        statuses = {e.event_id: e.status for e in inbox.events(store, "tokyo")}
        assert statuses == {"w1": EventStatus.REJECTED, "r1": EventStatus.APPLIED}
    finally:
        store.close()
