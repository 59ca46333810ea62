"""The operator's word: link two source customers, or take one out of its profile.

Each decision is kept in ``identity_overrides`` and outranks every rule; the records
it bears on are re-resolved at once, in the caller's transaction.

A decision is made within one shop (a client business): both records must be that
shop's. A record of another shop is refused, naming its shop, never linked: records of
two shops are never one person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, insert, or_, select

from omnicrm.core.store.changes import queue_records
from omnicrm.core.store.schema import connection_shops, customers
from omnicrm.crm.identity._tables import LINK, SEPARATE, memberships, pair_in, utc_now
from omnicrm.crm.identity.resolver import RecordRef
from omnicrm.crm.identity.resolving import ResolveResult, resolve_reached
from omnicrm.crm.identity.rules import IdentitySettings
from omnicrm.crm.schema import identity_overrides, profile_members
from omnicrm.errors import OmnicrmError


class UnknownRecordError(OmnicrmError):
    """No source customer has this (connection, record id)."""


class NothingToUnmergeError(OmnicrmError):
    """The record is alone in its profile already."""


class OtherShopError(OmnicrmError):
    """The record belongs to another shop than the one the operator works in."""


def link(
    conn: Connection,
    a: RecordRef,
    b: RecordRef,
    note: str | None = None,
    *,
    shop: str,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Make two source customers of ``shop`` one person, whatever the rules say (a
    must-link).

    Removes a separation between them, records the link, queues both profiles'
    members for the next refresh and resolves them now. A record of another shop
    raises OtherShopError; a withdrawn one (退会) UnknownRecordError: it joins no person.
    """
    return decide_pairs(conn, [(a, b)], [], note, shop=shop, settings=settings, now=now)


