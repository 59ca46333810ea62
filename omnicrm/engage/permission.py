"""May this shop message this person through this medium now? The check every send makes.

:func:`may_send` puts together what the core says about consent (the person's latest
statement across their merged records, the suppression list) with what the shop's
messaging settings add: the frequency caps, the quiet hours and a campaign's hold-out
group. The answer names the first reason that stops the message, or allows it with the
address to send to. :func:`change_consent` records a person's word (an unsubscribe,
an opt-in) across all of their source customers at once; :func:`record_word` is what
every way a word arrives goes through (the operator, an unsubscribe link, a platform's
follow or block, an account link): the statement on the records, then the address
suppressed on an opt-out or let go again on an opt-in. :func:`lift_bounce` is the
operator's one way to take an address off the suppression list: a bounce, never an
unsubscribe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from omnicrm.core import consent, links
from omnicrm.core.consent import Member, Method, Refusal, Statement, Suppression
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store.schema import customers
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.engage.schema import outbox
from omnicrm.engage.settings import MessagingSettings
from omnicrm.errors import DataError

COUNTED = ("handed_over", "sent", "unknown")
"""Outbox states that count against a frequency cap: it went, or may have."""


@dataclass(frozen=True)
class Policy:
    """A shop's sending rules: its messaging settings in its timezone."""

    settings: MessagingSettings
    tz: ZoneInfo

    def quiet_until(self, now: dt.datetime) -> dt.datetime | None:
        """The end of the quiet hours ``now`` is in (UTC), or None outside them."""
        window = self.settings.quiet
        if window is None:
            return None
        local = now.astimezone(self.tz)
        if not window.contains(local.time()):
            return None
        end = dt.datetime.combine(local.date(), window.end, tzinfo=self.tz)
        if end <= local:
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), window.end, self.tz)
        return end.astimezone(dt.UTC)


@dataclass(frozen=True)
class Verdict:
    """The answer of :func:`may_send`."""

    allowed: bool
    refusal: Refusal | None = None
    address: str | None = None
    statement: Statement | None = None
    wait_until: dt.datetime | None = None  # quiet hours: when sending may resume

    def __bool__(self) -> bool:
        return self.allowed


def members_of(conn: Connection, profile_id: int, *, shop: str) -> list[Member]:
    """The source customers merged into ``shop``'s profile ``profile_id``."""
    return members_by_profile(conn, [profile_id], shop=shop)[profile_id]


def members_by_profile(
    conn: Connection, profile_ids: Collection[int], *, shop: str
) -> dict[int, list[Member]]:
    """:func:`members_of` for many profiles, in one query."""
    pm = profile_members.c
    found: dict[int, list[Member]] = {pid: [] for pid in profile_ids}
    rows = conn.execute(
        select(pm.profile_id, pm.connection, pm.record_id).where(
            pm.shop == shop, pm.profile_id.in_(list(found))
        )
    )
    for pid, connection, record_id in rows:
        found[pid].append((connection, record_id))
    return found


def address_of(conn: Connection, profile_id: int, medium: Medium, *, shop: str) -> str | None:
    """Where ``medium`` reaches ``shop``'s profile ``profile_id``, or None.

    Email and SMS: the profile's email and phone. Postal: the latest member's full
    address (the profile keeps only the postal code). LINE: the user id most lately
    linked to one of the profile's members (:mod:`omnicrm.core.links`).
    """
    return addresses_of(conn, [profile_id], medium, shop=shop)[profile_id]


def addresses_of(
    conn: Connection, profile_ids: Collection[int], medium: Medium, *, shop: str
) -> dict[int, str | None]:
    """:func:`address_of` for many profiles, in one query."""
    p = profiles.c
    found: dict[int, str | None] = dict.fromkeys(profile_ids)
    if medium in (Medium.EMAIL, Medium.SMS):
        column = p.email if medium == Medium.EMAIL else p.phone
        rows = conn.execute(select(p.id, column).where(p.shop == shop, p.id.in_(list(found))))
        found.update((pid, value or None) for pid, value in rows)
    elif medium == Medium.POSTAL:
        for pid, stored in postal_addresses_of(conn, list(found), shop=shop).items():
            found[pid] = postal_line(stored) if stored else None
    elif medium == Medium.LINE:
        owner = {
            member: pid
            for pid, members in members_by_profile(conn, list(found), shop=shop).items()
            for member in members
        }
        linked = links.addresses_of_members(conn, shop=shop, medium=medium, members=owner)
        for member, address in linked:  # oldest first: the latest link wins
            found[owner[member]] = address
    return found


