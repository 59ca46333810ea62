"""Webhooks: a hint for a faster sync, never the source of truth.

A channel type may offer a :class:`WebhookReceiver`. For each request the core app reads
the body up to the receiver's ``max_body`` and asks the receiver to verify the signature
over the raw bytes, then to parse the body strictly as its topic's payload and name the
connection and event. The event id is claimed and the raw body queued in one
transaction; behind the answer the receiver derives the event's actions (upsert a
record, delete one, redact a customer, erase a shop, export a customer's data) and the
core applies them. Plugins never touch the store: they only say what should happen.

The applier hands ``actions`` the event's :class:`Connection` (its settings), so a
receiver that fetches what the event names needs to remember nothing between ``verify``
and ``actions``: the event may be applied by another process, after a restart. A receiver
written when ``actions`` took the event alone still works: :func:`event_actions` calls it
in the form it was written in (read once, when its channel type is registered).

Headers a platform does not sign (the topic, the event id) decide nothing on their own:
the body must parse as the topic's payload, and a destructive action must agree with it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnicrm.core._public import public
from omnicrm.core.channels import Connection
from omnicrm.core.records import ConsentState, Medium, Record
from omnicrm.errors import OmnicrmError, PluginError

# The body size a receiver accepts unless it says otherwise (``max_body``): larger
# requests are refused with 413 while they stream in, before any of it is kept whole.
DEFAULT_MAX_BODY = 1024 * 1024

# For platforms that cannot add a header to their webhooks: a receiver that sets
# ``path_token = True`` also receives POST /webhooks/CHANNEL/TOKEN, and finds TOKEN in
# its headers under this name. The app drops a header of this name a sender sent, so
# only the path can set it.
PATH_TOKEN_HEADER = "x-omnicrm-path-token"


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

    record: Record


@dataclass(frozen=True)
class Delete:
    """The platform deleted these records."""

    kind: str  # a stream: "customers", "orders" or "products"
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


@dataclass(frozen=True)
class ConsentChange:
    """The person at ``address`` of ``medium`` gave or withdrew consent, as the platform
    states (a LINE follow or block): recorded on the source customers the address is
    linked to; a withdrawal also puts the address on the shop's suppression list, so
    nothing is sent to it even before it is linked. ``method`` is a
    :class:`~omnicrm.core.consent.Method` value."""

    medium: Medium
    address: str
    state: ConsentState
    at: dt.datetime
    method: str
    source: str


@dataclass(frozen=True)
class LinkAddress:
    """Link ``address`` of ``medium`` (a LINE user id) to the source customer the shop
    issued ``nonce`` for (LINE's account link flow); a nonce unknown, used or expired is
    refused."""

    medium: Medium
    address: str
    nonce: str
    at: dt.datetime


Action = Upsert | Delete | Redact | EraseConnection | Export | ConsentChange | LinkAddress


class WebhookReceiver(Protocol):
    """What a channel type provides to receive its platform's webhooks.

    It may also set ``max_body`` (bytes, default :data:`DEFAULT_MAX_BODY`) and
    ``path_token`` (see :data:`PATH_TOKEN_HEADER`). Both methods run in a worker thread,
    never on the event loop.
    """

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        """Check the signature over the raw ``body`` before reading anything of it, find
        the event's connection among ``connections`` (this channel's) and parse the body
        strictly as the topic's payload. Raise WebhookRejected if it is not genuine,
        WebhookInvalid if it is genuine but can never be applied."""
        ...

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterable[Action]:
        """What the event asks the store to do (``event.payload`` is the body as JSON,
        parsed again from the inbox; ``connection`` is the event's connection as now
        configured, its settings to fetch with). Raise WebhookInvalid or DataError if it
        cannot. ``actions(self, event)``, the form before ``connection`` was passed, is
        still called that way."""
        ...


def check_receiver(receiver: object) -> None:
    """Raise PluginError unless ``receiver`` has ``verify`` and an ``actions`` taking the
    event and the connection, or the event alone (the host checks at registration)."""
    if not callable(getattr(receiver, "verify", None)):
        raise PluginError(f"webhook receiver {receiver!r} has no verify method")
    _takes_connection(receiver)


def event_actions(
    receiver: WebhookReceiver, event: WebhookEvent, connection: Connection
) -> list[Action]:
    """The receiver's actions for ``event``, called in the form its ``actions`` takes."""
    if _takes_connection(receiver):
        return list(receiver.actions(event, connection))
    return list(receiver.actions(event))  # type: ignore[call-arg]


def _takes_connection(receiver: object) -> bool:
    method = getattr(receiver, "actions", None)
    if not callable(method):
        raise PluginError(f"webhook receiver {receiver!r} has no actions method")
    # The form is the function's: read once per function, whatever the instance.
    return _form_of(getattr(method, "__func__", method), hasattr(method, "__func__"))


@functools.cache
def _form_of(function: Any, bound: bool) -> bool:
    """Whether ``function`` (a method when ``bound``) takes (event, connection)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return True  # no signature to read (a builtin): the current form
    if bound and parameters:
        parameters = parameters[1:]  # self
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    # An optional second parameter of another name was the receiver's own before the
    # connection was passed: it is not handed the connection.
    if len(positional) >= 2 and len(required) <= 2:
        second = positional[1]
        if second.default is second.empty or second.name == "connection":
            return True
    if len(positional) >= 1 and len(required) <= 1:
        return False
    raise PluginError(
        f"webhook receiver's actions{inspect.signature(function)} takes neither "
        "(event, connection) nor (event)"
    )


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
    ConsentChange,
    LinkAddress,
    WebhookReceiver,
    hmac_sha256,
    signatures_match,
    module="omnicrm.webhooks",
)
