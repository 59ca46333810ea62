"""Points in two shops that know the same people: every wallet, ledger entry, expiry,
reconciliation and import stays in its shop (issue 12), on both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from omnicrm.cli._common import Context
from omnicrm.cli.points import points
from omnicrm.core.store import Store
from omnicrm.crm.points import (
    PointsImportError,
    PointsSettings,
    UnknownProfileError,
    adjust,
    apply_order_points,
    balance,
    history,
    import_point_events,
    last_reconciliation,
    reconcile,
    redeem,
    refresh_balances,
    run_expiry,
    run_reconciliation,
)
from omnicrm.crm.schema import crm_state, profiles
from tests.crm.points.shop import T0, add_profile, customer, order, rows, stored_balance, write

DAY = dt.timedelta(days=1)
NOW = T0 + DAY
# Two client shops; each sells to Hanako, whose record is c1 on both platforms.
SHOPS = {"tea-ec": "tea", "cake-ec": "cake"}
HANAKO_TEA, HANAKO_CAKE = 1, 2


@pytest.fixture
def shops(store_url: str) -> Iterator[Store]:
    """Tea's Hanako (profile 1: tea-ec/c1, order o1 of 1,000 yen, her platform reports 7
    points) and cake's Hanako (profile 2: cake-ec/c1, order o1 of 3,000 yen, 30 reported)."""
    store = Store.open(store_url, shops=SHOPS)
    write(store, "tea-ec", customer("c1", points=7), order("o1", "c1", 1000))
    write(store, "cake-ec", customer("c1", points=30), order("o1", "c1", 3000))
    add_profile(store, HANAKO_TEA, ("tea-ec", "c1"), shop="tea")
    add_profile(store, HANAKO_CAKE, ("cake-ec", "c1"), shop="cake")
    yield store
    store.close()


def _apply(store: Store, shop: str, settings: PointsSettings | None = None) -> None:
    with store.engine.begin() as conn:
        apply_order_points(conn, settings or PointsSettings(), NOW, shop=shop)


def _entries(store: Store) -> list[tuple[str, str, str, int]]:
    return sorted((r["shop"], r["source"], r["event_id"], r["points"]) for r in rows(store))


def test_orders_earn_only_in_the_shop_refreshed(shops: Store) -> None:
    _apply(shops, "tea")
    assert _entries(shops) == [("tea", "tea-ec", "earn:o1", 10)]
    assert (stored_balance(shops, HANAKO_TEA), stored_balance(shops, HANAKO_CAKE)) == (10, 0)
    _apply(shops, "cake")
    _apply(shops, "tea")  # again: nothing new in either shop
    assert _entries(shops) == [("cake", "cake-ec", "earn:o1", 30), ("tea", "tea-ec", "earn:o1", 10)]
    with shops.engine.connect() as conn:
        assert balance(conn, HANAKO_TEA, shop="tea").by_connection == {"tea-ec": 10}
        assert balance(conn, HANAKO_CAKE, shop="cake").by_connection == {"cake-ec": 30}
        assert [e.event_id for e in history(conn, HANAKO_CAKE, shop="cake")] == ["earn:o1"]
    assert (stored_balance(shops, HANAKO_TEA), stored_balance(shops, HANAKO_CAKE)) == (10, 30)


def test_orders_of_a_connection_earn_in_its_own_shop_only(shops: Store) -> None:
    with shops.engine.begin() as conn:
        with pytest.raises(ValueError, match="'cake-ec' belongs to another shop, not 'tea'"):
            apply_order_points(conn, PointsSettings(), NOW, "cake-ec", ["c1"], shop="tea")
        apply_order_points(conn, PointsSettings(), NOW, "cake-ec", ["c1"], shop="cake")
    assert _entries(shops) == [("cake", "cake-ec", "earn:o1", 30)]
    assert (stored_balance(shops, HANAKO_TEA), stored_balance(shops, HANAKO_CAKE)) == (0, 30)


def test_a_profile_of_another_shop_is_unknown(shops: Store) -> None:
    _apply(shops, "tea")
    _apply(shops, "cake")
    with shops.engine.begin() as conn:
        for call in (
            lambda: balance(conn, HANAKO_CAKE, shop="tea"),
            lambda: history(conn, HANAKO_CAKE, shop="tea"),
            lambda: redeem(conn, HANAKO_CAKE, 5, shop="tea"),
            lambda: adjust(conn, HANAKO_CAKE, 5, "gift", shop="tea"),
        ):
            with pytest.raises(UnknownProfileError, match="no profile 2 in shop 'tea'"):
                call()
    assert _entries(shops) == [("cake", "cake-ec", "earn:o1", 30), ("tea", "tea-ec", "earn:o1", 10)]


