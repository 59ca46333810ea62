"""Receiving Shopify webhooks: verify, parse strictly, then say what the store should do.

Verification comes first and reads nothing of the body: the base64 HMAC-SHA256 of the
raw bytes under the app's client secret, compared in constant time with
X-Shopify-Hmac-Sha256. Only an authentic body is parsed, and as the payload of its
topic (:mod:`~omnicrm.plugins.shopify.webhook_payloads`): the topic header is not signed,
so a body that is not that topic's is refused (recorded as rejected). The privacy topics
must name the connection's own shop in their body, since one app secret signs for every
shop that installed the app and the shop-domain header is not signed either. Events are
deduplicated by X-Shopify-Event-Id (the same event retried keeps its id).

A product's webhook is a hint: the product is fetched by GraphQL (all of its variants,
the shape the sync reads) and written; one gone meanwhile is deleted.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator, Mapping, Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from omnicrm import Connection
from omnicrm.plugins.shopify import mapping
from omnicrm.plugins.shopify.products import fetch_product
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.webhook_payloads import (
    CUSTOMER_UPSERTS,
    MODELS,
    ORDER_UPSERTS,
    PRODUCT_UPSERTS,
    CustomerDeletePayload,
    CustomerPayload,
    CustomerRedactPayload,
    DataRequestPayload,
    OrderDeletePayload,
    OrderPayload,
    ProductDeletePayload,
    ProductPayload,
    ShopRedactPayload,
)
from omnicrm.webhooks import (
    Action,
    Delete,
    EraseConnection,
    Export,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)

log = logging.getLogger("omnicrm.channel.shopify")

__all__ = ["CUSTOMER_UPSERTS", "ORDER_UPSERTS", "ShopifyWebhooks"]

# An event id is a UUID; anything longer than the store keeps is not one.
_MAX_EVENT_ID = 255


def _describe(exc: ValidationError) -> str:
    """Which fields are wrong and how, never their values (they may be personal data)."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    shown = "; ".join(problems[:5])
    return shown + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")


class ShopifyWebhooks:
    """The webhook receiver of the Shopify channel."""

    # An order with Shopify's maximum of line items stays well under this; anything
    # larger is not a Shopify webhook and is refused before it is read whole.
    max_body = 2 * 1024 * 1024

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        domain = lowered.get("x-shopify-shop-domain", "").strip().lower()
        connection = next(
            (
                c
                for c in connections
                if isinstance(c.settings, ShopifySettings) and c.settings.domain == domain
            ),
            None,
        )
        if connection is None:
            raise WebhookRejected(f"no connection for shop {domain[:100]!r}")
        settings = connection.settings
        assert isinstance(settings, ShopifySettings)
        if settings.client_secret is None:
            raise WebhookRejected(
                f"connection {connection.name!r} has no client_secret to verify webhooks with"
            )
        try:
            given = base64.b64decode(lowered.get("x-shopify-hmac-sha256", ""), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        expected = hmac_sha256(settings.client_secret.get_secret_value(), body)
        if not signatures_match(expected, given):
            raise WebhookRejected("the HMAC signature does not match the body")

        # Authentic from here on: what is wrong now is answered 200 and recorded.
        topic = lowered.get("x-shopify-topic", "").strip()
        event_id = lowered.get("x-shopify-event-id") or lowered.get("x-shopify-webhook-id") or ""
        if not event_id or len(event_id) > _MAX_EVENT_ID or not event_id.isprintable():
            raise WebhookInvalid(
                "X-Shopify-Event-Id is missing or not an id", connection=connection.name
            )
        where = {"connection": connection.name, "event_id": event_id, "topic": topic[:100]}
        model = MODELS.get(topic)
        if model is None:
            raise WebhookInvalid(f"topic {topic[:100]!r} is not one this channel uses", **where)
        try:
            payload = from_json(body)
        except ValueError as exc:
            raise WebhookInvalid(f"the body is not JSON: {exc}", **where) from None
        try:
            parsed = model.model_validate(payload)
        except ValidationError as exc:
            raise WebhookInvalid(
                f"the body is not a {topic} payload: {_describe(exc)}", **where
            ) from None
        if isinstance(parsed, ShopRedactPayload) and parsed.shop_domain.lower() != settings.domain:
            raise WebhookInvalid(
                f"{topic} names another shop than the connection's ({settings.domain})", **where
            )
        customer_id, record_id = _subjects(parsed)
        return WebhookEvent(
            connection.name,
            event_id,
            topic,
            payload,
            customer_id=customer_id,
            record_id=record_id,
            # A redaction is applied before the answer: see omnicrm.app.webhook_app.
            urgent=topic in ("customers/redact", "shop/redact"),
        )

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterator[Action]:
        # Everything is in the body (a product is fetched, with the connection's settings).
        topic, body = event.topic, event.payload
        if topic in CUSTOMER_UPSERTS:
            yield Upsert(mapping.customer_from_webhook(body))
        elif topic in ORDER_UPSERTS:
            yield Upsert(mapping.order_from_webhook(body))
        elif topic in PRODUCT_UPSERTS:
            product_id = ProductPayload.model_validate(body).admin_graphql_api_id
            product = fetch_product(connection.settings, product_id)
            yield Delete("products", [product_id]) if product is None else Upsert(product)
        elif topic == "products/delete":
            gone = ProductDeletePayload.model_validate(body).id
            yield Delete("products", [f"gid://shopify/Product/{gone}"])
        elif topic == "customers/delete":
            yield Delete("customers", [mapping.deleted_customer_id(body)])
        elif topic == "orders/delete":
            yield Delete("orders", [mapping.deleted_order_id(body)])
        elif topic == "customers/redact":
            request = mapping.privacy_request_from_webhook(body)
            yield Redact(request.customer_id, request.order_ids)
        elif topic == "shop/redact":
            yield EraseConnection()
        elif topic == "customers/data_request":
            request = mapping.privacy_request_from_webhook(body)
            yield Export(request.customer_id, str(request.data_request_id or event.event_id))
        else:
            log.info("%s: webhook topic %s is not used", event.connection, topic)


def _subjects(parsed: BaseModel) -> tuple[str | None, str | None]:
    """(customer, record) GIDs the event is about, for purging it on a redaction."""
    if isinstance(parsed, CustomerPayload | CustomerDeletePayload):
        return parsed.admin_graphql_api_id, parsed.admin_graphql_api_id
    if isinstance(parsed, OrderPayload):
        owner = parsed.customer
        owner_id: str | None = None
        if owner is not None:
            owner_id = owner.admin_graphql_api_id or (
                f"gid://shopify/Customer/{owner.id}" if owner.id is not None else None
            )
        return owner_id, parsed.admin_graphql_api_id
    if isinstance(parsed, ProductPayload):
        return None, parsed.admin_graphql_api_id
    if isinstance(parsed, OrderDeletePayload):
        return None, f"gid://shopify/Order/{parsed.id}"
    if isinstance(parsed, CustomerRedactPayload | DataRequestPayload):
        return f"gid://shopify/Customer/{parsed.customer.id}", None
    return None, None
