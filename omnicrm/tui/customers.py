"""Customer lookup and the unified profile, for the operator.

`CustomerLookupScreen` searches profiles by email, phone, member code or name (kanji or
kana, any width) as the operator types: the search waits for a pause in typing and runs
in a thread worker, so the input never stalls on the store. Enter opens the profile.

`CustomerProfileScreen` shows one person whole: identity, consent per medium, purchases,
points, the source records per channel, why those records are one person (each merge's
rule and evidence), and recent interactions. Rich lays the text out by terminal cell,
so Japanese names and addresses stay aligned.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.text import Text
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input, Static
from textual.worker import get_current_worker

from omnicrm.app.runtime import Runtime
from omnicrm.core.store import failures
from omnicrm.crm.identity import UnknownProfileError
from omnicrm.crm.profiles import ProfileMatch, find_profiles
from omnicrm.crm.schema import profiles
from omnicrm.errors import ConfigError, DataError, StoreError
from omnicrm.render import zone_name
from omnicrm.tui.footer import KeysFooter
from omnicrm.views import ProfileView, load_profile_view, local_time, render_profile_view

Clock = Callable[[], dt.datetime]

NO_PROFILES_HINT = (
    "No profiles yet. Sync a connection (`omnicrm sync NAME`), then build the profiles "
    "with `omnicrm crm refresh`."
)
SEARCH_HINT = "Type an email, phone, member code or name (kana too); Enter or ↓ to the results."
RESULT_LIMIT = 50
RESULT_COLUMNS: tuple[tuple[str | Text, str], ...] = (
    (Text("id", justify="right"), "id"),
    ("name", "name"),
    ("email", "email"),
    ("phone", "phone"),
    (Text("orders", justify="right"), "orders"),
    ("last order", "last"),
)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def store_engine(screen: Screen[Any], wait: float = 5.0) -> Engine:
    """The engine a screen reads through: the app shell's read-only reader when it has
    one (SQLite opened ``mode=ro``), else the runtime's store.

    Call from a worker only: it may wait up to ``wait`` seconds for the shell to finish
    opening the store (so two threads never open it at once), and the runtime's store
    opens (and migrates) on first use.
    """
    app = screen.app
    deadline = time.monotonic() + wait
    while hasattr(app, "reader") and app.reader is None and time.monotonic() < deadline:
        time.sleep(0.05)
    engine = getattr(getattr(app, "reader", None), "engine", None)
    if isinstance(engine, Engine):
        return engine
    runtime: Runtime = getattr(screen, "runtime")  # noqa: B009 - every screen here has one
    return runtime.store.engine


def screen_clock(screen: Screen[Any], clock: Clock | None) -> Clock:
    """``clock`` if given, else the app shell's (tests fix it), else the wall clock."""
    if clock is not None:
        return clock
    found = getattr(screen.app, "clock", None)
    return found if callable(found) else _utc_now


class ShopScreen(Screen[None]):
    """A screen over the store that tells times in the shop's zone."""

    def __init__(self, runtime: Runtime, *, clock: Clock | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self._given_clock = clock
        self.sub_title = f"times in {zone_name(self._tz)}"  # the header says which zone

    @property
    def clock(self) -> Clock:
        """What "now" is for this screen (see `screen_clock`)."""
        return screen_clock(self, self._given_clock)

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.runtime.config.scheduler.timezone)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Esc is offered only where it leads somewhere.
        if action == "back":
            return len(self.app.screen_stack) > 1 or callable(getattr(self.app, "go_back", None))
        return True

    def action_back(self) -> None:
        """Back to the screen this one was opened from (the app shell says where that is
        for a list's own screen)."""
        go_back = getattr(self.app, "go_back", None)
        if callable(go_back):
            go_back()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()


Cell = str | Text


