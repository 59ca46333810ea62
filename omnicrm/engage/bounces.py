"""Bounces that come back later: delivery status notifications (RFC 3464) read from files.

An SMTP server that accepted a message may fail to deliver it afterwards and mail a
report back to the envelope sender: a ``multipart/report; report-type=delivery-status``
whose ``message/delivery-status`` part says, per recipient, the action (``failed``,
``delayed``...) and the status (``5.1.1``), and whose last part returns the original
message or its headers. :func:`read_reports` reads them from ``.eml`` files, mbox files
and Maildirs (the standard :mod:`email` and :mod:`mailbox` modules); :func:`apply`
matches each failure to the message omnicrm sent, by its Message-ID (deterministic, and
kept as the outbox row's provider id) or else by the recipient's address among what the
shop's email campaigns sent, and suppresses the address as ``bounced`` when the status
is a hard bounce (:func:`omnicrm.core.dispatch.is_hard_bounce`). A delay, a temporary
failure (4.x.x) or a permanent one that is not about the address (a full mailbox, a
policy refusal) suppresses nothing; a report that matches no message of the shop
suppresses nothing either (a forged or misdirected report must not silence anyone).
Every outcome is listed, so the operator sees what was matched and what was not.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message as MailMessage
from email.parser import BytesHeaderParser
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, func, select

from omnicrm.core.consent import Refusal, normalize_address, suppress, suppressed
from omnicrm.core.dispatch import is_hard_bounce
from omnicrm.core.records import Medium
from omnicrm.engage.schema import campaigns, outbox
from omnicrm.errors import DataError

_DETAIL = 300  # characters of the diagnostic kept with the suppression


@dataclass(frozen=True)
class Failure:
    """One recipient's line of a delivery report."""

    where: str  # the file (and the message's key in a mailbox)
    recipient: str | None  # the original recipient if given, else the final one
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # the enhanced status code, "5.1.1"
    message_id: str | None  # the original message's Message-ID
    diagnostic: str | None


class Outcome(StrEnum):
    """What :func:`apply` did with a failure."""

    SUPPRESSED = "suppressed"  # a hard bounce of a message we sent: on the list now
    ALREADY = "already suppressed"  # on the list before
    TEMPORARY = "temporary"  # a delay or a 4.x.x: nothing suppressed
    NOT_THE_ADDRESS = "not about the address"  # 5.x.x, but not a bounce of the address
    UNMATCHED = "unmatched"  # no message of the shop's campaigns fits it


@dataclass(frozen=True)
class Matched:
    failure: Failure
    outcome: Outcome
    address: str | None = None  # what was (or would be) suppressed
    campaign: str | None = None


@dataclass
class Reports:
    """Every delivery report read, and the messages that were none."""

    failures: list[Failure] = field(default_factory=list)
    not_reports: list[str] = field(default_factory=list)  # where, of each other message
    read: int = 0  # messages read


# -- reading -----------------------------------------------------------------------------


def read_reports(paths: Iterable[Path]) -> Reports:
    """The delivery reports in ``paths`` (``.eml`` files, mbox files, Maildirs); a
    DataError naming the path when one cannot be read, before anything is applied."""
    found = Reports()
    for path in paths:
        for where, message in _messages(path):
            found.read += 1
            failures = failures_of(message, where)
            if failures is None:
                found.not_reports.append(where)
            else:
                found.failures.extend(failures)
    return found


def _messages(path: Path) -> Iterator[tuple[str, MailMessage]]:
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise DataError(f"{path}: a folder that is no Maildir (no cur/, new/ and tmp/)")
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            yield f"{path}:{key}", _parse(box.get_bytes(key))
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if data.startswith(b"From "):
        mbox = mailbox.mbox(path, create=False)
        try:
            for n, key in enumerate(mbox.keys(), 1):
                yield f"{path}#{n}", _parse(mbox.get_bytes(key))
        finally:
            mbox.close()
        return
    yield str(path), _parse(data)


