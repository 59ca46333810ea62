"""The segments screens on a store seeded through the real pipeline (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.app.config import Config, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.crm.schema import segments
from omnicrm.crm.segments import latest_counts, list_segments, record_counts
from omnicrm.tui.customers import CustomerLookupScreen, CustomerProfileScreen
from omnicrm.tui.segments import (
    EMPTY_HINT,
    SegmentScreen,
    SegmentsScreen,
    sparkline,
)
from tests.tui.test_customers import (
    NOW,
    ScreenHost,
    clock,
    hanako_id,
    plain,
    runtime_for,
    seed_shop,
    wait_until,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


def table_of(screen: SegmentsScreen) -> DataTable[Any]:
    return screen.query_one("#segments", DataTable)


def status_of(screen: SegmentsScreen | SegmentScreen, widget: str = "#status") -> str:
    return str(screen.query_one(widget, Static).content)


def test_sparkline_scales_between_lowest_and_highest() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([1, 8, 4]) == "▁█▄"


@pytest.mark.anyio
async def test_the_table_shows_every_segment_with_its_count(store: Store) -> None:
    seed_shop(store)
    with store.engine.connect() as conn:
        expected = {name: c.count for name, c in latest_counts(conn, shop=DEFAULT_SHOP).items()}
        titles = {s.name: s.title for s in list_segments(conn, shop=DEFAULT_SHOP)}
    screen = SegmentsScreen(runtime_for(store), clock=clock, poll_interval=0.1)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        table = table_of(screen)
        assert table.row_count == len(titles)
        for name, count in expected.items():
            assert plain(table.get_cell(name, "title")) == titles[name]
            assert plain(table.get_cell(name, "count")) == f"{count:,}"
            assert plain(table.get_cell(name, "change")) == "—"  # one count so far
        assert expected["channel:both"] == 1
        assert "20 segments, last counted 2026-11-20 12:00" in status_of(screen)
        # Nothing changes, so nothing reloads.
        await pilot.pause(0.4)
        assert screen.loads == 1


@pytest.mark.anyio
async def test_a_new_count_updates_its_row_in_place(store: Store) -> None:
    seed_shop(store)
    screen = SegmentsScreen(runtime_for(store), clock=clock, poll_interval=0.1)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        table = table_of(screen)
        rows = table.row_count
        index = table.get_row_index("channel:both")
        table.move_cursor(row=index)
        before_spark = plain(table.get_cell("channel:both", "history"))
        # Another process (the scheduler's refresh) records new counts.
        with store.engine.begin() as conn:
            record_counts(
                conn,
                {"channel:both": 4, "lifecycle:dormant": 0},
                NOW + dt.timedelta(hours=1),
                shop=DEFAULT_SHOP,
            )
        await wait_until(
            pilot, lambda: plain(table.get_cell("channel:both", "count")) == "4", "the new count"
        )
        assert plain(table.get_cell("channel:both", "change")) == "+3"
        assert plain(table.get_cell("lifecycle:dormant", "change")) == "-1"
        assert plain(table.get_cell("channel:both", "history")) != before_spark
        # The same row, updated where it stood: no rebuild, the cursor did not move.
        assert table.row_count == rows
        assert table.get_row_index("channel:both") == index
        assert table.cursor_row == index
        assert screen.loads == 2
        assert "last counted 2026-11-20 13:00" in status_of(screen)


@pytest.mark.anyio
async def test_opening_a_segment_shows_its_expression_and_members(store: Store) -> None:
    seed_shop(store)
    hanako = hanako_id(store)
    screen = SegmentsScreen(runtime_for(store), clock=clock, poll_interval=0.1)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        table = table_of(screen)
        table.move_cursor(row=table.get_row_index("channel:both"))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, SegmentScreen)
        members: DataTable[Any] = detail.query_one("#members", DataTable)
        await wait_until(pilot, lambda: members.row_count > 0, "the members")
        about = status_of(detail, "#about")
        assert "channel_mix = both" in about
        assert "Store and EC" in about
        assert "1 of 2 profiles" in about
        assert [k.value for k in members.rows] == [str(hanako)]
        assert plain(members.get_cell(str(hanako), "name")) == "山田 花子"
        # From a member, their profile.
        await pilot.press("enter")
        assert isinstance(app.screen, CustomerProfileScreen)
        assert app.screen.profile_id == hanako
        await pilot.press("escape", "escape")
        assert app.screen is screen


@pytest.mark.anyio
async def test_an_empty_segment_and_an_unknown_one(store: Store) -> None:
    seed_shop(store)
    app = ScreenHost(SegmentScreen(runtime_for(store), "lifecycle:loyal", clock=clock))
    async with app.run_test() as pilot:
        title = app.screen.query_one("#members-title", Static)
        await wait_until(pilot, lambda: "no members" in str(title.content), "the sample")
    app = ScreenHost(SegmentScreen(runtime_for(store), "lifecycle:loyl", clock=clock))
    async with app.run_test() as pilot:
        about = app.screen.query_one("#about", Static)
        await wait_until(pilot, lambda: "did you mean" in str(about.content), "the error")
        assert "lifecycle:loyal" in str(about.content)


@pytest.mark.anyio
async def test_a_store_without_segments_says_what_to_run(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(segments.delete())
        assert conn.execute(select(segments.c.name)).first() is None
    screen = SegmentsScreen(runtime_for(store), clock=clock, poll_interval=0.1)
    app = ScreenHost(screen)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        assert status_of(screen) == EMPTY_HINT
        assert table_of(screen).row_count == 0
        # The first refresh lands while the screen is open: the rows appear.
        seed_shop(store)
        await wait_until(pilot, lambda: table_of(screen).row_count == 20, "the segments")
        assert "omnicrm sync" not in status_of(screen)


def test_snapshot_segments(store: Store, snap_compare: Any) -> None:
    seed_shop(store)
    # A second day's counts, so changes and sparklines show.
    seed_more(store)
    screen = SegmentsScreen(runtime_for(store), clock=clock, poll_interval=0.1)

    async def loaded(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")

    assert snap_compare(ScreenHost(screen), terminal_size=(100, 30), run_before=loaded)


def test_snapshot_segment(store: Store, snap_compare: Any) -> None:
    seed_shop(store)
    seed_more(store)
    screen = SegmentScreen(runtime_for(store), "channel:both", clock=clock)

    async def loaded(pilot: Pilot[Any]) -> None:
        members: DataTable[Any] = screen.query_one("#members", DataTable)
        await wait_until(pilot, lambda: members.row_count > 0, "the members")

    assert snap_compare(ScreenHost(screen), terminal_size=(100, 30), run_before=loaded)


def seed_more(store: Store) -> None:
    """Earlier days' counts of a few segments, as history to draw."""
    with store.engine.begin() as conn:
        last = {name: c.count for name, c in latest_counts(conn, shop=DEFAULT_SHOP).items()}
        for days, both, dormant in ((3, 0, 3), (2, 2, 2), (1, 1, 2)):
            at = NOW - dt.timedelta(days=days)
            record_counts(
                conn, {"channel:both": both, "lifecycle:dormant": dormant}, at, shop=DEFAULT_SHOP
            )
        record_counts(
            conn, last, NOW, shop=DEFAULT_SHOP
        )  # the latest snapshot stays the latest counts


