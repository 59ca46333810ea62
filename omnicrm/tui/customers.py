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

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from sqlalchemy import func, select
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input, Static
from textual.worker import get_current_worker

from omnicrm.app.runtime import Runtime
from omnicrm.crm.identity import UnknownProfileError
from omnicrm.crm.profiles import ProfileMatch, find_profiles
from omnicrm.crm.schema import profiles
from omnicrm.errors import DataError
from omnicrm.tui.base import Clock, StoreScreen
from omnicrm.tui.footer import KeysFooter
from omnicrm.views import (
    ProfileView,
    load_profile_view,
    local_time,
    render_profile_view,
)

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


class CustomerLookupScreen(StoreScreen):
    """Find a person by email, phone, member code or name, and open their profile."""

    TITLE = "Customers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "to_results", "Results", show=False),
        Binding("ctrl+l", "to_search", "Search"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock | None = None,
        debounce: float = 0.25,
        shop: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock)
        # The shop whose customers are looked up (None: the only one configured).
        self.settings = runtime.crm_settings(shop)
        self.shop = self.settings.shop
        self._debounce = debounce
        self._timer: Timer | None = None
        self._asked = 0  # searches started; only the latest one's answer is shown
        self._focus_results = False
        self._shown: tuple[str, list[ProfileMatch]] | None = None
        self._empty = True  # the store had no profiles at the last look (or none yet)
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

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def reload(self) -> None:
        # On mount and whenever something was committed: a sync may have brought the
        # person being looked for, so ask again (the table changes only if the answer
        # did). Another shop picked: the same words are looked up in that shop.
        picked = self.app_shop
        if picked is not None and picked != self.shop:
            self._switch_shop(picked)
        if self._empty:
            self._check_empty()
        if self.query_one("#query", Input).value.strip():
            self._start_search()

    def _switch_shop(self, shop: str) -> None:
        """Look up in ``shop``: the other shop's results go at once."""
        self.settings = self.runtime.crm_settings(shop)
        self.shop = shop
        self.show_heading()
        self._asked += 1  # an answer on its way is the other shop's: it is not shown
        self._shown = None
        self._empty = True
        fill_table(self.query_one("#results", DataTable), RESULT_COLUMNS, [])
        self._status(SEARCH_HINT)

    @work(thread=True, group="lookup-empty")
    def _check_empty(self) -> None:
        """Say what to run when the shop has nobody to find yet."""
        shop = self.shop
        query = select(func.count()).select_from(profiles).where(profiles.c.shop == shop)
        try:
            with self.engine().connect() as conn:
                anyone = conn.execute(query).scalar_one()
        except Exception as exc:
            self.failed(exc)
            return
        if shop != self.shop:
            return  # another shop was picked meanwhile: its own check follows
        self._empty = not anyone
        if not anyone and not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._status, NO_PROFILES_HINT, "yellow")

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
        settings = self.settings  # the shop's: taken once, whatever is picked meanwhile
        region = settings.identity.region
        try:
            with self.engine().connect() as conn:
                found = find_profiles(
                    conn, query, shop=settings.shop, region=region, limit=RESULT_LIMIT
                )
        except Exception as exc:
            self.failed(exc)
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
                        local_time(match.last_order_at, self.tz, "%Y-%m-%d"),
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

    def show_failure(self, exc: BaseException, message: str) -> None:
        self._status(message, "bold red")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                CustomerProfileScreen(
                    self.runtime,
                    int(event.row_key.value),
                    clock=self.clock,
                    shop=self.shop,
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


class CustomerProfileScreen(StoreScreen):
    """One person, whole: identity, consent, purchases, points, sources, merges."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        profile_id: int,
        *,
        clock: Clock | None = None,
        shop: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock)
        # A profile of this shop only (None: the only one configured).
        self.settings = runtime.crm_settings(shop)
        self.shop = self.settings.shop
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

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def reload(self) -> None:
        # On mount and whenever something was committed: the person as they are now
        # (a redraw only when something about them changed).
        self._load()

    @work(thread=True, exclusive=True, group="profile-load")
    def _load(self) -> None:
        worker = get_current_worker()
        try:
            with self.engine().connect() as conn:
                view = load_profile_view(
                    conn,
                    self.profile_id,
                    self.clock(),
                    self.settings.points,
                    shop=self.settings.shop,
                    currency=self.settings.currency,
                )
        except (DataError, UnknownProfileError) as exc:
            if not worker.is_cancelled:
                message = f"{exc}: it may have been merged into another. Escape to go back."
                self.app.call_from_thread(self._fail, message)
        except Exception as exc:
            self.failed(exc)
        else:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._show, view)

    def _show(self, view: ProfileView) -> None:
        if view == self.view:
            return
        self.view = view
        today = self.clock().astimezone(self.tz).date()
        self.query_one("#body", Static).update(render_profile_view(view, today, self.tz))

    def _fail(self, message: str) -> None:
        self.query_one("#body", Static).update(Text(message, style="bold red"))

    def show_failure(self, exc: BaseException, message: str) -> None:
        self._fail(message)

    def action_reload(self) -> None:
        self._load()
