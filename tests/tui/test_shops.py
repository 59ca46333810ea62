"""The UI with two client shops whose sources hold the same people (SQLite, PostgreSQL).

Shop A (tokyo-tea: an EC site and a POS) and shop B (osaka-sweets: an EC site with one
order a person, and an app whose sync failed) know the same six people, as in
tests/cli/test_shop_isolation.py. The connections screen names each connection's shop,
narrows to the picked shop and to the connections in trouble; the segments and the
lookup show the picked shop's data only, and follow when the operator picks the other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments import latest_counts
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionsScreen
from omnicrm.tui.customers import CustomerLookupScreen, CustomerProfileScreen
from omnicrm.tui.data import ShopRow, shop_rows
from omnicrm.tui.segments import SegmentsScreen
from omnicrm.tui.shops import ShopPicker, matches
from tests.support import twins_plugin
from tests.tui.helpers import NOW, RuntimeFactory, fixed_clock, seed_run, synthetic, wait_until

A, B = "tokyo-tea", "osaka-sweets"  # B comes first by id: the UI starts in it
A_NAME, B_NAME = "東京茶舗", "大阪スイーツ"

CONFIG = """\
[store]
url = "{url}"

[shops.tokyo-tea]
name = "東京茶舗"

[shops.osaka-sweets]
name = "大阪スイーツ"

[connections.tea-ec]
channel = "twins"
shop = "tokyo-tea"
[connections.tea-ec.settings]
mark = "AKA"

[connections.tea-pos]
channel = "twins"
shop = "tokyo-tea"
[connections.tea-pos.settings]
mark = "AKAPOS"
channel = "pos"

[connections.sweets-ec]
channel = "twins"
shop = "osaka-sweets"
[connections.sweets-ec.settings]
mark = "BLUE"
orders_each = 1