@pytest.mark.anyio
async def test_the_app_shell_mounts_both_screens(store: Store) -> None:
    """As `omnicrm tui` runs them: modes of OmnicrmApp, reading through its reader
    (on SQLite a read-only connection of its own)."""
    from omnicrm.tui.app import OmnicrmApp

    seed_shop(store)
    app = OmnicrmApp(runtime_for(store), clock=clock, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.reader is not None, "the store")
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, SegmentsScreen)
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        assert app.reader is not None and screen.engine() is app.reader.engine
        with store.engine.begin() as conn:
            record_counts(conn, {"channel:both": 7}, NOW + dt.timedelta(hours=1), shop=DEFAULT_SHOP)
        table = table_of(screen)
        await wait_until(
            pilot, lambda: plain(table.get_cell("channel:both", "count")) == "7", "the update"
        )
        await pilot.press("l")
        lookup = app.screen
        assert isinstance(lookup, CustomerLookupScreen)
        await pilot.press(*"さとう", "enter")
        await wait_until(pilot, lambda: lookup.searches >= 1, "the search")
        assert lookup.query_one("#results", DataTable).row_count == 1


@pytest.mark.anyio
async def test_an_unmigrated_store_says_to_run_init(tmp_path: Path) -> None:
    bare = Store.open(f"sqlite:///{tmp_path / 'bare.db'}", migrate=False)
    try:
        screen = SegmentsScreen(runtime_for(bare), clock=clock, poll_interval=0.1)
        async with ScreenHost(screen).run_test() as pilot:
            await wait_until(pilot, lambda: "omnicrm init" in status_of(screen), "the hint")
            assert "has no omnicrm tables yet" in status_of(screen)
    finally:
        bare.close()


@pytest.mark.anyio
async def test_an_unreachable_store_says_to_check_the_url() -> None:
    url = "postgresql://omnicrm:secret@127.0.0.1:1/nowhere"
    config = Config(path=None, store_url=url, scheduler=SchedulerSection())
    runtime = Runtime(Host(), config)  # the store opens (and fails) in the worker
    screen = CustomerLookupScreen(runtime, clock=clock)
    async with ScreenHost(screen).run_test() as pilot:
        status = screen.query_one("#status", Static)
        await wait_until(pilot, lambda: "Cannot read" in str(status.content), "the error")
        message = str(status.content)
        assert "Check [store] url in omnicrm.toml" in message
        assert "secret" not in message  # never show the password
