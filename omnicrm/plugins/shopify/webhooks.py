"""Receiving Shopify webhooks: verify, then say what the store should do.

Verification is shopifyapp's: base64 HMAC-SHA256 of the raw body under the app's client
secret, in X-Shopify-Hmac-Sha256, compared in constant time. Events are deduplicated by
X-Shopify-Event-Id (the same event retried keeps its id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence

from shopify_app.verify.webhook import verify_webhook_req

from omnicrm.core.config import Connection
from omnicrm.core.webhooks import (
    Action,
    Delete,
    EraseConnection,
    Export,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookRejected,
)
from omnicrm.plugins.shopify import mapping
from omnicrm.plugins.shopify.settings import ShopifySettings

log = logging.getLogger("omnicrm.channel.shopify")

CUSTOMER_UPSERTS = {"customers/create", "customers/update", "customers/enable", "customers/disable"}
ORDER_UPSERTS = {
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
}


class ShopifyWebhooks:
    """The webhook receiver of the Shopify channel."""

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        domain = lowered.get("x-shopify-shop-domain", "").strip().lower()
        connection = next(
            (
                c
                for c in connections
                if isinstance(c.settings, ShopifySettings) and c.settings.shop == domain
            ),
            None,
        )
        if connection is None:
            raise WebhookRejected(f"no connection for shop {domain!r}")
        settings = connection.settings
        assert isinstance(settings, ShopifySettings)
        if settings.client_secret is None:
            raise WebhookRejected(
                f"connection {connection.name!r} has no client_secret to verify webhooks with"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected("the body is not UTF-8") from None
        result = verify_webhook_req(
            {"method": "POST", "headers": dict(lowered), "url": "", "body": text},
            {
                "client_id": settings.client_id or "omnicrm",
                "client_secret": settings.client_secret.get_secret_value(),
                "old_client_secret": None,
            },
        )
        if not result.ok:
            raise WebhookRejected("the HMAC signature does not match the body")
        event_id = lowered.get("x-shopify-event-id") or lowered.get("x-shopify-webhook-id")
        topic = lowered.get("x-shopify-topic")
        if not event_id or not topic:
            raise WebhookRejected("X-Shopify-Event-Id or X-Shopify-Topic is missing")
        try:
            payload = json.loads(text)
        except ValueError:
            raise WebhookRejected("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise WebhookRejected("the body is not a JSON object")
        return WebhookEvent(connection.name, event_id, topic, payload)

    def actions(self, event: WebhookEvent) -> Iterator[Action]:
        topic, body = event.topic, event.payload
        if topic in CUSTOMER_UPSERTS:
            yield Upsert(mapping.customer_from_webhook(body))
        elif topic in ORDER_UPSERTS:
            yield Upsert(mapping.order_from_webhook(body))
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