def postal_addresses_of(
    conn: Connection, profile_ids: Collection[int], *, shop: str
) -> dict[int, dict[str, str | None] | None]:
    """The postal address of each of ``shop``'s profiles as stored (``postal_code``,
    ``prefecture``, ``city``, ``line1``, ``line2``): the latest member's, or None."""
    pm = profile_members.c
    found: dict[int, dict[str, str | None] | None] = dict.fromkeys(profile_ids)
    rows = conn.execute(
        select(pm.profile_id, customers.c.address)
        .join(
            profile_members,
            (pm.connection == customers.c.connection) & (pm.record_id == customers.c.id),
        )
        .where(
            pm.shop == shop,
            pm.profile_id.in_(list(found)),
            customers.c.address.is_not(None),
        )
        .order_by(pm.profile_id, customers.c.updated_at.desc())
    )
    seen: set[int] = set()
    for pid, address in rows:
        if pid not in seen:  # the latest member's address
            seen.add(pid)
            found[pid] = dict(address) if address else None
    return found


def postal_line(address: dict[str, str | None]) -> str | None:
    """A stored address as one line, Japanese order; None without a postal code."""
    code = address.get("postal_code")
    if not code:
        return None
    parts = [address.get(k) for k in ("prefecture", "city", "line1", "line2")]
    return f"〒{code} " + " ".join(p for p in parts if p)


def sent_lately(
    conn: Connection,
    profile_ids: Collection[int],
    medium: Medium,
    since: dt.datetime,
    *,
    shop: str,
) -> dict[int, int]:
    """How many messages went (or may have) to each profile through ``medium`` since
    (profiles with none left out)."""
    o = outbox.c
    rows = conn.execute(
        select(o.profile_id, func.count())
        .where(
            o.shop == shop,
            o.profile_id.in_(list(profile_ids)),
            o.medium == medium.value,
            o.handed_at >= since,
            o.status.in_(COUNTED),
        )
        .group_by(o.profile_id)
    )
    return {pid: int(n) for pid, n in rows}


def may_send(
    conn: Connection,
    *,
    shop: str,
    profile_id: int,
    medium: Medium,
    now: dt.datetime,
    policy: Policy,
    holdout: bool = False,
) -> Verdict:
    """May ``shop`` message profile ``profile_id`` through ``medium`` at ``now``?

    Checked in this order, the first failing one answering: a member who withdrew
    (退会, never messaged), an address to send to, consent (and the suppression list),
    the frequency caps, then the hold-out group (those of it who would have been sent
    the message), then the quiet hours (which only delay: ``wait_until`` says until
    when).
    """
    verdict = may_send_many(
        conn, shop=shop, profile_ids=[profile_id], medium=medium, now=now, policy=policy
    )[profile_id]
    if holdout and (verdict.allowed or verdict.refusal == Refusal.QUIET_HOURS):
        return Verdict(False, Refusal.HOLDOUT, verdict.address, verdict.statement)
    return verdict


def may_send_many(
    conn: Connection,
    *,
    shop: str,
    profile_ids: Collection[int],
    medium: Medium,
    now: dt.datetime,
    policy: Policy,
) -> dict[int, Verdict]:
    """:func:`may_send` for a batch of profiles (none in a hold-out group): a handful of
    queries for the whole batch, however large, so a sender checks each batch just
    before it hands it over."""
    addresses = addresses_of(conn, profile_ids, medium, shop=shop)
    members = members_by_profile(conn, profile_ids, shop=shop)
    consents = consent.consents_of(
        conn,
        shop=shop,
        people={pid: (members[pid], addresses[pid]) for pid in addresses},
        medium=medium,
    )
    verdicts: dict[int, Verdict] = {}
    for pid, verdict in consents.items():
        if not verdict:
            verdicts[pid] = Verdict(False, verdict.refusal, addresses[pid], verdict.statement)
    open_ids = [pid for pid in addresses if pid not in verdicts]
    for cap in policy.settings.caps_for(medium):
        if not open_ids:
            break
        counts = sent_lately(conn, open_ids, medium, now - cap.per, shop=shop)
        for pid in open_ids:
            if counts.get(pid, 0) >= cap.count:
                verdicts[pid] = Verdict(
                    False, Refusal.FREQUENCY_CAP, addresses[pid], consents[pid].statement
                )
        open_ids = [pid for pid in open_ids if pid not in verdicts]
    wait = policy.quiet_until(now)
    for pid in open_ids:
        statement = consents[pid].statement
        verdicts[pid] = (
            Verdict(True, None, addresses[pid], statement)
            if wait is None
            else Verdict(False, Refusal.QUIET_HOURS, addresses[pid], statement, wait_until=wait)
        )
    return verdicts


