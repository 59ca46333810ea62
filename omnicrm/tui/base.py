"""What every screen of the terminal UI shares: the store, the clock and store errors.

`StoreScreen` is the one base of the screens over the store. It tells times in the
shop's zone, reads "now" from one clock (the app shell's, which tests fix), reloads when
the store changed (the app shell's watch posts `StoreChanged`) and when it comes back to
the front, and turns a failure to read the store into one explanation
(`describe_failure`). `watch_store` is the one poller of the store: the app shell runs
it, and so does a screen shown on its own that was given a ``poll_interval``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from textual import events, work
from textual.screen import Screen
from textual.worker import get_current_worker

from omnicrm.app.runtime import Runtime
from omnicrm.core.store import failures
from omnicrm.errors import ConfigError, StoreError
from omnicrm.render import zone_name
from omnicrm.tui.data import Reader, ShopSwitched, StoreChanged, shop_label

Clock = Callable[[], dt.datetime]

STYLESHEET = Path(__file__).with_name("omnicrm.tcss")
"""Every screen's styles (the app and each screen load it, so a screen shown on its own
looks as it does in the app)."""


def utc_now() -> dt.datetime:
    """The default clock of the UI (tests inject a fixed one)."""
    return dt.datetime.now(dt.UTC)


def describe_failure(runtime: Runtime, exc: BaseException) -> str:
    """What went wrong reading the store, and what the operator can do about it.

    The store is named by its URL with the password hidden; a database error by its
    driver's first line only (never the values of a record).
    """
    try:
        url = failures.shown(failures.parse_url(runtime.config.store_url))
    except Exception:
        url = "(unreadable URL)"
    where = runtime.config.path or "omnicrm.toml"
    if isinstance(exc, ConfigError):
        return f"{exc}. Check [store] url in {where}."
    if isinstance(exc, StoreError | DBAPIError):
        if isinstance(exc, StoreError):
            detail = exc.cause
        else:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        lowered = detail.lower()
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return f"The store at {url} has no omnicrm tables yet: run `omnicrm init`."
        return (
            f"Cannot read the store at {url}: {detail}. Check [store] url in {where} "
            "and that the database is running; retrying."
        )
    first = str(exc).strip().splitlines()
    return f"Reading the store at {url} failed: {type(exc).__name__}: {first[0] if first else ''}"


def watch_store(
    reader: Reader,
    interval: float,
    stop: threading.Event,
    *,
    changed: Callable[[], object],
    lost: Callable[[BaseException], object],
    back: Callable[[], object],
) -> None:
    """Ask ``reader`` every ``interval`` seconds whether anything was committed, until
    ``stop`` is set or the calling worker is cancelled (call from a thread worker).

    ``changed`` is called on each commit seen (and on the first look), ``lost`` once when
    the store stops answering, ``back`` once when it answers again.
    """
    worker = get_current_worker()
    failing = False
    while not worker.is_cancelled and not stop.is_set():
        try:
            moved = reader.changed()
        except Exception as exc:
            if not failing:
                lost(exc)
            failing = True
        else:
            if failing:
                back()
                failing = False
            if moved:
                changed()
        stop.wait(interval)


class StoreScreen(Screen[None]):
    """A screen over the store, with times in the shop's zone.

    Subclasses say how they load in `reload` (from a thread worker: never block the UI
    thread on the store) and where a failure is written in `show_failure`. The header's
    subtitle says what the screen shows (``heading``), in which shop (the one the
    operator picked, when there are several) and in which time zone. Textual
    calls the handler of every class in the MRO, so a subclass's own ``on_mount`` runs
    before this one's without calling it, and `StoreChanged` and resume are left here.
    ``clock`` overrides the app shell's clock; ``poll_interval`` makes a screen shown
    without the app shell watch the store itself.
    """

    CSS_PATH: ClassVar[str | Path | None] = STYLESHEET
    heading = ""  # what the screen shows, first in the header's subtitle

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.tz = ZoneInfo(runtime.config.scheduler.timezone)
        self.zone_label = f"times in {zone_name(self.tz)}"
        self.sub_title = self.zone_label  # the header says which zone
        self.several_shops = len(runtime.config.all_shops()) > 1
        self.live = False  # something shown counts with the clock: reload every second
        self._given_clock = clock
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._behind = False  # another screen is (or was) in front of this one

    # -- the clock ---------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """What "now" is: the clock given, else the app shell's, else the wall clock."""
        if self._given_clock is not None:
            return self._given_clock
        found = getattr(self.app, "clock", None)
        return found if callable(found) else utc_now

    # -- the shop ----------------------------------------------------------------------

    @property
    def app_shop(self) -> str | None:
        """The shop the operator picked in the app shell (None: no shell picks one)."""
        found = getattr(self.app, "shop", None)
        return found if isinstance(found, str) else None

    def shop_label(self, shop: str) -> str:
        """``shop`` as the UI names it: its display name, with its id."""
        return shop_label(shop, self.runtime.config.all_shops()[shop].name)

    def shop_heading(self) -> str:
        """The shop part of the subtitle: the picked shop, when there are several
        (a screen of one shop's data names its own)."""
        shop = self.app_shop
        return "" if shop is None else self.heading_for(shop)

    def heading_for(self, shop: str) -> str:
        """'shop NAME (ID)', or nothing when there is one shop (it needs no naming)."""
        return f"shop {self.shop_label(shop)}" if self.several_shops else ""

    def show_heading(self) -> None:
        """Write the header's subtitle: what is shown, in which shop, which time zone."""
        parts = (self.heading, self.shop_heading(), self.zone_label)
        self.sub_title = " · ".join(part for part in parts if part)

    # -- the store ---------------------------------------------------------------------

    @property
    def reader(self) -> Reader | None:
        """The app shell's reader of the store, once it has opened it."""
        found = getattr(self.app, "reader", None)
        return found if isinstance(found, Reader) else None

    def engine(self, wait: float = 5.0) -> Engine:
        """The engine to read through: the app shell's reader's (on SQLite a read-only
        connection) when there is one, else the runtime's store.

        Call from a worker only: it may wait up to ``wait`` seconds for the shell to
        finish opening the store (so two threads never open it at once), and the
        runtime's store opens (and migrates) on first use.
        """
        deadline = time.monotonic() + wait
        while self._in_shell() and self.reader is None and time.monotonic() < deadline:
            time.sleep(0.05)
        reader = self.reader
        return reader.engine if reader is not None else self.runtime.store.engine

    def _in_shell(self) -> bool:
        # The app shell opens and watches the store; any other app leaves it to the screen.
        return hasattr(self.app, "reader")

    def reload(self) -> None:
        """Load what the screen shows again (it changes only what differs)."""

    def failed(self, exc: BaseException) -> None:
        """Show that reading the store failed (call from the worker that failed)."""
        if get_current_worker().is_cancelled or self._stop.is_set():
            return
        message = describe_failure(self.runtime, exc)
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            self.app.call_from_thread(self.show_failure, exc, message)

    def show_failure(self, exc: BaseException, message: str) -> None:
        """Write ``message`` where the screen shows what went wrong; by default the app
        shell is told the store is lost (it explains, and watches for it coming back)."""
        lost = getattr(self.app, "store_lost", None)
        if callable(lost):
            lost(exc)

    # -- when to reload ----------------------------------------------------------------

    def on_mount(self) -> None:
        # A live run's "took" keeps counting even while nothing is committed (a sync
        # waiting out a rate limit): reload once a second while one is shown.
        self.show_heading()
        self.set_interval(1.0, self._tick)
        if self._poll_interval is not None and not self._in_shell():
            self._watch(self._poll_interval)
        self.reload()

    def on_unmount(self) -> None:
        self._stop.set()

    def on_store_changed(self, _message: StoreChanged) -> None:
        self.reload()

    def on_shop_switched(self, _message: ShopSwitched) -> None:
        # The operator picked another shop: say so, and show that shop's data.
        self.show_heading()
        self.reload()

    def on_screen_suspend(self, _event: events.ScreenSuspend) -> None:
        self._behind = True

    def on_screen_resume(self, _event: events.ScreenResume) -> None:
        # The app shell tells only the screen in front of a commit (or of another shop
        # picked): one coming back to the front may have missed some.
        self.show_heading()
        if self._behind:
            self._behind = False
            self.reload()

    def _tick(self) -> None:
        if self.live:
            self.reload()

    @work(thread=True, exclusive=True, group="store-watch", exit_on_error=False)
    def _watch(self, interval: float) -> None:
        """Watch the store as the app shell does, for a screen shown on its own."""
        while not self._stop.is_set():
            try:
                reader = Reader(self.runtime.store)
            except Exception as exc:
                self.failed(exc)
                self._stop.wait(interval)
                continue
            try:
                watch_store(
                    reader,
                    interval,
                    self._stop,
                    changed=lambda: self.post_message(StoreChanged()),
                    lost=self.failed,
                    back=lambda: self.post_message(StoreChanged()),
                )
            finally:
                reader.close()
            return

    # -- going back ----------------------------------------------------------------------

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


__all__ = [
    "STYLESHEET",
    "Clock",
    "StoreScreen",
    "describe_failure",
    "utc_now",
    "watch_store",
]
