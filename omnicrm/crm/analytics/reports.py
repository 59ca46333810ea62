"""Reports over customers' purchases: LTV, cohorts, repeat rate, F2, retention, AOV, intervals.

Every report is a function of a SQLAlchemy ``Connection`` and a shop returning a
``Report``: a title, typed columns, rows and notes, which the CLI and the terminal UI
both render. A report is one shop's (a client business): its customers, its orders,
amounts in its currency and days in its time zone; nothing of another shop enters it.
Definitions (docs/reports.md has them for marketers):

- a *purchase* is an order that is paid or fulfilled, placed at or before ``now``, by a
  source customer who belongs to a profile (the profile is the customer);
- a *purchase day* is a shop-local calendar day with at least one purchase: two orders
  on one day are one purchase occasion for repeat, F2, retention and interval figures;
- a customer's *cohort* is the shop-local month of their first purchase;
- money is exact (``Decimal``); months and days are taken in the shop's time zone.

The work is done in SQL (grouping per customer and day, window functions), so only
small aggregated results reach Python, whatever the number of orders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import CTE, Connection, Subquery, and_, case, func, select

from omnicrm.core.store.schema import orders
from omnicrm.crm.analytics._sql import (
    TOKYO,
    LocalCalendar,
    ShopScope,
    customer_orders,
    display_name,
    is_purchase,
    local_date,
    local_day_number,
    mean_money,
    money,
    money_units,
    month_label,
    month_number,
    purchase_days,
    purchases_per_profile,
)
from omnicrm.crm.profiles import STORE_CHANNELS
from omnicrm.crm.schema import profiles

__all__ = [
    "Cell",
    "Column",
    "Kind",
    "Report",
    "average_order_value",
    "cohort_retention",
    "f2_conversion",
    "format_cell",
    "ltv_cohorts",
    "ltv_customers",
    "purchase_interval",
    "repeat_rate",
]

NO_PURCHASES = "no purchases yet: sync a connection and refresh the CRM first"


class Kind(StrEnum):
    """How a column's values are to be shown."""

    TEXT = "text"
    ID = "id"  # a whole number naming something (a profile): no thousands separators
    INT = "int"
    MONEY = "money"  # Decimal, exact
    RATIO = "ratio"  # float in 0..1, shown as a percentage
    NUMBER = "number"  # float
    DATE = "date"


Cell = str | int | float | Decimal | dt.date | None


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = Kind.TEXT


@dataclass(frozen=True)
class Report:
    """A small table any front end can render; ``parts`` are further tables under it."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()
    notes: tuple[str, ...] = ()
    parts: tuple[Report, ...] = field(default=())
    # Whose figures these are, and the currency of their amounts (None: not said).
    shop: str | None = None
    currency: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def empty(self) -> bool:
        """No rows here nor in any part: nothing to report yet."""
        return not self.rows and all(p.empty for p in self.parts)

    def records(self) -> list[dict[str, Cell]]:
        """Rows as dicts keyed by column name."""
        names = self.column_names
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def text_rows(self) -> list[tuple[str, ...]]:
        """Rows formatted for display (see ``format_cell``)."""
        kinds = [c.kind for c in self.columns]
        return [
            tuple(format_cell(v, k) for v, k in zip(row, kinds, strict=True)) for row in self.rows
        ]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; money is a decimal string so it stays exact."""
        kinds = {c.name: c.kind for c in self.columns}
        return {
            "title": self.title,
            "shop": self.shop,
            "currency": self.currency,
            "columns": [{"name": c.name, "kind": c.kind.value} for c in self.columns],
            "rows": [
                {name: _json_value(value, kinds[name]) for name, value in record.items()}
                for record in self.records()
            ],
            "notes": list(self.notes),
            "parts": [p.to_json() for p in self.parts],
        }


def _json_value(value: Cell, kind: Kind) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and kind is Kind.RATIO:
        return round(value, 6)
    return value


def format_cell(value: Cell, kind: Kind) -> str:
    """A cell as text: '-' for missing, thousands separators (not in ids), ratios as
    percentages."""
    if value is None:
        return "-"
    if kind is Kind.RATIO and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if kind is Kind.MONEY and isinstance(value, Decimal | int):
        return f"{value:,}"
    if kind is Kind.INT and isinstance(value, int):
        return f"{value:,}"
    if kind is Kind.NUMBER and isinstance(value, int | float):
        return f"{value:,.1f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- shared SQL


