"""Receiving Smaregi's webhooks (``pos:transactions``, ``pos:customers``).

Smaregi's webhooks carry ids only and no signature we could find documented, so a
delivery is authenticated by a secret of ours: the connection's ``webhook_token``. Smaregi
cannot add a header to its webhooks, so the token goes in the URL registered with it,
``/webhooks/smaregi/TOKEN``; the ``X-Omnicrm-Webhook-Token`` header works too (a proxy in
front of ``omnicrm webhooks serve`` may add it). The connection is the one whose
``contract_id`` the ``Smaregi-Contract-Id`` header (or the body's ``contractId``) names;
the token is compared in constant time before the body is read, and a missing or wrong
one is a 401.

The ids are fetched (GET /transactions/{id} with details, GET /customers/{id}) with the
settings of the connection the applier hands over, and the records upserted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic_core import from_json

from omnicrm import Connection
from omnicrm.errors import DataError
from omnicrm.plugins.pos.smaregi.client import SmaregiClient
from omnicrm.plugins.pos.smaregi.mapping import (
    customer_from_record,
    order_from_transaction,
    store_names,
)
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings
from omnicrm.webhooks import (
    PATH_TOKEN_HEADER,
    Action,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    signatures_match,
)

log = logging.getLogger("omnicrm.channel.smaregi")

TOKEN_HEADER = "x-omnicrm-webhook-token"
CONTRACT_HEADER = "smaregi-contract-id"
EVENTS = {"pos:transactions": "transactionHeadIds", "pos:customers": "customerIds"}
MAX_IDS = 1000


class SmaregiWebhooks:
    """The webhook receiver of the Smaregi channel."""

    max_body = 256 * 1024  # ids only: a thousand of them fit many times over
    path_token = True  # Smaregi cannot send our header: the token may come in the path

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(PATH_TOKEN_HEADER) or lowered.get(TOKEN_HEADER, "")
        contract = lowered.get(CONTRACT_HEADER, "").strip()
        candidates = [
            (c, c.settings.webhook_token.get_secret_value())
            for c in connections
            if isinstance(c.settings, SmaregiSettings)
            and c.settings.webhook_token is not None
            and (not contract or c.settings.contract_id == contract)
        ]
        # Every candidate is compared (no early exit), so timing tells nothing.
        matches = [c for c, token in candidates if signatures_match(token, given)]
        if not given or len(matches) != 1:
            raise WebhookRejected("the webhook token is missing or matches no connection")
        connection = matches[0]
        settings = connection.settings
        assert isinstance(settings, SmaregiSettings)

        event_id = hashlib.sha256(body).hexdigest()  # Smaregi sends no id: a resend is equal
        where = {"connection": connection.name, "event_id": event_id}
        try:
            payload = from_json(body)
        except ValueError as exc:
            raise WebhookInvalid(f"the body is not JSON: {exc}", **where) from None
        if not isinstance(payload, dict):
            raise WebhookInvalid("the body is not an object", **where)
        topic = str(payload.get("event", ""))[:100]
        if topic not in EVENTS:
            raise WebhookInvalid(f"event {topic!r} is not one this channel uses", **where)
        if str(payload.get("contractId", settings.contract_id)) != settings.contract_id:
            raise WebhookInvalid("the body names another contract", topic=topic, **where)
        ids = _ids(payload, EVENTS[topic])
        if ids is None:
            raise WebhookInvalid(
                f"{EVENTS[topic]} must be a list of 1 to {MAX_IDS} ids", topic=topic, **where
            )
        customer = ids[0] if topic == "pos:customers" and len(ids) == 1 else None
        record = ids[0] if len(ids) == 1 else None
        return WebhookEvent(
            connection.name, event_id, topic, payload, customer_id=customer, record_id=record
        )

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterator[Action]:
        settings = connection.settings
        if not isinstance(settings, SmaregiSettings):
            raise DataError(f"connection {connection.name!r} has no Smaregi settings")
        ids = _ids(event.payload, EVENTS.get(event.topic, ""))
        if ids is None:
            raise DataError(f"Smaregi webhook {event.event_id}: no ids to fetch")
        with SmaregiClient(settings) as api:
            if event.topic == "pos:customers":
                for customer_id in ids:
                    yield Upsert(customer_from_record(api.get(f"/customers/{customer_id}")))
                return
            names: dict[str, str] = {}
            for page in api.pages("/stores", {}, settings.page_size):
                names.update(store_names(page))
            for transaction_id in ids:
                record = api.get(f"/transactions/{transaction_id}", {"with_details": "all"})
                order = order_from_transaction(record, names)
                if order is not None:
                    yield Upsert(order)


def _ids(payload: Mapping[str, Any], key: str) -> list[str] | None:
    """The ids under ``key``: digits only (they go into a URL path), 1 to MAX_IDS."""
    value = payload.get(key)
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IDS:
        return None
    ids = [str(v) for v in value if isinstance(v, str | int)]
    if len(ids) != len(value) or not all(i.isdigit() and len(i) <= 20 for i in ids):
        return None
    return ids
