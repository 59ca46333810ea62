"""The segments screens: every segment's count, change and history, live; one segment whole.

`SegmentsScreen` lists every segment with its last count, the change since the count
before and a sparkline of its history. Each time the store changed (see `StoreScreen`)
a thread worker asks it a cheap question (the time of the last recorded counts) and
reloads only when the answer moved; rows are keyed by segment name and updated cell by
cell, so the cursor stays where the operator left it.

`SegmentScreen` shows one segment: its expression, description, count and history, and
a sample of its members; Enter on a member opens their profile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.markup import escape
from rich.text import Text
from sqlalchemy import Connection, Engine, func, select
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Header, Sparkline, Static
from textual.worker import get_current_worker

from omnicrm.app.runtime import Runtime
from omnicrm.crm.schema import crm_state, profiles, segments
from omnicrm.crm.segments import (
    CountPoint,
    Member,
    Segment,
    SegmentError,
    get_segment,
    history,
    list_segments,
    members,
)
from omnicrm.crm.segments.counts import SNAPSHOT_STATE
from omnicrm.tui.base import Clock, StoreScreen
from omnicrm.tui.customers import CustomerProfileScreen, fill_table
from omnicrm.tui.footer import KeysFooter
from omnicrm.tui.table import LiveTable, show_rows
from omnicrm.views import local_time

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
HISTORY_POINTS = 20  # counts a row's sparkline shows: one cell each
DETAIL_POINTS = 60
MEMBER_SAMPLE = 50
TITLE_WIDTH = (7, 36)  # the title column's narrowest and widest
SEGMENT_COLUMNS: tuple[tuple[str | Text, str, int | None], ...] = (
    ("segment", "title", None),  # measured on the first load
    (Text("count", justify="right"), "count", 9),
    (Text("change", justify="right"), "change", 7),
    ("history", "history", HISTORY_POINTS),
)
MEMBER_COLUMNS: tuple[tuple[str | Text, str], ...] = (
    (Text("id", justify="right"), "id"),
    ("name", "name"),
    ("email", "email"),
    ("pref.", "prefecture"),
    (Text("orders", justify="right"), "orders"),
    (Text("spent", justify="right"), "spent"),
    ("last order", "last"),
    ("stage", "stage"),
)

EMPTY_HINT = (
    "No segments yet. Sync a connection (`omnicrm sync NAME`), then build the profiles "
    "and count the segments with `omnicrm crm refresh`."
)
UNCOUNTED_HINT = "Not counted yet: run `omnicrm crm refresh` to count every segment."


def sparkline(values: Sequence[int]) -> str:
    """``values`` as a row of block characters, lowest to highest (a flat line sits
    mid-height, so "no change" does not read as "nothing")."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if low == high:
        return (SPARK_BLOCKS[0] if high == 0 else SPARK_BLOCKS[3]) * len(values)
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round((v - low) * top / (high - low))] for v in values)


def change_text(change: int | None) -> Text:
    """A count's change: green up, red down, dim when there is nothing to compare."""
    if change is None:
        return Text("—", style="dim", justify="right")
    if change == 0:
        return Text("±0", style="dim", justify="right")
    style = "green" if change > 0 else "red"
    return Text(f"{change:+,}", style=style, justify="right")


@dataclass(frozen=True)
class SegmentRow:
    """What one row of the segments table shows."""

    name: str
    title: str
    points: tuple[CountPoint, ...]  # oldest first

    @property
    def count(self) -> int | None:
        return self.points[-1].count if self.points else None

    @property
    def change(self) -> int | None:
        if len(self.points) < 2:
            return None
        return self.points[-1].count - self.points[-2].count

    @property
    def at(self) -> dt.datetime | None:
        return self.points[-1].at if self.points else None


def screen_shop(runtime: Runtime, shop: str | None) -> str:
    """The shop a screen of one shop's data shows: the one given (the app shell gives
    the one the operator picked), the only one, or else the first by id."""
    if shop is None:
        shops = sorted(runtime.config.all_shops())
        if len(shops) > 1:
            return shops[0]
    return runtime.shop(shop).id


