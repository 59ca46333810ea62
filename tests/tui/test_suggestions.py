"""The suggested pairs screen, on a store resolved by the real pipeline (SQLite and
PostgreSQL): one key links a pair, another separates it, and the decision holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolve_all, suggestions
from omnicrm.crm.schema import identity_overrides, profile_members
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionsScreen
from omnicrm.tui.suggestions import EMPTY_HINT, SuggestionsScreen
from tests.tui.helpers import RuntimeFactory, fixed_clock, synthetic
from tests.tui.test_app import run
from tests.tui.test_customers import ScreenHost, clock, plain, runtime_for, wait_until

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HANAKO = {"family_name": "山田", "given_name": "花子"}
ICHIRO = {"family_name": "鈴木", "given_name": "一郎"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


def seed(store: Store) -> None:
    """A day/month swap and a wareki slip between EC and register records."""
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                birth_date=dt.date(1985, 3, 4),
                updated_at=T0,
                **HANAKO,
            ),
            Customer(
                id="w",
                email="ichiro@example.jp",
                birth_date=dt.date(1985, 6, 1),
                updated_at=T0,
                **ICHIRO,
            ),
        ],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            Customer(
                id="P1",
                email="hanako@example.jp",
                phone="09011112222",
                birth_date=dt.date(1985, 4, 3),
                updated_at=T0,
                **HANAKO,
            ),
            Customer(
                id="PW",
                email="ichiro@example.jp",
                birth_date=dt.date(2048, 6, 1),
                updated_at=T0,
                **ICHIRO,
            ),
        ],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)


def profile(store: Store, connection: str, record_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(profile_members.c.profile_id).where(
                    profile_members.c.connection == connection,
                    profile_members.c.record_id == record_id,
                )
            ).scalar_one()
        )


def table_of(screen: SuggestionsScreen) -> DataTable[Any]:
    return screen.query_one("#suggestions", DataTable)


def text_of(screen: SuggestionsScreen, widget: str) -> str:
    return str(screen.query_one(widget, Static).content)


@pytest.mark.anyio
async def test_the_pairs_show_strongest_first_with_the_evidence(store: Store) -> None:
    seed(store)
    screen = SuggestionsScreen(runtime_for(store), clock=clock)
    async with ScreenHost(screen).run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: table_of(screen).row_count == 2, "the pairs")
        table = table_of(screen)
        first, second = (row.key.value for row in table.ordered_rows)
        assert plain(table.get_cell(first, "records")) == "ec:1\npos:P1"
        assert plain(table.get_cell(first, "names")) == (
            "山田 花子, 1985-03-04\n山田 花子, 1985-04-03"
        )
        assert plain(table.get_cell(first, "strength")) == "100"
        assert plain(table.get_cell(second, "conflict")) == "birth_date"
        evidence = text_of(screen, "#evidence")
        assert "refused for birth dates 1985-03-04 and 1985-04-03: day and month swapped" in (
            evidence
        )
        assert "rule email would join them" in evidence
        assert "email hanako@example.jp, phone +819011112222; names agree" in evidence
        await pilot.press("down")  # the evidence follows the cursor
        await wait_until(pilot, lambda: "wareki" in text_of(screen, "#evidence"), "the second")
        offered = {key for key, b in screen.active_bindings.items() if b.binding.show and b.enabled}
        assert {"y", "n"} <= offered, offered


@pytest.mark.anyio
async def test_y_links_and_n_separates_and_both_are_remembered(store: Store) -> None:
    seed(store)
    screen = SuggestionsScreen(runtime_for(store), clock=clock)
    async with ScreenHost(screen).run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: table_of(screen).row_count == 2, "the pairs")
        await pilot.press("y")  # the first pair: the same person
        await wait_until(pilot, lambda: table_of(screen).row_count == 1, "the link")
        assert profile(store, "ec", "1") == profile(store, "pos", "P1")
        await pilot.press("n")  # the wareki pair, now first: two people
        await wait_until(pilot, lambda: table_of(screen).row_count == 0, "the separation")
        assert profile(store, "ec", "w") != profile(store, "pos", "PW")
        assert screen.decisions == 2
        assert text_of(screen, "#evidence") == EMPTY_HINT
        # Nothing left to decide: the keys leave the footer.
        offered = {key for key, b in screen.active_bindings.items() if b.enabled}
        assert not {"y", "n"} & offered, offered
        await pilot.press("y")
        await pilot.pause(0.2)
        assert screen.decisions == 2
    with store.engine.connect() as conn:
        kinds = conn.execute(
            select(identity_overrides.c.kind).order_by(identity_overrides.c.id)
        ).scalars()
        assert list(kinds) == ["link", "separate"]
    # A rebuild keeps both decisions; nothing is suggested again.
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
        assert suggestions(conn, shop=DEFAULT_SHOP) == []
    assert profile(store, "ec", "1") == profile(store, "pos", "P1")
    assert profile(store, "ec", "w") != profile(store, "pos", "PW")


@pytest.mark.anyio
async def test_no_pairs_says_so(store: Store) -> None:
    screen = SuggestionsScreen(runtime_for(store), clock=clock)
    async with ScreenHost(screen).run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: screen.loads >= 1, "the first load")
        assert text_of(screen, "#evidence") == EMPTY_HINT
        assert not screen.check_action("decide", ("link",))


def test_d_and_f7_open_the_pairs_from_the_app(store: Store, make_runtime: RuntimeFactory) -> None:
    seed(store)
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await pilot.press("d")
        assert isinstance(app.screen, SuggestionsScreen)
        screen = app.screen
        await wait_until(pilot, lambda: table_of(screen).row_count == 2, "the pairs")
        await pilot.press("c")
        assert isinstance(app.screen, ConnectionsScreen)
        await pilot.press("f7")
        assert isinstance(app.screen, SuggestionsScreen)
        assert "Suggested pairs" in {c.title for c in app.get_system_commands(app.screen)}

    run(app, body)


def seed_blocked(store: Store) -> None:
    """佐藤美咲 at the register (kana, born 昭和60年6月1日) is one person with her EC
    account (the email); the app's record shares the EC mobile but reads 60年 as 平成:
    blocked by the register's birth date."""
    misaki = {"family_name": "佐藤", "given_name": "美咲"}
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="m1", email="misaki@example.jp", phone="080-2345-6789", updated_at=T0, **misaki
            )
        ],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            Customer(
                id="PM",
                email="misaki@example.jp",
                family_name_kana="サトウ",
                given_name_kana="ミサキ",
                birth_date=dt.date(1985, 6, 1),
                updated_at=T0,
            )
        ],
    )
    store.write_batch(
        "app",
        Stream.CUSTOMERS,
        [
            Customer(
                id="A7",
                phone="08023456789",
                birth_date=dt.date(2048, 6, 1),
                updated_at=T0,
                **misaki,
            )
        ],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)


