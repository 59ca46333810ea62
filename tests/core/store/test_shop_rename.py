"""Renaming a shop: a store used without ``[shops]`` (its data under ``default``) whose
config now names its shop. Every row of every table with a shop column moves, nothing
stays under the old id, nothing else changes; both backends."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer, Order, OrderLine, OrderStatus
from omnicrm.core.store import Store
from omnicrm.core.store.schema import metadata
from omnicrm.core.store.shop_rename import ShopRenameError, shop_tables
from omnicrm.crm.analytics.nps import import_nps_csv
from omnicrm.crm.interactions import add_interaction
from omnicrm.crm.points.ledger import adjust
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.crm.segments import latest_counts
from omnicrm.errors import ConfigError

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
SHOPS = {"pos": "tokyo-tea", "ec": "tokyo-tea"}


def _customer(cid: str, email: str) -> Customer:
    return Customer(id=cid, updated_at=NOW, family_name="山田", given_name="花子", email=email)


def _order(oid: str, cid: str, days_ago: int) -> Order:
    placed = NOW - dt.timedelta(days=days_ago)
    return Order(
        id=oid,
        customer_id=cid,
        channel="web",
        status=OrderStatus.PAID,
        placed_at=placed,
        updated_at=placed,
        subtotal=Decimal(3000),
        total=Decimal(3000),
        lines=[OrderLine(product_name="緑茶", quantity=1, unit_price=Decimal(3000))],
    )


def _fill(url: str, tmp_path: Path) -> None:
    """A store used without [shops]: two connections, a refresh, points, an interaction
    and an NPS answer, all under the implicit shop ``default``."""
    store = Store.open(url)
    try:
        for connection in ("pos", "ec"):
            store.write_batch(
                connection,
                Stream.CUSTOMERS,
                [_customer(f"{connection}-{i}", f"p{i}@example.jp") for i in range(4)],
            )
            store.write_batch(
                connection,
                Stream.ORDERS,
                [_order(f"{connection}-o{i}", f"{connection}-{i}", i * 40) for i in range(4)],
            )
        refresh(store, CrmSettings(), now=NOW)
        answers = tmp_path / "nps.csv"
        answers.write_text(
            "response_id,email,score,responded_at,comment\nR-1,p1@example.jp,9,2026-11-01,美味しい\n",
            encoding="utf-8",
        )
        with store.engine.begin() as conn:
            pid = profile_of(conn, "pos", "pos-0", shop=DEFAULT_SHOP)
            assert pid is not None
            adjust(conn, pid, 50, "お詫び", now=NOW, shop=DEFAULT_SHOP)
            add_interaction(conn, pid, "inquiry", NOW, "配送", shop=DEFAULT_SHOP, now=NOW)
            import_nps_csv(conn, answers, shop=DEFAULT_SHOP)
    finally:
        store.close()


def _rows(conn: Connection, shop: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of ``shop`` in each table with a shop column, without the shop."""
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    for table in metadata.sorted_tables:
        if "shop" in table.c:
            others = [c for c in table.c if c.name != "shop"]
            rows = conn.execute(select(*others).where(table.c.shop == shop)).all()
            found[table.name] = Counter(tuple(map(_plain, row)) for row in rows)
    return found


