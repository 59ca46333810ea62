"""A shop term beside a key lookup never steers SQLite to the shop-led index."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

import omnicrm.crm.schema  # noqa: F401  (the CRM's tables on the store's metadata)
from omnicrm.core.store import Store
from omnicrm.core.store.planner import unindexed
from omnicrm.crm.schema import identity_keys


def _plan(store: Store, query: object) -> str:
    compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return " | ".join(str(row[-1]) for row in rows)


def _lookup(shop_term: object) -> object:
    return select(identity_keys.c.kind, identity_keys.c.value).where(
        shop_term,
        identity_keys.c.connection == "ec",
        identity_keys.c.record_id.in_(["1", "2", "3"]),
    )


def test_a_key_lookup_with_an_unindexed_shop_term_uses_the_primary_key(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'omnicrm.db'}")
    try:
        plan = _plan(store, _lookup(unindexed(identity_keys.c.shop) == "tea"))
        assert "ix_identity_keys_shop_kind_value" not in plan, plan
        assert "sqlite_autoindex_identity_keys" in plan, plan
        # The plain term is what led SQLite astray: the shop-led index, by shop alone.
        plain = _plan(store, _lookup(identity_keys.c.shop == "tea"))
        assert "ix_identity_keys_shop_kind_value (shop=?)" in plain, plain
    finally:
        store.close()


@pytest.mark.parametrize("column", [identity_keys.c.shop, identity_keys.c.kind])
def test_other_backends_get_the_plain_column(column: object) -> None:
    sql = str(unindexed(column) == "x").replace("\n", " ")  # type: ignore[arg-type]
    pg = str((unindexed(column) == "x").compile(dialect=postgresql.dialect()))  # type: ignore[arg-type]
    assert "+" not in pg and column.name in pg  # type: ignore[attr-defined]
    assert column.name in sql  # type: ignore[attr-defined]


def test_a_shop_term_beside_an_or_of_keys_keeps_both_key_indexes(tmp_path: Path) -> None:
    from sqlalchemy import and_, or_

    from omnicrm.crm.schema import identity_overrides as overrides

    naming = or_(
        and_(overrides.c.a_connection == "ec", overrides.c.a_record == "1"),
        and_(overrides.c.b_connection == "ec", overrides.c.b_record == "1"),
    )
    store = Store.open(f"sqlite:///{tmp_path / 'omnicrm.db'}")
    try:
        plan = _plan(
            store, select(overrides.c.id).where(unindexed(overrides.c.shop) == "tea", naming)
        )
        assert "MULTI-INDEX OR" in plan and "ix_identity_overrides_shop_id" not in plan, plan
        plain = _plan(store, select(overrides.c.id).where(overrides.c.shop == "tea", naming))
        assert "ix_identity_overrides_shop_id (shop=?)" in plain, plain
    finally:
        store.close()


def test_one_of_is_one_parameter_finding_what_an_in_list_finds(store: Store) -> None:
    """Thousands of values bind as one parameter on each backend, through the column's
    own type (times as the store writes them), and select what ``IN (...)`` selects."""
    import datetime as dt

    from omnicrm.core.channels import Stream
    from omnicrm.core.records import Customer
    from omnicrm.core.store.planner import one_of
    from omnicrm.core.store.schema import customers

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batch = [Customer(id=f"c{i:05d}", updated_at=t0 + dt.timedelta(seconds=i)) for i in range(3000)]
    store.write_batch("ec", Stream.CUSTOMERS, batch)
    ids = [f"c{i:05d}" for i in range(0, 3000, 3)] + ["missing"]
    times = [t0 + dt.timedelta(seconds=i) for i in range(1, 3000, 7)]
    with store.engine.connect() as conn:
        for column, values in ((customers.c.id, ids), (customers.c.updated_at, times)):
            query = select(customers.c.id).where(
                customers.c.connection == "ec", one_of(store.dialect, column, values)
            )
            assert len(query.compile(store.engine).params) == 2  # the connection, the values
            found = set(conn.execute(query).scalars())
            expected = set(
                conn.execute(
                    select(customers.c.id).where(customers.c.connection == "ec", column.in_(values))
                ).scalars()
            )
            assert found == expected and len(found) == len(values) - (column is customers.c.id)
        empty = select(customers.c.id).where(one_of(store.dialect, customers.c.id, []))
        assert conn.execute(empty).all() == []
        if store.dialect == "sqlite":
            query = select(customers.c.id).where(
                customers.c.connection == "ec", one_of("sqlite", customers.c.id, ids)
            )
            sql = str(query.compile(store.engine))
            plan = " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("ec", '["c00003"]'))
            )
            assert "(connection=? AND id=?)" in plan and "SCAN customers" not in plan, plan