def test_the_same_event_id_in_two_shops_is_two_entries(shops: Store) -> None:
    _apply(shops, "tea")
    _apply(shops, "cake")
    with shops.engine.begin() as conn:
        tea = adjust(conn, HANAKO_TEA, 500, "birthday", event_id="bday-2024", shop="tea")
        cake = adjust(conn, HANAKO_CAKE, 200, "birthday", event_id="bday-2024", shop="cake")
        # Each shop's event again is that shop's entry: no conflict with the other's.
        assert adjust(conn, HANAKO_TEA, 500, "birthday", event_id="bday-2024", shop="tea") == tea
        spent = redeem(conn, HANAKO_TEA, 100, event_id="till-1", shop="tea")
        assert redeem(conn, HANAKO_CAKE, 100, event_id="till-1", shop="cake").id != spent.id
        assert (tea.shop, cake.shop) == ("tea", "cake")
        assert balance(conn, HANAKO_TEA, shop="tea").total == 10 + 500 - 100
        assert balance(conn, HANAKO_CAKE, shop="cake").total == 30 + 200 - 100
    adjusted = [e for e in _entries(shops) if e[2] == "adjust:bday-2024"]
    assert adjusted == [
        ("cake", "operator", "adjust:bday-2024", 200),
        ("tea", "operator", "adjust:bday-2024", 500),
    ]


def test_refresh_balances_of_a_shop_leaves_the_other(shops: Store) -> None:
    _apply(shops, "tea")
    _apply(shops, "cake")
    with shops.engine.begin() as conn:
        # As if something had left both stale: only tea's are recomputed.
        conn.execute(update(profiles).values(points_balance=0))
        assert refresh_balances(conn, shop="tea") == 1
        assert refresh_balances(conn, [HANAKO_CAKE], shop="tea") == 0
    assert (stored_balance(shops, HANAKO_TEA), stored_balance(shops, HANAKO_CAKE)) == (10, 0)


def test_expiry_runs_per_shop_with_its_own_settings_and_mark(shops: Store) -> None:
    twelve, never = PointsSettings(expiry_months=12), PointsSettings(expiry_months=None)
    _apply(shops, "tea", twelve)
    _apply(shops, "cake", twelve)
    later = T0 + dt.timedelta(days=400)
    assert run_expiry(shops, never, later, shop="cake").points == 0
    done = run_expiry(shops, twelve, later, shop="tea")
    assert (done.entries, done.points) == (1, 10)
    assert [e for e in _entries(shops) if e[2].startswith("expire:")] == [
        ("tea", "tea-ec", "expire:earn:o1", -10)
    ]
    assert (stored_balance(shops, HANAKO_TEA), stored_balance(shops, HANAKO_CAKE)) == (0, 30)
    with shops.engine.connect() as conn:
        marks = conn.execute(select(crm_state.c.shop, crm_state.c.key)).all()
    assert sorted(marks) == [("tea", "points_expiry")]
    # Cake's first run with an expiry is not held back by tea's mark.
    assert run_expiry(shops, twelve, later, shop="cake").points == 30


def test_reconciliation_per_shop(shops: Store) -> None:
    _apply(shops, "tea")
    _apply(shops, "cake")
    with shops.engine.connect() as conn:
        found = reconcile(conn, PointsSettings(), shop="tea")
        assert [(d.connection, d.platform_balance, d.ledger_balance) for d in found] == [
            ("tea-ec", 7, 10)
        ]
        assert reconcile(conn, PointsSettings(), shop="cake") == []
    result = run_reconciliation(shops, PointsSettings(), NOW, shop="tea")
    assert (result.checked, len(result.differences)) == (1, 1)
    with shops.engine.connect() as conn:
        recorded = last_reconciliation(conn, shop="tea")
        assert recorded is not None and recorded["count"] == 1
        assert last_reconciliation(conn, shop="cake") is None
    again = run_reconciliation(shops, PointsSettings(), NOW, shop="cake")
    assert (again.checked, again.differences) == (1, [])
    with shops.engine.connect() as conn:
        tea = last_reconciliation(conn, shop="tea")
        assert tea is not None and tea["count"] == 1  # not overwritten by cake's run


