"""The store's column types and JSON text: the fast encodings write what the plain ones did."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql, sqlite

from omnicrm.core.store import table_writers
from omnicrm.core.store.schema import (
    Money,
    UtcDateTime,
    decimal_text,
    json_text,
    orders,
    record_json_column,
)

JST = dt.timezone(dt.timedelta(hours=9))
SQLITE = sqlite.dialect()
POSTGRESQL = postgresql.dialect()


class Colour(StrEnum):
    RED = "赤"


class Rank(IntEnum):
    GOLD = 1


PAYLOADS: list[Any] = [
    {"id": "gid://shopify/Order/1", "note": "ギフト包装希望", "tags": ["VIP", "初回購入"]},
    {"z": 1, "a": 2, "m": {"y": None, "b": [True, False, 0.1, -0.0, 1e16]}},  # key order
    {"text": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f \u2028 😀'},
    {"amount": Decimal("1980.5000"), "big": Decimal("1E+3")},
    {"at": dt.datetime(2024, 5, 1, 9, 0, 0, 123, tzinfo=JST), "naive": dt.datetime(2024, 5, 1)},
    {"day": dt.date(2024, 5, 1), "time": dt.time(9, 30), "id": uuid.UUID(int=7)},
    {"enums": [Colour.RED, Rank.GOLD], "tuple": (1, "二")},
    {"huge": 2**70, "negative": -(2**64)},  # orjson refuses integers beyond 64 bits
    {1: "int key", None: "null key"},  # and keys that are not text
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_record_json_column_is_the_json_text(payload: Any) -> None:
    fast, plain = record_json_column(payload), json_text(payload)
    assert json.loads(fast) == json.loads(plain)
    # The same text too, but where a float's exponent is spelled otherwise (same value).
    if "e-" not in plain:
        assert fast == plain


def test_record_json_column_keeps_non_ascii_and_leaves_out_spaces() -> None:
    text = record_json_column({"名前": "山田 太郎", "n": [1, 2]})
    assert text == '{"名前":"山田 太郎","n":[1,2]}'


def test_the_fast_path_writes_records_json_with_record_json_column() -> None:
    from omnicrm.core.store import Store

    store = Store.open("sqlite://")
    try:
        writer = table_writers.writers(store.engine)(orders)
        raw = writer._process[writer.names.index("raw")]
        assert raw is not None
        assert raw({"n": Decimal("1.50")}) == '{"n":"1.50"}'
        assert raw(None) is None
    finally:
        store.close()
    # An engine with a serializer of its own keeps it.
    engine = create_engine("sqlite://", json_serializer=lambda value: "custom")
    writer = table_writers.writers(engine)(orders)
    assert writer._process[writer.names.index("raw")]({"a": 1}) == "custom"  # type: ignore[misc]


def _old_utc(value: dt.datetime, dialect_name: str) -> Any:
    """What UtcDateTime bound before its bind processor was made cheaper."""
    value = value.astimezone(dt.UTC)
    if dialect_name == "sqlite":
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


DATETIMES = [
    dt.datetime(2024, 1, 1, 9, 0, tzinfo=JST),  # the previous day in UTC
    dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 10, 1, 59, 59, 999999, tzinfo=ZoneInfo("America/New_York")),
    dt.datetime(2024, 3, 10, 3, 0, tzinfo=ZoneInfo("America/New_York")),  # after DST
    dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    dt.datetime(2024, 2, 29, 23, 45, tzinfo=dt.timezone(dt.timedelta(hours=-9, minutes=-30))),
    dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 1, 9, 0, tzinfo=ZoneInfo("UTC")),  # UTC, but not datetime.UTC
    dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(0), "Z")),
]


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("value", DATETIMES, ids=str)
def test_utc_datetime_binds_as_before(dialect: Any, value: dt.datetime) -> None:
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    bound = [process(value), UtcDateTime().process_bind_param(value, dialect)]
    if dialect is SQLITE:
        assert bound == [_old_utc(value, "sqlite")] * 2
        assert len(bound[0]) == 26
    else:  # the same instant (what timestamptz keeps), given with its offset
        want = _old_utc(value, "postgresql").timestamp()
        assert [b.timestamp() for b in bound] == [want] * 2
        assert all(b.utcoffset() is not None for b in bound)


def test_utc_datetimes_bind_as_before_across_the_calendar() -> None:
    """UTC datetimes (what records hold) take a path of their own on SQLite."""
    process = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    rng = random.Random(9)
    span = (dt.datetime.max - dt.datetime.min).total_seconds()
    for _ in range(2000):
        at = dt.datetime.min + dt.timedelta(
            seconds=rng.uniform(0, span), microseconds=rng.randrange(1_000_000)
        )
        value = at.replace(tzinfo=dt.UTC)
        assert process(value) == _old_utc(value, "sqlite")


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("value", [dt.datetime(2024, 1, 1), "2024-01-01", dt.date(2024, 1, 1)])
def test_utc_datetime_refuses_what_is_not_an_aware_datetime(dialect: Any, value: Any) -> None:
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    with pytest.raises(ValueError, match="expected a tz-aware datetime"):
        process(value)
    assert process(None) is None


DECIMALS: list[Any] = [
    Decimal("1980"),
    Decimal("1980.5000"),
    Decimal("-0"),
    Decimal("-12.30"),
    Decimal("1E+3"),
    Decimal("1.5E+5"),
    Decimal("0E-7"),
    Decimal("0.0000001"),
    Decimal("123456789012345.6789"),
    1000,
    2.5,
]


@pytest.mark.parametrize("value", DECIMALS, ids=repr)
def test_money_binds_plain_decimal_text_on_sqlite(value: Any) -> None:
    process = Money().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    assert process(value) == format(value, "f") == decimal_text(value)
    assert "E" not in process(value)
    assert process(None) is None
    # PostgreSQL takes the Decimal itself.
    assert Money().dialect_impl(POSTGRESQL).bind_processor(POSTGRESQL) is None
    assert Money().process_bind_param(value, POSTGRESQL) is value


def test_orders_read_back_as_written_on_each_backend(store: Any) -> None:
    """The cheaper encodings end to end: datetimes in any zone (a repeated hour's second
    pass too), decimals and a payload come back as the same values."""
    from omnicrm.core.channels import Stream
    from omnicrm.core.records import Order

    placed = [value for value in DATETIMES if value.year > 1]
    written = [
        Order.model_validate(
            {
                "id": f"gid://shopify/Order/{n}",
                "placed_at": at,
                "updated_at": at,
                "subtotal": Decimal("1E+3"),
                "total": Decimal("1080.5000"),
                "lines": [{"product_name": "宇治抹茶", "quantity": 1, "unit_price": Decimal("0")}],
                "raw": PAYLOADS[0] | {"n": n, "at": at.isoformat(), "small": 1.5e-7},
            }
        )
        for n, at in enumerate(placed)
    ]
    assert store.write_batch("shop", Stream.ORDERS, written) == len(written)
    read = {o.id: o for o in store.orders("shop")}
    for order in written:
        back = read[order.id]
        assert back.placed_at.timestamp() == order.placed_at.timestamp()
        assert (back.subtotal, back.total) == (Decimal("1000"), Decimal("1080.5"))
        assert back.raw == order.raw