class _Query:
    """The shop, calendar, cut-off and the per-customer purchase-day table one report
    needs."""

    def __init__(
        self, conn: Connection, now: dt.datetime | None, tz: ZoneInfo, shop: str, currency: str
    ) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("now: must be timezone-aware")
        self.conn = conn
        self.shop = shop
        self.currency = currency
        self.now = now or dt.datetime.now(dt.UTC)
        self.tz = tz
        self.dialect = conn.dialect.name
        self.calendar = LocalCalendar.for_connection(conn, tz, shop=shop)
        self.scope = ShopScope.of(conn, shop)
        self.today = local_day_number(self.now, tz)
        self.this_month = month_number(self.now.astimezone(tz).date())

    def purchase(self) -> Any:
        """The condition on orders: a purchase of this shop up to now."""
        return is_purchase(self.now, shop=self.shop)

    def has_purchases(self) -> bool:
        found = self.conn.execute(
            select(orders.c.id)
            .select_from(customer_orders(self.scope))
            .where(self.purchase())
            .limit(1)
        ).first()
        return found is not None

    def report(
        self,
        title: str,
        columns: Sequence[Column],
        rows: Iterable[tuple[Cell, ...]] = (),
        notes: Iterable[str] = (),
    ) -> Report:
        """The shop's report; where it has amounts, a note says their currency."""
        notes = tuple(notes)
        if any(c.kind is Kind.MONEY for c in columns):
            notes += (f"amounts in {self.currency}, the shop's currency",)
        return Report(
            title, tuple(columns), tuple(rows), notes, shop=self.shop, currency=self.currency
        )

    def empty(self, title: str, columns: Sequence[Column]) -> Report:
        return Report(title, tuple(columns), (), (NO_PURCHASES,), shop=self.shop)

    def units(self) -> Any:
        return money_units(orders.c.total, self.dialect)

    def purchase_days(self) -> CTE:
        """One row per (profile, local purchase day): day number ``dn``, month number
        ``mn``, the day's amount in ten-thousandths ``units`` and its ``orders``."""
        per_day = purchase_days(self.calendar, self.now, self.scope)
        return select(
            per_day.c.profile_id,
            self.calendar.day_number(per_day.c.day).label("dn"),
            self.calendar.month_number(per_day.c.day).label("mn"),
            per_day.c.units,
            per_day.c.orders,
        ).cte("purchase_days")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _with_cohort(per_month: Subquery) -> Subquery:
    """``per_month`` (a profile_id and month number ``mn`` a row) with each profile's
    ``cohort``: the first of its months."""
    return select(
        per_month,
        func.min(per_month.c.mn).over(partition_by=per_month.c.profile_id).label("cohort"),
    ).subquery("with_cohort")


# --------------------------------------------------------------------------- LTV