HEADER = "connection,customer_id,event_id,kind,points,occurred_at\n"


def test_a_pos_file_imports_into_one_shop_only(shops: Store, tmp_path: Path) -> None:
    good = tmp_path / "tea.csv"
    good.write_text(HEADER + "tea-ec,c1,E-1,earn,5,2024-04-02 10:00\n", encoding="utf-8")
    with shops.engine.begin() as conn:
        done = import_point_events(conn, good, shop="tea")
    assert (done.inserted, stored_balance(shops, HANAKO_TEA)) == (1, 5)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        HEADER
        + "tea-ec,c1,E-2,earn,5,2024-04-02 10:00\n"
        + "cake-ec,c1,E-2,earn,5,2024-04-02 10:00\n"
        + "pos,m1,E-3,earn,5,2024-04-02 10:00\n",
        encoding="utf-8",
    )
    # The store knows tea-ec and cake-ec; the config puts pos in tea.
    refused = {
        "tea": [f"{mixed}:3:connection: 'cake-ec' is a connection of another shop, not of 'tea'"],
        "cake": [
            f"{mixed}:2:connection: 'tea-ec' is a connection of another shop, not of 'cake'",
            f"{mixed}:4:connection: 'pos' is a connection of another shop, not of 'cake'",
        ],
    }
    for shop, problems in refused.items():
        with pytest.raises(PointsImportError) as caught, shops.engine.begin() as conn:
            import_point_events(conn, mixed, shop=shop, configured={"pos": "tea"})
        assert caught.value.problems == problems
    assert [e for e in _entries(shops) if e[2].startswith("event:")] == [
        ("tea", "tea-ec", "event:E-1", 5)
    ]
    # A connection neither the store nor the config knows is taken as the shop's own.
    pos = tmp_path / "pos.csv"
    pos.write_text(HEADER + "till,m1,E-1,earn,5,2024-04-02 10:00\n", encoding="utf-8")
    for shop in ("tea", "cake"):
        with shops.engine.begin() as conn:
            assert import_point_events(conn, pos, shop=shop).inserted == 1
    assert [e for e in _entries(shops) if e[1] == "till"] == [
        ("cake", "till", "event:E-1", 5),
        ("tea", "till", "event:E-1", 5),
    ]


# -- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, shops: Store) -> Path:
    """Both shops in one config; cake earns double."""
    path = tmp_path / "omnicrm.toml"
    url = shops.url.render_as_string(hide_password=False)
    path.write_text(
        f'[store]\nurl = "{url}"\n\n'
        '[shops.tea]\nname = "Tea"\n\n[shops.cake]\nname = "Cake"\n'
        "[shops.cake.points]\nearn_points = 2\n",
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(points, list(args), obj=Context(config), catch_exceptions=False)


def test_cli_works_in_the_shop_named(config: Path, shops: Store) -> None:
    # Points that never expire: the balances shown today are those earned in 2024.
    _apply(shops, "tea", PointsSettings(expiry_months=None))
    _apply(shops, "cake", PointsSettings(earn_points=2, expiry_months=None))
    shown = run(config, "balance", str(HANAKO_CAKE), "--shop", "cake")
    assert shown.exit_code == 0, shown.output
    assert ["total", "60"] in [line.split() for line in shown.output.splitlines()]
    for args in (
        ["balance", str(HANAKO_CAKE)],
        ["history", str(HANAKO_TEA)],
        ["adjust", str(HANAKO_TEA), "5", "--note", "x"],
        ["redeem", str(HANAKO_TEA), "1"],
        ["expire"],
        ["reconcile"],
    ):
        missing = run(config, *args)
        assert missing.exit_code == 2, (args, missing.output)
        assert "cake" in missing.output and "tea" in missing.output
    other = run(config, "redeem", str(HANAKO_CAKE), "1", "--shop", "tea")
    assert other.exit_code == 2 and "no profile 2 in shop 'tea'" in other.output
    spent = run(config, "redeem", str(HANAKO_CAKE), "10", "--shop", "cake")
    assert spent.exit_code == 0 and "balance now 50" in spent.output, spent.output
    differs = run(config, "reconcile", "--shop", "tea")
    assert differs.exit_code == 1 and "1 of 1 balances differ" in differs.output
    assert "cake-ec" not in differs.output
    assert run(config, "expire", "--shop", "tea").exit_code == 0
    unknown = run(config, "balance", "1", "--shop", "coffee")
    assert unknown.exit_code == 2 and "coffee" in unknown.output
