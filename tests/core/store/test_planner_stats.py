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
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from omnicrm.core.channels import Stream
from omnicrm.core.records import Order, OrderLine
from omnicrm.core.store import Store, table_writers
from omnicrm.core.store.schema import profile_changes

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


def _counted(store: Store, table: str) -> float:
    with store.engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
            ).scalar_one()
        )


def _queue(conn: Connection, start: int, n: int) -> None:
    conn.execute(
        text(
            "INSERT INTO profile_changes (shop, connection, record_ids)"
            " SELECT 'default', 'shop', jsonb_build_array(CAST(g AS text))"
            " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS g"
        ),
        {"a": start, "b": start + n - 1},
    )


def test_a_write_that_doubles_a_table_takes_its_statistics_again(fresh_pg: Store) -> None:
    # Issue 14: a refresh fills the identity tables and reads them back in the same
    # transaction, before autovacuum could see them.
    writers = table_writers.writers(fresh_pg.engine)
    with fresh_pg.engine.begin() as conn:
        _queue(conn, 0, 500)
        writers.restat_after(conn, profile_changes, 500)  # too few to be worth it
    assert _counted(fresh_pg, "profile_changes") == -1  # never analyzed
    with fresh_pg.engine.begin() as conn:
        _queue(conn, 500, 3000)
        writers.restat_after(conn, profile_changes, 3000)
        # Taken inside the transaction, its own rows counted.
        assert conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'profile_changes'")
        ).scalar_one() == pytest.approx(3500, rel=0.05)
    with fresh_pg.engine.begin() as conn:
        _queue(conn, 3500, 2000)  # 3,500 -> 5,500: not doubled, proportions still hold
        writers.restat_after(conn, profile_changes, 2000)
    assert _counted(fresh_pg, "profile_changes") == pytest.approx(3500, rel=0.05)
    with fresh_pg.engine.begin() as conn:
        _queue(conn, 5500, 6000)  # more than the 3,500 counted
        writers.restat_after(conn, profile_changes, 6000)
    assert _counted(fresh_pg, "profile_changes") == pytest.approx(11500, rel=0.05)
