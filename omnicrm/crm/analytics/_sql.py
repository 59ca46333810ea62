"""SQL pieces the analytics share: what a purchase is, exact money, the shop's calendar,
the per-profile and per-day purchase tables, and how their values are shown.

Every figure is one shop's: a purchase is an order of that shop (its ``orders.shop``),
so each query starts from the shop-led (shop, placed_at) index and never reads another
shop's orders; the profile members it joins are looked up among the shop's connections
only (see ``ShopScope``).

Everything here builds SQLAlchemy expressions that run the same on SQLite and
PostgreSQL; the differences (money stored as text, no time zones in SQLite) stay here.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    FromClause,
    Integer,
    Numeric,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)

from omnicrm.core.store.schema import connection_shops, orders
from omnicrm.crm.profiles import PURCHASE_STATUSES
from omnicrm.crm.schema import profile_members

TOKYO = ZoneInfo("Asia/Tokyo")

# A purchase is an order the customer paid for and kept: the profile builder's definition.

# Money is NUMERIC(18, 4): every amount is a whole number of ten-thousandths.
MONEY_SCALE = 10_000
_EPOCH = dt.date(1970, 1, 1)
_JULIAN_EPOCH = 2440587.5  # julianday('1970-01-01')


@dataclass(frozen=True)
class ShopScope:
    """The shop a query reads, and the connections whose records belong to it."""

    shop: str
    connections: tuple[str, ...]

    @classmethod
    def of(cls, conn: Connection, shop: str) -> ShopScope:
        """``shop`` and its connections, as the store recorded them (connection_shops
        names every connection whose records the store holds)."""
        found = conn.execute(
            select(connection_shops.c.connection).where(connection_shops.c.shop == shop)
        ).scalars()
        return cls(shop, tuple(sorted(found)))


def customer_orders(scope: ShopScope) -> FromClause:
    """Orders joined to the profile their customer belongs to (guest orders drop out).

    A connection belongs to one shop, so the member row has the order's shop anyway;
    saying so keeps the join within one shop whatever the rows hold. The shop's
    connections, given as values, let PostgreSQL read the members of those connections
    alone from profile_members' primary key: from the shop column alone (not indexed
    there) it scanned every shop's members, a small shop's report among large shops'
    costing six times what it did alone."""
    return orders.join(
        profile_members,
        and_(
            profile_members.c.connection == orders.c.connection,
            profile_members.c.record_id == orders.c.customer_id,
            profile_members.c.shop == orders.c.shop,
            profile_members.c.connection.in_(scope.connections),
        ),
    )


def is_purchase(now: dt.datetime, *, shop: str) -> ColumnElement[bool]:
    """A paid or fulfilled order of ``shop`` placed at or before ``now``."""
    return and_(
        orders.c.shop == shop,
        orders.c.status.in_(PURCHASE_STATUSES),
        orders.c.placed_at <= now,
    )


def purchases_per_profile(now: dt.datetime, dialect: str, scope: ShopScope) -> Select[Any]:
    """Per profile of the shop with purchases up to ``now``: its ``orders``, their amount
    in ten-thousandths ``units``, and the ``first`` and ``last`` purchase times."""
    return (
        select(
            profile_members.c.profile_id,
            func.count().label("orders"),
            func.sum(money_units(orders.c.total, dialect)).label("units"),
            func.min(orders.c.placed_at).label("first"),
            func.max(orders.c.placed_at).label("last"),
        )
        .select_from(customer_orders(scope))
        .where(is_purchase(now, shop=scope.shop))
        .group_by(profile_members.c.profile_id)
    )


def money_units(column: ColumnElement[Any], dialect: str) -> ColumnElement[int]:
    """A Money column as an exact integer of ten-thousandths, summable without rounding.

    SQLite keeps Money as decimal text ('1234', '-0.5', '10.1234'); casting that to a
    number would go through a float, so the text is split at the point instead.
    """
    if dialect != "sqlite":
        return cast(type_coerce(column, Numeric(18, 4)) * MONEY_SCALE, BigInteger)
    text = type_coerce(column, String)
    dot = func.instr(text, ".")
    whole = cast(func.substr(text, 1, dot - 1), Integer)
    fraction = cast(func.substr(func.substr(text, dot + 1).concat("0000"), 1, 4), Integer)
    sign = case((text.like("-%"), -1), else_=1)
    return case(
        (dot == 0, cast(text, Integer) * MONEY_SCALE),
        else_=whole * MONEY_SCALE + sign * fraction,
    )


def money(units: int | Decimal | None) -> Decimal | None:
    """Ten-thousandths back to an exact amount ('1234.5' rather than '1234.5000')."""
    if units is None:
        return None
    value = Decimal(int(units)).scaleb(-4)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def mean_money(units: int | Decimal | None, count: int) -> Decimal | None:
    """An average amount, rounded half-even to hundredths (exact up to that rounding)."""
    if units is None or count == 0:
        return None
    return (Decimal(int(units)) / (count * MONEY_SCALE)).quantize(Decimal("0.01"))


def month_label(number: int) -> str:
    """Month number (year * 12 + month - 1) as 'YYYY-MM'."""
    year, month = divmod(int(number), 12)
    return f"{year:04d}-{month + 1:02d}"


def month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def local_day_number(moment: dt.datetime, tz: ZoneInfo) -> int:
    return (moment.astimezone(tz).date() - _EPOCH).days


class LocalCalendar:
    """SQL for the shop-local calendar day and month of a UTC timestamp column.

    PostgreSQL converts with its own time-zone database (``timezone(zone, ts)``). SQLite
    has none, so the zone's UTC offsets over the data's time range are worked out here
    and applied as a ``date(ts, '+N seconds')`` modifier (a CASE over the changes, for
    zones with daylight saving time).
    """

    def __init__(self, dialect: str, tz: ZoneInfo, offsets: list[tuple[dt.datetime, int]]):
        self.dialect = dialect
        self.tz = tz
        self._offsets = offsets  # (from this instant on, offset in seconds), ascending

    @classmethod
    def for_connection(cls, conn: Connection, tz: ZoneInfo, *, shop: str) -> LocalCalendar:
        """The calendar of ``shop``'s orders (their time range, for zones that change)."""
        dialect = conn.dialect.name
        if dialect != "sqlite":
            if not tz.key:
                raise ValueError(f"timezone: {tz!r} has no IANA name PostgreSQL could use")
            return cls(dialect, tz, [])
        lo, hi = _SPAN
        if _ever_changes(tz):
            # Only zones that change offset need the data's range (both ends of the
            # shop's (shop, placed_at) index).
            first, last = conn.execute(
                select(func.min(orders.c.placed_at), func.max(orders.c.placed_at)).where(
                    orders.c.shop == shop
                )
            ).one()
            if first is not None:
                lo, hi = first, last
        return cls(dialect, tz, _offset_table(tz, lo, hi))

    def _modifier(self, column: ColumnElement[Any]) -> ColumnElement[str]:
        # Rendered inline, not as bound parameters, so that the same day expression in
        # SELECT and GROUP BY is one expression to SQLite and computed once per row.
        def seconds(offset: int) -> str:
            return f"'{offset:+d} seconds'"

        if len(self._offsets) == 1:
            return literal_column(seconds(self._offsets[0][1]))
        whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = [
            (
                type_coerce(column, String) < literal_column(f"'{_sqlite_utc(start)}'"),
                literal_column(seconds(prev)),
            )
            for (start, _), (_, prev) in zip(self._offsets[1:], self._offsets[:-1], strict=True)
        ]
        return case(*whens, else_=literal_column(seconds(self._offsets[-1][1])))

    def day(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The local calendar day: a key that groups and sorts (text on SQLite, DATE on PG)."""
        if self.dialect == "sqlite":
            return func.date(type_coerce(column, String), self._modifier(column))
        return cast(func.timezone(self.tz.key, column), Date)

    def day_number(self, day: ColumnElement[Any]) -> ColumnElement[int]:
        """Days since 1970-01-01 of a ``day()`` key: differences are whole days."""
        if self.dialect == "sqlite":
            return cast(func.julianday(day) - _JULIAN_EPOCH, Integer)
        return type_coerce(day - literal_column("DATE '1970-01-01'"), Integer)

    def month_number(self, day: ColumnElement[Any]) -> ColumnElement[int]:
        """year * 12 + month - 1 of a ``day()`` key: differences are whole months."""
        if self.dialect == "sqlite":
            year = cast(func.substr(day, 1, 4), Integer)
            month = cast(func.substr(day, 6, 2), Integer)
        else:
            year = cast(func.extract("year", day), Integer)
            month = cast(func.extract("month", day), Integer)
        return year * 12 + month - 1


def purchase_days(calendar: LocalCalendar, now: dt.datetime, scope: ShopScope) -> Subquery:
    """One row per profile of the shop and shop-local day with purchases up to ``now``:
    ``profile_id``,
    the ``calendar.day()`` key ``day``, the day's amount in ten-thousandths ``units`` and
    its ``orders``."""
    day = calendar.day(orders.c.placed_at)
    return (
        select(
            profile_members.c.profile_id,
            day.label("day"),
            func.sum(money_units(orders.c.total, calendar.dialect)).label("units"),
            func.count().label("orders"),
        )
        .select_from(customer_orders(scope))
        .where(is_purchase(now, shop=scope.shop))
        # By the label: one expression, computed once per row.
        .group_by(profile_members.c.profile_id, literal_column("day"))
        .subquery("per_day")
    )


def display_name(family: str | None, given: str | None) -> str:
    """A profile's name as shown in reports: family name first, either may be missing."""
    return " ".join(p for p in (family, given) if p)


def local_date(moment: dt.datetime | None, tz: ZoneInfo) -> dt.date | None:
    """The shop-local day of ``moment`` (None stays None)."""
    return moment.astimezone(tz).date() if moment is not None else None


_SPAN = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


@functools.cache
def _ever_changes(tz: ZoneInfo) -> bool:
    """Whether the zone's offset changes at all from 1970 to 2100 (Tokyo: no)."""
    return bool(_changes(tz, *_SPAN, step=dt.timedelta(days=7)))


def _sqlite_utc(moment: dt.datetime) -> str:
    # The text UtcDateTime stores on SQLite: fixed width, so text order is time order.
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _offset(tz: ZoneInfo, moment: dt.datetime) -> int:
    delta = moment.astimezone(tz).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


def _changes(
    tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime, step: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Intervals (a, b] of length ``step`` within which the offset changes."""
    out = []
    at, before = lo, _offset(tz, lo)
    while at < hi:
        nxt = min(at + step, hi)
        now = _offset(tz, nxt)
        if now != before:
            out.append((at, nxt))
        at, before = nxt, now
    return out


def _offset_table(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """The offsets in force from ``lo`` to ``hi`` with the exact instants they change."""
    lo = lo.replace(microsecond=0)  # whole seconds, so the bisection below ends on one
    table = [(lo, _offset(tz, lo))]
    for a, b in _changes(tz, lo, hi + dt.timedelta(days=1), step=dt.timedelta(days=1)):
        # Bisect to the second: offsets change on whole seconds.
        while (b - a).total_seconds() > 1:
            mid = (a + (b - a) / 2).replace(microsecond=0)
            if _offset(tz, mid) == _offset(tz, a):
                a = mid
            else:
                b = mid
        table.append((b, _offset(tz, b)))
    return table
