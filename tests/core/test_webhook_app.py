"""The webhook app over real HTTP: signatures, dedupe by event id, actions applied."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from omnicrm import ChannelType, Customer, Order, Stream, hookimpl
from omnicrm.core.config import Config, Connection, SchedulerSection
from omnicrm.core.host import Host
from omnicrm.core.profiles import find_profiles, profile_of
from omnicrm.core.runtime import Runtime
from omnicrm.core.store import Store
from omnicrm.core.webhook_app import create_app
from omnicrm.core.webhooks import (
    Action,
    Delete,
    EraseConnection,
    Export,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)
from tests.support.http import serve
from tests.support.webhooks import settled

SECRET = "hook-secret-xyz"


class HookSettings(BaseModel):
    shop: str
    secret: SecretStr


class Receiver:
    """Signs like Shopify: base64 HMAC-SHA256 of the raw body in X-Sig."""

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        shop = headers.get("x-shop", "")
        for conn in connections:
            assert isinstance(conn.settings, HookSettings)
            if conn.settings.shop == shop:
                expected = base64.b64encode(
                    hmac_sha256(conn.settings.secret.get_secret_value(), body)
                )
                if not signatures_match(expected, headers.get("x-sig", "")):
                    raise WebhookRejected("bad signature")
                topic = headers["x-topic"]
                return WebhookEvent(
                    conn.name,
                    headers["x-event"],
                    topic,
                    json.loads(body),
                    urgent=topic in ("customers/redact", "shop/redact"),
                )
        raise WebhookRejected(f"unknown shop {shop!r}")

    def actions(self, event: WebhookEvent) -> Iterable[Action]:
        p = event.payload
        if event.topic == "customers/update":
            yield Upsert(
                Customer(
                    id=p["id"],
                    email=p["email"],
                    updated_at=dt.datetime.fromisoformat(p["updated_at"]),
                )
            )
        elif event.topic == "orders/create":
            yield Upsert(
                Order(
                    id=p["id"],
                    customer_id=p["customer"],
                    placed_at=dt.datetime.now(dt.UTC),
                    updated_at=dt.datetime.now(dt.UTC),
                    subtotal=Decimal(1),
                    total=Decimal(1),
                )
            )
        elif event.topic == "orders/delete":
            yield Delete("orders", [p["id"]])
        elif event.topic == "customers/redact":
            yield Redact(p["customer"], p["orders"])
        elif event.topic == "shop/redact":
            yield EraseConnection()
        elif event.topic == "customers/data_request":
            yield Export(p["customer"], p["request"])


class HookPlugin:
    @hookimpl
    def omnicrm_register(self, register: Any) -> None:
        register(
            ChannelType("hooked", HookSettings, streams=(Stream.CUSTOMERS,), webhooks=Receiver())
        )

    @hookimpl
    def omnicrm_sync_customers(self, ctx: Any) -> Iterator[Customer]:
        yield from ()


@pytest.fixture
def app_url(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"hooked": HookPlugin()})
    conn = Connection("tokyo", "hooked", HookSettings(shop="tokyo", secret=SecretStr(SECRET)))
    config = Config(None, store_url, SchedulerSection(), {"tokyo": conn})
    runtime = Runtime(host, config)
    web = create_app(runtime, refresh_delay=0.2)
    with serve(web) as url:
        yield url
    web.state.inbox.close()
    runtime.close()


def post(
    url: str,
    topic: str,
    payload: dict[str, Any],
    event: str,
    *,
    secret: str = SECRET,
    shop: str = "tokyo",
) -> httpx.Response:
    body = json.dumps(payload).encode()
    sig = base64.b64encode(hmac_sha256(secret, body)).decode()
    headers = {"x-shop": shop, "x-sig": sig, "x-topic": topic, "x-event": event}
    return httpx.post(f"{url}/webhooks/hooked", content=body, headers=headers, timeout=10)


def test_genuine_events_apply_once(app_url: str, store_url: str) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    assert post(app_url, "customers/update", update, "e1").json() == {"status": "queued"}
    assert post(app_url, "customers/update", update, "e1").json() == {"status": "duplicate"}
    store = Store(store_url)
    settled(store)
    assert [c.email for c in store.customers("tokyo")] == ["a@example.jp"]
    post(app_url, "orders/create", {"id": "o1", "customer": "c1"}, "e2")
    post(app_url, "orders/create", {"id": "o2", "customer": "c1"}, "e3")
    post(app_url, "orders/delete", {"id": "o2"}, "e4")
    settled(store)
    assert [o.id for o in store.orders("tokyo")] == ["o1"]
    store.close()


@pytest.mark.parametrize(("secret", "shop"), [("wrong-secret", "tokyo"), (SECRET, "osaka")])
def test_anything_not_genuine_gets_401_and_changes_nothing(
    app_url: str, store_url: str, secret: str, shop: str
) -> None:
    update = {"id": "c9", "email": "x@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    response = post(app_url, "customers/update", update, "e9", secret=secret, shop=shop)
    assert response.status_code == 401
    store = Store(store_url)
    assert list(store.customers()) == [] and not store.webhook_seen("tokyo", "e9")
    store.close()


def test_unknown_channel_is_404(app_url: str) -> None:
    assert httpx.post(f"{app_url}/webhooks/nope", content=b"{}").status_code == 404


def test_redact_erase_and_data_request(app_url: str, store_url: str, tmp_path: Path) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    post(app_url, "customers/update", update, "e1")
    post(app_url, "orders/create", {"id": "o1", "customer": "c1"}, "e2")
    post(app_url, "customers/data_request", {"customer": "c1", "request": "r1"}, "e3")
    settled_store = Store(store_url)
    settled(settled_store)
    settled_store.close()
    export = tmp_path / "data" / "exports" / "tokyo" / "c1-r1.json"
    assert json.loads(export.read_text())["customer"]["email"] == "a@example.jp"
    assert export.stat().st_mode & 0o077 == 0
    post(app_url, "customers/redact", {"customer": "c1", "orders": ["o1"]}, "e4")
    store = Store(store_url)
    assert list(store.customers("tokyo")) == []
    assert [o.customer_id for o in store.orders("tokyo")] == [None]
    post(app_url, "shop/redact", {}, "e5")
    assert list(store.orders("tokyo")) == []
    store.close()


def test_profiles_follow_webhooks_a_redaction_at_once(app_url: str, store_url: str) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    post(app_url, "customers/update", update, "p1")
    store = Store.open(store_url)
    try:
        # An ordinary change is refreshed a moment later, coalesced with any that follow.
        deadline = time.monotonic() + 15
        while True:
            with store.engine.connect() as conn:
                if profile_of(conn, "tokyo", "c1") is not None:
                    break
            assert time.monotonic() < deadline, "the profile never appeared"
            time.sleep(0.1)
        post(app_url, "customers/redact", {"customer": "c1", "orders": []}, "p2")
        # A redaction is out of the profiles by the time the platform has its 200.
        with store.engine.connect() as conn:
            assert profile_of(conn, "tokyo", "c1") is None
            assert find_profiles(conn, "a@example.jp") == []
    finally:
        store.close()