def _parse(data: bytes) -> MailMessage:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def failures_of(message: MailMessage, where: str) -> list[Failure] | None:
    """The per-recipient lines of ``message`` if it is a delivery report (RFC 3464),
    else None."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    status_part: MailMessage | None = None
    original_id: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status_part is None:
            status_part = part
        elif kind == "message/rfc822" and original_id is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], MailMessage):
                original_id = _header(inner[0], "Message-ID")
        elif kind == "text/rfc822-headers" and original_id is None:
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                original_id = _header(BytesHeaderParser().parsebytes(raw), "Message-ID")
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        return []  # per-message fields only: no recipient to speak of
    found = []
    # The first block is about the message, the rest one per recipient.
    for block in blocks[1:]:
        if not isinstance(block, MailMessage):
            continue
        recipient = _address(block.get("Original-Recipient")) or _address(
            block.get("Final-Recipient")
        )
        status = (_header(block, "Status") or "").split()[0:1]
        found.append(
            Failure(
                where=where,
                recipient=recipient,
                action=(_header(block, "Action") or "").lower(),
                status=status[0] if status else "",
                message_id=original_id,
                diagnostic=_header(block, "Diagnostic-Code"),
            )
        )
    return found


def _header(message: MailMessage, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _address(field_value: object) -> str | None:
    """The address of an ``rfc822; someone@example.jp`` recipient field."""
    if field_value is None:
        return None
    kind, _, address = " ".join(str(field_value).split()).partition(";")
    if kind.strip().lower() != "rfc822":
        return None
    address = address.strip().strip("<>").strip()
    return address or None


# -- applying ----------------------------------------------------------------------------


def _id_key(message_id: str) -> str:
    """A Message-ID as compared: angle brackets on, case kept (its left side may be
    case-sensitive), the domain lower-cased."""
    inner = message_id.strip().strip("<>")
    local, at, domain = inner.rpartition("@")
    return f"<{local}{at}{domain.lower()}>" if at else f"<{inner}>"


def apply(
    conn: Connection, failures: Iterable[Failure], *, shop: str, now: dt.datetime
) -> list[Matched]:
    """Match each failure to a message of ``shop``'s email campaigns and suppress the
    hard bounces' addresses (see the module); what became of each, in order."""
    failures = list(failures)
    o = outbox.c
    wanted = sorted({_id_key(f.message_id) for f in failures if f.message_id})
    by_id: dict[str, tuple[str | None, str]] = {}
    if wanted:
        for provider, to, name in conn.execute(
            select(o.provider_id, o.address, campaigns.c.name)
            .join(campaigns, campaigns.c.id == o.campaign_id)
            .where(o.shop == shop, o.medium == Medium.EMAIL.value, o.provider_id.in_(wanted))
        ):
            by_id[_id_key(provider)] = (to, name)
    recipients = sorted(
        {normalize_address(Medium.EMAIL, f.recipient) for f in failures if f.recipient}
    )
    by_address: dict[str, str] = {}
    if recipients:
        for sent, name in conn.execute(
            select(o.address, campaigns.c.name)
            .join(campaigns, campaigns.c.id == o.campaign_id)
            .where(
                o.shop == shop,
                o.medium == Medium.EMAIL.value,
                func.lower(o.address).in_(recipients),
                o.status == "sent",
            )
            .order_by(o.id)
        ):
            by_address[normalize_address(Medium.EMAIL, sent)] = name
    listed = set(suppressed(conn, shop=shop, medium=Medium.EMAIL))
    done: list[Matched] = []
    for failure in failures:
        address: str | None = None
        campaign: str | None = None
        if failure.message_id and _id_key(failure.message_id) in by_id:
            sent_to, campaign = by_id[_id_key(failure.message_id)]
            # The address we sent to (a forward's final recipient may differ); a
            # redacted row keeps none, and the report's own recipient stands in.
            address = sent_to or failure.recipient
        elif failure.recipient:
            key = normalize_address(Medium.EMAIL, failure.recipient)
            if key in by_address:
                address, campaign = key, by_address[key]
        if address is None:
            done.append(Matched(failure, Outcome.UNMATCHED))
            continue
        key = normalize_address(Medium.EMAIL, address)
        if failure.action != "failed" or not failure.status.startswith("5"):
            outcome = Outcome.TEMPORARY
        elif not is_hard_bounce(failure.status):
            outcome = Outcome.NOT_THE_ADDRESS
        elif key in listed:
            outcome = Outcome.ALREADY
        else:
            detail = f"DSN {failure.status}"
            if failure.diagnostic:
                detail += f": {failure.diagnostic}"
            suppress(
                conn,
                shop=shop,
                medium=Medium.EMAIL,
                address=key,
                reason=Refusal.BOUNCED,
                at=now,
                detail=detail[:_DETAIL],
            )
            listed.add(key)
            outcome = Outcome.SUPPRESSED
        done.append(Matched(failure, outcome, key, campaign))
    return done
