"""Receiving Square webhooks: verify, parse strictly, then fetch what the event names.

Square signs each notification with the subscription's signature key: the header
``x-square-hmacsha256-signature`` is the base64 HMAC-SHA256 of the notification URL
(exactly as registered) followed by the raw body. The URL is the connection's
``notification_url`` setting, not the address the request arrived at (a proxy may have
rewritten that). The connection is the one whose key and URL reproduce the signature;
none does: 401. Events are deduplicated by ``event_id``.

Register sales publish no ``order.created`` (only orders made through the API do):
``payment.created``/``payment.updated``, ``order.updated`` and ``refund.*`` are the
triggers, and the order is fetched (RetrieveOrder), so the record is Square's current
one whatever the event carried; a payment's customer stands in for a sale that has
none of its own. Customer events carry the customer; its loyalty balance is read.
Fetching uses the settings of the connection the applier hands to
:meth:`SquareWebhooks.actions`, so an event queued before a restart is applied as well.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from omnicrm import Connection
from omnicrm.errors import DataError
from omnicrm.plugins.pos.square.client import SquareClient
from omnicrm.plugins.pos.square.reader import SquareReader
from omnicrm.plugins.pos.square.settings import SquareSettings
from omnicrm.webhooks import (
    Action,
    Delete,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)

log = logging.getLogger("omnicrm.channel.square")

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
CUSTOMER_TOPICS = ("customer.created", "customer.updated")
ORDER_TOPICS = ("order.created", "order.updated", "order.fulfillment.updated")
PAYMENT_TOPICS = ("payment.created", "payment.updated")
REFUND_TOPICS = ("refund.created", "refund.updated")
LOYALTY_TOPICS = ("loyalty.account.created", "loyalty.account.updated")
TOPICS = (
    *CUSTOMER_TOPICS,
    "customer.deleted",
    *ORDER_TOPICS,
    *PAYMENT_TOPICS,
    *REFUND_TOPICS,
    *LOYALTY_TOPICS,
)


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str | None = None
    id: str = Field(min_length=1, max_length=192)
    object: dict[str, Any] | None = None


class Notification(BaseModel):
    """A Square event notification (the envelope every topic shares)."""

    model_config = ConfigDict(extra="allow")

    merchant_id: str | None = None
    type: str = Field(min_length=1, max_length=100)
    event_id: str = Field(min_length=1, max_length=255)
    created_at: str | None = None
    data: _Data


def signature(key: str, url: str, body: bytes) -> str:
    """What Square sends in ``x-square-hmacsha256-signature`` for ``body`` sent to ``url``."""
    return base64.b64encode(hmac_sha256(key, url.encode() + body)).decode()


def _object(notification: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    data = notification.get("data") or {}
    found = (data.get("object") or {}).get(name)
    return found if isinstance(found, Mapping) else {}


class SquareWebhooks:
    """The webhook receiver of the Square channel."""

    max_body = 1024 * 1024

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            given = base64.b64decode(lowered.get(SIGNATURE_HEADER, ""), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        connection = None
        for candidate in connections:
            settings = candidate.settings
            if not isinstance(settings, SquareSettings):
                continue
            if settings.webhook_signature_key is None or not settings.notification_url:
                continue
            key = settings.webhook_signature_key.get_secret_value()
            expected = hmac_sha256(key, settings.notification_url.encode() + body)
            if signatures_match(expected, given):
                connection = candidate
                break
        if connection is None:
            raise WebhookRejected(
                "the signature matches no Square connection's key and notification URL"
            )

        # Authentic from here on: what is wrong now is answered 200 and recorded.
        try:
            payload = from_json(body)
        except ValueError as exc:
            raise WebhookInvalid(
                f"the body is not JSON: {exc}", connection=connection.name
            ) from None
        try:
            parsed = Notification.model_validate(payload)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
            raise WebhookInvalid(
                f"the body is not a Square notification (fields: {fields})",
                connection=connection.name,
            ) from None
        where = {"connection": connection.name, "event_id": parsed.event_id, "topic": parsed.type}
        if parsed.type not in TOPICS:
            raise WebhookInvalid(
                f"topic {parsed.type[:100]!r} is not one this channel uses", **where
            )
        customer_id, record_id = _subjects(parsed.type, payload)
        return WebhookEvent(
            connection.name,
            parsed.event_id,
            parsed.type,
            payload,
            customer_id=customer_id,
            record_id=record_id,
        )

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterator[Action]:
        topic, body = event.topic, event.payload
        data = body.get("data") or {}
        subject = str(data.get("id") or "")
        if topic == "customer.deleted":
            yield Delete("customers", [subject])
            return
        settings = connection.settings
        if not isinstance(settings, SquareSettings):
            raise DataError(f"connection {connection.name!r} has no Square settings")
        with SquareClient(settings, logger=log) as client:
            reader = SquareReader(client, settings, log)
            if topic in CUSTOMER_TOPICS:
                customer = _object(body, "customer")
                if not customer:
                    raise WebhookInvalid(f"{topic} carries no customer object")
                yield Upsert(reader.customer(customer))
            elif topic in LOYALTY_TOPICS:
                owner = _object(body, "loyalty_account").get("customer_id")
                answer = client.get(f"/v2/customers/{owner}", missing_ok=True) if owner else None
                if answer and isinstance(answer.get("customer"), Mapping):
                    yield Upsert(reader.customer(answer["customer"]))
            else:
                order_id, customer_id = _order_of(topic, body, subject)
                if order_id is None:
                    log.info("%s: %s names no order; nothing to fetch", event.connection, topic)
                    return
                order = reader.fetch_order(order_id, customer_id)
                if order is not None:
                    yield Upsert(order)


def _order_of(topic: str, body: Mapping[str, Any], subject: str) -> tuple[str | None, str | None]:
    """The order an order, payment or refund event is about, and the payment's customer."""
    if topic in PAYMENT_TOPICS:
        payment = _object(body, "payment")
        return payment.get("order_id"), payment.get("customer_id")
    if topic in REFUND_TOPICS:
        return _object(body, "refund").get("order_id"), None
    for name in ("order_updated", "order_created", "order_fulfillment_updated"):
        found = _object(body, name).get("order_id")
        if found:
            return str(found), None
    return subject or None, None


def _subjects(topic: str, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(customer, record) ids the event is about, for purging it on a redaction."""
    data = payload.get("data") or {}
    subject = str(data.get("id") or "") or None
    if topic.startswith("customer."):
        return subject, subject
    if topic in LOYALTY_TOPICS:
        return _object(payload, "loyalty_account").get("customer_id"), None
    order_id, customer_id = _order_of(topic, payload, subject or "")
    return customer_id, order_id
