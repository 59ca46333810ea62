"""Webhooks: a hint for a faster sync, never the source of truth.

A channel type may offer a :class:`WebhookReceiver`. For each request the core app reads
the body up to the receiver's ``max_body`` and asks the receiver to verify the signature
over the raw bytes, then to parse the body strictly as its topic's payload and name the
connection and event. The event id is claimed and the raw body queued in one
transaction; behind the answer the receiver derives the event's actions (upsert a
record, delete one, redact a customer, erase a shop, export a customer's data) and the
core applies them. Plugins never touch the store: they only say what should happen.

Headers a platform does not sign (the topic, the event id) decide nothing on their own:
the body must parse as the topic's payload, and a destructive action must agree with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnicrm.core._public import public
from omnicrm.core.channels import Connection
from omnicrm.core.records import Customer, Order
from omnicrm.errors import OmnicrmError

# The body size a receiver accepts unless it says otherwise (``max_body``): larger
# requests are refused with 413 while they stream in, before any of it is kept whole.
DEFAULT_MAX_BODY = 1024 * 1024


class WebhookRejected(OmnicrmError):
    """The request is not a genuine webhook (bad or missing signature, unknown shop):
    answered 401."""


class WebhookInvalid(OmnicrmError):
    """A genuine webhook that can never be applied: its body is not its topic's payload,
    or a destructive action disagrees with it. Answered 200 (a retry cannot fix it),
    logged and recorded as rejected for the operator. The message must name fields and
    ids only, never a value of the body (it may be personal data)."""

    def __init__(
        self,
        reason: str,
        *,
        connection: str | None = None,
        event_id: str | None = None,
        topic: str | None = None,
    ) -> None:
        super().__init__(reason)
        # Known once the signature proved who sent it: then the rejection is recorded.
        self.connection = connection
        self.event_id = event_id
        self.topic = topic


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook: which connection it is for, its id, topic and parsed body.

    ``customer_id`` and ``record_id`` name the customer and the record the event is
    about (when it is about one), so a redaction can purge it while it waits in the
    inbox. ``urgent`` events (privacy requests) are applied before the answer rather
    than behind it.
    """

    connection: str
    event_id: str
    topic: str
    payload: Mapping[str, Any]
    customer_id: str | None = None
    record_id: str | None = None
    urgent: bool = False


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
    """What a channel type provides to receive its platform's webhooks.

    It may also set ``max_body`` (bytes, default :data:`DEFAULT_MAX_BODY`). Both methods
    run in a worker thread, never on the event loop.
    """

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        """Check the signature over the raw ``body`` before reading anything of it, find
        the event's connection among ``connections`` (this channel's) and parse the body
        strictly as the topic's payload. Raise WebhookRejected if it is not genuine,
        WebhookInvalid if it is genuine but can never be applied."""
        ...

    def actions(self, event: WebhookEvent) -> Iterable[Action]:
        """What the event asks the store to do (``event.payload`` is the body as JSON,
        parsed again from the inbox). Raise WebhookInvalid or DataError if it cannot."""
        ...


def hmac_sha256(secret: str, body: bytes) -> bytes:
    """HMAC-SHA256 of ``body`` under ``secret``: the signature most platforms use."""
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def signatures_match(expected: bytes | str, given: bytes | str) -> bool:
    """Constant-time comparison, so timing reveals nothing of the expected signature."""
    left = expected.encode() if isinstance(expected, str) else expected
    right = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(left, right)


public(
    WebhookRejected,
    WebhookInvalid,
    WebhookEvent,
    Upsert,
    Delete,
    Redact,
    EraseConnection,
    Export,
    WebhookReceiver,
    hmac_sha256,
    signatures_match,
    module="omnicrm.webhooks",
)
