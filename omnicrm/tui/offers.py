"""The on-site offers screens: what each offer of the shop did, live as events arrive.

`OffersScreen` lists the shop's offers (``[offers.NAME]``): impressions, clicks, CVR and
revenue of all its variants together, its state (running, not started, ended), segment
and rule. `OfferScreen` shows one offer: the figures per variant and each variant's
difference from the control with its 95% interval. Both read what
``omnicrm offers report`` prints, through the same call
(:func:`~omnicrm.engage.onsite.report.offer_report`) and the same formatting
(:mod:`omnicrm.render`), with the shop's ``conversion_days`` and the first variant by
name as the control until the operator picks another (``v`` on the detail, as
``--control`` does for the report).

Each commit the app shell sees reloads the screen in front: one load runs at a time and
one more waits at most, so events arriving faster than a report is read never pile up
loads. Rows are keyed by offer (or variant) and updated cell by cell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.text import Text
from sqlalchemy import Connection
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Header, Static

from omnicrm.app.runtime import Runtime
from omnicrm.engage.onsite.report import OfferResult, VariantResult, offer_report
from omnicrm.engage.onsite.settings import OfferSettings, OfferVariant
from omnicrm.engage.stats import Difference
from omnicrm.render import difference_text, local_time, percent
from omnicrm.tui.base import Clock, StoreScreen
from omnicrm.tui.footer import KeysFooter
from omnicrm.tui.segments import screen_shop
from omnicrm.tui.table import LiveTable

Cells = tuple[Text, ...]
Columns = tuple[tuple[str | Text, str], ...]


def _right(label: str) -> Text:
    return Text(label, justify="right")


# The figures first: at 80 columns the segment and the rule are off to the right.
OFFER_COLUMNS: Columns = (
    ("offer", "name"),
    ("state", "state"),
    (_right("impr."), "impressions"),
    (_right("clicks"), "clicks"),
    (_right("CVR"), "cvr"),
    (_right("revenue"), "revenue"),
    ("segment", "segment"),
    ("rule", "rule"),
)
VARIANT_COLUMNS: Columns = (
    ("variant", "variant"),
    (_right("impr."), "impressions"),
    (_right("people"), "people"),
    (_right("clicks"), "clicks"),
    (_right("CTR"), "ctr"),
    (_right("conv."), "conversions"),
    (_right("CVR"), "cvr"),
    (_right("revenue"), "revenue"),
)
DIFFERENCE_COLUMNS: Columns = (
    ("variant", "variant"),
    ("CTR", "ctr"),
    ("CVR", "cvr"),
    ("revenue/person", "revenue"),
)

EMPTY_HINT = (
    "No on-site offers in this shop: add [offers.NAME] to omnicrm.toml "
    "(docs/onsite.md). `omnicrm offers report` prints the same figures."
)


def _count(n: int) -> Text:
    return _right(f"{n:,}")


def revenue_text(amount: object) -> str:
    """Revenue as the offer report writes it (whole units, thousands separated)."""
    return f"{amount:,.0f}"


def rule_text(offer: OfferSettings) -> str:
    """The offer's rule in a few words: 'visit 2+, no purchase yet, /products/*, max 3
    in all'; 'every visit' when it has none."""
    parts = []
    if offer.min_visits > 1:
        parts.append(f"visit {offer.min_visits}+")
    if offer.no_purchase_yet:
        parts.append("no purchase yet")
    if offer.page is not None:
        parts.append(offer.page)
    if offer.max_impressions is not None:
        per = "a day" if offer.per == "day" else "in all"
        parts.append(f"max {offer.max_impressions} {per}")
    return ", ".join(parts) or "every visit"


def offer_state(offer: OfferSettings, now: dt.datetime, tz: ZoneInfo) -> Text:
    """Running (green), not started yet (yellow, with when it starts) or ended (dim)."""
    if offer.start is not None and now < offer.start:
        return Text(f"from {local_time(offer.start, tz, '%m-%d %H:%M')}", style="yellow")
    if offer.end is not None and now >= offer.end:
        return Text("ended", style="dim")
    return Text("running", style="green")


def next_change(offers: Mapping[str, OfferSettings], now: dt.datetime) -> dt.datetime | None:
    """The next start or end of any offer after ``now``: its state changes then."""
    times = [t for o in offers.values() for t in (o.start, o.end) if t is not None and t > now]
    return min(times, default=None)


@dataclass(frozen=True)
class OfferRow:
    """One offer as the list shows it: its settings, figures and state."""

    name: str
    offer: OfferSettings
    result: OfferResult
    cells: Cells


def offer_cells(name: str, offer: OfferSettings, result: OfferResult, state: Text) -> Cells:
    """The cells of one row of the offers list (every variant together)."""
    return (
        Text(name),
        state,
        _count(result.impressions),
        _count(result.clicks),
        _right(percent(result.cvr)),
        _right(revenue_text(result.revenue)),
        Text(offer.segment or "every visitor", style="" if offer.segment else "dim"),
        Text(rule_text(offer)),
    )


def variant_cells(found: VariantResult) -> Cells:
    """The figures of one variant, as the offer report's table has them."""
    return (
        Text(found.variant),
        _count(found.impressions),
        _count(found.people),
        _count(found.clicks),
        _right(percent(found.ctr)),
        _count(found.conversions),
        _right(percent(found.cvr)),
        _right(revenue_text(found.revenue)),
    )


def _difference(found: Difference | None, *, money: bool = False) -> Text:
    # The report's words; colour only where the interval leaves out zero.
    style = ""
    if found is not None and found.significant:
        style = "bold green" if found.value > 0 else "bold red"
    return Text(difference_text(found, money=money), style=style)


def difference_cells(found: VariantResult) -> Cells:
    """A variant's differences from the control, each with its interval."""
    return (
        Text(found.variant),
        _difference(found.ctr_difference),
        _difference(found.cvr_difference),
        _difference(found.revenue_difference, money=True),
    )


def load_offer_rows(
    conn: Connection,
    shop: str,
    offers: Mapping[str, OfferSettings],
    *,
    days: int,
    now: dt.datetime,
    tz: ZoneInfo,
) -> list[OfferRow]:
    """Every offer of ``shop`` by name, with its report over ``days``."""
    rows = []
    for name in sorted(offers):
        offer = offers[name]
        result = offer_report(conn, shop, name, offer, days=days)
        rows.append(
            OfferRow(
                name, offer, result, offer_cells(name, offer, result, offer_state(offer, now, tz))
            )
        )
    return rows


def show_rows(
    table: DataTable[Any],
    shown: dict[str, Cells],
    rows: Sequence[tuple[str, Cells]],
    columns: Columns,
) -> None:
    """Bring ``table`` in line with ``rows`` (key, cells), in their order, touching only
    the cells that differ from ``shown`` (what it holds now, kept up to date here)."""
    keys = [key for _, key in columns]
    wanted = {key for key, _ in rows}
    for gone in set(shown) - wanted:
        table.remove_row(gone)
        del shown[gone]
    for key, cells in rows:
        held = shown.get(key)
        if held is None:
            table.add_row(*cells, key=key)
        else:
            for column, before, after in zip(keys, held, cells, strict=True):
                if before != after:
                    table.update_cell(key, column, after, update_width=True)
        shown[key] = cells
    if list(shown) != [key for key, _ in rows]:
        # A row came back between others (an offer configured again): lay out in order.
        table.clear()
        shown.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
            shown[key] = cells


def _table(table_id: str, columns: Columns) -> LiveTable:
    table = LiveTable(id=table_id, cursor_type="row", zebra_stripes=True)
    for label, key in columns:
        table.add_column(label, key=key)
    return table


class _ReportScreen(StoreScreen):
    """A screen over the offer report of one shop: loads queue (one runs, one waits)."""

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
        self._loading = threading.Lock()
        self._queued = False
        self._timer: Any = None  # reloads when an offer starts or ends
        self._held: dict[str, dict[str, Cells]] = {}  # each table's rows as shown
        self.loads = 0  # reports shown: for tests

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    @property
    def offers(self) -> dict[str, OfferSettings]:
        return self.runtime.config.all_shops()[self.shop].offers

    @property
    def days(self) -> int:
        """The conversion window: the shop's, as `omnicrm offers report` takes it."""
        return self.runtime.config.all_shops()[self.shop].storefront.conversion_days

    def reload(self) -> None:
        if not self._queued:  # one waiting load answers every change seen before it
            self._queued = True
            self._load(self.shop)

    def action_reload(self) -> None:
        self.reload()

    def read(self, conn: Connection, shop: str, now: dt.datetime) -> Any:
        """What the screen shows, read in a worker."""
        raise NotImplementedError

    def show(self, found: Any) -> None:
        """Show what `read` found, on the UI thread."""
        raise NotImplementedError

    def fill(self, table_id: str, rows: Sequence[tuple[str, Cells]], columns: Columns) -> None:
        """Bring table ``table_id`` in line with ``rows`` (see `show_rows`)."""
        table: DataTable[Any] = self.query_one(f"#{table_id}", DataTable)
        show_rows(table, self._held.setdefault(table_id, {}), rows, columns)

    @work(thread=True, group="offers-load", exit_on_error=False)
    def _load(self, shop: str) -> None:
        with self._loading:
            self._queued = False
            if self._stop.is_set():
                return
            now = self.clock()
            try:
                with self.engine().connect() as conn:
                    found = self.read(conn, shop, now)
            except Exception as exc:  # shown; the next change or Reload tries again
                self.failed(exc)
                return
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            self.app.call_from_thread(self._shown, found, shop, now)

    def _shown(self, found: Any, shop: str, now: dt.datetime) -> None:
        if shop != self.shop:
            return
        self.loads += 1
        self.show(found)
        # The state column changes when an offer starts or ends, commit or not.
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        at = next_change(self.offers, now)
        if at is not None:
            delay = (at - now).total_seconds() + 0.5
            if delay < 86_400:  # a timer a day away is set again by a later load
                self._timer = self.set_timer(delay, self.reload)

    def show_failure(self, exc: BaseException, message: str) -> None:
        self.query_one("#status", Static).update(Text(message, style="bold red"))


class OffersScreen(_ReportScreen):
    """Every on-site offer of the shop with what it did; Enter opens one."""

    TITLE = "Offers"
    heading = "on-site offers"

    def compose(self) -> ComposeResult:
        yield Header()
        yield _table("offers", OFFER_COLUMNS)
        yield Static("Loading offers…", id="status")
        yield KeysFooter()

    def reload(self) -> None:
        picked = self.app_shop
        if picked is not None and picked != self.shop:
            # Another shop picked: its offers, from a clean table.
            self.shop = picked
            self.show_heading()
            self.query_one("#offers", DataTable).clear()
            self._held.clear()
        super().reload()

    def read(self, conn: Connection, shop: str, now: dt.datetime) -> list[OfferRow]:
        offers = self.runtime.config.all_shops()[shop].offers
        return load_offer_rows(conn, shop, offers, days=self.days, now=now, tz=self.tz)

    def show(self, found: list[OfferRow]) -> None:
        self.fill("offers", [(row.name, row.cells) for row in found], OFFER_COLUMNS)
        status = (
            f"{len(found)} offer(s); conversions: orders from any channel within "
            f"{self.days} days of the first impression. Enter opens one."
            if found
            else EMPTY_HINT
        )
        self.query_one("#status", Static).update(status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(
                OfferScreen(self.runtime, event.row_key.value, clock=self.clock, shop=self.shop)
            )


def variant_text(variant: OfferVariant) -> str:
    """'B (weight 1: coupon WELCOME15, text 今だけ15%OFF)': its weight and what it
    changes of the offer."""
    changed = [
        f"{field} {value}"
        for field in ("coupon", "text", "image", "link")
        if (value := getattr(variant, field)) is not None
    ]
    what = f": {', '.join(changed)}" if changed else ""
    return f"{variant.name} (weight {variant.weight:g}{what})"


def about_text(name: str, offer: OfferSettings, now: dt.datetime, tz: ZoneInfo, days: int) -> Text:
    """What the offer is: its kind, state, text, coupon, audience, rule and period."""
    about = Text()
    about.append(name, style="bold")
    about.append(f"  {offer.kind}  ")
    about.append_text(offer_state(offer, now, tz))
    about.append(f"\ntext      {offer.text}")
    if offer.coupon:
        about.append(f"  (coupon {offer.coupon})")
    about.append(f"\nsegment   {offer.segment or 'every visitor'}")
    about.append(f"\nrule      {rule_text(offer)}")
    start = local_time(offer.start, tz) if offer.start else "always"
    end = local_time(offer.end, tz) if offer.end else "open-ended"
    about.append(f"\nperiod    {start} to {end}")
    about.append(f"\nvariants  {', '.join(variant_text(v) for v in offer.all_variants())}")
    about.append(
        f"\nA conversion is an order from any channel within {days} days of a person's "
        "first impression.",
        style="dim",
    )
    return about


def next_control(variants: Sequence[str], current: str | None) -> str | None:
    """The variant after ``current`` by name, round to the first; None without variants.
    (The report's default control is the first by name: from there ``v`` walks on.)"""
    names = sorted(variants)
    if not names:
        return None
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]


class OfferScreen(_ReportScreen):
    """One offer: each variant's figures and its difference from the control; ``v``
    makes the next variant (by name) the control."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("v", "next_control", "Control")]

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
        shop: str | None = None,
        control: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock, poll_interval=poll_interval, shop=shop)
        self.offer_name = name
        self.title = f"Offer {name}"
        self.control = control  # None: the report's default, the first variant by name
        self.result: OfferResult | None = None  # what is shown, once loaded

    def action_next_control(self) -> None:
        offer = self.offers.get(self.offer_name)
        if offer is None:
            return
        current = self.result.control if self.result is not None else self.control
        chosen = next_control([v.name for v in offer.all_variants()], current)
        if chosen is not None and chosen != current:
            self.control = chosen
            self.reload()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static(f"Loading offer {escape(self.offer_name)}…", id="about")
            yield _table("variants", VARIANT_COLUMNS)
            yield Static("", id="compared")
            yield _table("differences", DIFFERENCE_COLUMNS)
            yield Static("", id="status")
        yield KeysFooter()

    def read(
        self, conn: Connection, shop: str, now: dt.datetime
    ) -> tuple[Text, OfferResult] | None:
        offer = self.runtime.config.all_shops()[shop].offers.get(self.offer_name)
        if offer is None:  # opened by name for a shop that has no such offer
            return None
        about = about_text(self.offer_name, offer, now, self.tz, self.days)
        names = {v.name for v in offer.all_variants()}
        # A control the config no longer has (the offer edited meanwhile): the default.
        control = self.control if self.control in names else None
        return about, offer_report(
            conn, shop, self.offer_name, offer, days=self.days, control=control
        )

    def show(self, found: tuple[Text, OfferResult] | None) -> None:
        if found is None:
            missing = f"{self.shop_label(self.shop)} has no offer {self.offer_name}. Esc goes back."
            self.query_one("#about", Static).update(Text(missing, style="bold red"))
            return
        about, result = found
        self.result = result
        self.query_one("#about", Static).update(about)
        self.fill(
            "variants", [(v.variant, variant_cells(v)) for v in result.variants], VARIANT_COLUMNS
        )
        others = [v for v in result.variants if v.variant != result.control]
        self.fill(
            "differences", [(v.variant, difference_cells(v)) for v in others], DIFFERENCE_COLUMNS
        )
        self.query_one("#compared", Static).update(
            f"vs control {result.control} (95% interval; * leaves out 0)"
            if others
            else "One variant: nothing to compare it with."
        )
        self.query_one("#status", Static).update("")