def fill_table(
    table: DataTable[Any],
    columns: Sequence[tuple[Cell, str]],
    rows: Sequence[tuple[str, Sequence[Cell]]],
) -> None:
    """Replace the table's columns and rows, each column as wide as its widest cell.

    Widths are measured here rather than left to the DataTable: it measures new rows
    only when idle, and a row drawn before that keeps the header's narrow width.
    """
    widths = [cell_len(_plain(label)) for label, _ in columns]
    for _, cells in rows:
        for i, cell in enumerate(cells):
            widths[i] = max(widths[i], cell_len(_plain(cell)))
    current = None
    if table.row_count:
        current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    table.clear(columns=True)
    for (label, key), width in zip(columns, widths, strict=True):
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if current is not None and current in table.rows:
        # A reload puts the cursor back on the row it was on, wherever that row is now.
        table.move_cursor(row=table.get_row_index(current), animate=False)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def describe_failure(runtime: Runtime, exc: BaseException) -> str:
    """What went wrong reading the store, and what the operator can do about it."""
    try:
        url = failures.shown(failures.parse_url(runtime.config.store_url))
    except Exception:
        url = "(unreadable URL)"
    if isinstance(exc, ConfigError):
        return f"{exc}. Check [store] url in omnicrm.toml."
    if isinstance(exc, StoreError | DBAPIError):
        if isinstance(exc, StoreError):
            detail = exc.cause
        else:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        lowered = detail.lower()
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return f"The store at {url} has no omnicrm tables yet: run `omnicrm init`."
        return (
            f"Cannot read the store at {url}: {detail}. Check [store] url in omnicrm.toml "
            "and that the database is running; retrying."
        )
    return f"Reading the store at {url} failed: {type(exc).__name__}: {exc}"


class CustomerLookupScreen(ShopScreen):
    """Find a person by email, phone, member code or name, and open their profile."""

    TITLE = "Customers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "to_results", "Results", show=False),
        Binding("ctrl+l", "to_search", "Search"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    CustomerLookupScreen #query { margin: 0 1; }
    CustomerLookupScreen #results { height: 1fr; }
    CustomerLookupScreen #status { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self, runtime: Runtime, *, clock: Clock | None = None, debounce: float = 0.25
    ) -> None:
        super().__init__(runtime, clock=clock)
        self._debounce = debounce
        self._timer: Timer | None = None
        self._asked = 0  # searches started; only the latest one's answer is shown
        self._focus_results = False
        self._shown: tuple[str, list[ProfileMatch]] | None = None
        self._empty = False  # the store had no profiles at the last look
        self.searches = 0  # searches answered: for tests

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="email, phone, member code or name (kana too)", id="query")
        table: DataTable[Any] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
        for label, key in RESULT_COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(SEARCH_HINT, id="status")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()
        self._check_empty()

    @work(thread=True, group="lookup-empty")
    def _check_empty(self) -> None:
        """Say what to run when there is nobody to find yet."""
        try:
            with store_engine(self).connect() as conn:
                anyone = conn.execute(select(func.count()).select_from(profiles)).scalar_one()
        except Exception as exc:
            message = describe_failure(self.runtime, exc)
        else:
            self._empty = not anyone
            if anyone:
                return
            message = NO_PROFILES_HINT
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._status, message, "yellow")

    def on_store_changed(self, _message: Message) -> None:
        # Posted by the app shell when something was committed: a sync may have brought
        # the person being looked for, so ask again (the table changes only if the
        # answer did).
        if self._empty:
            self._check_empty()
        if self.query_one("#query", Input).value.strip():
            self._start_search()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        # Wait for a pause in typing: one query per word typed, not per key.
        self._timer = self.set_timer(self._debounce, self._start_search)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._focus_results = True
        self._start_search()

    def _start_search(self) -> None:
        self._asked += 1
        self._search(self._asked, self.query_one("#query", Input).value)

    @work(thread=True, exclusive=True, group="lookup-search")
    def _search(self, asked: int, query: str) -> None:
        region = self.runtime.config.identity.region
        try:
            with store_engine(self).connect() as conn:
                found = find_profiles(conn, query, region=region, limit=RESULT_LIMIT)
        except Exception as exc:
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(
                    self._status, describe_failure(self.runtime, exc), "bold red"
                )
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_results, asked, query, found)

    def _show_results(self, asked: int, query: str, found: list[ProfileMatch]) -> None:
        if asked != self._asked:  # a later search is on its way
            return
        self.searches += 1
        table: DataTable[Any] = self.query_one("#results", DataTable)
        focus, self._focus_results = self._focus_results, False
        if focus and found:  # Enter in the search box: on to the results
            table.focus()
        if (query, found) == self._shown:  # nothing new (a re-run after a commit)
            return
        self._shown = (query, found)
        fill_table(
            table,
            RESULT_COLUMNS,
            [
                (
                    str(match.id),
                    (
                        Text(str(match.id), justify="right"),
                        match.name,
                        match.email or "-",
                        match.phone or "-",
                        Text(str(match.number_of_orders), justify="right"),
                        local_time(match.last_order_at, self._tz, "%Y-%m-%d"),
                    ),
                )
                for match in found
            ],
        )
        if not query.strip():
            self._status(SEARCH_HINT)
        elif not found:
            self._status(f"Nobody matches {query.strip()!r}.", "yellow")
        else:
            more = " (the first ones)" if len(found) == RESULT_LIMIT else ""
            self._status(f"{len(found)} match(es){more}. Enter opens a profile.")

    def _status(self, message: str, style: str = "") -> None:
        self.query_one("#status", Static).update(Text(message, style=style))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                CustomerProfileScreen(
                    self.runtime,
                    int(event.row_key.value),
                    clock=self.clock,
                )
            )

    def action_to_results(self) -> None:
        table: DataTable[Any] = self.query_one("#results", DataTable)
        if table.row_count:
            table.focus()

    def action_to_search(self) -> None:
        # Also called by the app shell on a screen not composed yet (it focuses the box
        # itself when mounted).
        for box in self.query("#query").results(Input):
            box.focus()


