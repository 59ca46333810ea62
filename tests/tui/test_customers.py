"""The customer lookup and profile screens, on a store seeded through the real pipeline.

The seeding helpers here (`seed_shop`, `runtime_for`, `ScreenHost`, `wait_until`) are
shared with tests/tui/test_segments.py.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text
from sqlalchemy import insert
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from omnicrm.app.config import Config, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.host import Host
from omnicrm.core.records import (
    Address,
    Consent,
    ConsentState,
    Customer,
    Gender,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
)
from omnicrm.core.store import Store
from omnicrm.crm.points import PointsSettings
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import refresh
from omnicrm.crm.schema import interactions
from omnicrm.tui.customers import (
    NO_PROFILES_HINT,
    CustomerLookupScreen,
    CustomerProfileScreen,
    ProfileView,
    load_profile_view,
    render_profile_view,
)

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


def clock() -> dt.datetime:
    return NOW


def _order(
    oid: str,
    cid: str,
    days_ago: int,
    total: int,
    products: list[str],
    *,
    channel: str = "web",
    status: OrderStatus = OrderStatus.PAID,
) -> Order:
    placed = NOW - dt.timedelta(days=days_ago)
    share = Decimal(total) / len(products)
    return Order(
        id=oid,
        name=f"#{oid}",
        customer_id=cid,
        channel=channel,
        location="渋谷店" if channel == "pos" else None,
        status=status,
        placed_at=placed,
        updated_at=placed,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name=p, quantity=1, unit_price=share) for p in products],
    )


def seed_shop(store: Store, *, at: dt.datetime = NOW) -> None:
    """Hanako, seen in the store (half-width kana, domestic phone) and online (kanji,
    +81), so identity merges her; Ichiro online only; then the CRM refresh at ``at``."""
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            Customer(
                id="P1",
                family_name_kana="ﾔﾏﾀﾞ",
                given_name_kana="ﾊﾅｺ",
                phone="090-1234-5678",
                member_code="M-0001",
                birth_date=dt.date(1990, 4, 1),
                consents=[
                    Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN, updated_at=T0)
                ],
                updated_at=T0,
            )
        ],
    )
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="E1",
                family_name="山田",
                given_name="花子",
                family_name_kana="ヤマダ",
                given_name_kana="ハナコ",
                email=" Hanako@Example.JP ",
                phone="+81 90 1234 5678",
                gender=Gender.FEMALE,
                company="山田商店",
                address=Address(
                    postal_code="150-0041",
                    prefecture="東京都",
                    city="渋谷区",
                    line1="神南1-2-3",
                    line2="渋谷マンション101",
                ),
                tags=["vip"],
                consents=[
                    Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN, updated_at=T0),
                    Consent(medium=Medium.SMS, state=ConsentState.OPTED_OUT, updated_at=T0),
                ],
                # Later than the store's record: her online details win where both say.
                updated_at=T0 + dt.timedelta(days=1),
            ),
            Customer(
                id="E2",
                family_name="佐藤",
                given_name="一郎",
                family_name_kana="サトウ",
                given_name_kana="イチロウ",
                email="ichiro@example.jp",
                updated_at=T0,
            ),
        ],
    )
    store.write_batch(
        "pos", Stream.ORDERS, [_order("PO1", "P1", 40, 3000, ["抹茶ラテ"], channel="pos")]
    )
    store.write_batch(
        "ec",
        Stream.ORDERS,
        [
            _order("EO1", "E1", 10, 5000, ["緑茶 100g", "急須"]),
            _order("EO2", "E2", 200, 1200, ["ほうじ茶"]),
            _order("EO3", "E2", 5, 800, ["玄米茶"], status=OrderStatus.CANCELLED),
        ],
    )
    refresh(store, now=at)
    with store.engine.begin() as conn:
        hanako = profile_of(conn, "ec", "E1", shop=DEFAULT_SHOP)
        conn.execute(
            insert(interactions).values(
                shop=DEFAULT_SHOP,
                profile_id=hanako,
                source="support",
                external_id="T-1",
                kind="inquiry",
                medium="phone",
                occurred_at=NOW - dt.timedelta(days=3),
                subject="配送日の変更",
                created_at=NOW,
            )
        )


def hanako_id(store: Store) -> int:
    with store.engine.connect() as conn:
        found = profile_of(conn, "ec", "E1", shop=DEFAULT_SHOP)
    assert found is not None
    return found


def runtime_for(store: Store) -> Runtime:
    """A runtime over ``store`` with no plugins and the default (Tokyo) time zone."""
    url = store.url.render_as_string(hide_password=False)
    config = Config(path=None, store_url=url, scheduler=SchedulerSection())
    return Runtime(Host(), config, store)


class ScreenHost(App[None]):
    """The smallest app that shows one screen, as the app shell pushes it."""

    TITLE = "omnicrm"

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition`` holds (workers answer on their own time)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def results(app: App[Any]) -> DataTable[Any]:
    return app.screen.query_one("#results", DataTable)


@pytest.mark.anyio
async def test_lookup_by_kana_opens_the_profile_with_orders_points_and_merges(
    store: Store,
) -> None:
    seed_shop(store)
    hanako = hanako_id(store)
    screen = CustomerLookupScreen(runtime_for(store), clock=clock, debounce=0.05)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*"やまだ")
        await wait_until(pilot, lambda: screen.searches >= 1, "the search")
        table = results(app)
        assert table.row_count == 1
        assert plain(table.get_cell(str(hanako), "name")) == "山田 花子"
        await pilot.press("enter")  # from the input: to the results
        assert table.has_focus
        await pilot.press("enter")  # on the result: open the profile
        assert isinstance(app.screen, CustomerProfileScreen)
        profile_screen = app.screen
        await wait_until(pilot, lambda: profile_screen.view is not None, "the profile")
        view = profile_screen.view
        assert view is not None
        assert view.profile.id == hanako
        assert [o.id for o in view.profile.orders] == ["EO1", "PO1"]
        assert view.wallet.total == 80  # 1 point per 100 yen on 8,000 yen
        assert view.why.merges, "her two records were merged"
        # What the operator reads: the orders, the points, and the merge's rule and
        # evidence are all on it.
        text = rendered(view, 80)
        assert "#EO1" in text and "#PO1" in text
        assert "緑茶 100g, 急須" in text
        assert "pos 渋谷店" in text and "ec web" in text
        assert "points       80 (ec 50, pos 30)" in text
        assert view.why.merges[0].rule in text
        assert "phone +819012345678" in text
        assert "age 36" in text
        assert "email opted_in  sms opted_out  line unknown  postal opted_in" in text
        assert "配送日の変更" in text
        await pilot.press("escape")
        assert app.screen is screen


@pytest.mark.anyio
async def test_typing_searches_once_after_a_pause(store: Store) -> None:
    seed_shop(store)
    screen = CustomerLookupScreen(runtime_for(store), clock=clock, debounce=0.5)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*"ichiro@")
        await wait_until(pilot, lambda: screen.searches >= 1, "the search")
        await pilot.pause(0.3)
        assert screen.searches == 1
        assert results(app).row_count == 1
        # The domestic way of writing her phone finds the +81 profile.
        app.screen.query_one("#query", Input).value = "090-1234-5678"
        await wait_until(pilot, lambda: screen.searches >= 2, "the second search")
        assert [k.value for k in results(app).rows] == [str(hanako_id(store))]


@pytest.mark.anyio
async def test_nobody_matches(store: Store) -> None:
    seed_shop(store)
    screen = CustomerLookupScreen(runtime_for(store), clock=clock, debounce=0.05)
    app = ScreenHost(screen)
    async with app.run_test() as pilot:
        await pilot.press(*"nobody@example.jp", "enter")
        await wait_until(pilot, lambda: screen.searches >= 1, "the search")
        assert results(app).row_count == 0
        assert "Nobody matches" in str(app.screen.query_one("#status", Static).content)


@pytest.mark.anyio
async def test_an_empty_store_says_what_to_run(store: Store) -> None:
    screen = CustomerLookupScreen(runtime_for(store), clock=clock)
    app = ScreenHost(screen)
    async with app.run_test() as pilot:
        status = app.screen.query_one("#status", Static)
        await wait_until(pilot, lambda: "No profiles" in str(status.content), "the hint")
        assert str(status.content) == NO_PROFILES_HINT


@pytest.mark.anyio
async def test_an_unknown_profile_says_so(store: Store) -> None:
    seed_shop(store)
    screen = CustomerProfileScreen(runtime_for(store), 999, clock=clock)
    app = ScreenHost(screen)
    async with app.run_test() as pilot:
        body = app.screen.query_one("#body", Static)
        await wait_until(pilot, lambda: "no profile 999" in str(body.content), "the error")


def test_snapshot_lookup(store: Store, snap_compare: Any) -> None:
    seed_shop(store)
    screen = CustomerLookupScreen(runtime_for(store), clock=clock, debounce=0.05)

    async def search(pilot: Pilot[Any]) -> None:
        await pilot.press(*"やまだ", "enter")
        await wait_until(pilot, lambda: results(pilot.app).row_count == 1, "the results")

    assert snap_compare(ScreenHost(screen), terminal_size=(100, 30), run_before=search)


def test_snapshot_profile(store: Store, snap_compare: Any) -> None:
    seed_shop(store)
    screen = CustomerProfileScreen(runtime_for(store), hanako_id(store), clock=clock)

    async def loaded(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: screen.view is not None, "the profile")

    assert snap_compare(ScreenHost(screen), terminal_size=(100, 30), run_before=loaded)


def rendered(view: ProfileView, width: int) -> str:
    """The profile as text at ``width`` cells, checking no line is wider."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(render_profile_view(view, NOW.astimezone(JST).date(), JST))
    text = console.export_text()
    for line in text.splitlines():
        assert cell_len(line) <= width, line
    return text


