"""The CRM's personal data: what a redaction erases and a data request exports of what
the CRM built on a source customer.

Identity keys and merge evidence hold their email and phone, the operator's links and
separations name the record (with a note), suggested pairs name it (as one of the pair,
or as the third record that blocked one: its birth date in the evidence), their profile
carries their name and address,
interactions and NPS answers hang on that profile, points entries on the record. The
store calls :data:`HOLDER` inside its own transaction (registered on import of
``omnicrm.crm``).

A connection belongs to one shop (``connection_shops``); what is erased or exported is
that shop's only. Another shop holding the same person (the same email, phone or name)
is another business's customer: its keys, profiles and queue are left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    and_,
    delete,
    or_,
    select,
    update,
)

from omnicrm.core.store.changes import queue_records
from omnicrm.core.store.personal import chunks, register_holder
from omnicrm.core.store.planner import unindexed
from omnicrm.core.store.schema import connection_shops
from omnicrm.crm.identity._tables import pair_in
from omnicrm.crm.schema import (
    crm_state,
    identity_keys,
    identity_merges,
    identity_overrides,
    identity_suggestions,
    interactions,
    nps_responses,
    points_entries,
    profile_members,
    profiles,
)

RecordRef = tuple[str, str]

# What a profile knows of its person; set again from the remaining members by the next
# CRM refresh.
_PROFILE_PERSON = {
    "family_name": None,
    "given_name": None,
    "family_name_kana": None,
    "given_name_kana": None,
    "email": None,
    "phone": None,
    "birth_date": None,
    "gender": "unknown",
    "postal_code": None,
    "prefecture": None,
    "company": None,
    "member_code": None,
    "search_text": None,
}
# The segment counts' snapshot (omnicrm.crm.segments.counts.SNAPSHOT_STATE): counting
# from it assumes profiles change only inside a refresh, so a redaction that blanks a
# profile drops it and the next refresh counts in full.
_SEGMENT_SNAPSHOT = "segment_counts"


def shop_of(conn: Connection, connection: str) -> str | None:
    """The shop ``connection`` belongs to; None when it never wrote a record (the CRM
    then holds nothing built on it)."""
    found: str | None = conn.execute(
        select(connection_shops.c.shop).where(connection_shops.c.connection == connection)
    ).scalar()
    return found


def forget_records(
    conn: Connection, connection: str, record_ids: Sequence[str], *, shop: str
) -> None:
    """Erase what the CRM holds about these source customers of ``shop``, and queue for
    the shop's next refresh every record whose profile that may change.

    Their identity keys and the merge edges and suggested pairs naming them go (the
    evidence holds their email, phone and birth date), and so do the operator's links
    and separations naming them, notes included. Their profiles lose what they said of
    the person at once (the refresh rebuilds them from the remaining members); a profile
    they were alone in loses its interactions and NPS answers too, as it goes at the
    refresh.
    """
    ids = sorted(set(record_ids))
    if not ids:
        return
    requeue: set[RecordRef] = set()
    for chunk in chunks(ids):
        # Found by key: the shop term only checks them (omnicrm.core.store.planner).
        mine = and_(
            unindexed(identity_keys.c.shop) == shop,
            identity_keys.c.connection == connection,
            identity_keys.c.record_id.in_(chunk),
        )
        keys = conn.execute(select(identity_keys.c.kind, identity_keys.c.value).where(mine)).all()
        # One holder fewer can change what the others' shared key may join (in this
        # shop: another shop's holders of the same value never joined them).
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in sorted(by_kind.items()):
            for value_chunk in chunks(sorted(set(values))):
                requeue.update(
                    (row.connection, row.record_id)
                    for row in conn.execute(
                        select(identity_keys.c.connection, identity_keys.c.record_id).where(
                            identity_keys.c.shop == shop,
                            identity_keys.c.kind == kind,
                            identity_keys.c.value.in_(value_chunk),
                        )
                    )
                )
        conn.execute(delete(identity_keys).where(mine))
        conn.execute(
            delete(identity_merges).where(
                identity_merges.c.shop == shop, _naming(identity_merges, connection, chunk)
            )
        )
        # A suggestion's evidence holds the record's keys and birth date.
        named = [row.id for row in _suggestions_naming(conn, shop, connection, chunk)]
        for id_chunk in chunks(named):
            conn.execute(
                delete(identity_suggestions).where(identity_suggestions.c.id.in_(id_chunk))
            )
        naming = and_(
            unindexed(identity_overrides.c.shop) == shop,
            _naming(identity_overrides, connection, chunk),
        )
        for row in conn.execute(select(identity_overrides).where(naming)):
            requeue.add((row.a_connection, row.a_record))
            requeue.add((row.b_connection, row.b_record))
        conn.execute(delete(identity_overrides).where(naming))
        _forget_in_profiles(conn, shop, connection, chunk, set(ids), requeue)
    requeue -= {(connection, i) for i in ids}
    queue_records(conn, shop, requeue)


def _forget_in_profiles(
    conn: Connection,
    shop: str,
    connection: str,
    chunk: Sequence[str],
    gone: set[str],
    requeue: set[RecordRef],
) -> None:
    """Clear the profiles of ``chunk``; drop the history of those left with no member
    outside ``gone`` (every record being erased)."""
    profile_ids = profiles_of_records(conn, shop, connection, chunk)
    if not profile_ids:
        return
    others: dict[int, int] = dict.fromkeys(profile_ids, 0)
    for row in conn.execute(
        select(profile_members).where(
            profile_members.c.shop == shop, profile_members.c.profile_id.in_(sorted(profile_ids))
        )
    ):
        requeue.add((row.connection, row.record_id))
        if not (row.connection == connection and row.record_id in gone):
            others[row.profile_id] += 1
    alone = sorted(pid for pid, count in others.items() if count == 0)
    if alone:
        for table in (interactions, nps_responses):
            conn.execute(delete(table).where(table.c.profile_id.in_(alone)))
    conn.execute(
        update(profiles)
        .where(profiles.c.shop == shop, profiles.c.id.in_(sorted(profile_ids)))
        .values(_PROFILE_PERSON)
    )
    conn.execute(
        delete(crm_state).where(crm_state.c.shop == shop, crm_state.c.key == _SEGMENT_SNAPSHOT)
    )


def profiles_of_records(
    conn: Connection, shop: str, connection: str, record_ids: Iterable[str]
) -> set[int]:
    """The profiles of these source customers of ``shop`` (any number of ids: read in
    chunks the database's parameter limit allows)."""
    found: set[int] = set()
    for chunk in chunks(sorted(set(record_ids))):
        found.update(
            conn.execute(
                select(profile_members.c.profile_id).where(
                    profile_members.c.shop == shop,
                    profile_members.c.connection == connection,
                    profile_members.c.record_id.in_(chunk),
                )
            ).scalars()
        )
    return found


def _suggestions_naming(
    conn: Connection, shop: str, connection: str, ids: Sequence[str]
) -> list[Any]:
    """The suggested pairs of ``shop`` naming one of ``ids``: as one of the pair, or as
    a record that blocked it (``blocked_by``). A blocking record is of one of the pair's
    profiles, so only the suggestions naming a member of theirs are read."""
    table = identity_suggestions
    found = {
        row.id: row
        for row in conn.execute(
            select(table).where(unindexed(table.c.shop) == shop, _naming(table, connection, ids))
        )
    }
    profile_ids = sorted(profiles_of_records(conn, shop, connection, ids))
    members: set[RecordRef] = set()
    for chunk in chunks(profile_ids):
        members.update(
            (row.connection, row.record_id)
            for row in conn.execute(
                select(profile_members.c.connection, profile_members.c.record_id).where(
                    profile_members.c.shop == shop, profile_members.c.profile_id.in_(chunk)
                )
            )
        )
    wanted = {(connection, i) for i in ids}
    for member_chunk in chunks(sorted(members)):
        for columns in (
            (table.c.a_connection, table.c.a_record),
            (table.c.b_connection, table.c.b_record),
        ):
            for row in conn.execute(
                select(table).where(
                    unindexed(table.c.shop) == shop, pair_in(*columns, member_chunk)
                )
            ):
                blockers = dict(row.evidence).get("blocked_by", ())
                if any(tuple(ref) in wanted for b in blockers for ref in b["records"]):
                    found[row.id] = row
    return [found[key] for key in sorted(found)]


def _naming(table: Table, connection: str, ids: Sequence[str]) -> ColumnElement[bool]:
    """Rows of ``table`` (a pair of records, sides a and b) naming one of ``ids``."""
    return or_(
        *(
            and_(table.c[f"{side}_connection"] == connection, table.c[f"{side}_record"].in_(ids))
            for side in ("a", "b")
        )
    )


# -- exporting ----------------------------------------------------------------------------


def crm_export(conn: Connection, connection: str, customer_id: str, *, shop: str) -> dict[str, Any]:
    """What the CRM holds about one source customer of ``shop``, JSON-ready: their
    profile, identity keys, points entries, the merges joining their records (with the
    evidence), the operator's links and separations naming them, the suggested pairs
    naming them (one of the pair, or the record that blocked it) with their evidence,
    and the interactions and NPS answers of their profile."""
    keys = conn.execute(
        select(identity_keys.c.kind, identity_keys.c.value)
        .where(
            unindexed(identity_keys.c.shop) == shop,
            identity_keys.c.connection == connection,
            identity_keys.c.record_id == customer_id,
        )
        .order_by(identity_keys.c.kind, identity_keys.c.value)
    ).all()
    points = conn.execute(
        select(points_entries)
        .where(
            unindexed(points_entries.c.shop) == shop,
            points_entries.c.connection == connection,
            points_entries.c.customer_id == customer_id,
        )
        .order_by(points_entries.c.occurred_at, points_entries.c.id)
    ).mappings()
    overrides = conn.execute(
        select(identity_overrides)
        .where(
            unindexed(identity_overrides.c.shop) == shop,
            _naming(identity_overrides, connection, [customer_id]),
        )
        .order_by(identity_overrides.c.id)
    ).mappings()
    # Why their records were joined: the evidence quotes the keys (email, phone) shared.
    merges = conn.execute(
        select(identity_merges)
        .where(
            unindexed(identity_merges.c.shop) == shop,
            _naming(identity_merges, connection, [customer_id]),
        )
        .order_by(identity_merges.c.merged_at, identity_merges.c.id)
    ).mappings()
    profile_id = conn.execute(
        select(profile_members.c.profile_id).where(
            profile_members.c.shop == shop,
            profile_members.c.connection == connection,
            profile_members.c.record_id == customer_id,
        )
    ).scalar()
    data: dict[str, Any] = {
        "identity_keys": [{"kind": kind, "value": value} for kind, value in keys],
        "points_entries": [_plain(row, drop=("id",)) for row in points],
        "identity_overrides": [_plain(row, drop=("id",)) for row in overrides],
        "identity_merges": [_plain(row, drop=("id", "profile_id")) for row in merges],
        "identity_suggestions": [
            _plain(row._mapping, drop=("id",))
            for row in _suggestions_naming(conn, shop, connection, [customer_id])
        ],
        "profile": None,
        "interactions": [],
        "nps_answers": [],
    }
    if profile_id is None:
        return data
    profile = (
        conn.execute(select(profiles).where(profiles.c.shop == shop, profiles.c.id == profile_id))
        .mappings()
        .one()
    )
    members = conn.execute(
        select(profile_members.c.connection, profile_members.c.record_id)
        .where(profile_members.c.shop == shop, profile_members.c.profile_id == profile_id)
        .order_by(profile_members.c.connection, profile_members.c.record_id)
    ).all()
    data["profile"] = {
        **_plain(profile, drop=("search_text",)),
        "members": [{"connection": c, "record_id": r} for c, r in members],
    }
    for name, table, order in (
        ("interactions", interactions, interactions.c.occurred_at),
        ("nps_answers", nps_responses, nps_responses.c.responded_at),
    ):
        found = conn.execute(
            select(table)
            .where(table.c.shop == shop, table.c.profile_id == profile_id)
            .order_by(order, table.c.id)
        ).mappings()
        data[name] = [_plain(row, drop=("id", "profile_id")) for row in found]
    return data


def _plain(row: RowMapping, *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A row as JSON-ready data."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in drop:
            continue
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        out[key] = value
    return out


class CrmPersonalData:
    """The CRM as a :class:`omnicrm.core.store.personal.PersonalDataHolder`: each call
    works in the shop of the connection it names."""

    def forget(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """Their points entries go, then :func:`forget_records`."""
        # By connection (its index): a connection's entries are its shop's.
        for chunk in chunks(sorted(set(record_ids))):
            conn.execute(
                delete(points_entries).where(
                    points_entries.c.connection == connection,
                    points_entries.c.customer_id.in_(chunk),
                )
            )
        shop = shop_of(conn, connection)
        if shop is not None:
            forget_records(conn, connection, record_ids, shop=shop)

    def erase(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """Queue every member of the connection for the refresh (their profiles lose
        them), forget them all, and drop the connection's points entries."""
        conn.execute(delete(points_entries).where(points_entries.c.connection == connection))
        shop = shop_of(conn, connection)
        if shop is None:
            return
        members = list(
            conn.execute(
                select(profile_members.c.record_id).where(
                    profile_members.c.shop == shop, profile_members.c.connection == connection
                )
            ).scalars()
        )
        queue_records(conn, shop, ((connection, record) for record in members))
        forget_records(conn, connection, sorted({*record_ids, *members}), shop=shop)

    def export(self, conn: Connection, connection: str, customer_id: str) -> dict[str, Any]:
        """See :func:`crm_export` (nothing but empty lists for a connection that never
        wrote a record)."""
        shop = shop_of(conn, connection)
        if shop is None:
            return {
                "identity_keys": [],
                "points_entries": [],
                "identity_overrides": [],
                "identity_suggestions": [],
                "profile": None,
                "interactions": [],
                "nps_answers": [],
            }
        return crm_export(conn, connection, customer_id, shop=shop)


HOLDER = CrmPersonalData()
register_holder("crm", HOLDER)
