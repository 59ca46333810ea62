"""The omnicrm terminal UI: the app shell, its keys, its command palette and its actions.

The store is opened in a worker; one more worker then polls the cheap change check
(`watch_store`, every ``poll_interval`` seconds) and tells the active screen when
something was committed, so screens reload only then. Actions (sync, full resync, pause, resume) run
in thread workers through the same engine and store calls as the CLI.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, get_current_worker

from omnicrm.app.config import Connection
from omnicrm.app.runtime import Runtime
from omnicrm.core.store import RunStatus
from omnicrm.errors import LockedError
from omnicrm.render import zone_name
from omnicrm.tui.base import STYLESHEET, Clock, describe_failure, utc_now, watch_store
from omnicrm.tui.connections import (
    ConfirmScreen,
    ConnectionScreen,
    ConnectionsScreen,
    MessageScreen,
    fmt_seconds,
)
from omnicrm.tui.data import (
    Reader,
    ShopRow,
    ShopSwitched,
    StoreChanged,
    connection_rows,
    shop_label,
    shop_rows,
)
from omnicrm.tui.shops import ShopPicker

# Screens written alongside this one; the app offers them once their modules exist.
_OPTIONAL_SCREENS: dict[str, tuple[str, str]] = {
    "segments": ("omnicrm.tui.segments", "SegmentsScreen"),
    "customers": ("omnicrm.tui.customers", "CustomerLookupScreen"),
    "suggestions": ("omnicrm.tui.suggestions", "SuggestionsScreen"),
    "campaigns": ("omnicrm.tui.campaigns", "CampaignsScreen"),
    "offers": ("omnicrm.tui.offers", "OffersScreen"),
}


# The actions that show a list, and the mode each list is.
_LIST_ACTIONS = {
    "show_connections": "connections",
    "show_segments": "segments",
    "show_customers": "customers",
    "show_suggestions": "suggestions",
    "show_campaigns": "campaigns",
    "show_offers": "offers",
}

OPEN_RETRY = 3.0  # seconds between attempts to open a store that did not answer


def _optional_screen(mode: str) -> Callable[..., Screen[Any]] | None:
    module, name = _OPTIONAL_SCREENS[mode]
    if importlib.util.find_spec(module) is None:
        return None
    # Each is constructed as Screen(runtime, shop=SHOP).
    screen: Callable[..., Screen[Any]] = getattr(importlib.import_module(module), name)
    return screen


def _short(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


class OmnicrmApp(App[None]):
    """The operator's window into every connection (and, when present, segments,
    customers and campaigns). ``clock`` gives 'now' (tests fix it so screens render the same).

    ``shop`` is the shop whose segments and customers are shown first (by default the
    first by id); the operator picks another with the shop switcher (h, F5).
    """

    TITLE = "omnicrm"
    CSS_PATH = STYLESHEET
    BINDINGS: ClassVar[list[BindingType]] = [
        # F2-F4 also work where a text box has the focus (typing 'c' there types a c).
        Binding("c,f2", "show_connections", "Connections"),
        Binding("g,f3", "show_segments", "Segments"),
        Binding("l,f4", "show_customers", "Lookup"),
        Binding("d,f7", "show_suggestions", "Pairs"),
        Binding("m,f6", "show_campaigns", "Campaigns"),
        Binding("w,f8", "show_offers", "Offers"),  # w: Web接客, on-site offers
        Binding("h,f5", "pick_shop", "Shop"),
        Binding("q", "quit", "Quit"),
        # Where a text box has the focus 'q' types a q: the footer then offers Ctrl+Q.
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    class StoreReady(Message):
        def __init__(self, reader: Reader) -> None:
            super().__init__()
            self.reader = reader

    class StoreLost(Message):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    class StoreBack(Message):
        pass

    class Changed(Message):
        pass

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock = utc_now,
        poll_interval: float = 0.5,
        shop: str | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        shops = runtime.config.all_shops()
        # A shop named that is not configured is a ConfigError naming the shops.
        self.shop = runtime.config.shop(shop).id if shop is not None else min(shops)
        self.several_shops = len(shops) > 1
        self.clock = clock
        self.poll_interval = poll_interval
        self.reader: Reader | None = None
        self.last_action: Worker[Any] | None = None  # the latest sync or pause, for tests
        self._stopping = threading.Event()
        self._lost: MessageScreen | None = None  # says the store does not answer
        self._screens = {mode: _optional_screen(mode) for mode in _OPTIONAL_SCREENS}
        # Every time on every screen is in the shop's zone: the header says which.
        self.zone_label = f"times in {zone_name(ZoneInfo(runtime.config.scheduler.timezone))}"
        self._show_heading()

    # -- garbage collection ----------------------------------------------------------

    # A full collection walks every tracked object (hundreds of thousands once Textual,
    # SQLAlchemy and the screens are up) and stalls the event loop for 100-400 ms, so a
    # key pressed then waits. What exists once the app has started lives as long as the
    # app: it is frozen out of collections; the collector's own full collections are
    # put off, and the full collection that catches the garbage made since runs when the
    # operator has not touched a key for a while (and at least every few minutes).
    _IDLE_BEFORE_COLLECT = 2.0  # seconds without input
    _COLLECT_EVERY = 30.0
    _COLLECT_AT_LEAST_EVERY = 300.0

    def _calm_collector(self) -> None:
        self._last_input = time.monotonic()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], 1000)
        self._full_collection()
        self.set_interval(self._COLLECT_EVERY, self._collect_when_idle)

    def _full_collection(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._collected_at = time.monotonic()

    def _collect_when_idle(self) -> None:
        now = time.monotonic()
        if (
            now - self._last_input >= self._IDLE_BEFORE_COLLECT
            or now - self._collected_at >= self._COLLECT_AT_LEAST_EVERY
        ):
            self._full_collection()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self._last_input = time.monotonic()
        await super().on_event(event)

    # -- start and watch -------------------------------------------------------------

    def on_mount(self) -> None:
        # Each screen reads the app's clock, so one fixed clock fixes every screen.
        self.add_mode("connections", lambda: ConnectionsScreen(self.runtime))
        for mode, screen in self._screens.items():
            if screen is not None:
                self.add_mode(mode, self._factory(screen))
        self.switch_mode("connections")
        config = self.runtime.config
        if not config.connections and not config.invalid:
            where = config.path or "omnicrm.toml"
            empty = MessageScreen(
                "No connections configured",
                "Run `omnicrm init` to write an omnicrm.toml, then add a connection to it "
                f"([connections.NAME] with its channel and settings) and start again.\n\n"
                f"config: {where}",
            )
            self.push_screen(empty)
        self._open_store()
        self._calm_collector()

    def _factory(self, screen: Callable[..., Screen[Any]]) -> Callable[[], Screen[Any]]:
        # Made when first shown, in the shop picked by then; it follows later picks.
        return lambda: screen(self.runtime, shop=self.shop)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_store(self) -> None:
        """Open (and migrate) the store, retrying every few seconds until it answers."""
        worker = get_current_worker()
        failed = False
        while not worker.is_cancelled and not self._stopping.is_set():
            try:
                reader = Reader(self.runtime.store)
                reader.changed()  # a first query: an unreachable server fails here
            except Exception as exc:
                if not failed:
                    self.post_message(self.StoreLost(exc))
                failed = True
                self._stopping.wait(OPEN_RETRY)  # read at each use: tests shorten it
                continue
            if failed:
                self.post_message(self.StoreBack())
            self.post_message(self.StoreReady(reader))
            return

    def on_omnicrm_app_store_ready(self, message: OmnicrmApp.StoreReady) -> None:
        self.reader = message.reader
        self.screen.post_message(StoreChanged())
        self._watch(message.reader)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self, reader: Reader) -> None:
        try:
            watch_store(
                reader,
                self.poll_interval,
                self._stopping,
                changed=lambda: self.post_message(self.Changed()),
                lost=lambda exc: self.post_message(self.StoreLost(exc)),
                back=lambda: self.post_message(self.StoreBack()),
            )
        finally:
            reader.close()

    def on_omnicrm_app_changed(self, _message: OmnicrmApp.Changed) -> None:
        self.screen.post_message(StoreChanged())

    def on_omnicrm_app_store_lost(self, message: OmnicrmApp.StoreLost) -> None:
        self.store_lost(message.error)

    def store_lost(self, error: BaseException) -> None:
        """Say the store does not answer, until it does again (the watch tells)."""
        if self._lost is not None:
            return
        self._lost = MessageScreen(
            "The store is unreachable",
            f"{describe_failure(self.runtime, error)}\n\nThis message goes away by itself "
            "once the store answers.",
        )
        self.push_screen(self._lost)

    def on_omnicrm_app_store_back(self, _message: OmnicrmApp.StoreBack) -> None:
        lost, self._lost = self._lost, None
        if lost is not None and self.screen is lost:
            self.pop_screen()
        self.screen.post_message(StoreChanged())

    def on_unmount(self) -> None:
        gc.unfreeze()
        gc.set_threshold(*self._thresholds)
        self._stopping.set()  # wakes the watch worker, which closes the reader

    # -- navigation ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_shop":  # one shop: nothing to pick, no key in the way
            return self.several_shops and not isinstance(self.screen, ModalScreen)
        mode = _LIST_ACTIONS.get(action)
        if mode is None:
            return True
        # Screens not built yet have no key in the footer and no command, and a dialog
        # is answered before going anywhere.
        if mode != "connections" and self._screens[mode] is None:
            return False
        return not isinstance(self.screen, ModalScreen)

    def show_list(self, mode: str) -> None:
        """Show the list ``mode`` names (connections, segments, customers, suggestions,
        campaigns, offers) itself, not a detail opened from it earlier: what was opened on
        top of it is closed."""
        if mode != "connections" and self._screens[mode] is None:
            return
        self.switch_mode(mode)
        # An explanation (no connections, store unreachable) stays until it is resolved.
        while len(self.screen_stack) > 1 and not isinstance(self.screen, MessageScreen):
            self.pop_screen()
        # The lookup opens ready to type, whatever had the focus there before.
        to_search = getattr(self.screen, "action_to_search", None)
        if callable(to_search):
            to_search()

    def go_back(self) -> None:
        """Esc: close the screen in front, or from a list's own screen go to the first."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "connections":
            self.show_list("connections")

    def action_show_connections(self) -> None:
        self.show_list("connections")

    def action_show_segments(self) -> None:
        self.show_list("segments")

    def action_show_customers(self) -> None:
        self.show_list("customers")

    def action_show_suggestions(self) -> None:
        self.show_list("suggestions")

    def action_show_campaigns(self) -> None:
        self.show_list("campaigns")

    def action_show_offers(self) -> None:
        self.show_list("offers")

    def open_connection(self, name: str) -> None:
        """Show one connection's detail."""
        self.show_list("connections")
        self.push_screen(ConnectionScreen(self.runtime, name))

    # -- the shop ------------------------------------------------------------------------

    @property
    def shop_label(self) -> str:
        """The picked shop as the UI names it."""
        return shop_label(self.shop, self.runtime.config.all_shops()[self.shop].name)

    def _show_heading(self) -> None:
        # The subtitle of screens that write none of their own (an explanation).
        shop = f"shop {self.shop_label} · " if self.several_shops else ""
        self.sub_title = shop + self.zone_label

    def action_pick_shop(self) -> None:
        """Open the shop switcher (each shop with its connections in trouble)."""
        self.push_screen(
            ShopPicker(shop_rows(self.runtime.config), self.shop, self._shop_health),
            self._picked,
        )

    def _picked(self, shop: str | None) -> None:
        if shop is not None:
            self.switch_shop(shop)

    def _shop_health(self) -> list[ShopRow]:
        """Every shop with its connections in trouble (call from a worker)."""
        config = self.runtime.config
        if self.reader is None:
            return shop_rows(config)
        now = self.clock()
        return shop_rows(
            config, connection_rows(self.reader, config, now, self.runtime.host.channel_types)
        )

    def switch_shop(self, shop: str) -> None:
        """Work in ``shop``: the segments and the lookup show its data (each reloads when
        shown), and what was opened from them in the other shop (a segment, a profile)
        closes."""
        if shop == self.shop or shop not in self.runtime.config.all_shops():
            return
        self.shop = shop
        self._show_heading()
        while len(self.screen_stack) > 1 and getattr(self.screen, "shop", shop) != shop:
            self.pop_screen()
        self.screen.post_message(ShopSwitched())
        self.notify(f"now in shop {self.shop_label}")

    # -- actions -----------------------------------------------------------------------

    def _connection(self, name: str) -> Connection | None:
        connection = self.runtime.config.connections.get(name)
        if connection is None:
            error = self.runtime.config.invalid.get(name)
            self.notify(
                f"{name} cannot sync: {error or 'not in the config'}",
                title="Invalid connection",
                severity="error",
            )
        return connection

    def sync_connection(self, name: str, *, full: bool = False) -> None:
        """Start a sync of ``name`` in a worker, recorded with trigger 'tui'."""
        connection = self._connection(name)
        if connection is None:
            return
        self.notify(f"{'full resync' if full else 'sync'} of {name} started")
        self.last_action = self._sync(connection, full)

    @work(thread=True, group="actions", exit_on_error=False)
    def _sync(self, connection: Connection, full: bool) -> None:
        try:
            result = self.runtime.engine().sync(connection, full=full, trigger="tui")
        except LockedError as exc:
            # Not an error: another run (a scheduled one, another window's) is doing it.
            self.notify(
                f"{exc}: this sync was skipped; that run reads the same records",
                title=f"{connection.name}: skipped",
                severity="warning",
            )
            return
        except Exception as exc:
            self.notify(_short(exc), title=f"{connection.name}: sync failed", severity="error")
            return
        run = f"run {result.run_id}"
        if result.status is RunStatus.COMPLETE:
            self.notify(f"{connection.name}: {run} complete, {result.read:,} read")
        else:
            waited = f", waited {fmt_seconds(result.rate_limit_wait)}"
            self.notify(
                f"{connection.name}: {run} {result.status.value}{waited}: {result.error}",
                severity="error" if result.status is RunStatus.FAILED else "warning",
            )

    def confirm_full_resync(self, name: str) -> None:
        """Ask first: a full resync reads every record again from the start."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.sync_connection(name, full=True)

        self.push_screen(
            ConfirmScreen(
                f"Full resync of {name}?\n\nIt reads every record again from the start, "
                "which can take long and spend the platform's rate limit."
            ),
            answered,
        )

    def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume the schedule of ``name`` (the scheduler reads it each run)."""
        self.last_action = self._set_paused(name, paused)

    @work(thread=True, group="actions", exit_on_error=False)
    def _set_paused(self, name: str, paused: bool) -> None:
        try:
            self.runtime.store.set_paused(name, paused)
        except Exception as exc:
            self.notify(_short(exc), title=f"{name}: could not change", severity="error")
            return
        self.notify(f"{name}: schedule {'paused' if paused else 'resumed'}")

    # -- command palette ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Connections", "Every connection's health", self.action_show_connections
        )
        if self._screens["segments"] is not None:
            yield SystemCommand("Segments", "Segment counts", self.action_show_segments)
        if self._screens["customers"] is not None:
            yield SystemCommand("Customer lookup", "Find a customer", self.action_show_customers)
        if self._screens["suggestions"] is not None:
            yield SystemCommand(
                "Suggested pairs",
                "Records the rules refused for one reason: link or separate them",
                self.action_show_suggestions,
            )
        if self._screens["campaigns"] is not None:
            yield SystemCommand(
                "Campaigns", "Send campaigns and watch their reports", self.action_show_campaigns
            )
        if self._screens["offers"] is not None:
            yield SystemCommand(
                "On-site offers",
                "What each offer and variant did: impressions, clicks, CVR, revenue",
                self.action_show_offers,
            )
        if self.several_shops:
            yield SystemCommand("Switch shop", "Pick the shop to work in", self.action_pick_shop)
            for shop in shop_rows(self.runtime.config):
                # Listed on search only, as each connection's commands are.
                yield SystemCommand(
                    f"Shop {shop.label}",
                    "Work in this shop",
                    lambda shop_id=shop.id: self.switch_shop(shop_id),
                    discover=False,
                )
        for name in sorted(self.runtime.config.connections):
            for title, help_text, callback in self._connection_commands(name):
                # Listed on search only: 5 per connection would flood the empty palette.
                yield SystemCommand(title, help_text, callback, discover=False)

    def _connection_commands(self, name: str) -> list[tuple[str, str, Callable[[], None]]]:
        return [
            (f"Open {name}", "Run history, errors, cursors", lambda: self.open_connection(name)),
            (f"Sync {name} now", "Run a sync", lambda: self.sync_connection(name)),
            (
                f"Full resync {name}",
                "Read everything again (asks first)",
                lambda: self.confirm_full_resync(name),
            ),
            (f"Pause {name}", "Pause its schedule", lambda: self.set_paused(name, True)),
            (f"Resume {name}", "Resume its schedule", lambda: self.set_paused(name, False)),
        ]