@pytest.mark.parametrize("width", [60, 80, 100])
def test_japanese_text_fits_the_width(store: Store, width: int) -> None:
    """Wide characters take two cells: the profile wraps, never overflows."""
    seed_shop(store)
    with store.engine.connect() as conn:
        view = load_profile_view(conn, hanako_id(store), NOW, PointsSettings(), shop=DEFAULT_SHOP)
    text = rendered(view, width)
    assert "東京都 渋谷区 神南1-2-3" in text.replace("\n", " ") or width < 80


@pytest.mark.anyio
async def test_a_commit_while_open_brings_new_people_and_orders(store: Store) -> None:
    """The app shell posts StoreChanged when something is committed: the lookup asks
    again, the open profile reloads."""
    from omnicrm.tui.data import StoreChanged

    seed_shop(store)
    screen = CustomerLookupScreen(runtime_for(store), clock=clock, debounce=0.05)
    app = ScreenHost(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"佐藤", "enter")
        await wait_until(pilot, lambda: screen.searches >= 1, "the search")
        assert results(app).row_count == 1
        # A sync brings another 佐藤, and the CRM refresh makes her a profile.
        store.write_batch(
            "ec", Stream.CUSTOMERS, [Customer(id="E9", family_name="佐藤", updated_at=T0)]
        )
        refresh(store, now=NOW + dt.timedelta(minutes=5))
        screen.post_message(StoreChanged())
        await wait_until(pilot, lambda: results(app).row_count == 2, "the new person")
        # Her profile is open when her first order lands.
        satoko = profile_of_record(store, "ec", "E9")
        table = results(app)
        table.move_cursor(row=table.get_row_index(str(satoko)))
        await pilot.press("enter")
        profile = app.screen
        assert isinstance(profile, CustomerProfileScreen)
        await wait_until(pilot, lambda: profile.view is not None, "the profile")
        assert profile.view is not None and profile.view.profile.orders == ()
        store.write_batch("ec", Stream.ORDERS, [_order("EO9", "E9", 0, 900, ["煎茶"])])
        refresh(store, now=NOW + dt.timedelta(minutes=10))
        profile.post_message(StoreChanged())
        await wait_until(
            pilot,
            lambda: profile.view is not None and len(profile.view.profile.orders) == 1,
            "the new order",
        )


def profile_of_record(store: Store, connection: str, record_id: str) -> int:
    with store.engine.connect() as conn:
        found = profile_of(conn, connection, record_id, shop=DEFAULT_SHOP)
    assert found is not None
    return found