[connections.sweets-app]
channel = "twins"
shop = "osaka-sweets"
[connections.sweets-app.settings]
mark = "BLUEAPP"
"""


@pytest.fixture
def two_shops(tmp_path: Path, store_url: str) -> Iterator[Runtime]:
    """Both shops synced through the real engine and refreshed; sweets-app's last run
    failed."""
    config = tmp_path / "omnicrm.toml"
    config.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    host = Host.load(use_entry_points=False, extra={"twins": twins_plugin})
    runtime = Runtime.load(config, host=host)
    for name in ("tea-ec", "tea-pos", "sweets-ec"):
        runtime.engine().sync(runtime.config.connections[name])
    runtime.refresh_all()
    seed_run(
        runtime.store,
        "sweets-app",
        RunStatus.FAILED,
        NOW - dt.timedelta(minutes=10),
        1.0,
        errors=1,
        error="AuthError: HTTP 401: token rejected",
        error_kind="auth",
    )
    yield runtime
    runtime.close()


def run(app: OmnicrmApp, body: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await body(pilot)

    asyncio.run(main())


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def table(app: OmnicrmApp, selector: str) -> DataTable[Any]:
    return app.screen.query_one(selector, DataTable)


def keys(app: OmnicrmApp, selector: str) -> list[str]:
    return [str(row.value) for row in table(app, selector).rows]


def profile_ids(runtime: Runtime, shop: str) -> set[str]:
    with runtime.store.engine.connect() as conn:
        found = conn.execute(select(profiles.c.id).where(profiles.c.shop == shop)).scalars()
        return {str(profile_id) for profile_id in found}


def counts(runtime: Runtime, shop: str) -> dict[str, str]:
    with runtime.store.engine.connect() as conn:
        return {name: f"{c.count:,}" for name, c in latest_counts(conn, shop=shop).items()}


def shows(app: OmnicrmApp, expected: dict[str, str]) -> bool:
    """Whether the segments table shows these counts (a row for each segment)."""
    segments = table(app, "#segments")
    shown = {str(row.value): plain(segments.get_cell(row, "count")) for row in segments.rows}
    return all(shown.get(name) == count for name, count in expected.items())


async def pick(pilot: Pilot[None], words: str, key: str = "h") -> None:
    """Open the shop switcher with ``key``, type ``words``, Enter."""
    await pilot.press(key)
    await wait_until(lambda: isinstance(pilot.app.screen, ShopPicker))
    await pilot.press(*words)
    await pilot.press("enter")
    await wait_until(lambda: not isinstance(pilot.app.screen, ShopPicker))


def test_the_connections_name_their_shop_and_narrow_to_one_and_to_trouble(
    two_shops: Runtime,
) -> None:
    app = OmnicrmApp(two_shops, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(lambda: len(keys(app, "#connections")) == 4)
        screen = app.screen
        assert isinstance(screen, ConnectionsScreen)
        connections = table(app, "#connections")
        labels = [plain(column.label) for column in connections.columns.values()]
        assert labels[:3] == ["connection", "shop", "status"]
        assert labels[-1] == "points to"  # where it points: not to be read as the shop
        # Shop by shop (by id), each by name.
        assert keys(app, "#connections") == ["sweets-app", "sweets-ec", "tea-ec", "tea-pos"]
        shops = {key: plain(connections.get_cell(key, "shop")) for key in keys(app, "#connections")}
        assert shops == {
            "sweets-app": B_NAME,
            "sweets-ec": B_NAME,
            "tea-ec": A_NAME,
            "tea-pos": A_NAME,
        }
        assert str(screen.sub_title).startswith(f"all shops · picked shop {B_NAME} ({B})")

        await pilot.press("o")  # the picked shop's only
        assert keys(app, "#connections") == ["sweets-app", "sweets-ec"]
        assert str(screen.sub_title).startswith(f"shop {B_NAME} ({B}) · 2 of 4")
        await pilot.press("t")  # and in trouble
        assert keys(app, "#connections") == ["sweets-app"]
        assert plain(connections.get_cell("sweets-app", "status")) == "failed"
        assert str(screen.sub_title).startswith(f"shop {B_NAME} ({B}) · in trouble: 1 of 4")

        await pick(pilot, "tokyo")  # A has nothing in trouble
        assert app.shop == A and app.screen is screen
        assert keys(app, "#connections") == []
        note = screen.query_one("#filtered", Static)
        assert note.display and f"No connection of shop {A_NAME} ({A}) is in trouble" in str(
            note.content
        )
        await pilot.press("t")
        assert keys(app, "#connections") == ["tea-ec", "tea-pos"]
        assert not note.display
        await pilot.press("o", "t")  # every shop's in trouble: B's
        assert keys(app, "#connections") == ["sweets-app"]
        await pilot.press("t")
        assert len(keys(app, "#connections")) == 4

        # A commit updates the rows in place, filtered or not.
        seed_run(two_shops.store, "tea-ec", RunStatus.FAILED, NOW, 2.0, errors=1, error="x")
        await wait_until(lambda: plain(connections.get_cell("tea-ec", "status")) == "failed")
        await pilot.press("t")
        assert keys(app, "#connections") == ["sweets-app", "tea-ec"]

    run(app, body)


def test_switching_shop_reloads_the_segments_and_the_lookup_in_that_shop(
    two_shops: Runtime,
) -> None:
    expected = {shop: counts(two_shops, shop) for shop in (A, B)}
    assert expected[A] != expected[B]  # A's people bought twice, in the shop and online
    ids = {shop: profile_ids(two_shops, shop) for shop in (A, B)}
    assert len(ids[A]) == len(ids[B]) == twins_plugin.PEOPLE and not ids[A] & ids[B]
    app = OmnicrmApp(two_shops, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await pilot.press("g")
        await wait_until(lambda: isinstance(app.screen, SegmentsScreen))
        await wait_until(lambda: shows(app, expected[B]))
        assert f"shop {B_NAME} ({B})" in str(app.screen.sub_title)

        await pick(pilot, "tea")
        await wait_until(lambda: shows(app, expected[A]))
        assert f"shop {A_NAME} ({A})" in str(app.screen.sub_title)

        # The lookup opens in the picked shop: the same person, A's profile.
        await pilot.press("l")
        await wait_until(lambda: isinstance(app.screen, CustomerLookupScreen))
        await pilot.press(*twins_plugin.email(1), "enter")
        await wait_until(lambda: keys(app, "#results") != [])
        assert set(keys(app, "#results")) <= ids[A]
        # F5 picks from the search box too; the words are looked up again in B.
        await pick(pilot, "osaka", key="f5")
        await wait_until(lambda: keys(app, "#results") != [])
        assert set(keys(app, "#results")) <= ids[B]
        assert f"shop {B_NAME} ({B})" in str(app.screen.sub_title)

        # B's profile shows B's records; none of A's marks.
        table(app, "#results").focus()
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, CustomerProfileScreen))
        profile = app.screen
        assert isinstance(profile, CustomerProfileScreen)
        await wait_until(lambda: profile.view is not None)
        assert profile.view is not None
        assert [(m.connection, m.id) for m in profile.view.profile.members] == [
            ("sweets-ec", "BLUE-cust-1")
        ]
        assert f"shop {B_NAME} ({B})" in str(profile.sub_title)

        # Picking A closes B's profile; the lookup shows A's again, the segments too.
        await pick(pilot, "tokyo")
        assert isinstance(app.screen, CustomerLookupScreen)
        await wait_until(lambda: keys(app, "#results") != [])
        assert set(keys(app, "#results")) <= ids[A]
        await pilot.press("g")
        await wait_until(lambda: shows(app, expected[A]))

    run(app, body)


def test_the_shop_given_is_the_first_shown(two_shops: Runtime) -> None:
    app = OmnicrmApp(two_shops, clock=fixed_clock, shop=A)
    expected = counts(two_shops, A)

    async def body(pilot: Pilot[None]) -> None:
        await pilot.press("g")
        await wait_until(lambda: isinstance(app.screen, SegmentsScreen))
        await wait_until(lambda: shows(app, expected))

    run(app, body)


def test_the_switcher_lists_shops_in_trouble_first_and_narrows_as_typed(
    two_shops: Runtime,
) -> None:
    app = OmnicrmApp(two_shops, clock=fixed_clock, shop=A)

    def listed() -> list[str]:
        options = app.screen.query_one("#shops")
        return [str(options.get_option_at_index(i).id) for i in range(options.option_count)]

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(lambda: app.reader is not None)
        await pilot.press("h")
        await wait_until(lambda: isinstance(app.screen, ShopPicker))
        await wait_until(lambda: listed() == [B, A])  # B has a connection in trouble
        prompt = str(app.screen.query_one("#shops").get_option_at_index(0).prompt)
        assert "2 connections, 1 in trouble" in prompt
        await pilot.press(*"茶")  # by its display name
        assert listed() == [A]
        await pilot.press("escape")
        assert not isinstance(app.screen, ShopPicker) and app.shop == A
        # Typing starts from the first match, even where the shop picked now matches.
        await pilot.press("h")
        await wait_until(lambda: listed() == [B, A])
        await pilot.press("o", "enter")
        await wait_until(lambda: app.shop == B)

    run(app, body)


def test_one_shop_puts_nothing_in_the_way(store_url: str, make_runtime: RuntimeFactory) -> None:
    app = OmnicrmApp(make_runtime(store_url, synthetic()), clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(lambda: len(keys(app, "#connections")) == 1)
        connections = table(app, "#connections")
        assert "shop" not in [plain(c.label) for c in connections.columns.values()]
        assert app.check_action("pick_shop", ()) is False
        assert app.screen.check_action("only_shop", ()) is False
        assert "shop" not in str(app.screen.sub_title)
        await pilot.press("h")
        assert isinstance(app.screen, ConnectionsScreen)

    run(app, body)


def test_shop_rows_put_trouble_first_and_match_name_or_id(two_shops: Runtime) -> None:
    config = two_shops.config
    assert shop_rows(config) == [
        ShopRow(B, B_NAME, connections=2),
        ShopRow(A, A_NAME, connections=2),
    ]
    assert matches(ShopRow(A, A_NAME, 2), "TOKYO 茶") and not matches(
        ShopRow(A, A_NAME, 2), "osaka"
    )
