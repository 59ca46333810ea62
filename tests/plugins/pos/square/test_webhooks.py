"""Square webhooks: the signature over the notification URL and the body, register sales
arriving as payment and order events (fetched from the emulator), through the app too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

import omnicrm.plugins.pos.plugin
from omnicrm import OrderStatus
from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.plugins.pos.square.sandbox import SquareSandbox
from omnicrm.plugins.pos.square.settings import SquareSettings
from omnicrm.plugins.pos.square.webhooks import SquareWebhooks, signature
from omnicrm.webhooks import Delete, Upsert, WebhookEvent, WebhookInvalid, WebhookRejected
from tests.support.webhooks import quiet_webhook_app, settled


def connection(settings: SquareSettings, name: str = "store") -> Connection:
    return Connection(name, "square", settings)


def payment_event(sandbox: SquareSandbox, payment_id: str) -> tuple[dict[str, str], bytes]:
    payment = sandbox.data.payments[payment_id]
    return sandbox.notification(
        "payment.created", {"type": "payment", "id": payment_id, "object": {"payment": payment}}
    )


def test_the_signature_covers_the_configured_url_and_the_body(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    receiver = SquareWebhooks()
    _, payment = sandbox.ring_up(None)
    headers, body = payment_event(sandbox, payment)
    event = receiver.verify(headers, body, [connection(settings)])
    assert (event.connection, event.topic) == ("store", "payment.created")
    assert event.event_id == json.loads(body)["event_id"]
    with pytest.raises(WebhookRejected, match="signature"):
        receiver.verify(headers, body + b" ", [connection(settings)])
    other_key = settings.model_copy(update={"webhook_signature_key": SecretStr("another-key")})
    with pytest.raises(WebhookRejected):
        receiver.verify(headers, body, [connection(other_key)])
    # Signed for another URL than the subscription's: not ours.
    elsewhere, body2 = sandbox.notification(
        "payment.created", json.loads(body)["data"], url="https://evil.example/hook"
    )
    with pytest.raises(WebhookRejected):
        receiver.verify(elsewhere, body2, [connection(settings)])
    no_header = {k: v for k, v in headers.items() if "signature" not in k}
    with pytest.raises(WebhookRejected):
        receiver.verify(no_header, body, [connection(settings)])
    # The key picks the connection among several.
    second = settings.model_copy(update={"notification_url": "https://crm.example/webhooks/square"})
    event = receiver.verify(headers, body, [connection(second, "other"), connection(settings)])
    assert event.connection == "store"


def test_known_vector() -> None:
    # HMAC-SHA256 over URL + body, base64, computed independently with openssl:
    # printf 'https://example.com/webhook{"a":1}' | openssl dgst -sha256 -hmac key -binary | base64
    assert signature("key", "https://example.com/webhook", b'{"a":1}') == (
        "HznoPAGtKOY+D3mgusLE2rmHhi8FQN3TdrIYrOhk6Ns="
    )


def test_a_register_sale_comes_by_payment_with_its_customer(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    receiver = SquareWebhooks()
    customer = next(iter(sandbox.data.customers))
    order_id, payment_id = sandbox.ring_up(customer, on_order=False)
    sandbox.data.orders[order_id]["tenders"][0].pop("customer_id", None)  # on the payment only
    headers, body = payment_event(sandbox, payment_id)
    event = receiver.verify(headers, body, [connection(settings)])
    assert (event.customer_id, event.record_id) == (customer, order_id)
    (action,) = list(receiver.actions(event, connection(settings)))
    assert isinstance(action, Upsert)
    order = action.record
    assert order.id == order_id and order.customer_id == customer  # type: ignore[union-attr]
    assert order.location == "渋谷店"  # type: ignore[union-attr]
    assert any(e.path == "/v2/orders/{order_id}" for e in sandbox.exchanges)


def test_an_order_update_after_a_refund_fetches_the_order_now(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    receiver = SquareWebhooks()
    order_id, _ = sandbox.ring_up(None, amount=3300)
    sandbox.refund(order_id, 3300)
    data = {
        "type": "order_updated",
        "id": order_id,
        "object": {"order_updated": {"order_id": order_id, "state": "COMPLETED", "version": 2}},
    }
    headers, body = sandbox.notification("order.updated", data)
    (action,) = list(
        receiver.actions(
            receiver.verify(headers, body, [connection(settings)]), connection(settings)
        )
    )
    assert isinstance(action, Upsert)
    assert action.record.status is OrderStatus.REFUNDED  # type: ignore[union-attr]
    assert action.record.customer_id is None  # a store sale, in nobody's profile


def test_customer_events(sandbox: SquareSandbox, settings: SquareSettings) -> None:
    receiver = SquareWebhooks()
    customer = next(iter(sandbox.data.customers.values()))
    data = {"type": "customer", "id": customer["id"], "object": {"customer": customer}}
    headers, body = sandbox.notification("customer.updated", data)
    (action,) = list(
        receiver.actions(
            receiver.verify(headers, body, [connection(settings)]), connection(settings)
        )
    )
    assert isinstance(action, Upsert) and action.record.id == customer["id"]
    account = next(a for a in sandbox.data.accounts.values() if a["customer_id"] == customer["id"])
    assert action.record.points == account["balance"]  # type: ignore[union-attr]
    loyalty = {
        "type": "loyalty_account",
        "id": account["id"],
        "object": {"loyalty_account": account},
    }
    headers, body = sandbox.notification("loyalty.account.updated", loyalty)
    event = receiver.verify(headers, body, [connection(settings)])
    assert event.customer_id == customer["id"]
    (action,) = list(receiver.actions(event, connection(settings)))
    assert isinstance(action, Upsert) and action.record.points == account["balance"]  # type: ignore[union-attr]
    headers, body = sandbox.notification(
        "customer.deleted", {"type": "customer", "id": customer["id"]}
    )
    (action,) = list(
        receiver.actions(
            receiver.verify(headers, body, [connection(settings)]), connection(settings)
        )
    )
    assert action == Delete("customers", [customer["id"]])


def test_genuine_but_unusable_bodies_are_invalid(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    receiver = SquareWebhooks()
    for topic, data in (
        ("inventory.count.updated", {"id": "x"}),
        ("payment.created", {"type": "payment"}),
    ):
        headers, body = sandbox.notification(topic, data)
        with pytest.raises(WebhookInvalid):
            receiver.verify(headers, body, [connection(settings)])


def test_an_event_from_before_a_restart_is_fetched_with_the_connection_given(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    """A receiver that verified nothing (a fresh process) fetches with the settings of
    the connection the applier hands it."""
    order_id, _ = sandbox.ring_up(None, amount=1100)
    payload = {"data": {"type": "order_updated", "id": order_id, "object": {}}}
    event = WebhookEvent("store", "e1", "order.updated", payload)
    (action,) = list(SquareWebhooks().actions(event, connection(settings)))
    assert isinstance(action, Upsert) and action.record.id == order_id


@pytest.fixture
def app(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: SquareSettings
) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"pos": omnicrm.plugins.pos.plugin})
    with quiet_webhook_app(host, store_url, {"store": connection(settings)}) as url:
        yield url


def test_through_the_app(app: str, store_url: str, sandbox: SquareSandbox) -> None:
    customer = next(iter(sandbox.data.customers))
    order_id, payment_id = sandbox.ring_up(customer)
    headers, body = payment_event(sandbox, payment_id)
    answer = httpx.post(f"{app}/webhooks/square", content=body, headers=headers, timeout=10)
    assert answer.json() == {"status": "queued"}
    again = httpx.post(f"{app}/webhooks/square", content=body, headers=headers, timeout=10)
    assert again.json() == {"status": "duplicate"}
    forged = httpx.post(f"{app}/webhooks/square", content=body + b" ", headers=headers, timeout=10)
    assert forged.status_code == 401
    wrong_url, body2 = sandbox.notification(
        "payment.created", json.loads(body)["data"], url=f"{app}/webhooks/square"
    )
    assert (
        httpx.post(
            f"{app}/webhooks/square", content=body2, headers=wrong_url, timeout=10
        ).status_code
        == 401
    )
    store = Store(store_url)
    try:
        settled(store)
        (order,) = [o for o in store.orders("store") if o.id == order_id]
        assert order.customer_id == customer and order.channel == "pos"
    finally:
        store.close()
