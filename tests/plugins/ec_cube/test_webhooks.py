"""EC-CUBE webhooks: X-ECCUBE-Signature checked (the reference vector), notices fetched
from the sandbox and applied, deletes deleted, end to end through the webhook app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import omnicrm.plugins.ec_cube.plugin
from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.webhooks import Delete, Upsert, WebhookInvalid, WebhookRejected
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.webhooks import EccubeWebhooks, signature
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox
from tests.support.webhooks import serving, settled

VECTOR_BODY = b'[{"entity":"product","id":2,"action":"updated"}]'
VECTOR = "d3f0afc7fa7a8e5c10bfce74f4cbfdd02d2b32dc4e99efbf72a6bd5a6d117199"


def test_the_reference_vector() -> None:
    assert signature("secret", VECTOR_BODY) == VECTOR


def _headers(digest: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-ECCUBE-Signature": digest}


def test_verify_wants_the_signature_of_the_raw_body(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    receiver = EccubeWebhooks()
    connection = Connection("shop", "ec_cube", settings)
    body, headers = sandbox.signed([{"entity": "customer", "id": 5, "action": "updated"}])
    event = receiver.verify(headers, body, [connection])
    assert (event.connection, event.customer_id, event.record_id) == ("shop", "5", "5")
    assert event.payload == {"items": [{"entity": "customer", "action": "updated", "id": "5"}]}
    digest = headers["X-ECCUBE-Signature"]
    for wrong in ("", "0" * 64, digest[:-1], digest.upper() + "0"):
        with pytest.raises(WebhookRejected):
            receiver.verify(_headers(wrong), body, [connection])
    with pytest.raises(WebhookRejected):  # the same signature over another body
        receiver.verify(headers, body.replace(b"5", b"6"), [connection])
    with pytest.raises(WebhookRejected):  # no secret configured: nothing accepted
        other = Connection("shop", "ec_cube", settings.model_copy(update={"webhook_secret": None}))
        receiver.verify(headers, body, [other])
    secret = sandbox.webhook_secret
    for bad in (
        b"[",
        b"[]",
        b'[{"entity":"order","id":"../1","action":"updated"}]',
        b'[{"entity":"coupon","id":1,"action":"updated"}]',
    ):
        with pytest.raises(WebhookInvalid):
            receiver.verify(_headers(signature(secret, bad)), bad, [connection])


def test_notices_become_upserts_and_deletes(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    receiver = EccubeWebhooks()
    connection = Connection("shop", "ec_cube", settings)
    order = next(i for i, r in sandbox.orders.rows.items() if r.status == "5")
    unfinished = next(i for i, r in sandbox.orders.rows.items() if r.status == "8")
    body, headers = sandbox.signed(
        [
            {"entity": "order", "id": order, "action": "updated"},
            {"entity": "order", "id": unfinished, "action": "created"},
            {"entity": "customer", "id": 3, "action": "updated"},
            {"entity": "product", "id": 2, "action": "updated"},
            {"entity": "order", "id": 999999, "action": "updated"},
            {"entity": "customer", "id": 4, "action": "deleted"},
        ]
    )
    event = receiver.verify(headers, body, [connection])
    actions = list(receiver.actions(event, connection))
    upserts = [a.record for a in actions if isinstance(a, Upsert)]
    assert [(type(r).__name__, r.id) for r in upserts] == [
        ("Order", str(order)),
        ("Customer", "3"),
        ("Product", "2"),
    ]
    deletes = [(a.kind, tuple(a.ids)) for a in actions if isinstance(a, Delete)]
    assert deletes == [("orders", ("999999",)), ("customers", ("4",))]


@pytest.fixture
def app(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: EccubeSettings
) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"ec_cube": omnicrm.plugins.ec_cube.plugin})
    config = Config(
        None,
        store_url,
        SchedulerSection(),
        {"shop": Connection("shop", "ec_cube", settings)},
        crm=CrmSection(refresh_after_sync=False),
    )
    with serving(Runtime(host, config)) as url:
        yield url


def test_deliveries_end_to_end(app: str, store_url: str, sandbox: EccubeSandbox) -> None:
    sandbox.webhook_url = f"{app}/webhooks/ec_cube"
    order = next(i for i, r in sandbox.orders.rows.items() if r.status == "5")
    member = next(i for i, r in sandbox.customers.rows.items() if r.status == "2")
    assert sandbox.update("order", order, {"payment_method": "銀行振込"}, notify=True)
    assert sandbox.deliver([{"entity": "customer", "id": member, "action": "created"}]) == 200
    store = Store(store_url)
    try:
        settled(store)
        assert [o.id for o in store.orders("shop")] == [str(order)]
        sandbox.withdraw(member, notify=True)
        settled(store)
        (customer,) = store.customers("shop")
        assert customer.withdrawn_at is not None and customer.email is None
        sandbox.delete("order", order, notify=True)
        settled(store)
        assert list(store.orders("shop")) == []
    finally:
        store.close()
    # A forged delivery is refused.
    import httpx

    body = json.dumps([{"entity": "order", "id": 1, "action": "deleted"}]).encode()
    refused = httpx.post(sandbox.webhook_url, content=body, headers=_headers("0" * 64))
    assert refused.status_code == 401
