"""The connections screens: every connection's health at a glance, and one in detail.

Both load in thread workers (never on the UI thread) when the app says the store
changed (see `StoreScreen`), and update their tables by key: a row is added once, then
its cells change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Header, Label, Static
from textual.worker import get_current_worker

from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Stream
from omnicrm.core.store import Run, RunStatus, StreamState
from omnicrm.tui.base import STYLESHEET, StoreScreen
from omnicrm.tui.data import (
    ConnectionDetail,
    ConnectionRow,
    ShopSwitched,
    connection_detail,
    connection_rows,
)
from omnicrm.tui.footer import KeysFooter
from omnicrm.tui.table import LiveTable

if TYPE_CHECKING:
    from omnicrm.tui.app import OmnicrmApp

HEALTH_STYLE: Mapping[str, str] = {
    RunStatus.COMPLETE.value: "green",
    RunStatus.RUNNING.value: "cyan",
    RunStatus.RATE_LIMITED.value: "yellow",
    RunStatus.MISSED.value: "yellow",
    RunStatus.SKIPPED.value: "yellow",
    RunStatus.FAILED.value: "red",
    "invalid": "red",
    "never": "dim",
}


# -- formatting (pure, so the same row always renders the same text) ----------------


def fmt_time(moment: dt.datetime | None, tz: dt.tzinfo, now: dt.datetime | None = None) -> str:
    """A moment in the shop's timezone: 'HH:MM' on the day of ``now``, else with the date."""
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    if now is not None and local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%m-%d %H:%M")


def fmt_seconds(seconds: float | None) -> str:
    """12s, 2m05s, 1h02m; fractions only under ten seconds."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m"


def _status_label(health: str) -> str:
    return health.replace("_", "-")


def _styled(value: str, health: str) -> Text:
    return Text(value, style=HEALTH_STYLE.get(health, ""))


def _errors_cell(run: Run | None) -> Text:
    # A skipped run never started: the note on it says why, it is not an error.
    if run is None or run.status is RunStatus.SKIPPED:
        return Text("-", justify="right")
    return Text(str(run.errors), justify="right")


def _took(run: Run, now: dt.datetime) -> str:
    if run.status is RunStatus.RUNNING:
        # A live run: how long it has been going so far.
        return fmt_seconds(max(0.0, (now - run.started_at).total_seconds())) + "…"
    return fmt_seconds(run.duration)


# Health first: at 80 columns the plugin and where it points are the ones scrolled off
# to the right. With several shops each row names its shop, right after its name.
CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "connection"),
    ("status", "status"),
    ("started", "last run"),
    ("took", "took"),
    ("records", "in"),
    ("errors", "err"),
    ("waited", "waited"),
    ("next", "next"),
    ("plugin", "plugin"),
    ("where", "points to"),
)
SHOP_COLUMN = ("shop", "shop")


def connection_columns(several_shops: bool) -> tuple[tuple[str, str], ...]:
    """The connections table's columns: a shop column only when there are shops to tell
    apart."""
    if not several_shops:
        return CONNECTION_COLUMNS
    return (CONNECTION_COLUMNS[0], SHOP_COLUMN, *CONNECTION_COLUMNS[1:])


def next_text(row: ConnectionRow, tz: dt.tzinfo, now: dt.datetime) -> str:
    """The next scheduled run, 'due' when its time has come, or why there is none."""
    if row.next_label is not None:
        return row.next_label
    if row.next_run is not None and row.next_run <= now:
        return "due"
    return fmt_time(row.next_run, tz, now)


def connection_cells(
    row: ConnectionRow,
    tz: dt.tzinfo,
    now: dt.datetime,
    shop_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The cells of one connections-table row, keyed by column.

    A running sync shows its progress: records read so far (its run row is bumped as
    each batch commits) and the time it has taken so far. The shop is shown by its
    display name (``shop_names``: by id); an invalid connection's shop is not known.
    """
    health = row.health
    run = row.last
    return {
        "name": _styled(row.name, health),
        "status": _styled(_status_label(health), health),
        "started": fmt_time(run.started_at if run else None, tz, now),
        "took": _took(run, now) if run else "-",
        "records": Text(f"{run.records_read:,}" if run else "-", justify="right"),
        "errors": _errors_cell(run),
        "waited": Text(fmt_seconds(run.rate_limit_wait) if run else "-", justify="right"),
        "next": next_text(row, tz, now),
        "plugin": row.plugin or "-",
        "where": row.where or "-",
        "shop": (shop_names or {}).get(row.shop, row.shop) or "?",
    }


