"""Webhooks: a hint for a faster sync, never the source of truth.

A channel type may offer a :class:`WebhookReceiver`. For each request the core app asks
it to verify the signature over the raw body and to name the connection and event;
dedupes by (connection, event id); then applies the actions the receiver derives from
the event (upsert a record, delete one, redact a customer, erase a shop, export a
customer's data). Plugins never touch the store: they only say what should happen.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnicrm.core.config import Connection
from omnicrm.core.records import Customer, Order
from omnicrm.errors import OmnicrmError


class WebhookRejected(OmnicrmError):
    """The request is not a genuine webhook (bad or missing signature, unknown shop)."""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook: which connection it is for, its id, topic and parsed body."""

    connection: str
    event_id: str
    topic: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Upsert:
    """Write this record as if a sync had read it."""

    record: Customer | Order


@dataclass(frozen=True)
class Delete:
    """The platform deleted these records."""

    kind: str  # "customers" or "orders"
    ids: Sequence[str]


@dataclass(frozen=True)
class Redact:
    """Erase a customer's personal data: their record, and the personal data of orders."""

    customer_id: str | None
    order_ids: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class EraseConnection:
    """Erase everything held for the connection (the shop uninstalled the app)."""


@dataclass(frozen=True)
class Export:
    """A customer asked for the data held about them."""

    customer_id: str
    request_id: str


Action = Upsert | Delete | Redact | EraseConnection | Export


class WebhookReceiver(Protocol):
    """What a channel type provides to receive its platform's webhooks."""

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        """Check the signature over the raw ``body`` and find the event's connection
        among ``connections`` (this channel's); raise WebhookRejected if it is not genuine."""
        ...

    def actions(self, event: WebhookEvent) -> Iterable[Action]:
        """What the event asks the store to do."""
        ...


def hmac_sha256(secret: str, body: bytes) -> bytes:
    """HMAC-SHA256 of ``body`` under ``secret``: the signature most platforms use."""
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def signatures_match(expected: bytes | str, given: bytes | str) -> bool:
    """Constant-time comparison, so timing reveals nothing of the expected signature."""
    left = expected.encode() if isinstance(expected, str) else expected
    right = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(left, right)
