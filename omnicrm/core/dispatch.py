"""Message dispatch: what a dispatcher plugin registers, receives and reports.

A campaign writes a message once, as a :class:`MessageParts` of templates; the
dispatcher's :class:`Renderer` checks those templates against the fields a campaign can
give (before anything is sent) and renders them for each customer; the rendered parts
travel in a :class:`Message` to ``omnicrm_dispatch_message``. The medium owns its
templates because what rendering means is the medium's (an HTML part escapes what it
inserts, a text part does not; LINE has no subject).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel

from omnicrm.core._public import public
from omnicrm.core.channels import SandboxFactory
from omnicrm.core.records import Medium
from omnicrm.core.webhooks import WebhookReceiver


@dataclass(frozen=True)
class MessageParts:
    """The parts of one message: the templates an operator writes, or them rendered."""

    body: str
    subject: str | None = None
    html: str | None = None


class Renderer(Protocol):
    """How a medium turns templates and one customer's fields into a message's parts."""

    def check(self, template: MessageParts, fields: Collection[str]) -> None:
        """Raise :class:`~omnicrm.errors.TemplateError` if ``template`` does not parse or
        names a field outside ``fields``, naming the part, the line and the names."""

    def render(self, template: MessageParts, fields: Mapping[str, Any]) -> MessageParts:
        """The parts rendered with ``fields``; a TemplateError names what failed."""


@dataclass(frozen=True)
class Dispatcher:
    """A way to deliver rendered messages through one medium (an SMTP server, LINE).

    ``renderer`` renders the medium's templates; ``sandbox`` starts a local server or
    emulator of the medium, as a channel type's does (its value: settings reaching it).
    ``webhooks``, when given, receives the medium's webhooks (a LINE follow or block) at
    POST /webhooks/NAME: its ``verify`` is given one :class:`~omnicrm.Connection` per
    shop that sends through this dispatcher (named ``NAME@SHOP``, the dispatcher's
    settings as its settings).

    ``finish``, when given, is called as ``finish(settings, shop, campaign)`` each time a
    sender stops sending a campaign through this dispatcher (the campaign is done, is
    paused or cancelled, or waits for the quiet hours), before the campaign is marked
    done, and again by the run that follows a crash. A medium that collects a campaign's
    messages into files (the postal dispatcher's recipient list and address labels)
    completes them here, once per run rather than once per message; an exception keeps
    the campaign from being marked done, so the next run finishes again.

    ``forget`` and ``holding``, when given, are for a medium that keeps messages in files
    of its own (the postal dispatcher's runs): ``forget(settings, shop, message_ids)``
    takes those messages (a redacted person's) out of every file that holds them,
    rebuilding each atomically or deleting what cannot be rebuilt, and returns the
    names of the files it changed or deleted; ``holding(settings, shop, message_ids)``
    names the files that hold any of them, for a data request. Both are called with
    the ids of every message of the person the medium was given (``Message.id``).
    """

    name: str
    medium: Medium
    settings: type[BaseModel]
    title: str = ""
    renderer: Renderer | None = None
    sandbox: SandboxFactory | None = None
    webhooks: WebhookReceiver | None = None
    finish: Callable[[BaseModel, str, str], None] | None = None
    forget: Callable[[BaseModel, str, Collection[str]], list[str]] | None = None
    holding: Callable[[BaseModel, str, Collection[str]], list[str]] | None = None


@dataclass(frozen=True)
class Message:
    """A rendered message for one customer, whose consent for ``medium`` was checked.

    ``body`` is the text; ``html`` an HTML alternative of it where the medium has one
    (email). ``metadata`` carries what the dispatcher needs besides the parts: a
    campaign's sender gives ``shop``, ``campaign`` and ``variant``, the recipient's
    ``family_name`` and ``given_name`` (``None`` when unknown), and for ``postal`` the
    address as stored, ``postal_address`` (``postal_code``, ``prefecture``, ``city``,
    ``line1``, ``line2``); email reads an ``unsubscribe_token`` when given.
    """

    id: str
    medium: Medium
    customer_id: str
    to: str
    body: str
    subject: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    html: str | None = None


class DeliveryStatus(StrEnum):
    SENT = "sent"
    REJECTED = "rejected"  # the medium refused this recipient; do not retry
    FAILED = "failed"  # a passing failure; may be retried


@dataclass(frozen=True)
class DispatchOutcome:
    """What happened to one message.

    ``bounced`` (with ``rejected``) says the refusal is about the address itself, for
    good: an SMTP server's 5xx for the recipient (no such mailbox), LINE's answer for a
    user who is not a friend or blocked the account. The host then puts the address on
    the shop's suppression list (reason ``bounced``), so nothing more is sent to it. A
    refusal of the message (its content, a header) or of the sender is not a bounce.
    """

    status: DeliveryStatus
    provider_id: str | None = None
    error: str | None = None
    bounced: bool = False


_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


def is_hard_bounce(status: str) -> bool:
    """Whether an enhanced mail status code (RFC 3463, such as ``5.1.1``, as an SMTP
    reply's text or a DSN's ``Status`` field begins) says the recipient's address
    cannot receive mail, for good: a permanent failure (5) of the address (``5.1.x``,
    bar 5.1.7 and 5.1.8, which are about the sender's address) or a disabled mailbox
    (5.2.1). Other permanent failures (a full mailbox, a policy refusal, a relay that
    will not relay for us) are about this message or this sender: suppressing the
    address for them could silence a whole list over one misconfigured relay."""
    found = _ENHANCED.match(status.strip())
    if found is None:
        return False
    klass, subject, detail = (int(g) for g in found.groups())
    if klass != 5:
        return False
    return (subject == 1 and detail not in (7, 8)) or (subject, detail) == (2, 1)


public(Dispatcher, Message, MessageParts, Renderer, DeliveryStatus, DispatchOutcome, is_hard_bounce)