# -- shared pieces -------------------------------------------------------------------


def _shell(screen: StoreScreen) -> OmnicrmApp:
    # The connections screens act through the app shell (sync, pause, open).
    return cast("OmnicrmApp", screen.app)


class MessageScreen(Screen[None]):
    """A plain explanation of why there is nothing to show, and what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]
    CSS_PATH = STYLESHEET

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble((self.title_text, "bold"), "\n\n", self.message), id="message")
        yield KeysFooter()


class ConfirmScreen(ModalScreen[bool]):
    """Ask yes or no; dismissed with the answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    CSS_PATH = STYLESHEET

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no", variant="primary")
        # Its own keys, over the footer of the screen behind (whose keys wait meanwhile).
        yield KeysFooter()

    def on_mount(self) -> None:
        # The safe answer has the focus: Enter by reflex must not start a full resync.
        self.query_one("#no", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


# -- the connections table --------------------------------------------------------------


class ConnectionsScreen(StoreScreen):
    """One row per configured connection, coloured by health, updated in place.

    With several shops each row names its shop and the rows go shop by shop; ``o``
    narrows them to the shop the operator picked, ``t`` to the connections in trouble.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding, so the footer shows it even while the table has the focus.
        Binding("enter", "open", "Open", priority=True),
        Binding("s", "sync", "Sync now"),
        Binding("f", "full_resync", "Full resync"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("o", "only_shop", "This shop"),
        Binding("t", "only_trouble", "Trouble"),
    ]

    class Loaded(Message):
        """The rows read, and their cells (made in the worker, off the UI thread)."""

        def __init__(
            self, rows: list[ConnectionRow], cells: list[dict[str, Any]], now: dt.datetime
        ) -> None:
            super().__init__()
            self.rows = rows
            self.cells = cells
            self.now = now

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(runtime, **kwargs)
        self.columns = connection_columns(self.several_shops)
        self.shop_names = {id: shop.name for id, shop in runtime.config.all_shops().items()}
        self.only_shop = False  # only the picked shop's connections
        self.only_trouble = False  # only those whose health needs the operator
        self._loaded: list[tuple[ConnectionRow, dict[str, Any]]] = []
        self._keys: list[str] = []  # the rows shown, in order

    def compose(self) -> ComposeResult:
        yield Header()
        table = LiveTable(id="connections", cursor_type="row", zebra_stripes=True)
        for key, label in self.columns:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="filtered")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#filtered", Static).display = False

    # -- what is shown -----------------------------------------------------------------

    def shown(self, row: ConnectionRow) -> bool:
        """Whether the filters let ``row`` through. An invalid connection names no shop
        for sure: it stays under every shop's filter (it is trouble)."""
        if self.only_trouble and not row.trouble:
            return False
        return not (self.only_shop and row.shop not in ("", self.app_shop))

    def show_heading(self) -> None:
        # The shop first: at 80 columns the end of the subtitle is cut off.
        shop = super().shop_heading()
        if not shop:
            scope = "connections"
        elif self.only_shop:
            scope = shop
        else:
            scope = f"all shops · picked {shop}"
        counted = f"{len(self._keys)} of {len(self._loaded)}"
        if self.only_trouble:
            scope += f" · in trouble: {counted}"
        elif self.only_shop:
            scope += f" · {counted}"
        self.heading = scope
        super().show_heading()

    def shop_heading(self) -> str:
        return ""  # in the heading, before the filters

    def reload(self) -> None:
        if self.reader is not None:  # the app shell has opened the store
            self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        reader = self.reader
        if reader is None:
            return
        now = self.clock()
        try:
            rows = connection_rows(
                reader, self.runtime.config, now, self.runtime.host.channel_types
            )
            if self.several_shops:
                rows.sort(key=lambda row: row.shop)  # shop by shop, each by name
            cells = [connection_cells(row, self.tz, now, self.shop_names) for row in rows]
        except Exception as exc:
            self.failed(exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(rows, cells, now))

    def on_connections_screen_loaded(self, message: ConnectionsScreen.Loaded) -> None:
        self.live = any(r.health == RunStatus.RUNNING.value for r in message.rows)
        self._loaded = list(zip(message.rows, message.cells, strict=True))
        self._fill()

    def _fill(self) -> None:
        """Bring the table in line with the rows loaded that the filters let through."""
        table = self.query_one("#connections", LiveTable)
        shown = [(row, cells) for row, cells in self._loaded if self.shown(row)]
        keys = [row.name for row, _ in shown]
        if keys != self._keys:
            # Rows come or go (a filter changed): lay the rows out again, the cursor
            # staying on its connection if it is still shown.
            current = self.selected()
            table.clear()
            for row, cells in shown:
                table.add_row(*(cells[key] for key, _ in self.columns), key=row.name)
            self._keys = keys
            if current in keys:
                table.move_cursor(row=keys.index(current), animate=False)
        else:
            # Only the cells that differ are updated: the LiveTable renders only those again.
            for row, cells in shown:
                current_cells = table.get_row(row.name)
                for (key, _), old in zip(self.columns, current_cells, strict=True):
                    if cells[key] != old:
                        table.update_cell(row.name, key, cells[key], update_width=True)
        self._say_filtered(bool(self._loaded) and not keys)
        self.show_heading()

    def _say_filtered(self, empty: bool) -> None:
        note = self.query_one("#filtered", Static)
        note.display = empty
        if empty:
            where = f" of shop {self.shop_label(self.app_shop or '')}" if self.only_shop else ""
            which = "in trouble" if self.only_trouble else "configured"
            keys = " and ".join(
                key for key, on in (("t", self.only_trouble), ("o", self.only_shop)) if on
            )
            note.update(f"No connection{where} is {which}: {keys} shows the others.")

    def on_shop_switched(self, _message: ShopSwitched) -> None:
        # The rows loaded are every shop's: another shop picked only filters again.
        self._fill()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "only_shop":
            return self.several_shops and self.app_shop is not None
        return super().check_action(action, parameters)

    def action_only_shop(self) -> None:
        self.only_shop = not self.only_shop
        self._fill()

    def action_only_trouble(self) -> None:
        self.only_trouble = not self.only_trouble
        self._fill()

    def selected(self) -> str | None:
        """The connection under the cursor."""
        table = self.query_one("#connections", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    @on(DataTable.RowSelected, "#connections")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            _shell(self).open_connection(event.row_key.value)

    def action_open(self) -> None:
        name = self.selected()
        if name is not None:
            _shell(self).open_connection(name)

    def action_sync(self) -> None:
        if name := self.selected():
            _shell(self).sync_connection(name)

    def action_full_resync(self) -> None:
        if name := self.selected():
            _shell(self).confirm_full_resync(name)

    def action_pause(self) -> None:
        if name := self.selected():
            _shell(self).set_paused(name, True)

    def action_resume(self) -> None:
        if name := self.selected():
            _shell(self).set_paused(name, False)


# -- one connection ---------------------------------------------------------------------

RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "run"),
    ("trigger", "trigger"),
    ("status", "status"),
    ("started", "started"),
    ("took", "took"),
    ("read", "read"),
    ("written", "written"),
    ("errors", "err"),
    ("waited", "waited"),
)


