"""How omnicrm shows things to a person, in the CLI and the terminal UI alike: times in
the shop's zone that say which, and tables that fit the width they are drawn at.

Light on purpose (rich only): every command imports it, `--help` included.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from omnicrm.app.config import Config
    from omnicrm.engage.stats import Difference


# A time that names its zone, for a line of text: "2026-12-02 09:41 JST".
ZONED = "%Y-%m-%d %H:%M %Z"


def local_time(moment: dt.datetime | None, tz: dt.tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``moment`` in the shop's time zone; "-" for none. Write ``fmt=ZONED`` where no
    heading names the zone (see zone_name)."""
    return moment.astimezone(tz).strftime(fmt) if moment else "-"


def shop_zone(config: Config, shop: str | None = None) -> ZoneInfo:
    """The time zone of ``shop`` (None: the only shop, else the scheduler's): every
    time shown to a person is in it."""
    shops = config.all_shops()
    if shop is None:
        if len(shops) != 1:
            return ZoneInfo(config.scheduler.timezone)
        return ZoneInfo(next(iter(shops.values())).timezone)
    return ZoneInfo(config.shop(shop).timezone)


def zone_name(tz: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """The zone's abbreviation now (or ``at``), e.g. 'JST', for a heading."""
    return (at or dt.datetime.now(dt.UTC)).astimezone(tz).strftime("%Z")


def percent(value: float) -> str:
    """A rate as '12.5%'; '-' where there is none (nobody to divide by)."""
    return "-" if math.isnan(value) else f"{value:.1%}"


def difference_text(found: Difference | None, *, money: bool = False) -> str:
    """A difference from the control with its interval, as the offer report writes it:
    '+1.2pt [-0.4, +2.8]' (rates, in points) or '+120 [-30, +270]' (money), with ' *'
    where the interval leaves out zero; 'control' for the control itself, '-' while a
    group is empty, '[n/a]' where a group is too small for an interval."""
    if found is None:
        return "control"
    if math.isnan(found.value):
        return "-"
    scale, unit, digits = (1.0, "", 0) if money else (100.0, "pt", 1)
    value = f"{found.value * scale:+.{digits}f}{unit}"
    if math.isnan(found.low):
        return f"{value} [n/a]"
    interval = f"[{found.low * scale:+.{digits}f}, {found.high * scale:+.{digits}f}]"
    mark = " *" if found.significant else ""
    return f"{value} {interval}{mark}"


@dataclass(frozen=True)
class Col:
    """A column of a :class:`FitTable`.

    ``priority`` 0 is always shown; a higher one is left out first when the table does
    not fit. ``keep`` cells (numbers, dates, codes) are never broken across lines.
    """

    header: str
    priority: int = 0
    justify: str = "left"
    keep: bool = False


@dataclass
class FitTable:
    """A table that shows the columns that fit the width it is drawn at, by priority,
    and wraps or folds long cells rather than cutting them to an ellipsis. Columns left
    out are named in the caption."""

    columns: Sequence[Col]
    title: str | None = None
    caption: str | None = None
    box: box.Box = box.SIMPLE_HEAD
    expand: bool = False
    rows: list[list[Text]] = field(default_factory=list)

    def add_row(self, *cells: str | Text) -> None:
        """A row of cells: rich markup (escape data) or Text."""
        self.rows.append([c if isinstance(c, Text) else Text.from_markup(c) for c in cells])

    def table(self, width: int) -> Table:
        """The table as drawn ``width`` cells wide."""
        shown = list(range(len(self.columns)))
        table = self._table(shown, [])
        while Measurement.get(_MEASURE, _MEASURE.options, table).minimum > width:
            droppable = [i for i in shown if self.columns[i].priority > 0]
            if not droppable:
                break  # cells fold to fit
            # The least important goes first; of equals, the rightmost.
            shown.remove(max(droppable, key=lambda i: (self.columns[i].priority, i)))
            table = self._table(
                shown, [c.header for i, c in enumerate(self.columns) if i not in shown]
            )
        return table

    def _table(self, shown: list[int], hidden: list[str]) -> Table:
        notes = [self.caption] if self.caption else []
        if hidden:
            notes.append(f"not shown at this width: {', '.join(hidden)}")
        table = Table(
            title=self.title,
            caption="; ".join(notes) or None,
            box=self.box,
            pad_edge=False,
            title_justify="left",
            caption_justify="left",
            expand=self.expand,
        )
        for i in shown:
            column = self.columns[i]
            widest = max((_width(r[i]) for r in self.rows), default=0)
            table.add_column(
                column.header,
                justify=column.justify,  # type: ignore[arg-type]
                overflow="fold",
                min_width=max(widest, cell_len(column.header)) if column.keep else None,
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in shown))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        yield self.table(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table(options.max_width))


def _width(text: Text) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))


# Measures at a width no table reaches, so minimums are the cells' own.
_MEASURE = Console(width=100_000, file=None, color_system=None, legacy_windows=False)
