"""The campaign screens: the shop's campaigns with their figures, and one campaign's
report, live while it sends.

`CampaignsScreen` lists the campaigns of the shop (name, medium, state, and planned,
sent, suppressed, opened, clicked, converted, from the same figures as ``omnicrm
campaigns report``); `CampaignScreen` shows one campaign's per-variant report as
``omnicrm campaigns report`` prints it (:func:`omnicrm.views.campaign_report`). Both
reload when the store changed, so a campaign being sent counts up as its messages go.

``s`` sends the campaign under the cursor (or shown) after asking: it is planned if it
is not yet (its recipients fixed), then sent through the shop's dispatcher by a worker
of the app, through the same calls as ``omnicrm campaigns send``; ``p`` pauses a
sending campaign or resumes a paused one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from omnicrm.app.runtime import Runtime
from omnicrm.engage import campaigns
from omnicrm.engage.results import Results, results_of
from omnicrm.render import ZONED, local_time
from omnicrm.tui.base import StoreScreen
from omnicrm.tui.connections import ConfirmScreen
from omnicrm.tui.footer import KeysFooter
from omnicrm.tui.segments import screen_shop
from omnicrm.tui.table import LiveTable, show_rows
from omnicrm.views import campaign_report

COLUMNS: tuple[tuple[str | Text, str], ...] = (
    ("campaign", "name"),
    ("medium", "medium"),
    ("state", "state"),
    (Text("planned", justify="right"), "planned"),
    (Text("sent", justify="right"), "sent"),
    (Text("suppr.", justify="right"), "suppressed"),
    (Text("opened", justify="right"), "opened"),
    (Text("clicked", justify="right"), "clicked"),
    (Text("conv.", justify="right"), "converted"),
)
WIDTHS = (20, 6, 9, 8, 7, 7, 7, 7, 6)

SENDABLE = ("draft", "scheduled", "planned", "sending")
"""The states a campaign can be sent from (a paused one is resumed first)."""

EMPTY_HINT = (
    "No campaigns in this shop yet. Create one with `omnicrm campaigns create NAME "
    "--segment SEGMENT --template FILE`."
)

_STATE_STYLES = {
    "sending": "bold yellow",
    "done": "green",
    "paused": "magenta",
    "cancelled": "dim",
    "scheduled": "cyan",
}

Cells = tuple[Text, ...]


@dataclass(frozen=True)
class CampaignRow:
    """One campaign of the list, with its figures."""

    name: str
    medium: str
    state: str
    planned: int
    sent: int
    suppressed: int
    opened: int | None  # None: not tracked
    clicked: int | None
    converted: int


def row_of(found: Results) -> CampaignRow:
    """The list's figures of one campaign, from its report (every group, hold-out too,
    for what was planned and suppressed; the variants' for what came back)."""
    c = found.campaign
    variants = [g for g in found.groups if g.name != campaigns.HOLDOUT]
    return CampaignRow(
        name=c.name,
        medium=c.medium.value,
        state=c.status,
        planned=sum(g.planned for g in found.groups),
        sent=sum(g.sent for g in found.groups),
        suppressed=sum(sum(g.suppressed.values()) for g in found.groups),
        opened=sum(g.opened for g in variants) if found.tracked else None,
        clicked=sum(g.clicked for g in variants) if found.tracked else None,
        converted=sum(g.converted for g in variants),
    )


def campaign_cells(row: CampaignRow) -> Cells:
    """The cells of one row of the list (pure: the same row, the same cells)."""

    def number(n: int | None) -> Text:
        if n is None:
            return Text("-", style="dim", justify="right")
        return Text(f"{n:,}", justify="right")

    return (
        Text(row.name),
        Text(row.medium),
        Text(row.state, style=_STATE_STYLES.get(row.state, "")),
        number(row.planned),
        number(row.sent),
        number(row.suppressed),
        number(row.opened),
        number(row.clicked),
        number(row.converted),
    )


def load_results(runtime: Runtime, conn: Any, shop: str, name: str | None = None) -> list[Results]:
    """The report of each of ``shop``'s campaigns (or of the one named), oldest first."""
    chosen = runtime.shop(shop)
    base_url = runtime.config.web.base_url
    listed = (
        [campaigns.get(conn, name, shop=shop)]
        if name is not None
        else campaigns.list_campaigns(conn, shop=shop)
    )
    return [results_of(conn, c, chosen.messaging, base_url) for c in listed]