Cells = tuple[Text, Text, Text, Text]  # title, count, change, history


def segment_cells(row: SegmentRow) -> Cells:
    """The cells of one segments-table row (pure: the same row, the same cells)."""
    count = (
        Text(f"{row.count:,}", justify="right")
        if row.count is not None
        else Text("—", style="dim", justify="right")
    )
    spark = Text(sparkline([p.count for p in row.points]), style="cyan")
    return (Text(row.title), count, change_text(row.change), spark)


def load_segment_rows(
    conn: Connection, points: int = HISTORY_POINTS, *, shop: str
) -> list[SegmentRow]:
    """Every segment of ``shop``, in catalogue order, with its last ``points`` counts."""
    # history() gives the last count and the one before as well, so latest_counts()
    # (which reads the same rows) is not needed: one index range per segment.
    return [
        SegmentRow(s.name, s.title, tuple(history(conn, s.name, points, shop=shop)))
        for s in list_segments(conn, shop=shop)
    ]


class ChangeCheck:
    """Whether the segments may have changed since the last call, asked cheaply.

    On SQLite, ``PRAGMA data_version`` on a connection kept open moves only when another
    connection commits; on PostgreSQL there is no such counter, so every call reads the
    signature directly. The signature (when the last counts were recorded, how many
    segments are defined) is two primary-key reads, so a sync writing orders does not
    cause reloads of a table whose numbers it did not change.
    """

    def __init__(self, engine: Engine, shop: str) -> None:
        self._engine = engine
        self.shop = shop  # another shop's counts moving reload nothing here
        self._conn: Connection | None = None
        self._version: int | None = None
        self._signature: tuple[Any, ...] | None = None

    def changed(self) -> bool:
        """True on the first call and whenever the segments' signature moved."""
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            if self._engine.dialect.name == "sqlite":
                version = conn.exec_driver_sql("PRAGMA data_version").scalar()
                if version == self._version and self._signature is not None:
                    return False
                self._version = int(version or 0)
            signature = (
                conn.execute(
                    select(crm_state.c.updated_at).where(
                        crm_state.c.shop == self.shop, crm_state.c.key == SNAPSHOT_STATE
                    )
                ).scalar(),
                conn.execute(
                    select(func.count()).select_from(segments).where(segments.c.shop == self.shop)
                ).scalar(),
            )
        finally:
            # Never sit in an open transaction: on PostgreSQL it would hold a snapshot.
            conn.rollback()
        if signature == self._signature:
            return False
        self._signature = signature
        return True

    def reset(self) -> None:
        """Make the next call answer True (a reload the operator asked for)."""
        self._signature = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SegmentsScreen(StoreScreen):
    """Every segment with its count, change since the count before, and history."""

    TITLE = "Segments"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
        shop: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock, poll_interval=poll_interval)
        self.shop = screen_shop(runtime, shop)
        self._check: ChangeCheck | None = None
        self._checking = threading.Lock()  # one check at a time: it keeps a connection
        self._force = False  # reload even when the check says nothing moved
        self._queued = False  # a load worker waits for the check
        self._shown: dict[str, Cells] = {}
        self._status: str | Text = ""  # what the status line says
        self.loads = 0  # how many times the table was (re)loaded: for tests and benchmarks

    def compose(self) -> ComposeResult:
        yield Header()
        table = LiveTable(id="segments", cursor_type="row", zebra_stripes=True)
        for label, key, width in SEGMENT_COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Static("Loading segments…", id="status")
        yield KeysFooter()

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def reload(self) -> None:
        picked = self.app_shop
        if picked is not None and picked != self.shop:
            self._switch_shop(picked)
        if not self._queued:  # one waiting check answers every change seen before it
            self._queued = True
            self._load()

    def _switch_shop(self, shop: str) -> None:
        """Show ``shop``'s segments: the other shop's rows go at once, the next load
        counts afresh (the check follows the shop)."""
        self.shop = shop
        self.show_heading()
        self.query_one("#segments", DataTable).clear()
        self._shown.clear()
        self._status = f"Loading the segments of {self.shop_label(shop)}…"
        self.query_one("#status", Static).update(self._status)

    def on_unmount(self) -> None:
        self._stop.set()
        # The check's connection is closed here, or by the worker holding it when done.
        if self._checking.acquire(blocking=False):
            try:
                self._close_check()
            finally:
                self._checking.release()

    def _close_check(self) -> None:
        if self._check is not None:
            self._check.close()
            self._check = None

    @work(thread=True, group="segments-load", exit_on_error=False)
    def _load(self) -> None:
        """Ask whether the segments changed; reload and hand the rows to the UI if so."""
        # Not an exclusive worker: a check cut short would leave the next one nothing
        # to compare with. Calls queue on the lock instead, and a queued one is cheap.
        with self._checking:
            self._queued = False
            if self._stop.is_set():
                self._close_check()
                return
            shop = self.shop  # the operator may pick another meanwhile: see _show
            try:
                if self._check is not None and self._check.shop != shop:
                    self._close_check()
                if self._check is None:
                    self._check = ChangeCheck(self.engine(), shop)
                if self._force:
                    self._force = False
                    self._check.reset()
                if not self._check.changed():
                    return
                with self.engine().connect() as conn:
                    rows = load_segment_rows(conn, shop=shop)
                # The cells are made here too, off the UI thread: it only compares them.
                shown = [(row, segment_cells(row)) for row in rows]
            except Exception as exc:  # shown; the next change or Reload tries again
                self._close_check()
                self.failed(exc)
                return
            finally:
                if self._stop.is_set():
                    self._close_check()
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            self.app.call_from_thread(self._show, shown, shop)

    def _show(self, shown: list[tuple[SegmentRow, Cells]], shop: str) -> None:
        """Bring the table in line with ``shown`` (each row with its cells), touching only
        the cells that differ; rows of a shop no longer picked are dropped."""
        if shop != self.shop:
            return  # the load of the shop picked now follows
        self.loads += 1
        rows = [row for row, _ in shown]
        table: DataTable[Any] = self.query_one("#segments", DataTable)
        keys = [key for _, key, _ in SEGMENT_COLUMNS]
        if not self._shown and rows:
            # The first rows: size the title column to them now (see fill_table for why
            # widths are not left to the DataTable).
            low, high = TITLE_WIDTH
            width = max(low, min(high, max(cell_len(row.title) for row in rows)))
            table.clear(columns=True)
            for label, key, fixed in SEGMENT_COLUMNS:
                table.add_column(label, key=key, width=fixed or width)
        show_rows(table, self._shown, [(row.name, cells) for row, cells in shown], keys)
        summary = self._summary(rows)
        if summary != self._status:
            # Only when it reads differently: a new text lays the screen out again, and
            # a layout paints every widget (the whole table) again.
            self._status = summary
            self.query_one("#status", Static).update(summary)

    def _summary(self, rows: list[SegmentRow]) -> str:
        if not rows:
            return EMPTY_HINT
        times = [row.at for row in rows if row.at is not None]
        if not times:
            return f"{len(rows)} segments. {UNCOUNTED_HINT}"
        last = local_time(max(times), self.tz)
        return f"{len(rows)} segments, last counted {last}. Enter opens one."

    def show_failure(self, exc: BaseException, message: str) -> None:
        self._status = Text(message, style="bold red")
        self.query_one("#status", Static).update(self._status)

    def action_reload(self) -> None:
        self._force = True
        self.reload()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter and a click on a row both land here.
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                SegmentScreen(self.runtime, event.row_key.value, clock=self.clock, shop=self.shop)
            )