def _plain(value: Any) -> Any:
    """A JSON value as text, so rows can be counted."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def test_a_rename_moves_every_row_of_the_shop_and_nothing_else(
    store_url: str, tmp_path: Path
) -> None:
    _fill(store_url, tmp_path)
    with pytest.raises(ConfigError) as refused:
        Store.open(store_url, shops=SHOPS, default_shop="tokyo-tea")
    assert "run `omnicrm shops rename default tokyo-tea`" in refused.value.reason

    store = Store.open(store_url, shops=SHOPS, default_shop="tokyo-tea", check_shops=False)
    try:
        with store.engine.connect() as conn:
            before = _rows(conn, DEFAULT_SHOP)
            # What the test stands on: the fill reached every kind of per-shop data.
            held = {name for name, rows in before.items() if rows}
            assert {
                "customers",
                "orders",
                "profiles",
                "profile_values",
                "profile_members",
                "identity_keys",
                "identity_merges",
                "segments",
                "segment_counts",
                "crm_state",
                "points_entries",
                "interactions",
                "nps_responses",
                "connection_shops",
            } <= held, held
            # Every table with a shop column is found, the CRM's included.
            assert {t.name for t in shop_tables(conn)} == {
                t.name for t in metadata.sorted_tables if "shop" in t.c
            }
        counts_before = _latest(store, DEFAULT_SHOP)

        moved = store.rename_shop(DEFAULT_SHOP, "tokyo-tea")

        assert moved == {name: sum(rows.values()) for name, rows in before.items() if rows}
        with store.engine.connect() as conn:
            assert _rows(conn, "tokyo-tea") == before
            assert not any(_rows(conn, DEFAULT_SHOP).values())
        assert _latest(store, "tokyo-tea") == counts_before
        assert store.shops() == SHOPS
    finally:
        store.close()

    # The config naming the shop now opens the store, and the shop's CRM carries on.
    store = Store.open(store_url, shops=SHOPS, default_shop="tokyo-tea")
    try:
        result = refresh(store, CrmSettings(shop="tokyo-tea"), now=NOW)
        assert result.counts == counts_before
        assert result.profiles_touched == 0
    finally:
        store.close()


def _latest(store: Store, shop: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {name: c.count for name, c in latest_counts(conn, shop=shop).items()}


def test_a_rename_is_refused_when_the_old_shop_is_unknown_or_the_new_one_holds_data(
    store_url: str, tmp_path: Path
) -> None:
    _fill(store_url, tmp_path)
    store = Store.open(store_url, check_shops=False)
    try:
        store.write_batch("osaka", Stream.CUSTOMERS, [_customer("o-1", "o@example.jp")])
        with store.engine.begin() as conn:
            # Another shop's row: osaka's connection moved before it held records.
            conn.execute(
                metadata.tables["connection_shops"]
                .update()
                .where(metadata.tables["connection_shops"].c.connection == "osaka")
                .values(shop="osaka-sweets")
            )
            conn.execute(
                metadata.tables["customers"]
                .update()
                .where(metadata.tables["customers"].c.connection == "osaka")
                .values(shop="osaka-sweets")
            )
        with store.engine.connect() as conn:
            before = {shop: _rows(conn, shop) for shop in (DEFAULT_SHOP, "osaka-sweets")}
        with pytest.raises(ShopRenameError, match="no shop 'kyoto'"):
            store.rename_shop("kyoto", "tokyo-tea")
        with pytest.raises(ShopRenameError, match=r"'osaka-sweets' already holds data \("):
            store.rename_shop(DEFAULT_SHOP, "osaka-sweets")
        with store.engine.connect() as conn:
            after = {shop: _rows(conn, shop) for shop in (DEFAULT_SHOP, "osaka-sweets")}
        assert after == before  # nothing half-moved
    finally:
        store.close()


def test_a_config_that_moves_only_some_of_a_shops_connections_is_not_offered_a_rename(
    store_url: str, tmp_path: Path
) -> None:
    _fill(store_url, tmp_path)
    with pytest.raises(ConfigError) as refused:
        Store.open(store_url, shops={"pos": "tokyo-tea", "ec": DEFAULT_SHOP})
    assert "rename" not in refused.value.reason
    assert "cannot move to shop 'tokyo-tea'" in refused.value.reason


def test_a_config_that_still_names_the_shop_its_connections_leave_is_not_offered_a_rename(
    store_url: str, tmp_path: Path
) -> None:
    _fill(store_url, tmp_path)
    with pytest.raises(ConfigError) as refused:
        Store.open(store_url, shops=SHOPS, shop_ids=[DEFAULT_SHOP, "tokyo-tea"])
    assert "rename" not in refused.value.reason
