"""Dialogs and explanations show their whole text, wrapped, at 80x24 and 100x30."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from omnicrm.core.store import Store
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConfirmScreen, ConnectionsScreen, MessageScreen
from tests.tui.helpers import RuntimeFactory, fixed_clock, synthetic, wait_until

SIZES = [(80, 24), (100, 30)]
LONG_NAME = "楽天市場店-アウトレット-季節のギフト-2026年冬-お歳暮特集"


def drawn(widget: Widget) -> str:
    """The text the terminal shows inside ``widget``, its lines joined by spaces."""
    screen = widget.screen
    strips = screen._compositor.render_strips()
    region = widget.content_region  # inside its border and padding
    assert region.right <= screen.size.width and region.bottom <= screen.size.height
    lines = [strips[y].crop(region.x, region.right).text for y in range(region.y, region.bottom)]
    return " ".join(lines)


def letters(text: str) -> str:
    # Wrapping may break a line inside a long word (a URL, a Japanese name): compare
    # what is shown without the whitespace, so only a cut or a hidden letter fails.
    return re.sub(r"\s+", "", text)


def source_text(widget: Static) -> str:
    content = widget.content
    return str(getattr(content, "plain", content))


def run(app: OmnicrmApp, size: tuple[int, int], body: Callable[[Pilot[Any]], Awaitable[None]]):
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await body(pilot)

    asyncio.run(main())


def assert_whole(widget: Static) -> None:
    expected = letters(source_text(widget))
    assert expected
    assert expected in letters(drawn(widget)), f"cut: {drawn(widget)!r} shows not {expected!r}"


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "100x30"])
def test_the_full_resync_question_is_shown_whole(
    tmp_path: Path, make_runtime: RuntimeFactory, size: tuple[int, int]
) -> None:
    url = f"sqlite:///{tmp_path / 'omnicrm.db'}"
    Store.open(url).close()
    app = OmnicrmApp(make_runtime(url, synthetic(LONG_NAME)), clock=fixed_clock)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_until(
            lambda: (
                isinstance(app.screen, ConnectionsScreen)
                and app.screen.query_one(DataTable).row_count == 1
            )
        )
        await pilot.press("f")
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        question = app.screen.query_one("#question", Label)
        assert LONG_NAME in source_text(question)
        assert "rate limit" in source_text(question)
        assert_whole(question)
        for button in ("#yes", "#no"):
            assert app.screen.query_one(button).region.bottom <= size[1]

    run(app, size, body)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "100x30"])
def test_the_no_connections_explanation_is_shown_whole(
    store: Store, make_runtime: RuntimeFactory, size: tuple[int, int]
) -> None:
    app = OmnicrmApp(make_runtime(store.url.render_as_string(hide_password=False)))

    async def body(pilot: Pilot[Any]) -> None:
        await wait_until(lambda: isinstance(app.screen, MessageScreen))
        await pilot.pause()
        assert_whole(app.screen.query_one("#message", Static))

    run(app, size, body)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "100x30"])
def test_the_unreachable_store_explanation_is_shown_whole(
    make_runtime: RuntimeFactory, size: tuple[int, int]
) -> None:
    # A long URL: nothing listens on port 1, so it is refused at once.
    url = "postgresql://omnicrm_operator:secret@127.0.0.1:1/omnicrm_agency_store_" + "x" * 40
    app = OmnicrmApp(make_runtime(url, synthetic()), clock=fixed_clock)

    async def body(pilot: Pilot[Any]) -> None:
        await wait_until(lambda: isinstance(app.screen, MessageScreen))
        await pilot.pause()
        message = app.screen.query_one("#message", Static)
        assert "secret" not in source_text(message)
        assert_whole(message)

    run(app, size, body)
