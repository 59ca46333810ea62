"""The identity tables as resolving, the operator's overrides and explanations share them.

Key extraction (source customers read from ``customers`` and normalised, their keys
written to ``identity_keys``), memberships, the stored overrides, and chunked
``(connection, id) IN`` lists that both backends answer from an index. Private to the
package: its callers are the modules beside it.

Everything works within one shop (a client business): it reads only that shop's rows
and writes the shop on every row, so records of two shops never meet, whatever they
share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, delete, or_, select

from omnicrm.core.store import table_writers
from omnicrm.core.store.planner import unindexed
from omnicrm.core.store.schema import connection_shops, customers
from omnicrm.crm.identity.resolver import Key, RecordRef, SourceIdentity
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind
from omnicrm.crm.schema import identity_keys, identity_overrides, profile_members

LINK = "link"
SEPARATE = "separate"

_CHUNK = 500  # rows per IN list: two parameters each, well under every driver's limit

T = TypeVar("T")


_IDENTITY_COLUMNS = (
    customers.c.connection,
    customers.c.id,
    customers.c.email,
    customers.c.phone,
    customers.c.member_code,
    customers.c.family_name,
    customers.c.given_name,
    customers.c.family_name_kana,
    customers.c.given_name_kana,
    customers.c.birth_date,
    customers.c.gender,
)


def source_identities(
    conn: Connection, settings: IdentitySettings, refs: set[RecordRef] | None, *, shop: str
) -> Iterator[SourceIdentity]:
    """The source customers of ``shop`` among ``refs`` (None: all) that exist and have
    not withdrawn, normalised.

    A withdrawn member (退会, ``withdrawn_at`` set) is left out as a deleted one is: it
    holds no identity keys, so it joins no profile, leaves the one it was in and never
    starts one. Cleared again (a re-registration), it is read as any other record.
    """
    junk = settings.junk()
    present = customers.c.withdrawn_at.is_(None)
    if refs is None:
        # By the shop's connections, in primary key order: the customers' rows are read
        # in the order they lie and the keys written in the order of their own key. By
        # the shop alone SQLite took the (shop, email) index: a million rows read in
        # email order, their keys inserted all over identity_keys' primary key.
        connections = select(connection_shops.c.connection).where(connection_shops.c.shop == shop)
        queries = [
            select(*_IDENTITY_COLUMNS)
            .where(
                customers.c.connection.in_(connections),
                unindexed(customers.c.shop) == shop,
                present,
            )
            .order_by(customers.c.connection, customers.c.id)
        ]
    else:
        # Found by key: the shop only checks them (see omnicrm.core.store.planner).
        queries = [
            select(*_IDENTITY_COLUMNS).where(
                unindexed(customers.c.shop) == shop,
                pair_in(customers.c.connection, customers.c.id, chunk),
                present,
            )
            for chunk in pair_chunks(refs)
        ]
    for query in queries:
        for row in conn.execute(query):
            yield SourceIdentity.build(
                row.connection,
                row.id,
                settings=settings,
                junk=junk,
                email=row.email,
                phone=row.phone,
                member_code=row.member_code,
                family_name=row.family_name,
                given_name=row.given_name,
                family_name_kana=row.family_name_kana,
                given_name_kana=row.given_name_kana,
                birth_date=row.birth_date,
                gender=row.gender,
            )


def insert_keys(conn: Connection, identities: Iterable[SourceIdentity], *, shop: str) -> None:
    """Write the identities' keys to ``identity_keys`` under ``shop`` (the caller cleared
    the old ones)."""
    rows = [
        {"connection": s.connection, "record_id": s.record_id, "kind": str(kind), "value": value}
        for s in identities
        for kind, value in s.keys
    ]
    bulk_insert(conn, identity_keys, rows, {"shop": shop})


def bulk_insert(
    conn: Connection,
    table: Any,
    rows: list[dict[str, Any]],
    same: dict[str, Any],
    columns: Sequence[str] = (),
) -> None:
    """Insert many rows through the store's bulk writer (COPY on PostgreSQL): a full run
    writes a row per source customer and per key, millions of them. ``columns``: those
    the rows and ``same`` give (default: all; the others take their defaults)."""
    writers = table_writers.writers(conn.engine)
    writer = writers(table, columns)
    for chunk in chunks(rows, 20000):
        writer.insert(conn, writer.encode(chunk, same))
    # The same refresh looks these rows up next (keys by value, members by record).
    writers.restat_after(conn, table, len(rows))


def keys_of(conn: Connection, refs: Iterable[RecordRef], *, shop: str) -> dict[RecordRef, set[Key]]:
    """The stored keys of ``refs`` in ``shop`` (those with none are left out)."""
    found: dict[RecordRef, set[Key]] = {}
    for chunk in pair_chunks(refs):
        for row in conn.execute(
            select(
                identity_keys.c.connection,
                identity_keys.c.record_id,
                identity_keys.c.kind,
                identity_keys.c.value,
            ).where(
                unindexed(identity_keys.c.shop) == shop,
                pair_in(identity_keys.c.connection, identity_keys.c.record_id, chunk),
            )
        ):
            found.setdefault((row.connection, row.record_id), set()).add(
                (KeyKind(row.kind), row.value)
            )
    return found


def memberships(conn: Connection, refs: Iterable[RecordRef], *, shop: str) -> dict[RecordRef, int]:
    """The profile of each of ``refs`` that has one in ``shop``."""
    found: dict[RecordRef, int] = {}
    for chunk in pair_chunks(refs):
        for row in conn.execute(
            select(
                profile_members.c.connection,
                profile_members.c.record_id,
                profile_members.c.profile_id,
            ).where(
                profile_members.c.shop == shop,
                pair_in(profile_members.c.connection, profile_members.c.record_id, chunk),
            )
        ):
            found[(row.connection, row.record_id)] = row.profile_id
    return found


def stored_overrides(
    conn: Connection, *, shop: str
) -> tuple[list[tuple[RecordRef, RecordRef]], list[tuple[RecordRef, RecordRef]]]:
    """The operator's links and separations in ``shop`` (few: each is a decision someone
    made)."""
    links: list[tuple[RecordRef, RecordRef]] = []
    separations: list[tuple[RecordRef, RecordRef]] = []
    for row in conn.execute(
        select(identity_overrides)
        .where(identity_overrides.c.shop == shop)
        .order_by(identity_overrides.c.id)
    ):
        pair = ((row.a_connection, row.a_record), (row.b_connection, row.b_record))
        (links if row.kind == LINK else separations).append(pair)
    return links, separations


def pair_chunks(pairs: Iterable[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """``pairs`` sorted, in chunks that share their first value where they can."""
    return chunks(sorted(pairs))


def pair_in(first: Any, second: Any, pairs: Iterable[tuple[str, str]]) -> Any:
    """``(first, second) IN pairs`` as ``first = a AND second IN (...)`` per first value:
    the form both backends answer from the (connection, id) or (kind, value) index
    (SQLite scans the table for a row-value IN list)."""
    grouped: dict[str, list[str]] = {}
    for a, b in pairs:
        grouped.setdefault(str(a), []).append(b)
    terms = [and_(first == a, second.in_(bs)) for a, bs in sorted(grouped.items())]
    return terms[0] if len(terms) == 1 else or_(*terms)


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def delete_where(
    conn: Connection, table: Any, columns: tuple[Any, Any], refs: Iterable[RecordRef], *, shop: str
) -> None:
    """Delete the rows of ``table`` in ``shop`` whose ``columns`` hold one of ``refs``."""
    for chunk in pair_chunks(refs):
        conn.execute(delete(table).where(unindexed(table.c.shop) == shop, pair_in(*columns, chunk)))


def utc_now() -> dt.datetime:
    """The time now, in UTC."""
    return dt.datetime.now(dt.UTC)
