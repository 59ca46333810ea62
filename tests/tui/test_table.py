"""LiveTable: the same lines as Textual's DataTable through every kind of change, while
rendering again only the cells that changed."""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import DataTable

from omnicrm.tui.table import LiveTable

SIZE = (60, 12)  # fewer lines than rows: some rows are off screen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


class Twins(App[None]):
    """A LiveTable and a plain DataTable, given the same columns and rows."""

    CSS = "DataTable { height: 1fr; }"
    AUTO_FOCUS = None  # the one with the focus would be drawn in other colours

    def compose(self) -> ComposeResult:
        yield LiveTable(id="live", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="plain", cursor_type="row", zebra_stripes=True)

    def tables(self) -> tuple[DataTable[Any], DataTable[Any]]:
        return self.query_one("#live", DataTable), self.query_one("#plain", DataTable)


def lines(table: DataTable[Any]) -> list[str]:
    width, height = table.size
    return [strip.text for strip in table.render_lines(Region(0, 0, width, height))]


def styled(table: DataTable[Any]) -> list[list[tuple[str, str]]]:
    """Each line's segments as (text, style): colours and the cursor included."""
    width, height = table.size
    return [
        [(segment.text, str(segment.style)) for segment in strip]
        for strip in table.render_lines(Region(0, 0, width, height))
    ]


@pytest.mark.anyio
async def test_a_live_table_renders_as_a_data_table_through_every_change() -> None:
    app = Twins()
    async with app.run_test(size=SIZE) as pilot:
        both = app.tables()
        for table in both:
            table.add_column("name", key="name")
            table.add_column(Text("in", justify="right"), key="in")
            table.add_column("status", key="status")
            for i in range(20):
                table.add_row(
                    f"shop-{i:02d}", Text(f"{i:,}", justify="right"), "complete", key=f"s{i}"
                )
        await pilot.pause()

        async def same(step: str) -> None:
            await pilot.pause()
            live, plain = both
            assert lines(live) == lines(plain), step
            assert styled(live) == styled(plain), step

        await same("first render")
        steps: list[tuple[str, Any]] = [
            ("a cell, same width", lambda t: t.update_cell("s1", "in", Text("7", justify="right"))),
            (
                "a wider cell",
                lambda t: t.update_cell(
                    "s2", "in", Text("1,234,567", justify="right"), update_width=True
                ),
            ),
            (
                "narrower again",
                lambda t: t.update_cell("s2", "in", Text("3", justify="right"), update_width=True),
            ),
            ("a styled cell", lambda t: t.update_cell("s3", "status", Text("failed", "red"))),
            ("the cursor down", lambda t: t.move_cursor(row=3)),
            (
                "the cell under the cursor",
                lambda t: t.update_cell("s3", "status", Text("running", "cyan")),
            ),
            ("a row off screen", lambda t: t.update_cell("s19", "name", "shop-last")),
            ("scrolled to it", lambda t: t.move_cursor(row=19)),
            ("a cell scrolled into view", lambda t: t.update_cell("s18", "status", "skipped")),
            ("a row removed", lambda t: t.remove_row("s17")),
            ("a row added", lambda t: t.add_row("shop-new", Text("1"), "never", key="new")),
            ("the new row changed", lambda t: t.update_cell("new", "status", "complete")),
            ("back to the top", lambda t: t.move_cursor(row=0)),
        ]
        for step, change in steps:
            for table in both:
                change(table)
            await same(step)
            # Many changes between two frames, the same cell twice among them.
            for table in both:
                table.update_cell("s0", "in", Text(step[:3], justify="right"))
                table.update_cell("s0", "in", Text(step[-3:], justify="right"))
                table.update_cell("s4", "name", step[:8])
            await same(f"{step}, then a burst")


@pytest.mark.anyio
async def test_a_changed_cell_is_the_only_one_rendered_again() -> None:
    app = Twins()
    async with app.run_test(size=SIZE) as pilot:
        live, plain = app.tables()
        for table in (live, plain):
            for key in ("a", "b", "c"):
                table.add_column(key, key=key)
            for i in range(20):
                table.add_row(f"a{i}", f"b{i}", f"c{i}", key=f"r{i}")
        await pilot.pause()  # everything on screen rendered once

        rendered: list[object] = []  # each cell, rendered by the console (once per cell:
        depth = [0]  # the calls it makes inside one are not counted)
        console = app.console
        render = console.render_lines

        def counting(*args: Any, **kwargs: Any) -> Any:
            if not depth[0]:
                rendered.append(args[0])
            depth[0] += 1
            try:
                return render(*args, **kwargs)
            finally:
                depth[0] -= 1

        renders: dict[DataTable[Any], int] = {}
        console.render_lines = counting  # type: ignore[method-assign]
        try:
            for table in (live, plain):  # one at a time: the app paints what changed
                rendered.clear()
                table.update_cell("r2", "b", "B2")
                table.update_cell("r5", "c", "C5")
                await pilot.pause()
                renders[table] = len(rendered)
        finally:
            console.render_lines = render  # type: ignore[method-assign]
        assert lines(live) == lines(plain)
        assert renders[live] == 1  # the changed cell on screen (r5 is below the edge)
        # The DataTable renders every visible cell again: the header's and five rows'.
        assert renders[plain] == 3 * (SIZE[1] // 2)