def ltv_customers(
    conn: Connection,
    *,
    shop: str,
    limit: int = 20,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Historical LTV per customer of ``shop``: the top ``limit`` by total spend to date."""
    if limit < 1:
        raise ValueError("limit: must be at least 1")
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("profile", Kind.ID),
        Column("name"),
        Column("orders", Kind.INT),
        Column("spend", Kind.MONEY),
        Column("first purchase", Kind.DATE),
        Column("last purchase", Kind.DATE),
    )
    title = f"Historical LTV: top {limit} customers by spend"
    per_customer = purchases_per_profile(q.now, q.dialect, q.scope).subquery("per_customer")
    ranked = (
        select(
            per_customer,
            # Totals over every customer: window functions run before the LIMIT.
            func.count().over().label("customers"),
            func.sum(per_customer.c.units).over().label("total"),
        )
        .order_by(per_customer.c.units.desc(), per_customer.c.profile_id)
        .limit(limit)
        .subquery("ranked")
    )
    found = conn.execute(
        select(ranked, profiles.c.family_name, profiles.c.given_name)
        .select_from(
            ranked.outerjoin(
                profiles, and_(profiles.c.id == ranked.c.profile_id, profiles.c.shop == shop)
            )
        )
        .order_by(ranked.c.units.desc(), ranked.c.profile_id)
    ).all()
    if not found:
        return q.empty(title, columns)
    rows = tuple(
        (
            r.profile_id,
            display_name(r.family_name, r.given_name),
            r.orders,
            money(r.units),
            local_date(r.first, tz),
            local_date(r.last, tz),
        )
        for r in found
    )
    customers, total = found[0].customers, found[0].total
    notes = (
        f"{customers:,} customers with purchases; total spend {money(total):,} {currency}; "
        f"average LTV {mean_money(total, customers):,} {currency}",
        "spend = the totals of paid and fulfilled orders (tax and shipping included)",
    )
    return q.report(title, columns, rows, notes)


def ltv_cohorts(
    conn: Connection,
    *,
    shop: str,
    horizons: Sequence[int] = (3, 6, 12),
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Historical LTV per acquisition cohort (month of first purchase).

    ``LTV +k`` is the cohort's spend in its acquisition month and the k months after
    it, per customer; shown once month +k has ended.
    """
    if not horizons or any(k < 0 for k in horizons):
        raise ValueError("horizons: give month offsets of 0 or more")
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("cohort"),
        Column("customers", Kind.INT),
        Column("spend to date", Kind.MONEY),
        Column("LTV to date", Kind.MONEY),
        *(Column(f"LTV +{k}m", Kind.MONEY) for k in horizons),
    )
    title = "Historical LTV per acquisition cohort"
    pd = q.purchase_days()
    per_month = (
        select(pd.c.profile_id, pd.c.mn, func.sum(pd.c.units).label("units"))
        .group_by(pd.c.profile_id, pd.c.mn)
        .subquery("per_month")
    )
    with_cohort = _with_cohort(per_month)
    offset = with_cohort.c.mn - with_cohort.c.cohort
    found = conn.execute(
        select(
            with_cohort.c.cohort,
            func.sum(case((offset == 0, 1), else_=0)).label("customers"),
            func.sum(with_cohort.c.units).label("units"),
            *(
                func.sum(case((offset <= k, with_cohort.c.units), else_=0)).label(f"h{k}")
                for k in horizons
            ),
        )
        .group_by(with_cohort.c.cohort)
        .order_by(with_cohort.c.cohort)
    ).all()
    if not found:
        return q.empty(title, columns)
    rows = []
    for r in found:
        observed = [
            mean_money(getattr(r, f"h{k}"), r.customers) if r.cohort + k < q.this_month else None
            for k in horizons
        ]
        rows.append(
            (
                month_label(r.cohort),
                r.customers,
                money(r.units),
                mean_money(r.units, r.customers),
                *observed,
            )
        )
    notes = (
        "cohort = month of the customer's first purchase; LTV = spend per cohort customer",
        "LTV +Nm counts the acquisition month and the N months after it; '-' until month +N "
        "has ended",
    )
    return q.report(title, columns, rows, notes)


# --------------------------------------------------------------------------- repeat, F2