class CustomerProfileScreen(ShopScreen):
    """One person, whole: identity, consent, purchases, points, sources, merges."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    CustomerProfileScreen #profile { height: 1fr; padding: 0 1; }
    """

    def __init__(self, runtime: Runtime, profile_id: int, *, clock: Clock | None = None) -> None:
        super().__init__(runtime, clock=clock)
        self.profile_id = profile_id
        self.title = f"Profile {profile_id}"
        self.view: ProfileView | None = None  # what is shown, once loaded

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="profile"):
            yield Static(f"Loading profile {self.profile_id}…", id="body")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#profile", VerticalScroll).focus()
        self._load()

    @work(thread=True, exclusive=True, group="profile-load")
    def _load(self) -> None:
        worker = get_current_worker()
        try:
            with store_engine(self).connect() as conn:
                view = load_profile_view(
                    conn, self.profile_id, self.clock(), self.runtime.config.points
                )
        except (DataError, UnknownProfileError) as exc:
            message = f"{exc}: it may have been merged into another. Escape to go back."
        except Exception as exc:
            message = describe_failure(self.runtime, exc)
        else:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._show, view)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._fail, message)

    def on_store_changed(self, _message: Message) -> None:
        # Posted by the app shell when something was committed: show the person as
        # they are now (a redraw only when something about them changed).
        self._load()

    def _show(self, view: ProfileView) -> None:
        if view == self.view:
            return
        self.view = view
        today = self.clock().astimezone(self._tz).date()
        self.query_one("#body", Static).update(render_profile_view(view, today, self._tz))

    def _fail(self, message: str) -> None:
        self.query_one("#body", Static).update(Text(message, style="bold red"))

    def action_reload(self) -> None:
        self._load()
