"""The on-site offers screens on a real store (SQLite and PostgreSQL): storefront events
written as the endpoint writes them, orders synced, profiles built; the figures are the
offer report's and follow new events live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.app.config import Config, Connection, SchedulerSection, Shop
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.report import offer_report
from omnicrm.engage.onsite.settings import OfferSettings
from omnicrm.engage.onsite.visitors import Event
from omnicrm.render import difference_text, percent
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionsScreen
from omnicrm.tui.offers import (
    EMPTY_HINT,
    OfferScreen,
    OffersScreen,
    next_control,
    offer_state,
    rule_text,
)
from tests.support.storefront import SHOP, SiteSettings, make_runtime, order, popup, seed
from tests.tui.helpers import RuntimeFactory, synthetic
from tests.tui.test_app import run
from tests.tui.test_customers import ScreenHost, plain, wait_until

NOW = dt.datetime(2026, 12, 10, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo
DAY = dt.timedelta(days=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


def clock() -> dt.datetime:
    return NOW + 3 * DAY


def banner(**extra: Any) -> OfferSettings:
    return OfferSettings.model_validate({"kind": "banner", "text": "送料無料", **extra})


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    made = make_runtime(
        store_url,
        offers={"second": popup(page="/products/*", max_impressions=3), "shipping": banner()},
        domains=[],
    )
    seed(made.store, NOW - DAY)
    yield made
    made.close()


def see(runtime: Runtime, visitor: str, variant: str, *more: Event, offer: str = "second") -> None:
    """A visitor's impression of ``offer`` (and what else it reports), as the endpoint
    writes them."""
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, SHOP, visitor, now=NOW, new_visit=True)
        visitors.record(conn, SHOP, visitor, [Event("impression", offer, variant), *more], now=NOW)


def traffic(runtime: Runtime) -> None:
    """Four people see A (one clicks, 花子 buys 5,000 two days on), two see B."""
    see(runtime, "visitor-hanako-laptop", "A", Event("click", "second", "A"))
    for i in range(3):
        see(runtime, f"visitor-anonymous-a{i}", "A")
    for i in range(2):
        see(runtime, f"visitor-anonymous-b{i}", "B")
    with runtime.store.engine.begin() as conn:
        visitors.join(conn, SHOP, "visitor-hanako-laptop", "web", "C1")
    runtime.store.write_batch("web", Stream.ORDERS, [order("O-C1-1", "C1", NOW + 2 * DAY, 5000)])
    refresh(runtime.store, CrmSettings(shop=SHOP), now=NOW + 2 * DAY)


def cells(table: DataTable[Any], row: str) -> list[str]:
    return [plain(cell) for cell in table.get_row(row)]


def report(runtime: Runtime, name: str = "second", control: str | None = None) -> Any:
    with runtime.store.engine.connect() as conn:
        offer = runtime.config.all_shops()[SHOP].offers[name]
        return offer_report(conn, SHOP, name, offer, days=7, control=control)


async def open_first(pilot: Pilot[None], screen: OffersScreen) -> OfferScreen:
    """The offers loaded, the first ("second") opened (Enter) and loaded."""
    await wait_until(pilot, lambda: screen.loads >= 1, "the offers")
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, OfferScreen) and pilot.app.screen.loads >= 1,
        "the offer",
    )
    detail = pilot.app.screen
    assert isinstance(detail, OfferScreen)
    return detail


async def open_detail(pilot: Pilot[None]) -> OfferScreen:
    """From the app shell: the offers (w), then the first."""
    await pilot.press("w")
    screen = pilot.app.screen
    assert isinstance(screen, OffersScreen)
    return await open_first(pilot, screen)


def test_the_rule_and_the_state_in_words() -> None:
    assert rule_text(popup(page="/products/*", max_impressions=3)) == (
        "visit 2+, no purchase yet, /products/*, max 3 in all"
    )
    assert rule_text(banner(max_impressions=1, per="day")) == "max 1 a day"
    assert rule_text(banner()) == "every visit"
    tz = ZoneInfo("Asia/Tokyo")
    later = banner(start="2026-12-20T00:00:00+09:00", end="2027-01-01T00:00:00+09:00")
    assert offer_state(later, NOW, tz).plain == "from 12-20 00:00"
    assert offer_state(later, dt.datetime(2026, 12, 25, tzinfo=dt.UTC), tz).plain == "running"
    assert offer_state(later, dt.datetime(2027, 1, 1, tzinfo=dt.UTC), tz).plain == "ended"


@pytest.mark.anyio
async def test_the_list_shows_each_offer_and_follows_new_events(runtime: Runtime) -> None:
    traffic(runtime)
    screen = OffersScreen(runtime, clock=clock, poll_interval=0.1)
    async with ScreenHost(screen).run_test(size=(120, 30)) as pilot:
        table = screen.query_one("#offers", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2, "the offers")
        # 6 people, 花子 converted: 1/6; revenue as the report counts it.
        assert cells(table, "second") == [
            "second",
            "running",
            "6",
            "1",
            "16.7%",
            "5,000",
            "lifecycle_stage = 'prospect'",
            "visit 2+, no purchase yet, /products/*, max 3 in all",
        ]
        assert cells(table, "shipping")[:6] == ["shipping", "running", "0", "0", "-", "0"]
        assert "2 offer(s)" in str(screen.query_one("#status", Static).content)
        table.move_cursor(row=table.get_row_index("shipping"))
        loads = screen.loads

        # More arrive while the screen is open: a click on B, an impression of the banner.
        see(runtime, "visitor-anonymous-b2", "B", Event("click", "second", "B"))
        see(runtime, "visitor-anonymous-s0", "A", offer="shipping")
        await wait_until(pilot, lambda: cells(table, "second")[2] == "7", "the new impression")
        await wait_until(pilot, lambda: cells(table, "shipping")[2] == "1", "the banner's")
        assert screen.loads > loads
        assert cells(table, "second")[3:5] == ["2", percent(1 / 7)]
        assert table.cursor_row == table.get_row_index("shipping")  # updated in place


@pytest.mark.anyio
async def test_the_detail_shows_the_reports_figures_and_intervals_live(runtime: Runtime) -> None:
    traffic(runtime)
    app = OmnicrmApp(runtime, clock=clock, poll_interval=0.1)  # the shell tells the detail
    async with app.run_test(size=(100, 30)) as pilot:
        detail = await open_detail(pilot)
        variants = detail.query_one("#variants", DataTable)
        differences = detail.query_one("#differences", DataTable)
        assert cells(variants, "A") == ["A", "4", "4", "1", "25.0%", "1", "25.0%", "5,000"]
        assert cells(variants, "B") == ["B", "2", "2", "0", "0.0%", "0", "0.0%", "0"]
        expected = report(runtime).variants[1]
        assert cells(differences, "B") == [
            "B",
            difference_text(expected.ctr_difference),
            difference_text(expected.cvr_difference),
            difference_text(expected.revenue_difference, money=True),
        ]
        assert cells(differences, "B")[1].startswith("-25.0pt [")
        assert "A" not in differences.rows  # the control is what the others are compared with
        about = str(detail.query_one("#about", Static).content)
        assert "coupon WELCOME10" in about and "within 7 days" in about
        assert "A (weight 1), B (weight 1: coupon WELCOME15, text 今だけ15%OFF)" in about
        assert "vs control A" in str(detail.query_one("#compared", Static).content)

        # Forty more see A and nobody clicks, twenty see B and ten click: the interval
        # of B's CTR now leaves out zero.
        with runtime.store.engine.begin() as conn:
            for i in range(60):
                visitor, variant = f"visitor-anonymous-c{i:02d}", "B" if i < 20 else "A"
                visitors.touch(conn, SHOP, visitor, now=NOW, new_visit=True)
                seen = [Event("impression", "second", variant)]
                if i < 10:
                    seen.append(Event("click", "second", variant))
                visitors.record(conn, SHOP, visitor, seen, now=NOW)
        await wait_until(pilot, lambda: cells(variants, "B")[1] == "22", "the new people")
        expected = report(runtime).variants[1]
        assert expected.ctr_difference is not None and expected.ctr_difference.significant
        await wait_until(
            pilot,
            lambda: cells(differences, "B")[1] == difference_text(expected.ctr_difference),
            "the new difference",
        )
        assert cells(differences, "B")[1].endswith(" *")
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, OffersScreen)


def test_the_next_control_goes_round_the_variants_by_name() -> None:
    assert next_control(["B", "A", "C"], None) == "A"
    assert next_control(["B", "A", "C"], "A") == "B"
    assert next_control(["B", "A", "C"], "C") == "A"
    assert next_control(["B", "A"], "gone") == "A"  # a variant the config dropped
    assert next_control([], None) is None


@pytest.mark.anyio
async def test_v_picks_the_control_the_differences_are_against(runtime: Runtime) -> None:
    traffic(runtime)
    app = OmnicrmApp(runtime, clock=clock, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot)
        differences = detail.query_one("#differences", DataTable)
        compared = detail.query_one("#compared", Static)
        assert list(differences.rows) == ["B"]  # the default control: A, first by name
        loads = detail.loads
        await pilot.press("v")
        await wait_until(pilot, lambda: detail.loads > loads, "the report against B")
        assert detail.control == "B" and detail.result is not None
        assert detail.result.control == "B"
        assert "vs control B" in str(compared.content)
        assert list(differences.rows) == ["A"]
        # The same figures `omnicrm offers report --control B` prints.
        expected = report(runtime, control="B").variants[0]
        assert expected.variant == "A"
        assert cells(differences, "A") == [
            "A",
            difference_text(expected.ctr_difference),
            difference_text(expected.cvr_difference),
            difference_text(expected.revenue_difference, money=True),
        ]
        assert cells(differences, "A")[1].startswith("+25.0pt [")  # A's CTR over B's
        # Live updates keep the operator's control.
        see(runtime, "visitor-anonymous-b9", "B")
        await wait_until(
            pilot,
            lambda: cells(detail.query_one("#variants", DataTable), "B")[1] == "3",
            "B's new impression",
        )
        assert list(differences.rows) == ["A"] and "vs control B" in str(compared.content)
        loads = detail.loads
        await pilot.press("v")  # round to A again
        await wait_until(pilot, lambda: detail.loads > loads, "the report against A")
        assert list(differences.rows) == ["B"] and "vs control A" in str(compared.content)


@pytest.mark.anyio
async def test_an_offer_starting_turns_running_with_no_commit(store_url: str) -> None:
    start = NOW + dt.timedelta(seconds=1)
    made = make_runtime(store_url, offers={"soon": banner(start=start)}, domains=[])
    now = [NOW]
    try:
        screen = OffersScreen(made, clock=lambda: now[0])
        async with ScreenHost(screen).run_test(size=(100, 24)) as pilot:
            table = screen.query_one("#offers", DataTable)
            await wait_until(pilot, lambda: table.row_count == 1, "the offer")
            assert cells(table, "soon")[1] == "from 12-10 12:00"
            now[0] = start  # nothing committed: the screen's timer reloads at the start
            await wait_until(pilot, lambda: cells(table, "soon")[1] == "running", "the start")
    finally:
        made.close()


@pytest.mark.anyio
async def test_each_shop_shows_its_own_offers(store_url: str) -> None:
    shops = {
        SHOP: Shop(id=SHOP, name="東京茶舗", offers={"second": popup()}),
        "outlet": Shop(id="outlet", name="outlet", offers={"clearance": banner()}),
    }
    connections = {
        name: Connection(name, "site", SiteSettings(), shop=shop)
        for name, shop in (("web", SHOP), ("outlet-web", "outlet"))
    }
    config = Config(None, store_url, SchedulerSection(), connections, shops=shops)
    made = Runtime(Host.load(use_entry_points=False), config)
    try:
        see(made, "visitor-anonymous-01", "B")  # tokyo-tea's
        with made.store.engine.begin() as conn:  # the outlet's, by another visitor
            visitors.touch(conn, "outlet", "visitor-outlet-0001", now=NOW, new_visit=True)
            seen = [Event("impression", "clearance", "A")] * 2
            visitors.record(conn, "outlet", "visitor-outlet-0001", seen, now=NOW)
        app = OmnicrmApp(made, clock=clock, shop=SHOP)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("w")
            screen = app.screen
            assert isinstance(screen, OffersScreen)
            table = screen.query_one("#offers", DataTable)
            await wait_until(pilot, lambda: list(table.rows) == ["second"], "tokyo-tea's")
            assert cells(table, "second")[2] == "1"
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, OfferScreen), "the offer")
            app.switch_shop("outlet")  # the offer of the other shop closes
            await wait_until(pilot, lambda: app.screen is screen, "the list")
            await wait_until(pilot, lambda: list(table.rows) == ["clearance"], "the outlet's")
            assert cells(table, "clearance")[2] == "2"
            assert "shop outlet" in screen.sub_title
    finally:
        made.close()


@pytest.mark.anyio
async def test_a_shop_without_offers_says_how_to_add_one(store_url: str) -> None:
    made = make_runtime(store_url, offers={}, domains=[])
    try:
        screen = OffersScreen(made, clock=clock)
        async with ScreenHost(screen).run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
            assert str(screen.query_one("#status", Static).content) == EMPTY_HINT
            assert screen.query_one("#offers", DataTable).row_count == 0
    finally:
        made.close()


def test_w_and_f8_open_the_offers_from_the_app(
    store_url: str, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(store_url, synthetic(), offers={"second": popup()})
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, "default", "visitor-anonymous-01", now=NOW, new_visit=True)
        visitors.record(
            conn, "default", "visitor-anonymous-01", [Event("impression", "second", "B")], now=NOW
        )
    app = OmnicrmApp(runtime, clock=clock)

    async def body(pilot: Pilot[None]) -> None:
        await pilot.press("w")
        assert isinstance(app.screen, OffersScreen)
        screen = app.screen
        table = screen.query_one("#offers", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the offer")
        assert cells(table, "second")[2] == "1"
        await pilot.press("c")
        assert isinstance(app.screen, ConnectionsScreen)
        await pilot.press("f8")
        assert isinstance(app.screen, OffersScreen)
        assert "On-site offers" in {c.title for c in app.get_system_commands(app.screen)}

    run(app, body)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Runtime]:
    """The offers of `runtime` with `traffic`, on SQLite (the snapshots are drawn once)."""
    made = make_runtime(
        f"sqlite:///{tmp_path / 'omnicrm.db'}",
        offers={
            "second": popup(page="/products/*", max_impressions=3),
            "shipping": banner(start="2026-12-20T00:00:00+09:00"),
        },
        domains=[],
    )
    seed(made.store, NOW - DAY)
    traffic(made)
    yield made
    made.close()


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_snapshot_offers(seeded: Runtime, snap_compare: Any, size: tuple[int, int]) -> None:
    screen = OffersScreen(seeded, clock=clock)

    async def loaded(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: screen.loads >= 1, "the offers")
        await pilot.pause()

    assert snap_compare(ScreenHost(screen), terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_snapshot_offer(seeded: Runtime, snap_compare: Any, size: tuple[int, int]) -> None:
    screen = OffersScreen(seeded, clock=clock)

    async def opened(pilot: Pilot[None]) -> None:
        await open_first(pilot, screen)
        await pilot.pause()

    assert snap_compare(ScreenHost(screen), terminal_size=size, run_before=opened)