def repeat_rate(
    conn: Connection,
    *,
    shop: str,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Share of customers with purchases on two or more days, overall and per cohort."""
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("cohort"),
        Column("customers", Kind.INT),
        Column("repeaters", Kind.INT),
        Column("repeat rate", Kind.RATIO),
    )
    title = "Repeat rate"
    pd = q.purchase_days()
    per_profile = (
        select(
            pd.c.profile_id,
            func.min(pd.c.mn).label("cohort"),
            func.count().label("days"),
        )
        .group_by(pd.c.profile_id)
        .subquery("per_profile")
    )
    found = conn.execute(
        select(
            per_profile.c.cohort,
            func.count().label("customers"),
            func.sum(case((per_profile.c.days >= 2, 1), else_=0)).label("repeaters"),
        )
        .group_by(per_profile.c.cohort)
        .order_by(per_profile.c.cohort)
    ).all()
    if not found:
        return q.empty(title, columns)
    customers = sum(r.customers for r in found)
    repeaters = sum(r.repeaters for r in found)
    rows: list[tuple[Cell, ...]] = [("all", customers, repeaters, _ratio(repeaters, customers))]
    rows += [
        (month_label(r.cohort), r.customers, r.repeaters, _ratio(r.repeaters, r.customers))
        for r in found
    ]
    notes = (
        "repeater = a customer with purchases on two or more different days",
        "recent cohorts have had less time to come back: compare cohorts of similar age",
    )
    return q.report(title, columns, rows, notes)


def f2_conversion(
    conn: Connection,
    *,
    shop: str,
    window_days: int = 90,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """F2 conversion per first-purchase month: second purchase within ``window_days``.

    A customer converts when their second purchase day is at most ``window_days`` days
    after the first. Only cohorts whose every customer has had the whole window (the
    cohort's last day + window has passed) are rated; the others say until when.
    """
    if window_days < 1:
        raise ValueError("window_days: must be at least 1")
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("cohort"),
        Column("customers", Kind.INT),
        Column(f"2nd purchase ≤{window_days}d", Kind.INT),
        Column("F2 rate", Kind.RATIO),
        Column("window"),
    )
    title = f"F2 conversion: second purchase within {window_days} days of the first"
    pd = q.purchase_days()
    ranked = select(
        pd.c.profile_id,
        pd.c.dn,
        pd.c.mn,
        func.row_number().over(partition_by=pd.c.profile_id, order_by=pd.c.dn).label("seq"),
    ).subquery("ranked")
    firsts = (
        select(
            func.min(case((ranked.c.seq == 1, ranked.c.mn))).label("cohort"),
            func.min(case((ranked.c.seq == 1, ranked.c.dn))).label("d1"),
            func.min(case((ranked.c.seq == 2, ranked.c.dn))).label("d2"),
        )
        .where(ranked.c.seq <= 2)
        .group_by(ranked.c.profile_id)
        .subquery("firsts")
    )
    converted = (firsts.c.d2 - firsts.c.d1) <= window_days
    found = conn.execute(
        select(
            firsts.c.cohort,
            func.count().label("customers"),
            func.sum(case((converted, 1), else_=0)).label("converted"),
        )
        .group_by(firsts.c.cohort)
        .order_by(firsts.c.cohort)
    ).all()
    if not found:
        return q.empty(title, columns)
    rows: list[tuple[Cell, ...]] = []
    done_customers = done_converted = 0
    open_cohorts = 0
    for r in found:
        last_day = _month_last_day(r.cohort)
        closes = last_day + dt.timedelta(days=window_days)
        if _day_number(closes) < q.today:
            done_customers += r.customers
            done_converted += r.converted
            rows.append(
                (
                    month_label(r.cohort),
                    r.customers,
                    r.converted,
                    _ratio(r.converted, r.customers),
                    "complete",
                )
            )
        else:
            open_cohorts += 1
            rows.append(
                (month_label(r.cohort), r.customers, None, None, f"open until {closes.isoformat()}")
            )
    total: tuple[Cell, ...] = (
        "all complete cohorts",
        done_customers,
        done_converted,
        _ratio(done_converted, done_customers),
        "complete" if done_customers else "none complete yet",
    )
    notes = [
        f"F2 rate = customers whose second purchase day came within {window_days} days of the "
        "first / customers acquired in the month",
    ]
    if open_cohorts:
        notes.append(
            f"{open_cohorts} cohort(s) not rated yet: some of their customers still have time "
            "left in the window"
        )
    return q.report(title, columns, (total, *rows), notes)


def _month_last_day(number: int) -> dt.date:
    year, month = divmod(number + 1, 12)
    return dt.date(year, month + 1, 1) - dt.timedelta(days=1)


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


# --------------------------------------------------------------------------- retention


def cohort_retention(
    conn: Connection,
    *,
    shop: str,
    months: int = 12,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Per first-purchase month: the share of its customers who purchased in month +k.

    Month +k is the k-th calendar month after the acquisition month; it is shown once
    it has ended.
    """
    if months < 1:
        raise ValueError("months: must be at least 1")
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("cohort"),
        Column("customers", Kind.INT),
        *(Column(f"+{k}", Kind.RATIO) for k in range(1, months + 1)),
    )
    title = f"Cohort retention: share of each cohort purchasing in month +1..+{months}"
    pd = q.purchase_days()
    active = select(pd.c.profile_id, pd.c.mn).group_by(pd.c.profile_id, pd.c.mn).subquery("active")
    with_cohort = _with_cohort(active)
    offset = (with_cohort.c.mn - with_cohort.c.cohort).label("k")
    found = conn.execute(
        select(with_cohort.c.cohort, offset, func.count().label("customers"))
        .where(with_cohort.c.mn - with_cohort.c.cohort <= months)
        .group_by(with_cohort.c.cohort, with_cohort.c.mn - with_cohort.c.cohort)
    ).all()
    if not found:
        return q.empty(title, columns)
    counts: dict[int, dict[int, int]] = {}
    for r in found:
        counts.setdefault(r.cohort, {})[r.k] = r.customers
    rows = []
    for cohort in sorted(counts):
        size = counts[cohort][0]
        shares = [
            _ratio(counts[cohort].get(k, 0), size) if cohort + k < q.this_month else None
            for k in range(1, months + 1)
        ]
        rows.append((month_label(cohort), size, *shares))
    notes = (
        "retention +k = share of the cohort's customers with a purchase in the k-th month "
        "after their first purchase's month",
        "'-': that month has not ended yet",
    )
    return q.report(title, columns, rows, notes)


# --------------------------------------------------------------------------- AOV, interval


def average_order_value(
    conn: Connection,
    *,
    shop: str,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Average order value overall, by channel (store vs EC) and by month."""
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("by"),
        Column("group"),
        Column("orders", Kind.INT),
        Column("revenue", Kind.MONEY),
        Column("AOV", Kind.MONEY),
    )
    title = "Average order value"
    is_store = case((orders.c.channel.in_(STORE_CHANNELS), 1), else_=0)
    month = q.calendar.month_number(q.calendar.day(orders.c.placed_at))
    found = conn.execute(
        select(
            is_store.label("store"),
            month.label("month"),
            func.count().label("orders"),
            func.sum(q.units()).label("units"),
        )
        .select_from(customer_orders(q.scope))
        .where(q.purchase())
        .group_by(is_store, month)
    ).all()
    if not found:
        return q.empty(title, columns)

    def row(by: str, group: str, parts: Iterable[Any]) -> tuple[Cell, ...]:
        items = list(parts)
        n = sum(p.orders for p in items)
        units = sum(int(p.units) for p in items)
        return (by, group, n, money(units), mean_money(units, n))

    overall = row("overall", "all", found)
    rows = [overall]
    for flag, name in ((1, "store"), (0, "EC")):
        mine = [r for r in found if r.store == flag]
        if mine:
            rows.append(row("channel", name, mine))
    for m in sorted({r.month for r in found}):
        rows.append(row("month", month_label(m), [r for r in found if r.month == m]))
    notes = [
        "AOV = revenue / orders over paid and fulfilled orders; "
        f"store = channel {' or '.join(STORE_CHANNELS)}, EC = every other channel",
    ]
    every_purchase = conn.execute(
        select(func.count()).select_from(orders).where(q.purchase())
    ).scalar_one()
    guests = every_purchase - sum(r.orders for r in found)
    if guests:
        notes.append(
            f"{guests:,} purchase(s) without a known customer are not included"
            " (guests, and members who withdrew: 退会)"
        )
    others = (
        conn.execute(
            select(orders.c.currency).where(q.purchase(), orders.c.currency != currency).distinct()
        )
        .scalars()
        .all()
    )
    if others:
        notes.append(
            f"some orders are in other currencies than the shop's {currency} "
            f"({', '.join(sorted(others))}): amounts are added as they are"
        )
    return q.report(title, columns, rows, notes)


def purchase_interval(
    conn: Connection,
    *,
    shop: str,
    now: dt.datetime | None = None,
    tz: ZoneInfo = TOKYO,
    currency: str = "JPY",
) -> Report:
    """Days between consecutive purchase days: all intervals, and first-to-second only."""
    q = _Query(conn, now, tz, shop, currency)
    columns = (
        Column("interval"),
        Column("intervals", Kind.INT),
        Column("mean days", Kind.NUMBER),
        Column("median days", Kind.NUMBER),
    )
    title = "Purchase interval"
    pd = q.purchase_days()
    gaps = select(
        (pd.c.dn - func.lag(pd.c.dn).over(partition_by=pd.c.profile_id, order_by=pd.c.dn)).label(
            "gap"
        ),
        func.row_number().over(partition_by=pd.c.profile_id, order_by=pd.c.dn).label("seq"),
    ).subquery("gaps")
    second = case((gaps.c.seq == 2, 1), else_=0)
    # A histogram of whole-day gaps is small whatever the data size; mean and median
    # are exact from it.
    found = conn.execute(
        select(gaps.c.gap, second.label("second"), func.count().label("n"))
        .where(gaps.c.gap.is_not(None))
        .group_by(gaps.c.gap, second)
    ).all()
    if not found and not q.has_purchases():
        return q.empty(title, columns)
    every: dict[int, int] = {}
    first: dict[int, int] = {}
    for r in found:
        every[r.gap] = every.get(r.gap, 0) + r.n
        if r.second:
            first[r.gap] = first.get(r.gap, 0) + r.n
    rows = (
        ("between consecutive purchases", *_histogram_stats(every)),
        ("first to second purchase", *_histogram_stats(first)),
    )
    notes = [
        "interval = days between two consecutive purchase days of one customer "
        "(several orders on one day are one purchase)",
    ]
    if not every:
        notes.append("no customer has purchased on two different days yet")
    return q.report(title, columns, rows, notes)


def _histogram_stats(hist: dict[int, int]) -> tuple[int, float | None, float | None]:
    n = sum(hist.values())
    if n == 0:
        return 0, None, None
    mean = sum(gap * count for gap, count in hist.items()) / n
    # The median of n sorted values: the middle one, or the mean of the two middle ones.
    wanted = [(n - 1) // 2, n // 2]
    found: list[int] = []
    seen = 0
    for gap in sorted(hist):
        count = hist[gap]
        while wanted and wanted[0] < seen + count:
            found.append(gap)
            wanted.pop(0)
        seen += count
    return n, mean, (found[0] + found[1]) / 2
