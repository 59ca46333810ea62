"""omnicrm.render: tables that fit their width, and times that name their zone."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.console import Console

from omnicrm.render import ZONED, Col, FitTable, local_time


def drawn(table: FitTable, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(table)
    return console.export_text().splitlines()


def table() -> FitTable:
    fit = FitTable(
        [
            Col("id", keep=True),
            Col("name"),
            Col("email", 1),
            Col("record", 3),
            Col("spent", 2, "right", keep=True),
        ],
        title="members",
    )
    fit.add_row(
        "1234567",
        "山田 花子",
        "hanako.yamada@example.co.jp",
        "gid://shopify/Customer/7712345678901",
        "123,456",
    )
    fit.add_row("12", "佐藤 一郎", "ichiro@example.jp", "P-17", "0")
    return fit


def test_a_wide_terminal_shows_every_column() -> None:
    lines = drawn(table(), 200)
    assert "gid://shopify/Customer/7712345678901" in "\n".join(lines)
    assert not any("not shown" in line for line in lines)


def test_at_80_columns_the_least_important_go_and_are_named_nothing_is_cut() -> None:
    lines = drawn(table(), 80)
    text = "\n".join(lines)
    assert max(cell_len(line) for line in lines) <= 80
    assert "…" not in text
    assert "1234567" in text and "hanako.yamada@example.co.jp" in text and "123,456" in text
    assert "not shown at this width: record" in text


def test_too_narrow_for_even_the_first_columns_folds_rather_than_cuts() -> None:
    lines = drawn(table(), 24)
    assert max(cell_len(line) for line in lines) <= 24
    assert "…" not in "\n".join(lines)


def test_local_time_names_the_zone() -> None:
    moment = dt.datetime(2026, 12, 2, 0, 41, tzinfo=dt.UTC)
    assert local_time(moment, ZoneInfo("Asia/Tokyo"), ZONED) == "2026-12-02 09:41 JST"
    assert local_time(moment, ZoneInfo("Europe/Paris"), ZONED) == "2026-12-02 01:41 CET"
    assert local_time(None, ZoneInfo("Asia/Tokyo")) == "-"
