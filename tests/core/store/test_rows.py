"""Record rows for bulk writes: every column of a table, and nothing else, from one place."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine

from omnicrm.core.records import Order
from omnicrm.core.store import rows, table_writers
from omnicrm.core.store.schema import order_lines, orders

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ORDER = Order.model_validate(
    {
        "id": "gid://shopify/Order/1",
        "name": "#1001",
        "customer_id": "gid://shopify/Customer/7",
        "status": "paid",
        "placed_at": NOW,
        "updated_at": NOW,
        "subtotal": Decimal("1980"),
        "total": Decimal("2138"),
        "tax_total": Decimal("158"),
        "lines": [
            {"sku": "A", "product_name": "宇治抹茶", "quantity": 1, "unit_price": Decimal(1980)},
            {"sku": "B", "product_name": "湯呑み", "quantity": 2, "unit_price": Decimal("0")},
        ],
        "raw": {"note": "ギフト包装希望"},
    }
)


def test_value_columns_are_the_tables_columns() -> None:
    # A column missing here fails the encoder; one too many would be dropped silently.
    # The store gives every row of a batch its shop and sync time.
    assert sorted([*rows.ORDER_COLUMNS, "shop", "synced_at"]) == sorted(orders.columns.keys())
    assert sorted(rows.LINE_COLUMNS) == sorted(order_lines.columns.keys())


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://127.0.0.1:5432/test"])
def test_values_encode_as_the_row_dicts_do(url: str) -> None:
    writers = table_writers.writers(create_engine(url))
    order_writer, line_writer = writers(orders), writers(order_lines)
    from_dicts = order_writer.encode([rows.order_row("shop", ORDER, NOW)], {"shop": "tea"})
    from_values = order_writer.encode(
        [rows.order_values("shop", ORDER)], {"shop": "tea", "synced_at": NOW}, rows.ORDER_COLUMNS
    )
    assert _plain(from_values) == _plain(from_dicts)
    lines = line_writer.encode(rows.line_values("shop", ORDER), {}, rows.LINE_COLUMNS)
    assert lines == line_writer.encode(rows.line_rows("shop", ORDER), {})
    assert [line[2] for line in lines] == [1, 2]


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://127.0.0.1:5432/test"])
def test_rows_read_from_records_encode_as_the_row_dicts_do(url: str) -> None:
    writers = table_writers.writers(create_engine(url))
    order_writer, line_writer = writers(orders), writers(order_lines)
    other = ORDER.model_copy(update={"id": "gid://shopify/Order/2", "lines": ORDER.lines[::-1]})
    records = [ORDER, other]
    from_dicts = order_writer.encode(
        [rows.order_row("shop", o, NOW) for o in records], {"shop": "tea"}
    )
    same = {"shop": "tea", "connection": "shop", "synced_at": NOW}
    from_records = list(
        order_writer.encode_records(records, rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
    )
    assert _plain(from_records) == _plain(from_dicts)
    lines = list(
        line_writer.encode_records(
            records, rows.LINE_FIELDS, rows.LINE_LOOP, {"connection": "shop"}
        )
    )
    assert lines == line_writer.encode([d for o in records for d in rows.line_rows("shop", o)], {})
    assert [(line[1][-1], line[2], line[3]) for line in lines] == [
        ("1", 1, "A"),
        ("1", 2, "B"),
        ("2", 1, "B"),
        ("2", 2, "A"),
    ]


def _plain(encoded: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # psycopg's JSON wrapper (PostgreSQL's JSON bind) compares by identity: unwrap it.
    return [tuple(getattr(value, "obj", value) for value in row) for row in encoded]


def test_a_column_without_a_value_is_refused() -> None:
    writer = table_writers.writers(create_engine("sqlite://"))(order_lines)
    with pytest.raises(Exception, match=r"order_lines\.discount: no value given"):
        writer.encode([rows.line_values("shop", ORDER)[0][:-1]], {}, rows.LINE_COLUMNS[:-1])
    fields = {k: v for k, v in rows.LINE_FIELDS.items() if k != "discount"}
    with pytest.raises(Exception, match=r"order_lines\.discount: no value given"):
        writer.encode_records([ORDER], fields, rows.LINE_LOOP, {"connection": "shop"})