def send_campaign(runtime: Runtime, shop: str, name: str, now: dt.datetime) -> str:
    """Plan ``shop``'s campaign ``name`` if it is not yet, then send it; what happened,
    in a line (call from a worker: it sends every message before it returns)."""
    from omnicrm.engage.scheduled import start

    sender = runtime.sender(shop)
    planned = start(sender, name, now=now)
    result = sender.send(name)
    said = f"{name}: sent {result.sent:,}"
    if planned is not None:
        said = f"{name}: planned {planned.total:,}, sent {result.sent:,}"
    if result.rejected or result.failed:
        said += f", rejected {result.rejected:,}, failed {result.failed:,}"
    suppressed = sum(result.suppressed.values())
    if planned is not None:
        suppressed += sum(planned.suppressed.values())  # at planning: the hold-out group too
    if suppressed:
        said += f", suppressed {suppressed:,}"
    if result.waiting_until is not None:
        zone = ZoneInfo(runtime.shop(shop).timezone)
        until = local_time(result.waiting_until, zone, ZONED)
        said += (
            f"; quiet hours: the rest goes by itself from {until} while `omnicrm run` runs "
            "(else send it (s) then)"
            if result.scheduled
            else f"; quiet hours: send the rest (s) from {until}"
        )
    elif result.stopped:
        said += f"; stopped: the campaign is {result.stopped}"
    return said


class _CampaignActions(StoreScreen):
    """What both campaign screens do: show one shop's campaigns (the one given, else as
    the app shell picks), send them (after asking), pause and resume them."""

    def __init__(self, runtime: Runtime, *, shop: str | None = None, **options: Any) -> None:
        super().__init__(runtime, **options)  # clock, poll_interval: see StoreScreen
        self.shop = screen_shop(runtime, shop)
        self.loads = 0  # how many times it showed what it loaded: for tests

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def ask_to_send(self, name: str, state: str) -> None:
        if state == "paused":
            self.notify(f"{name} is paused: resume it (p) to send the rest", severity="warning")
            return
        if state not in SENDABLE:
            self.notify(f"{name} is {state}: nothing to send", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_send(name)

        what = "the rest of it" if state in ("planned", "sending") else "it to its segment"
        self.app.push_screen(
            ConfirmScreen(
                f"Send campaign {name} now?\n\nThis plans {what} (each consenting "
                "recipient once) and hands the messages to the shop's dispatcher."
            ),
            answered,
        )

    def start_send(self, name: str) -> None:
        """Send ``name`` in a worker of the app: it goes on if this screen is left."""
        shop, runtime, clock = self.shop, self.runtime, self.clock
        app = self.app

        def run() -> None:
            try:
                said = send_campaign(runtime, shop, name, clock())
            except Exception as exc:
                first = str(exc).strip().splitlines()
                app.notify(
                    f"{type(exc).__name__}: {first[0] if first else ''}",
                    title=f"campaign {name} not sent",
                    severity="error",
                )
                return
            app.notify(said, title="campaign sent")

        self.notify(f"sending campaign {name}…")
        worker = app.run_worker(run, thread=True, group="actions", exit_on_error=False)
        if hasattr(app, "last_action"):
            app.last_action = worker

    def toggle_pause(self, name: str, state: str) -> None:
        """Pause ``name`` (the sender stops after the message in hand), or resume it."""
        action = "resume" if state == "paused" else "pause"
        shop, runtime, now = self.shop, self.runtime, self.clock()
        app = self.app

        def run() -> None:
            try:
                with runtime.store.engine.begin() as conn:
                    campaign = campaigns.get(conn, name, shop=shop)
                    moved = campaigns.move(conn, campaign, action, now=now)
            except Exception as exc:
                app.notify(str(exc), title=f"campaign {name}", severity="warning")
                return
            app.notify(f"{name}: {moved}")

        worker = app.run_worker(run, thread=True, group="actions", exit_on_error=False)
        if hasattr(app, "last_action"):
            app.last_action = worker


class CampaignsScreen(_CampaignActions):
    """The shop's campaigns with their figures, live."""

    TITLE = "Campaigns"
    heading = "campaigns"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "send", "Send"),
        Binding("p", "pause", "Pause/resume"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        super().__init__(runtime, **options)
        self.rows: dict[str, CampaignRow] = {}
        self._shown: dict[str, Cells] = {}
        self._queued = False

    def compose(self) -> ComposeResult:
        yield Header()
        table = LiveTable(id="campaigns", cursor_type="row", zebra_stripes=True)
        for (label, key), width in zip(COLUMNS, WIDTHS, strict=True):
            table.add_column(label, key=key, width=width)
        yield table
        yield Static("Loading campaigns…", id="status")
        yield KeysFooter()

    def reload(self) -> None:
        picked = self.app_shop
        if picked is not None and picked != self.shop:
            self.shop = picked
            self.show_heading()
            self.query_one("#campaigns", DataTable).clear()
            self._shown.clear()
            self.rows.clear()
        if not self._queued:  # one queued load answers every change seen before it
            self._queued = True
            self._load()

    @work(thread=True, group="campaigns-load", exit_on_error=False)
    def _load(self) -> None:
        self._queued = False
        shop = self.shop
        try:
            with self.engine().connect() as conn:
                rows = [row_of(found) for found in load_results(self.runtime, conn, shop)]
        except Exception as exc:
            self.failed(exc)
            return
        shown = [(row, campaign_cells(row)) for row in rows]
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            self.app.call_from_thread(self._show, shown, shop)

    def _show(self, shown: list[tuple[CampaignRow, Cells]], shop: str) -> None:
        if shop != self.shop:
            return
        self.loads += 1
        table: DataTable[Any] = self.query_one("#campaigns", DataTable)
        keys = [key for _, key in COLUMNS]
        show_rows(table, self._shown, [(row.name, cells) for row, cells in shown], keys)
        self.rows = {row.name: row for row, _ in shown}
        status = (
            f"{len(shown)} campaign(s). Enter opens one; s sends the one under the cursor."
            if shown
            else EMPTY_HINT
        )
        self.query_one("#status", Static).update(status)

    def show_failure(self, exc: BaseException, message: str) -> None:
        self.query_one("#status", Static).update(Text(message, style="bold red"))

    def _current(self) -> CampaignRow | None:
        table: DataTable[Any] = self.query_one("#campaigns", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key) if key is not None else None

    def action_send(self) -> None:
        row = self._current()
        if row is not None:
            self.ask_to_send(row.name, row.state)

    def action_pause(self) -> None:
        row = self._current()
        if row is not None:
            self.toggle_pause(row.name, row.state)

    def action_reload(self) -> None:
        self.reload()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                CampaignScreen(self.runtime, event.row_key.value, clock=self.clock, shop=self.shop)
            )


