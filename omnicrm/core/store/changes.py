"""The change feed's writes: source customers queued for their shop's next refresh.

``profile_changes`` is appended to in the transaction of the change itself (a
transactional outbox); the CRM refresh drains it. A change's records go as one row per
connection, their ids as a JSON array: a batch of a thousand orders queues about as many
customers, and a row for each (even inserted by one statement) cost a twentieth of a
first sync's writes.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from sqlalchemy import Connection

_INSERT = {
    "sqlite": "INSERT INTO profile_changes (shop, connection, record_ids) VALUES (?, ?, ?)",
    "postgresql": "INSERT INTO profile_changes (shop, connection, record_ids)"
    " VALUES (%s, %s, CAST(%s AS jsonb))",
}


def queue_changes(conn: Connection, shop: str, connection: str, record_ids: Iterable[str]) -> None:
    """Queue ``connection``'s records ``record_ids`` (of ``shop``) for the shop's next
    refresh, in ``conn``'s transaction."""
    ids = sorted(set(record_ids))
    if ids:
        conn.exec_driver_sql(_INSERT[conn.dialect.name], (shop, connection, _array(ids)))


def queue_records(conn: Connection, shop: str, records: Iterable[tuple[str, str]]) -> None:
    """Queue ``records`` ((connection, record id) pairs of ``shop``): a row per connection."""
    by_connection: dict[str, set[str]] = {}
    for connection, record_id in records:
        by_connection.setdefault(connection, set()).add(record_id)
    rows = [(shop, c, _array(sorted(ids))) for c, ids in sorted(by_connection.items())]
    if rows:
        conn.exec_driver_sql(_INSERT[conn.dialect.name], rows)


def _array(ids: list[str]) -> str:
    return orjson.dumps(ids).decode()