def change_consent(
    conn: Connection,
    *,
    shop: str,
    profile_id: int,
    medium: Medium,
    state: ConsentState,
    at: dt.datetime,
    source: str,
    method: Method,
    evidence: str | None = None,
) -> int:
    """Record the person's word on ``medium`` on each of their source customers, so it
    holds before the next send whatever record a campaign finds them by. An opt-out
    (an unsubscribe) also puts their address on the suppression list; an opt-in takes
    an unsubscribed address off it. Returns the records touched."""
    members = members_of(conn, profile_id, shop=shop)
    if not members:
        raise DataError(f"shop {shop!r} has no profile {profile_id}")
    return record_word(
        conn,
        shop=shop,
        members=members,
        address=address_of(conn, profile_id, medium, shop=shop),
        medium=medium,
        state=state,
        at=at,
        source=source,
        method=method,
        evidence=evidence,
    )


def record_word(
    conn: Connection,
    *,
    shop: str,
    members: Sequence[Member],
    address: str | None,
    medium: Medium,
    state: ConsentState,
    at: dt.datetime,
    source: str,
    method: Method | str,
    evidence: str | None = None,
    ends_bounce: bool = False,
) -> int:
    """A person's word on ``medium``: the statement on each of ``members`` (their source
    customers; none: only the address is known), then ``address`` (None: none known)
    put on the suppression list on an opt-out, or taken off it on an opt-in if it was
    unsubscribed (bounced too when ``ends_bounce``: a statement that proves the address
    reaches them again, such as a LINE follow). Returns the records the statement was
    written on."""
    count = (
        consent.record_consent(
            conn,
            shop=shop,
            members=members,
            medium=medium,
            state=state,
            at=at,
            source=source,
            method=method,
            evidence=evidence,
        )
        if members
        else 0
    )
    if address and state == ConsentState.OPTED_OUT:
        consent.suppress(
            conn,
            shop=shop,
            medium=medium,
            address=address,
            reason=Refusal.UNSUBSCRIBED,
            at=at,
            detail=f"{method} via {source}",  # a Method is its value as text
        )
    elif address:
        consent.lift_suppression(
            conn,
            shop=shop,
            medium=medium,
            address=address,
            reasons=(Refusal.UNSUBSCRIBED, Refusal.BOUNCED) if ends_bounce else OPT_IN_LIFTS,
            at=at,
            by=source,
            method=method,
            why=evidence,
        )
    return count


OPT_IN_LIFTS = (Refusal.UNSUBSCRIBED,)
"""What a person's opt-in takes off the suppression list: their unsubscribe, never a
bounce (a new opt-in does not make the address deliverable)."""


def lift_bounce(
    conn: Connection,
    *,
    shop: str,
    medium: Medium,
    address: str,
    at: dt.datetime,
    by: str,
    why: str,
) -> Suppression:
    """An operator's word that ``address`` reaches the person again (a mailbox that was
    full or mistyped and is fixed, a wrong bounce report): its ``bounced`` entry is
    taken off ``shop``'s suppression list, kept with who, why and when. Consent is not
    touched: the person is messaged only if they opted in. Refused (DataError, saying
    why) for an address not on the list and for an unsubscribed one: a person's opt-out
    is theirs, lifted only by their own opt-in (:func:`record_word`)."""
    if not why.strip():
        raise DataError("say why the suppression is lifted (--reason): it is kept for the record")
    if not by.strip():
        raise DataError("say who lifts the suppression: it is kept for the record")
    listed = consent.suppressions_of(conn, shop=shop, addresses={medium: [address]})
    if not listed:
        raise DataError(
            f"{address!r} is not on the suppression list of shop {shop!r} for {medium.value}"
        )
    (entry,) = listed
    if entry.reason != Refusal.BOUNCED:
        raise DataError(
            f"{entry.address} ({medium.value}) is {entry.reason.value}"
            + (f" ({entry.detail})" if entry.detail else "")
            + ": a person's opt-out is theirs to take back; it is lifted only by their own "
            "opt-in (their preferences page, a LINE follow), never by an operator"
        )
    lifted = consent.lift_suppression(
        conn,
        shop=shop,
        medium=medium,
        address=entry.address,
        reasons=(Refusal.BOUNCED,),
        at=at,
        by=by,
        method=Method.OPERATOR,
        why=why,
    )
    if lifted is None:  # taken off meanwhile by someone else
        raise DataError(f"{entry.address} ({medium.value}) is no longer suppressed")
    return lifted