@pytest.mark.anyio
async def test_s_splits_the_third_record_out_of_a_blocked_pair(store: Store) -> None:
    seed(store)
    seed_blocked(store)
    screen = SuggestionsScreen(runtime_for(store), clock=clock)
    async with ScreenHost(screen).run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: table_of(screen).row_count == 3, "the pairs")
        # The day/month swap first: nothing else blocks it, there is nothing to split.
        assert not screen.check_action("decide", ("split",))
        assert screen.check_action("decide", ("link",))
        await pilot.press("s")
        await pilot.pause(0.2)
        assert screen.decisions == 0
        await pilot.press("down", "down")
        await wait_until(pilot, lambda: "pos:PM" in text_of(screen, "#evidence"), "the third")
        evidence = text_of(screen, "#evidence")
        assert "blocked by a record already one person with one of them" in evidence
        assert "y joins pos:PM too; s: they are someone else (split)" in evidence
        assert screen.check_action("decide", ("split",))
        await pilot.press("s")
        await wait_until(pilot, lambda: table_of(screen).row_count == 2, "the split")
    assert profile(store, "app", "A7") == profile(store, "ec", "m1")
    assert profile(store, "pos", "PM") != profile(store, "ec", "m1")
    with store.engine.connect() as conn:
        kinds = conn.execute(
            select(identity_overrides.c.kind).order_by(identity_overrides.c.id)
        ).scalars()
        assert list(kinds) == ["link", "separate", "separate"]
