"""Every screen's keys: the footer shows them all, Esc does what it says, c/g/l go home.

The app runs whole (the shell, a synthetic connection, a store seeded through the real
pipeline) and the Pilot walks to each screen as an operator would; what is checked is
the footer as the terminal draws it, at 80x24 and 100x30.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input
from textual.widgets._toast import Toast

from omnicrm.core.store import Store
from omnicrm.engage.onsite.settings import OfferSettings
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConfirmScreen, ConnectionScreen, ConnectionsScreen
from omnicrm.tui.customers import CustomerLookupScreen, CustomerProfileScreen
from omnicrm.tui.offers import OfferScreen, OffersScreen
from omnicrm.tui.segments import SegmentScreen, SegmentsScreen
from tests.tui.helpers import RuntimeFactory, synthetic, wait_until
from tests.tui.test_customers import clock, seed_shop

SIZES = [(80, 24), (100, 30)]


def footer_line(app: App[Any]) -> str:
    """The footer's lines, as the terminal draws them."""
    footer = app.screen.query_one(Footer)
    strips = app.screen._compositor.render_strips()
    region = footer.region
    assert region.height >= 1 and region.width == app.size.width
    return "\n".join(strip.text for strip in strips[region.y : region.bottom])


def shown_bindings(app: App[Any]) -> dict[str, list[Binding]]:
    """What the footer offers on the screen in front: each action with a binding marked
    shown, with its keys that work where the focus is (c and F2 both show connections;
    in a text box only F2 does)."""
    actions: dict[str, list[Binding]] = {}
    for _, binding, _, _ in app.screen.active_bindings.values():
        if binding.show:
            actions.setdefault(binding.action, []).append(binding)
    return actions


def key_text(app: App[Any], binding: Binding) -> str:
    return f"{app.get_key_display(binding)} {binding.description}"


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.pause(0.1)


# -- walking to each screen ------------------------------------------------------------


async def to_connections(pilot: Pilot[Any]) -> None:
    await wait_until(
        lambda: (
            isinstance(pilot.app.screen, ConnectionsScreen)
            and pilot.app.screen.query_one(DataTable).row_count == 1
        )
    )


async def to_connection(pilot: Pilot[Any]) -> None:
    await to_connections(pilot)
    await pilot.press("enter")
    await wait_until(lambda: isinstance(pilot.app.screen, ConnectionScreen))


async def to_list(pilot: Pilot[Any], key: str, kind: type[Screen[Any]]) -> None:
    """From the connections, ``key`` to the list ``kind``, until it shows rows."""
    await to_connections(pilot)
    await pilot.press(key)
    await wait_until(
        lambda: (
            isinstance(pilot.app.screen, kind)
            and pilot.app.screen.query_one(DataTable).row_count > 0
        )
    )


async def to_segments(pilot: Pilot[Any]) -> None:
    await to_list(pilot, "g", SegmentsScreen)


async def to_segment(pilot: Pilot[Any]) -> None:
    await to_segments(pilot)
    await pilot.press("enter")
    await wait_until(
        lambda: isinstance(pilot.app.screen, SegmentScreen) and pilot.app.screen.detail is not None
    )


async def to_lookup(pilot: Pilot[Any]) -> None:
    await to_connections(pilot)
    await pilot.press("l")
    await wait_until(lambda: isinstance(pilot.app.screen, CustomerLookupScreen))
    await wait_until(lambda: isinstance(pilot.app.focused, Input))


async def to_results(pilot: Pilot[Any]) -> None:
    await to_lookup(pilot)
    await pilot.press(*"やまだ", "enter")
    await wait_until(lambda: isinstance(pilot.app.focused, DataTable))


async def open_profile(pilot: Pilot[Any]) -> None:
    """Enter on the row under the cursor, until its profile is shown."""
    await pilot.press("enter")
    await wait_until(
        lambda: (
            isinstance(pilot.app.screen, CustomerProfileScreen)
            and pilot.app.screen.view is not None
        )
    )


async def to_profile(pilot: Pilot[Any]) -> None:
    await to_results(pilot)
    await open_profile(pilot)


async def to_member(pilot: Pilot[Any]) -> None:
    await to_segments(pilot)
    # "Store and EC" (channel:both) has Hanako as its one member.
    table = pilot.app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index("channel:both"))
    await pilot.press("enter")
    await wait_until(
        lambda: isinstance(pilot.app.screen, SegmentScreen) and pilot.app.screen.detail is not None
    )
    await pilot.press("tab")
    await wait_until(lambda: isinstance(pilot.app.focused, DataTable))
    await open_profile(pilot)


async def to_offers(pilot: Pilot[Any]) -> None:
    await to_list(pilot, "w", OffersScreen)


async def to_offer(pilot: Pilot[Any]) -> None:
    await to_offers(pilot)
    await pilot.press("enter")
    await wait_until(
        lambda: isinstance(pilot.app.screen, OfferScreen) and pilot.app.screen.result is not None
    )


async def to_confirm(pilot: Pilot[Any]) -> None:
    await to_connections(pilot)
    await pilot.press("f")
    await wait_until(lambda: isinstance(pilot.app.screen, ConfirmScreen))


Walk = Callable[[Pilot[Any]], Awaitable[None]]

# Each screen, how to reach it, and the screen Esc ("Back") returns to from it.
SCREENS: dict[str, tuple[Walk, type[Screen[Any]] | None]] = {
    "connections": (to_connections, None),
    "connection": (to_connection, ConnectionsScreen),
    "segments": (to_segments, ConnectionsScreen),
    "segment": (to_segment, SegmentsScreen),
    "member": (to_member, SegmentScreen),
    "lookup": (to_lookup, ConnectionsScreen),
    "results": (to_results, ConnectionsScreen),
    "profile": (to_profile, CustomerLookupScreen),
    "offers": (to_offers, ConnectionsScreen),
    "offer": (to_offer, OffersScreen),
    "confirm": (to_confirm, ConnectionsScreen),
}


