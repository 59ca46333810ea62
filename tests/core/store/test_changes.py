"""The change feed's writes: a row per change and connection, its record ids an array."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from omnicrm.core.store import Store, changes
from omnicrm.core.store.changes import queue_changes, queue_records
from omnicrm.core.store.schema import profile_changes


def _queued(store: Store) -> list[tuple[str, str, list[str]]]:
    q = profile_changes.c
    with store.engine.connect() as conn:
        found = conn.execute(select(q.shop, q.connection, q.record_ids).order_by(q.seq))
        return [(shop, connection, ids) for shop, connection, ids in found]


def test_a_change_is_one_row_of_its_records_sorted_once_each(store: Store) -> None:
    ids = ["c/10", 'c/山田 "q"', "c/2", "c/10"]
    with store.engine.begin() as conn:
        queue_changes(conn, "tea", "pos", ids)
        queue_changes(conn, "tea", "pos", [])  # nothing changed: no row
    assert _queued(store) == [("tea", "pos", ["c/10", "c/2", 'c/山田 "q"'])]


def test_records_of_several_connections_are_a_row_per_connection(store: Store) -> None:
    with store.engine.begin() as conn:
        queue_records(conn, "tea", [("pos", "2"), ("ec", "9"), ("pos", "1"), ("ec", "9")])
        queue_records(conn, "tea", [])
    assert _queued(store) == [("tea", "ec", ["9"]), ("tea", "pos", ["1", "2"])]


def test_a_change_of_very_many_records_is_split_into_rows_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "_ROW_IDS", 2)
    with store.engine.begin() as conn:
        queue_changes(conn, "tea", "pos", ["5", "1", "4", "2", "3"])
        queue_records(conn, "tea", [("ec", "b"), ("ec", "a"), ("ec", "c")])
    assert _queued(store) == [
        ("tea", "pos", ["1", "2"]),
        ("tea", "pos", ["3", "4"]),
        ("tea", "pos", ["5"]),
        ("tea", "ec", ["a", "b"]),
        ("tea", "ec", ["c"]),
    ]
