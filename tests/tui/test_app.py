"""The app shell: what it says when there is nothing to show, its keys and its palette."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.core.store import RunStatus, Store
from omnicrm.tui import app as app_module
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionScreen, ConnectionsScreen, MessageScreen
from omnicrm.tui.customers import CustomerLookupScreen
from omnicrm.tui.segments import SegmentsScreen
from tests.tui.helpers import RuntimeFactory, fixed_clock, synthetic, wait_until


def run(app: OmnicrmApp, body: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await body(pilot)

    asyncio.run(main())


def message(app: OmnicrmApp) -> str:
    return str(app.screen.query_one("#message", Static).render())


def test_no_connections_says_to_run_init(store: Store, make_runtime: RuntimeFactory) -> None:
    app = OmnicrmApp(make_runtime(store.url.render_as_string(hide_password=False)))

    async def body(pilot: Pilot[None]) -> None:
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)
        text = message(app)
        assert "No connections configured" in text and "omnicrm init" in text
        assert "omnicrm.toml" in text

    run(app, body)


def test_an_unreachable_store_says_to_check_the_url(make_runtime: RuntimeFactory) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql://nobody:secret@127.0.0.1:1/omnicrm"
    app = OmnicrmApp(make_runtime(url, synthetic()), clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(lambda: isinstance(app.screen, MessageScreen))
        text = message(app)
        assert "The store is unreachable" in text and "[store]" in text
        assert "127.0.0.1:1" in text and "secret" not in text
        assert "Traceback" not in text
        assert app.is_running

    run(app, body)


def test_the_message_goes_once_the_store_answers(
    tmp_path: Path, make_runtime: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "OPEN_RETRY", 0.05)
    # A file where the store's folder should be: the store cannot be created, until the
    # operator fixes it.
    blocker = tmp_path / "data"
    blocker.write_text("not a folder", encoding="utf-8")
    app = OmnicrmApp(
        make_runtime(f"sqlite:///{blocker / 'omnicrm.db'}", synthetic()), clock=fixed_clock
    )

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(lambda: isinstance(app.screen, MessageScreen))
        assert "The store is unreachable" in message(app)
        blocker.unlink()
        await wait_until(lambda: isinstance(app.screen, ConnectionsScreen))
        table = app.screen.query_one("#connections", DataTable)
        await wait_until(lambda: table.row_count == 1)

    run(app, body)


def test_keys_switch_screens_and_back(store: Store, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        assert isinstance(app.screen, ConnectionsScreen)
        await pilot.press("g")
        assert isinstance(app.screen, SegmentsScreen)
        await pilot.press("c")
        assert isinstance(app.screen, ConnectionsScreen)
        await pilot.press("l")
        assert isinstance(app.screen, CustomerLookupScreen)
        await pilot.press("c")  # typed into the search box
        assert isinstance(app.screen, CustomerLookupScreen)
        await pilot.press("f2")
        assert isinstance(app.screen, ConnectionsScreen)
        footer_keys = {
            key for key, b in app.active_bindings.items() if b.binding.show and b.enabled
        }
        assert {"c", "g", "l", "q", "s", "f", "p", "r"} <= footer_keys, footer_keys

    run(app, body)


def test_the_palette_offers_every_screen_and_action(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Connections", "Segments", "Customer lookup"} <= titles
        expected = {"Open shop", "Sync shop now", "Full resync shop", "Pause shop", "Resume shop"}
        assert expected <= titles
        await wait_until(lambda: app.screen.query_one("#connections", DataTable).row_count > 0)
        await pilot.press("ctrl+p")
        await pilot.press(*"Sync shop now")
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await wait_until(lambda: app.last_action is not None)
        assert app.last_action is not None
        await app.last_action.wait()
        (latest,) = store.runs("shop")
        assert (latest.trigger, latest.status) == ("tui", RunStatus.COMPLETE)
        await pilot.press("ctrl+p")
        await pilot.press(*"Open shop")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, ConnectionScreen))

    run(app, body)