@pytest.fixture
def app(tmp_path: Path, make_runtime: RuntimeFactory) -> OmnicrmApp:
    url = f"sqlite:///{tmp_path / 'omnicrm.db'}"
    store = Store.open(url)
    seed_shop(store)
    store.close()
    offer = OfferSettings(kind="popup", text="10%OFF")
    return OmnicrmApp(make_runtime(url, synthetic("shop"), offers={"second": offer}), clock=clock)


def drive(app: OmnicrmApp, size: tuple[int, int], body: Walk, notifications: bool = False) -> None:
    async def main() -> None:
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await body(pilot)

    asyncio.run(main())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "100x30"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_footer_shows_every_key_of_the_screen_in_front(
    app: OmnicrmApp, size: tuple[int, int], screen: str
) -> None:
    walk, _ = SCREENS[screen]

    async def body(pilot: Pilot[Any]) -> None:
        await walk(pilot)
        await settle(pilot)
        actions = shown_bindings(pilot.app)
        # A dialog is answered first: its keys are its answers.
        modal = isinstance(pilot.app.screen, ModalScreen)
        assert modal or "quit" in actions, f"{screen}: no quit key"
        line = footer_line(pilot.app)
        missing = [
            [key_text(pilot.app, b) for b in keys]
            for keys in actions.values()
            if not any(key_text(pilot.app, b) in line for b in keys)
        ]
        assert not missing, f"{screen} at {size}: {missing} not in {line!r}"
        if "q" in {b.key for b in actions.get("quit", [])}:
            assert "q Quit" in line, "where q quits, the footer says q"

    drive(app, size, body)


@pytest.mark.parametrize("screen", list(SCREENS))
def test_escape_does_what_the_footer_says(app: OmnicrmApp, screen: str) -> None:
    walk, back_to = SCREENS[screen]

    async def body(pilot: Pilot[Any]) -> None:
        await walk(pilot)
        await settle(pilot)
        before = pilot.app.screen
        escape = pilot.app.screen.active_bindings.get("escape")
        shown = shown_bindings(pilot.app)
        # What the footer says Esc does: its own entry, or the entry of the action it
        # shares with another key (Esc answers No in a dialog that shows "n No").
        says = [b.description for b in shown[escape.binding.action]] if escape else []
        if escape and escape.binding.action in shown and escape.binding.show:
            says = [escape.binding.description]
        await pilot.press("escape")
        await settle(pilot)
        if back_to is None:
            assert not says, f"{screen}: Esc is offered but there is nowhere to go back to"
            assert pilot.app.screen is before
        else:
            assert says and says[0] in ("Back", "No"), f"{screen}: the footer says {says}"
            assert type(pilot.app.screen) is back_to, f"{screen}: Esc went to {pilot.app.screen}"

    drive(app, (80, 24), body)


GO = {"c": ConnectionsScreen, "g": SegmentsScreen, "l": CustomerLookupScreen}
# Where a text box has the focus, c g l type letters: F2 F3 F4 do the same there.
IN_TEXT = {"c": "f2", "g": "f3", "l": "f4"}


@pytest.mark.parametrize("go", list(GO))
@pytest.mark.parametrize("screen", [s for s in SCREENS if s != "confirm"])  # answered first
def test_c_g_l_open_the_list_they_name_from_every_screen(
    app: OmnicrmApp, screen: str, go: str
) -> None:
    walk, _ = SCREENS[screen]

    async def body(pilot: Pilot[Any]) -> None:
        await walk(pilot)
        await settle(pilot)
        key = IN_TEXT[go] if isinstance(pilot.app.focused, Input) else go
        await pilot.press(key)
        await settle(pilot)
        assert type(pilot.app.screen) is GO[go], f"{key} on {screen} shows {pilot.app.screen}"
        if GO[go] is CustomerLookupScreen:
            assert isinstance(pilot.app.focused, Input), "the lookup opens on its search box"

    drive(app, (80, 24), body)


def test_notifications_leave_the_footer_readable(app: OmnicrmApp) -> None:
    async def body(pilot: Pilot[Any]) -> None:
        await to_connections(pilot)
        await settle(pilot)
        pilot.app.notify("shop: run 12 complete, 1,234 read", title="a long enough message")
        await wait_until(lambda: bool(pilot.app.screen.query(Toast)))
        await settle(pilot)
        footer = pilot.app.screen.query_one(Footer).region
        # At 80 columns the connections' 13 keys take three lines: the toast clears all.
        assert footer.height == 3
        (toast,) = pilot.app.screen.query(Toast)
        assert not toast.region.overlaps(footer), (toast.region, footer)

    drive(app, (80, 24), body, notifications=True)


def test_the_docs_name_the_keys_the_app_binds() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "tui.md").read_text(encoding="utf-8")
    bound = {key: b.action for b in OmnicrmApp.BINDINGS for key in b.key.split(",")}
    lists = {
        "Connections": "show_connections",
        "Segments": "show_segments",
        "Customer lookup": "show_customers",
        "Suggested pairs": "show_suggestions",
        "On-site offers": "show_offers",
    }
    for title, action in lists.items():
        found = re.search(rf"\*\*{title}\*\* \(([^)]*)\)", text)
        assert found, f"docs/tui.md has no **{title}** screen"
        keys = re.findall(r"`([^`]+)`", found.group(1))
        assert keys, title
        for key in keys:
            assert bound.get(key.lower()) == action, f"{key} does not show {title}"
