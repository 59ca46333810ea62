"""Every connection belongs to one shop for good, and migration 0004 takes a store of
the 0003 schema to shops without losing a row; both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

import omnicrm.core.store.store as store_module
import omnicrm.crm.schema as crm_schema
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.core.store.schema import connection_shops, customers, metadata, orders
from omnicrm.errors import ConfigError

MIGRATIONS = Path(store_module.__file__).with_name("migrations")
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def _customer(id_: str) -> Customer:
    return Customer(id=id_, updated_at=NOW, family_name="山田", given_name="花子")


@pytest.fixture
def opened(store_url: str) -> Iterator[list[Store]]:
    """Stores a test opens, closed after it."""
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def test_a_connection_belongs_to_its_configured_shop_and_is_recorded(
    store_url: str, opened: list[Store]
) -> None:
    store = Store.open(store_url, shops={"tea-pos": "tokyo-tea"}, default_shop="tokyo-tea")
    opened.append(store)
    assert store.shop_of("tea-pos") == "tokyo-tea"
    # A connection the config does not name belongs to the default shop.
    assert store.shop_of("old-pos") == "tokyo-tea"
    store.write_batch("tea-pos", Stream.CUSTOMERS, [_customer("c1")])
    assert store.shops() == {"tea-pos": "tokyo-tea", "old-pos": "tokyo-tea"}
    with store.engine.connect() as conn:
        assert conn.execute(select(customers.c.shop)).scalars().all() == ["tokyo-tea"]


def test_a_config_moving_a_connection_that_holds_records_to_another_shop_is_refused(
    store_url: str, opened: list[Store]
) -> None:
    first = Store.open(store_url, shops={"tea-pos": "tokyo-tea", "spare": "tokyo-tea"})
    opened.append(first)
    first.write_batch("tea-pos", Stream.CUSTOMERS, [_customer("c1")])
    first.shop_of("spare")  # recorded, but holds no records
    first.close()
    with pytest.raises(ConfigError) as caught:
        opened.append(Store.open(store_url, shops={"tea-pos": "osaka-sweets"}))
    assert caught.value.key == "connections.tea-pos.shop"
    assert "'tokyo-tea'" in caught.value.reason and "'osaka-sweets'" in caught.value.reason
    # Nothing moved: the refused config changed no row.
    check = Store.open(store_url, shops={"tea-pos": "tokyo-tea"})
    opened.append(check)
    assert check.shops()["tea-pos"] == "tokyo-tea"
    check.close()
    # A connection without records may change shop: no customer joins another base.
    moved = Store.open(store_url, shops={"spare": "osaka-sweets"})
    opened.append(moved)
    assert moved.shop_of("spare") == "osaka-sweets" and moved.shops()["tea-pos"] == "tokyo-tea"


def test_the_cli_refuses_a_moved_connection_naming_the_config(
    tmp_path: Path, synthetic_installed: Path
) -> None:
    from click.testing import CliRunner

    from omnicrm.cli import cli

    db = tmp_path / "s.db"
    store = Store.open(f"sqlite:///{db}", shops={"tea-pos": "tokyo-tea"})
    store.write_batch("tea-pos", Stream.CUSTOMERS, [_customer("c1")])
    store.close()
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[shops.tokyo-tea]\n[shops.osaka-sweets]\n'
        '[connections.tea-pos]\nchannel = "synthetic"\nshop = "osaka-sweets"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "shops"])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert str(path) in flat and "[connections.tea-pos.shop]" in flat
    assert "cannot move to shop 'osaka-sweets'" in flat


# -- migration 0004 --------------------------------------------------------------------


def _alembic(conn: sa.Connection, shops: dict[str, str] | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    config.attributes["shops"] = shops or {}
    config.attributes["default_shop"] = DEFAULT_SHOP
    return config


_FILLERS: dict[type[Any], Any] = {
    sa.Integer: 1,
    sa.Float: 0.0,
    sa.Numeric: Decimal("0"),
    sa.Boolean: False,
    sa.String: "x",
    sa.Text: "x",
    sa.Date: NOW.date(),
}


def _row(table: sa.Table, **given: Any) -> dict[str, Any]:
    """``given``, and a plain value for every other column the 0003 schema requires."""
    row = dict(given)
    for column in table.columns:
        if column.name in row or column.name == "shop" or column.nullable:
            continue
        if column.default is not None or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement is True:
            continue
        kind = type(column.type)
        if "DateTime" in kind.__name__:
            row[column.name] = NOW
        elif kind.__name__ in ("Json", "JSON"):
            row[column.name] = {}
        else:
            base = column.type.impl if isinstance(column.type, sa.TypeDecorator) else column.type
            row[column.name] = next(v for t, v in _FILLERS.items() if isinstance(base, t))
    return row


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    # Only the columns given and the required ones: the 0003 tables have no shop column.
    for row in rows:
        conn.execute(sa.insert(table).values(**_row(table, **row)))


C = crm_schema

# What the 0003 store holds: two connections, one the config puts in shop tokyo-tea, one
# it does not name (its rows go to `default`), and a person in each.
SEED: list[tuple[sa.Table, list[dict[str, Any]]]] = [
    (
        customers,
        [
            {"connection": "tea-pos", "id": "c1", "updated_at": NOW, "synced_at": NOW},
            {"connection": "old-ec", "id": "c1", "updated_at": NOW, "synced_at": NOW},
        ],
    ),
    (
        orders,
        [
            {
                "connection": "tea-pos",
                "id": "o1",
                "updated_at": NOW,
                "placed_at": NOW,
                "channel": "pos",
                "status": "paid",
                "currency": "JPY",
                "synced_at": NOW,
            },
            {
                "connection": "old-ec",
                "id": "o1",
                "updated_at": NOW,
                "placed_at": NOW,
                "channel": "online",
                "status": "paid",
                "currency": "JPY",
                "synced_at": NOW,
            },
        ],
    ),
    (C.profiles, [{"id": 1, "updated_at": NOW}, {"id": 2, "updated_at": NOW}]),
    (
        C.profile_members,
        [
            {"connection": "tea-pos", "record_id": "c1", "profile_id": 1, "joined_at": NOW},
            {"connection": "old-ec", "record_id": "c1", "profile_id": 2, "joined_at": NOW},
        ],
    ),
    (
        C.profile_values,
        [
            {"profile_id": 1, "attr": "email", "value": "hanako@example.jp"},
            {"profile_id": 2, "attr": "email", "value": "hanako@example.jp"},
        ],
    ),
    (
        C.identity_keys,
        [
            {
                "connection": "tea-pos",
                "record_id": "c1",
                "kind": "email",
                "value": "hanako@example.jp",
            },
            {
                "connection": "old-ec",
                "record_id": "c1",
                "kind": "email",
                "value": "hanako@example.jp",
            },
        ],
    ),
    (
        C.identity_merges,
        [
            {
                "profile_id": 1,
                "a_connection": "tea-pos",
                "a_record": "c1",
                "b_connection": "tea-pos",
                "b_record": "c2",
                "rule": "email",
            },
        ],
    ),
    (
        C.identity_overrides,
        [
            {
                "kind": "unlink",
                "a_connection": "old-ec",
                "a_record": "c1",
                "b_connection": "old-ec",
                "b_record": "c3",
            },
        ],
    ),
    (
        C.interactions,
        [
            {"profile_id": 1, "source": "desk", "external_id": "i1", "kind": "inquiry"},
            {"profile_id": 2, "source": "desk", "external_id": "i2", "kind": "inquiry"},
        ],
    ),
    (
        C.nps_responses,
        [
            {"profile_id": 1, "source": "survey", "external_id": "n1", "score": 9},
            {"profile_id": None, "source": "survey", "external_id": "n2", "score": 3},
        ],
    ),
    (
        C.points_entries,
        [
            {
                "source": "tea-pos",
                "event_id": "e1",
                "connection": "tea-pos",
                "customer_id": "c1",
                "kind": "earn",
                "points": 10,
            },
            {
                "source": "old-ec",
                "event_id": "e1",
                "connection": "old-ec",
                "customer_id": "c1",
                "kind": "earn",
                "points": 20,
            },
        ],
    ),
    (C.segments, [{"name": "vip", "expression": "amount_spent > 1", "builtin": False}]),
    (C.segment_counts, [{"segment": "vip", "counted_at": NOW, "count": 1}]),
    (C.crm_state, [{"key": "rfm", "value": {"cuts": [1, 2]}}]),
]
# The change queue as 0003 to 0019 have it, a row per record (0020 makes it arrays).
QUEUE_0003 = sa.Table(
    "profile_changes",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(100)),
    sa.Column("connection", sa.String(100), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),
)
SEED.insert(
    7,
    (
        QUEUE_0003,
        [
            {"connection": "tea-pos", "record_id": "c1"},
            {"connection": "old-ec", "record_id": "c1"},
        ],
    ),
)

# Each row's shop after the upgrade, in the order SEED lists them.
EXPECTED = {
    "customers": ["default", "tokyo-tea"],  # by connection: old-ec first
    "orders": ["default", "tokyo-tea"],  # by connection: old-ec first
    "profiles": ["tokyo-tea", "default"],
    "profile_members": ["default", "tokyo-tea"],  # by connection: old-ec first
    "profile_values": ["tokyo-tea", "default"],
    "identity_keys": ["default", "tokyo-tea"],  # by connection: old-ec first
    "identity_merges": ["tokyo-tea"],
    "profile_changes": ["tokyo-tea", "default"],
    "identity_overrides": ["default"],
    "interactions": ["tokyo-tea", "default"],
    "nps_responses": ["tokyo-tea", "default"],  # an answer of nobody known: default
    "points_entries": ["tokyo-tea", "default"],
    "segments": ["default"],
    "segment_counts": ["default"],
    "crm_state": ["default"],
}


def _order_by(table: sa.Table) -> list[Any]:
    return [c for c in table.primary_key.columns if c.name != "shop"] or list(table.columns)


# Columns the 0003 schema lacks: the shop (added by 0004) and later additions.
NOT_IN_0003 = {"shop", "withdrawn_at", "discount_codes", "abandoned_checkout_at", "line_user_id"}


# The 0003 rows are written through today's tables, whose keys include the shop.
@pytest.mark.filterwarnings("ignore:Column '.*shop' is marked as a member of the primary key")
def test_migration_0004_keeps_every_row_of_a_0003_store_in_its_connections_shop(
    store_url: str,
) -> None:
    store = Store(store_url, shops={"tea-pos": "tokyo-tea"}, default_shop=DEFAULT_SHOP)
    try:
        with store.engine.begin() as conn:
            # An empty store (the PostgreSQL fixture's is migrated): to the 0003 schema.
            if MigrationContext.configure(conn).get_current_revision() is not None:
                command.downgrade(_alembic(conn), "0003")
            else:
                command.upgrade(_alembic(conn), "0003")
            assert MigrationContext.configure(conn).get_current_revision() == "0003"
            assert "shop" not in {c["name"] for c in sa.inspect(conn).get_columns("profiles")}
            for table, rows in SEED:
                _insert(conn, table, rows)
            before = {
                table.name: conn.execute(
                    select(*[c for c in table.columns if c.name not in NOT_IN_0003]).order_by(
                        *_order_by(table)
                    )
                ).all()
                for table, _ in SEED
            }
        store.migrate()  # what Store.open does: to head, with the config's shops
        with store.engine.connect() as conn:
            for table, _ in SEED:
                if table is QUEUE_0003:
                    table = metadata.tables["profile_changes"]
                    # Each record queued as it was, in an array of its own (0020).
                    query = select(table.c.seq, table.c.connection, table.c.record_ids)
                    after = [(s, c, *ids) for s, c, ids in conn.execute(query.order_by("seq"))]
                else:
                    after = conn.execute(
                        select(*[c for c in table.columns if c.name not in NOT_IN_0003]).order_by(
                            *_order_by(table)
                        )
                    ).all()
                assert after == before[table.name], table.name  # every row, unchanged
                shops = conn.execute(select(table.c.shop).order_by(*_order_by(table))).scalars()
                assert list(shops) == EXPECTED[table.name], table.name
            assert dict(
                conn.execute(select(connection_shops.c.connection, connection_shops.c.shop)).all()
            ) == {
                "tea-pos": "tokyo-tea",
                "old-ec": "default",
            }
            assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 2
    finally:
        store.close()
    # The migrated store opens with the same config, and keeps its connections' shops.
    reopened = Store.open(store_url, shops={"tea-pos": "tokyo-tea"})
    try:
        assert (
            reopened.shop_of("tea-pos") == "tokyo-tea" and reopened.shop_of("old-ec") == "default"
        )
    finally:
        reopened.close()