def run_cells(run: Run, tz: dt.tzinfo, now: dt.datetime) -> dict[str, Any]:
    """The cells of one run-history row, keyed by column."""
    status = run.status.value
    label = _status_label(status) + (" (full)" if run.full else "")
    return {
        "id": run.id,
        "trigger": run.trigger,
        "status": _styled(label, status),
        "started": fmt_time(run.started_at, tz, now),
        "took": _took(run, now),
        "read": Text(f"{run.records_read:,}", justify="right"),
        "written": Text(f"{run.records_written:,}", justify="right"),
        "errors": _errors_cell(run),
        "waited": Text(fmt_seconds(run.rate_limit_wait), justify="right"),
    }


def _state_text(state: StreamState, tz: dt.tzinfo) -> tuple[str, str]:
    cursor = (
        "never synced"
        if state.cursor is None
        else state.cursor.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    )
    extra = json.dumps(dict(state.state), ensure_ascii=False, default=str) if state.state else ""
    return cursor, extra


class ConnectionScreen(StoreScreen):
    """A connection's run history, its last errors in full and its cursor per stream."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("s", "sync", "Sync now"),
        Binding("f", "full_resync", "Full resync"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
    ]

    class Loaded(Message):
        def __init__(self, detail: ConnectionDetail, now: dt.datetime) -> None:
            super().__init__()
            self.detail = detail
            self.now = now

    def __init__(self, runtime: Runtime, name: str) -> None:
        super().__init__(runtime)
        self.connection = name
        self.heading = name

    def shop_heading(self) -> str:
        # The connection's own shop, whichever the operator picked.
        connection = self.runtime.config.connections.get(self.connection)
        return "" if connection is None else self.heading_for(connection.shop)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.connection, id="summary")
        yield Label("Runs", classes="heading")
        runs: DataTable[Any] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        for key, label in RUN_COLUMNS:
            runs.add_column(label, key=key)
        yield runs
        yield Label("Streams", classes="heading")
        streams: DataTable[Any] = DataTable(id="streams", cursor_type="none")
        for key, label in (("stream", "stream"), ("cursor", "cursor"), ("state", "state")):
            streams.add_column(label, key=key)
        yield streams
        yield Label("Last errors", classes="heading")
        with VerticalScroll(id="errors-box"):
            yield Static("none", id="errors")
        yield KeysFooter()

    def reload(self) -> None:
        if self.reader is not None:  # the app shell has opened the store
            self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        reader = self.reader
        if reader is None:
            return
        now = self.clock()
        channels = self.runtime.host.channel_types
        connection = self.runtime.config.connections.get(self.connection)
        channel = channels.get(connection.channel) if connection else None
        try:
            detail = connection_detail(
                reader,
                self.runtime.config,
                self.connection,
                now,
                streams=channel.streams if channel else (Stream.CUSTOMERS, Stream.ORDERS),
                channels=channels,
            )
        except Exception as exc:
            self.failed(exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(detail, now))

    def on_connection_screen_loaded(self, message: ConnectionScreen.Loaded) -> None:
        detail, now = message.detail, message.now
        self.live = any(run.status is RunStatus.RUNNING for run in detail.runs)
        summary = self._summary(detail.row, now)
        latest = detail.runs[0] if detail.runs else None
        if latest is not None and latest.status is RunStatus.SKIPPED:
            when = fmt_time(latest.started_at, self.tz, now)
            summary.append(f"\nskipped at {when}: {latest.error or 'not run'}", style="yellow")
        self.query_one("#summary", Static).update(summary)
        runs = self.query_one("#runs", DataTable)
        added = False
        for run in detail.runs:
            key = str(run.id)
            cells = run_cells(run, self.tz, now)
            if key not in runs.rows:
                runs.add_row(*(cells[k] for k, _ in RUN_COLUMNS), key=key)
                added = True
                continue
            for (column, _), old in zip(RUN_COLUMNS, runs.get_row(key), strict=True):
                if cells[column] != old:
                    runs.update_cell(key, column, cells[column], update_width=True)
        if added:
            runs.sort("id", reverse=True)  # newest first, whatever order they arrived in
        streams = self.query_one("#streams", DataTable)
        for stream, state in detail.streams.items():
            cursor, extra = _state_text(state, self.tz)
            if stream not in streams.rows:
                streams.add_row(stream, cursor, extra, key=stream)
            else:
                streams.update_cell(stream, "cursor", cursor, update_width=True)
                streams.update_cell(stream, "state", extra, update_width=True)
        self.query_one("#errors", Static).update(self._errors(detail.errors))

    def _summary(self, row: ConnectionRow, now: dt.datetime) -> Text:
        health = row.health
        parts: list[str | tuple[str, str]] = [(row.name, "bold " + HEALTH_STYLE.get(health, ""))]
        if row.invalid is not None:
            parts += ["  ", (row.invalid, "red")]
            return Text.assemble(*parts)
        parts += [f"  {row.plugin}"]
        if row.where:
            parts += [f"  points to {row.where}"]
        parts += [f"  {row.schedule}", "  next "]
        parts += [next_text(row, self.tz, now)]
        return Text.assemble(*parts)

    def _errors(self, failed: list[Run]) -> Text:
        if not failed:
            return Text("none", style="dim")
        text = Text()
        for run in failed:
            if text:
                text.append("\n")
            head = f"run {run.id}  {fmt_time(run.started_at, self.tz)}  {run.status.value}"
            if run.error_kind and run.error_kind != run.status.value:
                head += f" ({run.error_kind})"
            text.append(head + "\n", style=HEALTH_STYLE.get(run.status.value, "") + " bold")
            text.append(run.error or "")
        return text

    def action_sync(self) -> None:
        _shell(self).sync_connection(self.connection)

    def action_full_resync(self) -> None:
        _shell(self).confirm_full_resync(self.connection)

    def action_pause(self) -> None:
        _shell(self).set_paused(self.connection, True)

    def action_resume(self) -> None:
        _shell(self).set_paused(self.connection, False)


__all__ = [
    "ConfirmScreen",
    "ConnectionScreen",
    "ConnectionsScreen",
    "MessageScreen",
    "connection_cells",
    "run_cells",
]
