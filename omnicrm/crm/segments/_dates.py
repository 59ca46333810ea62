"""Calendar arithmetic shared by the compiler and the scoring: whole days in the shop's zone.

Everything time-dependent in segments works on whole local days (as Shopify's segment
dates do), so a profile that did not change keeps its segments until the shop's date
changes.
"""

from __future__ import annotations

import calendar
import datetime as dt


def local_today(now: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The shop's date at ``now`` (which must be tz-aware)."""
    if now.tzinfo is None:
        raise ValueError(f"'now' must be a tz-aware datetime, got {now!r}")
    return now.astimezone(tz).date()


def day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The first instant of ``day`` in the shop's zone."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, the day clamped to the month's end (3-31 - 1m = 2-29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    """``day`` moved by ``amount`` days (d), weeks (w), months (m) or years (y)."""
    if unit == "d":
        return day + dt.timedelta(days=amount)
    if unit == "w":
        return day + dt.timedelta(weeks=amount)
    if unit == "m":
        return add_months(day, amount)
    if unit == "y":
        return add_months(day, 12 * amount)
    raise ValueError(f"unknown date unit {unit!r}")
