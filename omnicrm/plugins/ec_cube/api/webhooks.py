"""Receiving EC-CUBE's WebHooks (the Api42 plugin's 商品/受注/会員 change notices).

A delivery's body is a JSON list of ``{"entity", "id", "action"}`` (entity ``product``,
``order`` or ``customer``; action ``created``, ``updated`` or ``deleted``), signed in
``X-ECCUBE-Signature``: the hex HMAC-SHA256 of the raw body with the WebHook's secret.
The connection is the one whose ``webhook_secret`` gives that signature (every
candidate is computed, compared in constant time); ``X-ECCUBE-URL``, when sent and
matching a connection's ``url``, narrows the candidates. EC-CUBE sends no event id, so
the body's hash is the id (a resend of the same body is the same event).

A create or update fetches the record (``customer(id)`` / ``order(id)`` /
``product(id)``) and upserts it; a delete, or a record the API no longer returns,
deletes it (a product taken away is then never offered). EC-CUBE does not retry a
webhook, so the scheduled sync still runs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic_core import from_json

from omnicrm import Connection
from omnicrm.errors import DataError
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.webhooks import (
    Action,
    Delete,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    signatures_match,
)

SIGNATURE_HEADER = "x-eccube-signature"
URL_HEADER = "x-eccube-url"
ENTITIES = ("product", "order", "customer")
ACTIONS = ("created", "updated", "deleted")
MAX_ITEMS = 1000
TOPIC = "changes"


def signature(secret: str, body: bytes) -> str:
    """X-ECCUBE-Signature of ``body``: hex HMAC-SHA256 with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _items(payload: Any) -> list[dict[str, str]] | None:
    """The body's notices, checked: entity and action known, id digits only."""
    if isinstance(payload, Mapping):
        payload = [payload]
    if not isinstance(payload, list) or not 1 <= len(payload) <= MAX_ITEMS:
        return None
    items = []
    for item in payload:
        if not isinstance(item, Mapping):
            return None
        entity, action, ident = item.get("entity"), item.get("action"), item.get("id")
        if entity not in ENTITIES or action not in ACTIONS:
            return None
        if isinstance(ident, bool) or not isinstance(ident, int | str):
            return None
        text = str(ident)
        if not text.isdigit() or len(text) > 20:
            return None
        items.append({"entity": str(entity), "action": str(action), "id": text})
    return items


class EccubeWebhooks:
    """The webhook receiver of the EC-CUBE channel."""

    max_body = 256 * 1024

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(SIGNATURE_HEADER, "").strip().lower()
        url = lowered.get(URL_HEADER, "").strip().rstrip("/")
        candidates = [
            c
            for c in connections
            if isinstance(c.settings, EccubeSettings) and c.settings.webhook_secret is not None
        ]
        named = [c for c in candidates if url and c.settings.base == url]  # type: ignore[attr-defined]
        if named:
            candidates = named
        # Every candidate is computed and compared (no early exit): timing tells nothing.
        matches = [
            c
            for c in candidates
            if signatures_match(
                signature(c.settings.webhook_secret.get_secret_value(), body),  # type: ignore[attr-defined]
                given,
            )
        ]
        if not given or len(matches) != 1:
            raise WebhookRejected("X-ECCUBE-Signature is missing or matches no connection")
        connection = matches[0]
        event_id = hashlib.sha256(body).hexdigest()
        where = {"connection": connection.name, "event_id": event_id, "topic": TOPIC}
        try:
            payload = from_json(body)
        except ValueError as exc:
            raise WebhookInvalid(f"the body is not JSON: {exc}", **where) from None
        items = _items(payload)
        if items is None:
            raise WebhookInvalid(
                f"the body must be a list of 1 to {MAX_ITEMS} notices "
                "{entity: product|order|customer, id: digits, action: created|updated|deleted}",
                **where,
            )
        customers = {i["id"] for i in items if i["entity"] == "customer"}
        records = {(i["entity"], i["id"]) for i in items if i["entity"] != "product"}
        return WebhookEvent(
            connection.name,
            event_id,
            TOPIC,
            {"items": items},
            customer_id=next(iter(customers))
            if len(customers) == 1 and len(records) == 1
            else None,
            record_id=next(iter(records))[1] if len(records) == 1 else None,
        )

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterator[Action]:
        # Imported here: the client and mapping are not needed to verify a delivery.
        from omnicrm.plugins.ec_cube.api.client import EccubeClient
        from omnicrm.plugins.ec_cube.api.mapping import (
            customer_from_node,
            order_from_node,
            product_from_node,
        )

        settings = connection.settings
        if not isinstance(settings, EccubeSettings):
            raise DataError(f"connection {connection.name!r} has no EC-CUBE settings")
        # The applier hands the body as parsed from the inbox (the list itself), verify
        # hands it as {"items": [...]}: either is read.
        payload: Any = event.payload
        items = _items(
            payload["items"] if isinstance(payload, Mapping) and "items" in payload else payload
        )
        if items is None:
            raise DataError(f"EC-CUBE webhook {event.event_id}: no notices to apply")
        with EccubeClient(settings, connection.name) as api:
            for item in items:
                entity, ident = item["entity"], item["id"]
                kind = f"{entity}s"
                if item["action"] == "deleted":
                    yield Delete(kind, (ident,))
                    continue
                if entity == "product":
                    node = api.run("Product", {"id": ident}).get("product")
                    if node is None:
                        yield Delete(kind, (ident,))
                    else:
                        yield Upsert(
                            product_from_node(
                                node, settings.zone, base=settings.base, tax_rate=settings.tax_rate
                            )
                        )
                elif entity == "customer":
                    node = api.run("Customer", {"id": ident}).get("customer")
                    if node is None:
                        yield Delete(kind, (ident,))
                    else:
                        yield Upsert(customer_from_node(node, settings.zone))
                else:
                    node = api.run("Order", {"id": ident}).get("order")
                    order = order_from_node(node, settings.zone) if node is not None else None
                    if order is not None:
                        yield Upsert(order)
                    elif node is None:
                        yield Delete(kind, (ident,))