@dataclass(frozen=True)
class SegmentDetail:
    """One segment as its screen shows it."""

    segment: Segment
    points: tuple[CountPoint, ...]
    members: tuple[Member, ...]
    profiles: int


def load_segment_detail(
    conn: Connection,
    name: str,
    now: dt.datetime,
    tz: ZoneInfo,
    limit: int = MEMBER_SAMPLE,
    *,
    shop: str,
) -> SegmentDetail:
    """``shop``'s segment ``name``, its history and a sample of its members as of ``now``."""
    return SegmentDetail(
        get_segment(conn, name, shop=shop),
        tuple(history(conn, name, DETAIL_POINTS, shop=shop)),
        tuple(members(conn, name, now, tz, limit, shop=shop)),
        int(
            conn.execute(
                select(func.count()).select_from(profiles).where(profiles.c.shop == shop)
            ).scalar_one()
        ),
    )


class SegmentScreen(StoreScreen):
    """One segment: its expression, description, count history and a sample of members."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        *,
        clock: Clock | None = None,
        shop: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock)
        self.shop = screen_shop(runtime, shop)
        self.segment_name = name
        self.title = f"Segment {name}"
        self.detail: SegmentDetail | None = None  # what is shown, once loaded

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static(f"Loading segment {escape(self.segment_name)}…", id="about")
            yield Sparkline([], id="trend")
            yield Static("", id="members-title")
            table: DataTable[Any] = DataTable(id="members", cursor_type="row", zebra_stripes=True)
            for label, key in MEMBER_COLUMNS:
                table.add_column(label, key=key)
            yield table
        yield KeysFooter()

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="segment-load")
    def _load(self) -> None:
        worker = get_current_worker()
        try:
            with self.engine().connect() as conn:
                detail = load_segment_detail(
                    conn, self.segment_name, self.clock(), self.tz, shop=self.shop
                )
        except SegmentError as exc:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._fail, f"{exc}. Press Escape to go back.")
            return
        except Exception as exc:
            self.failed(exc)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, detail)

    def _show(self, detail: SegmentDetail) -> None:
        if detail == self.detail:
            return
        self.detail = detail
        segment = detail.segment
        last = detail.points[-1] if detail.points else None
        before = detail.points[-2] if len(detail.points) > 1 else None
        about = Text()
        about.append(segment.title, style="bold")
        about.append(f"  {segment.name}" + ("  (built in)" if segment.builtin else ""), "dim")
        about.append("\nexpression   ")
        about.append(segment.expression, style="cyan")
        about.append(f"\ndescription  {segment.description or '-'}")
        about.append("\ncount        ")
        if last is None:
            about.append(UNCOUNTED_HINT, style="yellow")
        else:
            share = f" of {detail.profiles:,} profiles" if detail.profiles else ""
            about.append(f"{last.count:,}{share}, counted {local_time(last.at, self.tz)}")
            about.append("  change ")
            about.append_text(change_text(last.count - before.count if before else None))
            counts = [p.count for p in detail.points]
            about.append("\nhistory      ")
            about.append(sparkline(counts), style="cyan")
            about.append(
                f"  {len(counts)} count(s) since {local_time(detail.points[0].at, self.tz)}, "
                f"low {min(counts):,}, high {max(counts):,}"
            )
        self.query_one("#about", Static).update(about)
        self.query_one("#trend", Sparkline).data = [p.count for p in detail.points]
        shown = len(detail.members)
        self.query_one("#members-title", Static).update(
            f"members: first {shown} by id (Enter opens a profile)"
            if shown
            else "no members as of now"
        )
        table: DataTable[Any] = self.query_one("#members", DataTable)
        rows = [
            (
                str(m.id),
                (
                    Text(str(m.id), justify="right"),
                    m.name or "-",
                    m.email or "-",
                    m.prefecture or "-",
                    Text(str(m.number_of_orders), justify="right"),
                    Text(f"{m.amount_spent:,.0f}", justify="right"),
                    local_time(m.last_order_at, self.tz, "%Y-%m-%d"),
                    m.lifecycle_stage,
                ),
            )
            for m in detail.members
        ]
        fill_table(table, MEMBER_COLUMNS, rows)

    def _fail(self, message: str) -> None:
        self.query_one("#about", Static).update(Text(message, style="bold red"))

    def show_failure(self, exc: BaseException, message: str) -> None:
        self._fail(message)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                CustomerProfileScreen(
                    self.runtime, int(event.row_key.value), clock=self.clock, shop=self.shop
                )
            )

    def action_reload(self) -> None:
        self._load()
