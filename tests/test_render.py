"""omnicrm.render: tables that fit their width, times that name their zone, and the
reports' differences with their intervals."""

from __future__ import annotations

import datetime as dt
import io
import math
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.console import Console

from omnicrm.engage.stats import Difference
from omnicrm.render import ZONED, Col, FitTable, difference_text, local_time, percent


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


def test_a_difference_reads_as_the_offer_report_writes_it() -> None:
    nan = math.nan
    assert difference_text(None) == "control"
    assert difference_text(Difference(nan, nan, nan)) == "-"  # a group nobody is in
    assert difference_text(Difference(0.02, nan, nan)) == "+2.0pt [n/a]"
    assert difference_text(Difference(0.012, -0.004, 0.028)) == "+1.2pt [-0.4, +2.8]"
    assert difference_text(Difference(-0.25, -0.4, -0.1)) == "-25.0pt [-40.0, -10.0] *"
    assert difference_text(Difference(120.4, 30, 270), money=True) == "+120 [+30, +270] *"
    assert percent(1 / 6) == "16.7%" and percent(nan) == "-"