def separate(
    conn: Connection,
    a: RecordRef,
    b: RecordRef,
    note: str | None = None,
    *,
    shop: str,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Keep two source customers of ``shop`` apart for good (a cannot-link): no later
    run joins them, directly or through others.

    Removes a link between them, records the separation, queues both profiles' members
    and resolves them now. A record of another shop raises OtherShopError.
    """
    return decide_pairs(conn, [], [(a, b)], note, shop=shop, settings=settings, now=now)


def decide_pairs(
    conn: Connection,
    links: Sequence[tuple[RecordRef, RecordRef]],
    separations: Sequence[tuple[RecordRef, RecordRef]],
    note: str | None = None,
    *,
    shop: str,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Several links and separations of ``shop``'s records as one decision (see
    :func:`link` and :func:`separate`): recorded together, then the profiles of every
    record named are queued and resolved once."""
    now = now or utc_now()
    for (a, b), verb in [*((p, "link") for p in links), *((p, "separate") for p in separations)]:
        if a == b:
            with_itself = "with" if verb == "link" else "from"
            raise UnknownRecordError(f"cannot {verb} {_show(a)} {with_itself} itself")
    named = sorted({ref for pair in (*links, *separations) for ref in pair})
    _require_records(conn, named, shop)
    if links:
        _refuse_withdrawn(conn, sorted({ref for pair in links for ref in pair}), shop)
    rows = []
    for kind, pairs in ((LINK, links), (SEPARATE, separations)):
        for a, b in pairs:
            # One override per pair: the latest word on it.
            _drop_overrides(conn, shop, LINK, a, [b])
            _drop_overrides(conn, shop, SEPARATE, a, [b])
            rows.append(
                {
                    "shop": shop,
                    "kind": kind,
                    "a_connection": a[0],
                    "a_record": a[1],
                    "b_connection": b[0],
                    "b_record": b[1],
                    "note": note,
                    "created_at": now,
                }
            )
    if rows:
        conn.execute(insert(identity_overrides), rows)
    affected = _with_profile_members(conn, shop, set(named))
    queue_records(conn, shop, affected)
    return resolve_reached(conn, settings, affected, now, shop=shop)


def unmerge(
    conn: Connection,
    connection: str,
    record_id: str,
    note: str | None = None,
    *,
    shop: str,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Take a source customer of ``shop`` out of its profile, for good.

    The record is separated from every other member (so no later run merges it back,
    directly or through others) and any link between them is dropped; the other members
    stay together where they still match. Queues the members for the next refresh and
    resolves them now. A record of another shop raises OtherShopError.
    """
    now = now or utc_now()
    ref = (connection, record_id)
    _require_records(conn, [ref], shop)
    profile_id = memberships(conn, [ref], shop=shop).get(ref)
    members = _members_of(conn, shop, profile_id) if profile_id is not None else []
    others = [m for m in members if m != ref]
    if not others:
        raise NothingToUnmergeError(f"{_show(ref)} is alone in its profile: nothing to unmerge")
    _drop_overrides(conn, shop, LINK, ref, others)
    _drop_overrides(conn, shop, SEPARATE, ref, others)
    conn.execute(
        insert(identity_overrides),
        [
            {
                "shop": shop,
                "kind": SEPARATE,
                "a_connection": ref[0],
                "a_record": ref[1],
                "b_connection": other[0],
                "b_record": other[1],
                "note": note,
                "created_at": now,
            }
            for other in others
        ],
    )
    affected = {ref, *others}
    queue_records(conn, shop, affected)
    return resolve_reached(conn, settings, affected, now, shop=shop)


def _require_records(conn: Connection, refs: Sequence[RecordRef], shop: str) -> None:
    """Every one of ``refs`` is a source customer of ``shop``; else the error names the
    shop its connection belongs to (from connection_shops: no other shop's customer row
    is read)."""
    found = {
        (row.connection, row.id)
        for row in conn.execute(
            select(customers.c.connection, customers.c.id).where(
                customers.c.shop == shop, pair_in(customers.c.connection, customers.c.id, refs)
            )
        )
    }
    for ref in refs:
        if ref in found:
            continue
        owner = conn.execute(
            select(connection_shops.c.shop).where(connection_shops.c.connection == ref[0])
        ).scalar()
        if owner is not None and owner != shop:
            raise OtherShopError(
                f"{_show(ref)} belongs to shop {owner!r}, not {shop!r}:"
                " records of two shops are never one person"
            )
        raise UnknownRecordError(f"no source customer {_show(ref)} in shop {shop!r}")


def _drop_overrides(
    conn: Connection, shop: str, kind: str, ref: RecordRef, others: Sequence[RecordRef]
) -> None:
    for other in others:
        conn.execute(
            delete(identity_overrides).where(
                identity_overrides.c.shop == shop,
                identity_overrides.c.kind == kind,
                or_(
                    and_(
                        identity_overrides.c.a_connection == ref[0],
                        identity_overrides.c.a_record == ref[1],
                        identity_overrides.c.b_connection == other[0],
                        identity_overrides.c.b_record == other[1],
                    ),
                    and_(
                        identity_overrides.c.a_connection == other[0],
                        identity_overrides.c.a_record == other[1],
                        identity_overrides.c.b_connection == ref[0],
                        identity_overrides.c.b_record == ref[1],
                    ),
                ),
            )
        )


def _members_of(conn: Connection, shop: str, profile_id: int) -> list[RecordRef]:
    return [
        (row.connection, row.record_id)
        for row in conn.execute(
            select(profile_members.c.connection, profile_members.c.record_id)
            .where(profile_members.c.shop == shop, profile_members.c.profile_id == profile_id)
            .order_by(profile_members.c.connection, profile_members.c.record_id)
        )
    ]


def _with_profile_members(conn: Connection, shop: str, refs: set[RecordRef]) -> set[RecordRef]:
    found = set(refs)
    for profile_id in set(memberships(conn, refs, shop=shop).values()):
        found.update(_members_of(conn, shop, profile_id))
    return found


def _refuse_withdrawn(conn: Connection, refs: Sequence[RecordRef], shop: str) -> None:
    """None of ``refs`` (records of ``shop``) has withdrawn: a withdrawn member joins no
    person, so a link to one would be a decision that never takes effect."""
    for row in conn.execute(
        select(customers.c.connection, customers.c.id, customers.c.withdrawn_at).where(
            customers.c.shop == shop,
            pair_in(customers.c.connection, customers.c.id, refs),
            customers.c.withdrawn_at.is_not(None),
        )
    ):
        raise UnknownRecordError(
            f"{_show((row.connection, row.id))} withdrew (退会) on"
            f" {row.withdrawn_at.date().isoformat()}: a withdrawn member joins no person"
        )


def _show(ref: RecordRef) -> str:
    return f"{ref[0]}:{ref[1]}"
