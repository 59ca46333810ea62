"""Consent to marketing messages: the one place that says whether a person said yes.

Two kinds of statement meet here, per medium:

- the channels' own, as synced on each source customer (``customers.consents``);
- the ones made through omnicrm (``consent_records``: an operator's action, an
  unsubscribe link or one-click POST, a LINE block), appended with when, where and how.

The rule, so that nobody is messaged on a guess: the latest statement across a person's
source customers wins, an opt-out winning a tie; a channel's statement that carries no
time of its own is older than any statement made through omnicrm (a re-sync of an old
"subscribed" must not undo an unsubscribe). An opt-in is an ``opted_in`` statement;
``pending`` (double opt-in not confirmed) and ``unknown`` are not. On top of that, an
address on the shop's suppression list (unsubscribed, hard-bounced) is never sent to,
whoever it belongs to now. And a person with a source customer that withdrew (退会,
``customers.withdrawn_at``) is refused as ``withdrawn`` whatever they said before: a
withdrawn member is never messaged. (The CRM refresh takes withdrawn records out of
their profiles; this holds in between, when a withdrawal was synced after a campaign
was planned and before its send.)

Everything here works within one shop and a list of source customers (a profile's
members, which the CRM knows); the engagement layer adds the campaign's own checks
(frequency caps, quiet hours, the hold-out group) on top of :func:`consent_of`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store.schema import (
    consent_records,
    customers,
    suppression_lifts,
    suppressions,
)
from omnicrm.errors import DataError

Member = tuple[str, str]
"""A source customer: (connection, record id)."""

K = TypeVar("K")

# Before every time a statement made through omnicrm can carry.
_UNTIMED = dt.datetime.min.replace(tzinfo=dt.UTC)


class Refusal(StrEnum):
    """Why a message is not sent to someone (what every suppression is logged with)."""

    NO_CONSENT = "no_consent"  # never opted in (or only pending / unknown)
    UNSUBSCRIBED = "unsubscribed"  # withdrew consent, or the address is unsubscribed
    BOUNCED = "bounced"  # the address hard-bounced (or LINE: not a friend)
    NO_ADDRESS = "no_address"  # nothing to send to for this medium
    FREQUENCY_CAP = "frequency_cap"  # N messages per period reached
    QUIET_HOURS = "quiet_hours"  # not now: the send waits for the window to open
    HOLDOUT = "holdout"  # in the campaign's hold-out group
    WITHDRAWN = "withdrawn"  # a member who left the platform (退会): never messaged


class Method(StrEnum):
    """How a consent statement reached omnicrm."""

    OPERATOR = "operator"  # the shop's staff recorded it (a paper form, a call)
    ONE_CLICK = "one_click"  # RFC 8058 one-click POST from the mail client
    LINK = "link"  # the unsubscribe or preferences page
    REPLY = "reply"  # a reply to the List-Unsubscribe mailto
    LINE_UNFOLLOW = "line_unfollow"  # the customer blocked the LINE account
    LINE_FOLLOW = "line_follow"  # a linked LINE user added (or unblocked) the account
    LINE_LINK = "line_link"  # the customer linked their LINE account (account link flow)
    FORM = "form"  # a sign-up form
    IMPORT = "import"  # a file of consents from elsewhere


@dataclass(frozen=True)
class Statement:
    """One consent statement for one medium, where it came from and how."""

    state: ConsentState
    at: dt.datetime | None
    source: str | None
    method: str | None  # None: the channel's own statement


@dataclass(frozen=True)
class ConsentVerdict:
    """Whether a person may be messaged through a medium, and the statement it rests on."""

    allowed: bool
    refusal: Refusal | None
    statement: Statement | None

    def __bool__(self) -> bool:
        return self.allowed


def normalize_address(medium: Medium | str, address: str) -> str:
    """An address as the suppression list keys it (emails compared without case)."""
    address = address.strip()
    return address.lower() if Medium(medium) == Medium.EMAIL else address


# -- recording ---------------------------------------------------------------------------


def record_consent(
    conn: Connection,
    *,
    shop: str,
    members: Sequence[Member],
    medium: Medium,
    state: ConsentState,
    at: dt.datetime,
    source: str,
    method: Method | str,
    evidence: str | None = None,
) -> int:
    """Append a statement of ``state`` for ``medium`` to each of ``members`` (a person's
    source customers, so it holds across their merged records); returns how many."""
    if state not in (ConsentState.OPTED_IN, ConsentState.OPTED_OUT):
        raise DataError(f"a recorded consent is opted_in or opted_out, not {state.value!r}")
    if at.utcoffset() is None:
        raise DataError("the time of a consent statement needs a timezone")
    if not source.strip():
        raise DataError("a consent statement needs its source (where it was given)")
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "shop": shop,
            "connection": connection,
            "record_id": record_id,
            "medium": Medium(medium).value,
            "state": state.value,
            "stated_at": at,
            "source": source,
            "method": Method(method).value,
            "evidence": evidence,
            "recorded_at": now,
        }
        for connection, record_id in dict.fromkeys(members)
    ]
    if rows:
        conn.execute(insert(consent_records), rows)
    return len(rows)


def suppress(
    conn: Connection,
    *,
    shop: str,
    medium: Medium,
    address: str,
    reason: Refusal,
    at: dt.datetime,
    detail: str | None = None,
) -> None:
    """Put ``address`` on ``shop``'s suppression list for ``medium`` (unsubscribed or
    bounced); an address already there keeps its first reason and time."""
    if reason not in (Refusal.UNSUBSCRIBED, Refusal.BOUNCED):
        raise DataError(f"an address is suppressed as unsubscribed or bounced, not {reason}")
    key = normalize_address(medium, address)
    if not key:
        return
    # One statement that leaves an entry alone: two senders (PostgreSQL) answered a
    # bounce of the same address at once must not fail the commit of their answers.
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        upsert(suppressions)
        .values(
            shop=shop,
            medium=Medium(medium).value,
            address=key,
            reason=reason.value,
            since=at,
            detail=detail,
        )
        .on_conflict_do_nothing()
    )


def lift_suppression(
    conn: Connection,
    *,
    shop: str,
    medium: Medium,
    address: str,
    reasons: Collection[Refusal],
    at: dt.datetime,
    by: str,
    method: Method | str,
    why: str | None = None,
) -> Suppression | None:
    """Take ``address`` off ``shop``'s suppression list for ``medium`` if it is there
    for one of ``reasons``, keeping the entry with who lifted it (``by``), how
    (``method``), ``why`` and when (``at``) in ``suppression_lifts``; the entry lifted,
    or None. Which reasons a word may lift is the caller's rule
    (:mod:`omnicrm.engage.permission`): an opt-in lifts an unsubscribe, never a bounce
    (a new opt-in does not make an address deliverable), unless it proves the address
    reaches the person (a LINE follow)."""
    if at.utcoffset() is None:
        raise DataError("the time a suppression is lifted needs a timezone")
    s = suppressions.c
    # One statement takes the entry, so two lifts at once keep one audit row.
    gone = conn.execute(
        delete(suppressions)
        .where(
            s.shop == shop,
            s.medium == Medium(medium).value,
            s.address == normalize_address(medium, address),
            s.reason.in_([Refusal(r).value for r in reasons]),
        )
        .returning(s.address, s.reason, s.since, s.detail)
    ).first()
    if gone is None:
        return None
    lifted = Suppression(
        Medium(medium), gone.address, Refusal(gone.reason), gone.since, gone.detail
    )
    conn.execute(
        insert(suppression_lifts).values(
            shop=shop,
            medium=lifted.medium.value,
            address=lifted.address,
            reason=lifted.reason.value,
            since=lifted.since,
            detail=lifted.detail,
            lifted_at=at,
            lifted_by=by,
            method=Method(method).value,
            why=why,
        )
    )
    return lifted


# -- reading -----------------------------------------------------------------------------


def consent_of(
    conn: Connection,
    *,
    shop: str,
    members: Sequence[Member],
    medium: Medium,
    address: str | None,
) -> ConsentVerdict:
    """May ``members`` (one person's source customers) be messaged through ``medium`` at
    ``address``, as far as consent goes? The refusal says why not."""
    return consents_of(conn, shop=shop, people={0: (members, address)}, medium=medium)[0]


def consents_of(
    conn: Connection,
    *,
    shop: str,
    people: Mapping[K, tuple[Sequence[Member], str | None]],
    medium: Medium,
) -> dict[K, ConsentVerdict]:
    """:func:`consent_of` for many people at once, each given as (members, address):
    four queries whatever their number."""
    statements = latest_statements(
        conn, shop=shop, people={k: members for k, (members, _) in people.items()}, medium=medium
    )
    addresses = [a for _, a in people.values() if a is not None and a.strip()]
    listed = suppressed(conn, shop=shop, medium=medium, addresses=addresses) if addresses else {}
    gone = withdrawn(conn, shop=shop, members=[m for ms, _ in people.values() for m in ms])
    verdicts: dict[K, ConsentVerdict] = {}
    for person, (members, address) in people.items():
        statement = statements[person]
        if gone and any(m in gone for m in members):
            verdicts[person] = ConsentVerdict(False, Refusal.WITHDRAWN, statement)
        elif address is None or not address.strip():
            verdicts[person] = ConsentVerdict(False, Refusal.NO_ADDRESS, statement)
        elif (refusal := listed.get(normalize_address(medium, address))) is not None:
            verdicts[person] = ConsentVerdict(False, refusal, statement)
        else:
            verdicts[person] = judge(statement)
    return verdicts


def withdrawn(conn: Connection, *, shop: str, members: Iterable[Member]) -> set[Member]:
    """Those of ``members`` (source customers of ``shop``) that withdrew (退会)."""
    wanted = set(members)
    if not wanted:
        return set()
    # Two plain IN lists (see latest_statements); the cross product's extra pairs are
    # dropped by the set intersection.
    rows = conn.execute(
        select(customers.c.connection, customers.c.id).where(
            customers.c.shop == shop,
            customers.c.connection.in_(sorted({c for c, _ in wanted})),
            customers.c.id.in_(sorted({r for _, r in wanted})),
            customers.c.withdrawn_at.is_not(None),
        )
    )
    return {(c, r) for c, r in rows} & wanted


def judge(statement: Statement | None) -> ConsentVerdict:
    """The verdict a person's latest statement gives (the address set aside)."""
    if statement is None:
        return ConsentVerdict(False, Refusal.NO_CONSENT, None)
    if statement.state != ConsentState.OPTED_IN:
        # Withdrawn through omnicrm (a link, a block, the operator): unsubscribed. A
        # channel's own opt-out, pending or unknown: there is no consent to send on.
        withdrawn = statement.state == ConsentState.OPTED_OUT and statement.method is not None
        return ConsentVerdict(
            False, Refusal.UNSUBSCRIBED if withdrawn else Refusal.NO_CONSENT, statement
        )
    return ConsentVerdict(True, None, statement)


def latest_statement(
    conn: Connection, *, shop: str, members: Sequence[Member], medium: Medium
) -> Statement | None:
    """The statement about ``medium`` that stands across ``members``: the latest, an
    opt-out winning a tie, an untimed channel statement older than any of omnicrm's."""
    return latest_statements(conn, shop=shop, people={0: members}, medium=medium)[0]


def latest_statements(
    conn: Connection, *, shop: str, people: Mapping[K, Sequence[Member]], medium: Medium
) -> dict[K, Statement | None]:
    """:func:`latest_statement` for many people at once (keyed as ``people``): two
    queries whatever their number, for a sender's batch."""
    owner: dict[Member, list[K]] = {}
    for person, members in people.items():
        for member in dict.fromkeys(members):
            owner.setdefault(member, []).append(person)
    candidates: dict[K, list[Statement]] = {person: [] for person in people}
    # Two plain IN lists use the tables' indexes where a list of (connection, id)
    # pairs may not; pairs the cross product adds match no one in ``owner``.
    connections = sorted({c for c, _ in owner})
    record_ids = sorted({r for _, r in owner})
    if owner:
        channel_rows = conn.execute(
            select(customers.c.connection, customers.c.id, customers.c.consents).where(
                customers.c.shop == shop,
                customers.c.connection.in_(connections),
                customers.c.id.in_(record_ids),
            )
        )
        for row in channel_rows:
            for raw in row.consents or []:
                if raw.get("medium") != Medium(medium).value:
                    continue
                at = raw.get("updated_at")
                statement = Statement(
                    ConsentState(raw["state"]),
                    dt.datetime.fromisoformat(at) if at else None,
                    raw.get("source") or row.connection,
                    None,
                )
                for person in owner.get((row.connection, row.id), []):
                    candidates[person].append(statement)
        r = consent_records.c
        local = conn.execute(
            select(r.connection, r.record_id, r.state, r.stated_at, r.source, r.method).where(
                r.shop == shop,
                r.medium == Medium(medium).value,
                r.connection.in_(connections),
                r.record_id.in_(record_ids),
            )
        )
        for connection, record_id, s, at, src, m in local:
            for person in owner.get((connection, record_id), []):
                candidates[person].append(Statement(ConsentState(s), at, src, m))
    return {person: latest(found) for person, found in candidates.items()}


def latest(statements: Iterable[Statement]) -> Statement | None:
    """The statement that stands among ``statements`` (see the module's rule)."""
    best: Statement | None = None
    best_key: tuple[Any, ...] | None = None
    for s in statements:
        if s.state == ConsentState.UNKNOWN:
            continue  # "never asked" is no statement
        key = (s.at or _UNTIMED, s.state == ConsentState.OPTED_OUT, s.method is not None)
        if best_key is None or key > best_key:
            best, best_key = s, key
    return best


def suppressed(
    conn: Connection, *, shop: str, medium: Medium, addresses: Iterable[str] | None = None
) -> dict[str, Refusal]:
    """The suppressed addresses of ``shop`` for ``medium`` (among ``addresses``, or all)
    with their reason, keyed by normalised address."""
    s = suppressions.c
    query = select(s.address, s.reason).where(s.shop == shop, s.medium == Medium(medium).value)
    if addresses is not None:
        keys = [normalize_address(medium, a) for a in addresses]
        query = query.where(s.address.in_(keys))
    return {address: Refusal(reason) for address, reason in conn.execute(query)}


@dataclass(frozen=True)
class Suppression:
    """An address on a shop's suppression list: why, since when, and what was said."""

    medium: Medium
    address: str
    reason: Refusal
    since: dt.datetime
    detail: str | None


def suppression_list(
    conn: Connection,
    *,
    shop: str,
    medium: Medium | None = None,
    reason: Refusal | None = None,
) -> list[Suppression]:
    """``shop``'s suppression list (of one ``medium``, for one ``reason``, or all),
    oldest first."""
    s = suppressions.c
    query = select(s.medium, s.address, s.reason, s.since, s.detail).where(s.shop == shop)
    if medium is not None:
        query = query.where(s.medium == Medium(medium).value)
    if reason is not None:
        query = query.where(s.reason == Refusal(reason).value)
    rows = conn.execute(query.order_by(s.since, s.medium, s.address))
    return [Suppression(Medium(m), a, Refusal(r), at, d) for m, a, r, at, d in rows]


def suppressions_of(
    conn: Connection, *, shop: str, addresses: Mapping[Medium, Iterable[str]]
) -> list[Suppression]:
    """The entries of ``shop``'s suppression list for ``addresses`` (per medium: a
    person's email addresses, their LINE user ids), oldest first, for their profile."""
    s = suppressions.c
    found: list[Suppression] = []
    for medium, given in addresses.items():
        keys = sorted({normalize_address(medium, a) for a in given if a and a.strip()})
        if not keys:
            continue
        rows = conn.execute(
            select(s.address, s.reason, s.since, s.detail).where(
                s.shop == shop, s.medium == Medium(medium).value, s.address.in_(keys)
            )
        )
        found += [Suppression(Medium(medium), a, Refusal(r), at, d) for a, r, at, d in rows]
    return sorted(found, key=lambda x: (x.since, x.medium.value, x.address))


def recorded_statements(conn: Connection, *, shop: str, medium: Medium) -> dict[Member, Statement]:
    """The latest statement made through omnicrm for each source customer of ``shop``
    about ``medium`` (one scan, for planning a campaign)."""
    r = consent_records.c
    found: dict[Member, Statement] = {}
    rows = conn.execute(
        select(r.connection, r.record_id, r.state, r.stated_at, r.source, r.method)
        .where(r.shop == shop, r.medium == Medium(medium).value)
        .order_by(r.stated_at)
    )
    for connection, record_id, state, at, source, method in rows:
        statement = Statement(ConsentState(state), at, source, method)
        key = (connection, record_id)
        found[key] = latest([found[key], statement]) if key in found else statement  # type: ignore[assignment]
    return found