class CampaignScreen(_CampaignActions):
    """One campaign's report, as ``omnicrm campaigns report`` prints it, live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("s", "send", "Send"),
        Binding("p", "pause", "Pause/resume"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, runtime: Runtime, name: str, **options: Any) -> None:
        super().__init__(runtime, **options)
        self.campaign_name = name
        self.title = f"Campaign {name}"
        self.found: Results | None = None  # what is shown, once loaded

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(f"Loading campaign {self.campaign_name}…", id="report")
        yield KeysFooter()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="campaign-load", exit_on_error=False)
    def _load(self) -> None:
        try:
            with self.engine().connect() as conn:
                (found,) = load_results(self.runtime, conn, self.shop, self.campaign_name)
        except campaigns.CampaignError as exc:
            with contextlib.suppress(RuntimeError):
                self.app.call_from_thread(
                    self.show_failure, exc, f"{exc}. Press Escape to go back."
                )
            return
        except Exception as exc:
            self.failed(exc)
            return
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self._show, found)

    def _show(self, found: Results) -> None:
        self.loads += 1
        if found == self.found:
            return
        self.found = found
        currency = self.runtime.shop(self.shop).currency
        parts = campaign_report(found, currency, self.tz, now=self.clock())
        self.query_one("#report", Static).update(Group(*parts))

    def show_failure(self, exc: BaseException, message: str) -> None:
        self.query_one("#report", Static).update(Text(message, style="bold red"))

    def action_send(self) -> None:
        if self.found is not None:
            self.ask_to_send(self.campaign_name, self.found.campaign.status)

    def action_pause(self) -> None:
        if self.found is not None:
            self.toggle_pause(self.campaign_name, self.found.campaign.status)

    def action_reload(self) -> None:
        self.found = None
        self._load()


__all__ = [
    "CampaignRow",
    "CampaignScreen",
    "CampaignsScreen",
    "campaign_cells",
    "load_results",
    "row_of",
    "send_campaign",
]
