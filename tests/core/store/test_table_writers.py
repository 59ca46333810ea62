"""Bulk writes: rows encoded as the driver takes them, refusals raised as Core raises them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import StatementError

from omnicrm.core.records import Order
from omnicrm.core.store import Store, rows, table_writers
from omnicrm.core.store.schema import order_lines, orders

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _order(n: int, placed_at: dt.datetime = NOW) -> Order:
    return Order.model_validate(
        {
            "id": f"gid://shopify/Order/{n}",
            "placed_at": NOW,
            "updated_at": NOW,
            "subtotal": Decimal("1980"),
            "total": Decimal("1980"),
            "lines": [{"product_name": "宇治抹茶", "quantity": 1, "unit_price": Decimal(1980)}] * n,
        }
    ).model_copy(update={"placed_at": placed_at})  # unvalidated: the writer must refuse it


def test_rows_are_encoded_as_they_are_taken() -> None:
    writer = table_writers.writers(create_engine("sqlite://"))(orders)
    same = {"shop": "tea", "connection": "shop", "synced_at": NOW}
    naive = NOW.replace(tzinfo=None)
    encoded = writer.encode_records(
        [_order(1), _order(2, naive)], rows.ORDER_FIELDS, rows.ORDER_LOOP, same
    )
    # The first row is ready before the second is looked at.
    first = next(encoded)
    assert first[writer.names.index("id")] == "gid://shopify/Order/1"
    with pytest.raises(StatementError) as info:
        next(encoded)
    assert isinstance(info.value.orig, ValueError)
    assert "INSERT INTO" in str(info.value)


def test_a_refused_value_ends_the_insert_cleanly(store_url: str) -> None:
    # The rows before it go in; the refusal is raised after the driver's statement ended
    # normally. On PostgreSQL an error raised through COPY would abort it with the error's
    # text (the refused value) sent to the server, and the transaction with it: here the
    # transaction is still usable, for the caller to roll back.
    store = Store.open(store_url)
    try:
        writer = table_writers.writers(store.engine)(orders)
        same = {"shop": "default", "connection": "shop", "synced_at": NOW}
        naive = NOW.replace(tzinfo=None)
        batch = [_order(1), _order(2, naive), _order(3)]
        with store.engine.connect() as conn, conn.begin() as transaction:
            with pytest.raises(StatementError) as info:
                writer.insert(
                    conn, writer.encode_records(batch, rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
                )
            assert isinstance(info.value.orig, ValueError)
            assert conn.execute(select(orders.c.id)).scalars().all() == ["gid://shopify/Order/1"]
            transaction.rollback()
        with store.engine.connect() as conn:
            assert conn.execute(select(orders.c.id)).scalars().all() == []
    finally:
        store.close()


def test_insert_counts_the_rows_it_wrote(store_url: str) -> None:
    # The planner statistics of the lines are taken by this count (PostgreSQL).
    store = Store.open(store_url)
    try:
        writers = table_writers.writers(store.engine)
        order_writer, line_writer = writers(orders), writers(order_lines)
        batch = [_order(1), _order(3), _order(2)]
        same = {"shop": "default", "connection": "shop", "synced_at": NOW}
        with store.engine.begin() as conn:
            written = order_writer.insert(
                conn, order_writer.encode_records(batch, rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
            )
            lines = line_writer.insert(
                conn,
                line_writer.encode_records(
                    batch, rows.LINE_FIELDS, rows.LINE_LOOP, {"connection": "shop"}
                ),
            )
            assert order_writer.insert(conn, []) == 0
        assert (written, lines) == (3, 6)
        with store.engine.connect() as conn:
            stored = conn.execute(select(order_lines.c.order_id, order_lines.c.line_no)).all()
        assert len(stored) == 6
    finally:
        store.close()


def test_rows_inserted_outside_a_transaction_are_committed_by_the_callers_commit(
    store_url: str,
) -> None:
    # As Core's statements do, the insert begins the connection's transaction: the
    # driver's own, unknown to the connection, would be left uncommitted by its commit().
    store = Store.open(store_url)
    try:
        writer = table_writers.writers(store.engine)(orders)
        same = {"shop": "default", "connection": "shop", "synced_at": NOW}
        with store.engine.connect() as conn:
            writer.insert(
                conn, writer.encode_records([_order(1)], rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
            )
            conn.commit()
        with store.engine.connect() as conn:
            assert conn.execute(select(orders.c.id)).scalars().all() == ["gid://shopify/Order/1"]
    finally:
        store.close()


def test_an_error_of_the_callers_rows_is_raised_as_core_raises_it(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        writer = table_writers.writers(store.engine)(orders)
        same = {"shop": "default", "connection": "shop", "synced_at": NOW}
        good = list(writer.encode_records([_order(1)], rows.ORDER_FIELDS, rows.ORDER_LOOP, same))

        def spoilt() -> Iterator[tuple[Any, ...]]:
            yield from good
            raise ValueError("a row the caller could not make")

        with store.engine.connect() as conn, conn.begin():
            with pytest.raises(StatementError) as info:
                writer.insert(conn, spoilt())
            assert isinstance(info.value.orig, ValueError)
            # Ended cleanly, as a refused value does: the transaction still answers.
            assert conn.execute(select(orders.c.id)).scalars().all() == ["gid://shopify/Order/1"]
    finally:
        store.close()
