"""The change feed's writes: source customers queued for their shop's next refresh.

``profile_changes`` is appended to in the transaction of the change itself (a
transactional outbox); the CRM refresh drains it. A change's records go as one row per
connection (of at most ten thousand ids), their ids as a JSON array: a batch of a
thousand orders queues about as many customers, and a row for each (even inserted by one
statement) cost a twentieth of a first sync's writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
from sqlalchemy import Connection

from omnicrm.core.store.personal import chunks

_INSERT = {
    "sqlite": "INSERT INTO profile_changes (shop, connection, record_ids) VALUES (?, ?, ?)",
    "postgresql": "INSERT INTO profile_changes (shop, connection, record_ids)"
    " VALUES (%s, %s, CAST(%s AS jsonb))",
}


# Ids per row at most: erasing a whole connection queues all its customers, and one
# array of a million ids would be a value of tens of megabytes.
_ROW_IDS = 10_000


def queue_changes(conn: Connection, shop: str, connection: str, record_ids: Iterable[str]) -> None:
    """Queue ``connection``'s records ``record_ids`` (of ``shop``) for the shop's next
    refresh, in ``conn``'s transaction."""
    _insert(conn, list(_rows(shop, connection, set(record_ids))))


def queue_records(conn: Connection, shop: str, records: Iterable[tuple[str, str]]) -> None:
    """Queue ``records`` ((connection, record id) pairs of ``shop``): a row per connection."""
    by_connection: dict[str, set[str]] = {}
    for connection, record_id in records:
        by_connection.setdefault(connection, set()).add(record_id)
    _insert(conn, [row for c, ids in sorted(by_connection.items()) for row in _rows(shop, c, ids)])


def _rows(shop: str, connection: str, ids: set[str]) -> Iterator[tuple[str, str, str]]:
    """The rows queueing ``ids``, in sorted order."""
    for chunk in chunks(sorted(ids), _ROW_IDS):
        yield shop, connection, orjson.dumps(chunk).decode()


def _insert(conn: Connection, rows: list[tuple[str, str, str]]) -> None:
    if len(rows) == 1:
        conn.exec_driver_sql(_INSERT[conn.dialect.name], rows[0])  # no executemany for one
    elif rows:
        conn.exec_driver_sql(_INSERT[conn.dialect.name], rows)
