"""PostgreSQL: a fresh store gets planner statistics from its first big batch.

Without them the planner may look an order up by (connection, id) through the
(connection, updated_at) index, scanning every order of the connection for each order
line's foreign-key check: a first sync then slows down quadratically.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from omnicrm.core.channels import Stream
from omnicrm.core.records import Order, OrderLine
from omnicrm.core.store import Store

PG_URL = os.environ.get("OMNICRM_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")
T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@pytest.fixture
def fresh_pg() -> Iterator[Store]:
    """A store in a database of its own, never analyzed."""
    admin_url = make_url(PG_URL)
    name = f"omnicrm_test_stats_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}")
    store = Store.open(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _orders(start: int, n: int) -> list[Order]:
    return [
        Order(
            id=f"gid://shopify/Order/{i}",
            placed_at=T0,
            updated_at=T0 + dt.timedelta(seconds=i),
            subtotal=Decimal(100),
            total=Decimal(110),
            lines=[OrderLine(product_name="煎茶", quantity=1, unit_price=Decimal(100))],
        )
        for i in range(start, start + n)
    ]


def _has_stats(store: Store, table: str) -> bool:
    with store.engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM pg_stats WHERE tablename = :t)"), {"t": table}
            ).scalar()
        )


def _lookup_plan(store: Store, connection: str = "shop") -> str:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "EXPLAIN SELECT 1 FROM ONLY orders x"
                " WHERE connection = :c AND id = 'gid://shopify/Order/7' FOR KEY SHARE OF x"
            ),
            {"c": connection},
        ).all()
    return "\n".join(row[0] for row in rows)


def test_the_first_big_batch_analyzes_the_tables(fresh_pg: Store) -> None:
    # A handful of rows is not analyzed: their statistics would mislead the planner.
    fresh_pg.write_batch("shop", Stream.ORDERS, _orders(0, 10))
    assert not _has_stats(fresh_pg, "orders")

    fresh_pg.write_batch("shop", Stream.ORDERS, _orders(10, 1200))
    assert _has_stats(fresh_pg, "orders")
    assert _has_stats(fresh_pg, "order_lines")
    assert "pk_orders" in _lookup_plan(fresh_pg)
    assert fresh_pg.count(Stream.ORDERS) == 1210


def test_a_connection_the_statistics_predate_gets_them_from_its_first_big_batch(
    fresh_pg: Store,
) -> None:
    # Issue 12: a second shop's first sync, into tables analyzed when they held the first
    # shop's orders only. The statistics said the new connection had next to no orders,
    # so its lookups by (connection, id) scanned all of its orders by the
    # (connection, updated_at) index: the store wrote at a sixth of the floor's speed.
    fresh_pg.write_batch("shop", Stream.ORDERS, _orders(0, 1200))
    assert "pk_orders" in _lookup_plan(fresh_pg, "shop")
    fresh_pg.write_batch("other", Stream.ORDERS, _orders(0, 10))
    # A few rows: not worth an ANALYZE (statistics are still the first shop's).
    fresh_pg.write_batch("other", Stream.ORDERS, _orders(10, 1200))
    assert "pk_orders" in _lookup_plan(fresh_pg, "other")
    with fresh_pg.engine.connect() as conn:
        common = conn.execute(
            text(
                "SELECT most_common_vals::text FROM pg_stats"
                " WHERE tablename = 'orders' AND attname = 'connection'"
            )
        ).scalar()
    assert common is not None and "other" in common
    assert fresh_pg.count(Stream.ORDERS) == 2410
