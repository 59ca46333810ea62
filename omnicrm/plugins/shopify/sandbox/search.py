"""The part of Shopify's search syntax the sandbox understands.

Supported: terms ``field:value`` with the comparators ``:``, ``:>``, ``:>=``, ``:<``,
``:<=`` joined by whitespace or ``AND`` on the fields ``updated_at``, ``created_at``,
``processed_at`` (orders) and ``id``. Values may be quoted ('' or ""), an ISO 8601 time
(``Z`` or an offset, fractions allowed), a date, a year or ``now``. As in Shopify, a bare
date or year matches the whole day or year, and anything the sandbox cannot use is ignored
with a warning (Shopify reports those in ``extensions.search``) rather than failing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field

_TERM = re.compile(
    r"""\s*(?:(?P<conn>AND|OR|NOT)\b|(?P<neg>-)?(?P<field>[A-Za-z_]+):(?P<op>>=|<=|>|<)?
    (?P<value>'[^']*'|"[^"]*"|\S+)|(?P<bare>\S+))""",
    re.VERBOSE,
)
_TIME_FIELDS = {"updated_at", "created_at", "processed_at"}


@dataclass
class Interval:
    """A half-open range ``[low, high)`` of integers; None is unbounded."""

    low: int | None = None
    high: int | None = None

    def narrow(self, low: int | None, high: int | None) -> None:
        """Intersect with ``[low, high)``."""
        if low is not None:
            self.low = low if self.low is None else max(self.low, low)
        if high is not None:
            self.high = high if self.high is None else min(self.high, high)

    def empty(self) -> bool:
        """True when nothing can match."""
        return self.low is not None and self.high is not None and self.low >= self.high

    def __contains__(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


@dataclass
class Search:
    """A parsed search: one interval per field (epoch seconds, or numeric ids)."""

    fields: dict[str, Interval] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def interval(self, name: str) -> Interval:
        """The interval on ``name``, unbounded when the search does not mention it."""
        return self.fields.get(name) or Interval()

    def empty(self) -> bool:
        """True when some field can match nothing."""
        return any(i.empty() for i in self.fields.values())


def _time_value(text: str, now: float) -> tuple[float, float]:
    """The range ``[start, end)`` of epoch seconds the value names."""
    if text == "now":
        return now, now
    if re.fullmatch(r"\d{4}", text):
        start = dt.datetime(int(text), 1, 1, tzinfo=dt.UTC)
        return start.timestamp(), start.replace(year=start.year + 1).timestamp()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return day.timestamp(), (day + dt.timedelta(days=1)).timestamp()
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    stamp = when.timestamp()
    return stamp, stamp


def _bounds(op: str, start: float, end: float) -> tuple[int | None, int | None]:
    """Integer ``[low, high)`` for a comparison, in whole seconds as Shopify stores them.

    ``start == end`` is an instant; otherwise the value named a whole day or year, and
    ``>`` means after all of it, ``<=`` up to its end.
    """
    instant = start == end
    if op == ">=":
        return math.ceil(start), None
    if op == ">":
        return (math.floor(start) + 1 if instant else math.ceil(end)), None
    if op == "<":
        return None, math.ceil(start)
    if op == "<=":
        return None, (math.floor(start) + 1 if instant else math.ceil(end))
    if instant:  # ':' with a timestamp matches that timestamp's whole day, as documented
        day = math.floor(start) - math.floor(start) % 86_400
        return day, day + 86_400
    return math.ceil(start), math.ceil(end)


def parse(text: str | None, *, id_fields: Collection[str], now: float) -> Search:
    """Parse a ``query`` argument; times in epoch seconds, ``id_fields`` numeric."""
    search = Search()
    if not text:
        return search
    for match in _TERM.finditer(text):
        if match.group("conn"):
            if match.group("conn") != "AND":
                search.warnings.append(
                    {"field": match.group("conn"), "message": "Only AND is supported."}
                )
            continue
        if match.group("bare"):
            search.warnings.append({"field": "default", "message": "Free text is not searched."})
            continue
        name = match.group("field")
        op = match.group("op") or ":"
        value = match.group("value").strip("'\"")
        if match.group("neg"):
            search.warnings.append({"field": name, "message": "Negation is not supported."})
            continue
        try:
            if name in _TIME_FIELDS:
                low, high = _bounds(op, *_time_value(value, now))
            elif name in id_fields:
                number = int(value.rsplit("/", 1)[-1])
                low, high = (number, number + 1) if op == ":" else _bounds(op, number, number)
            else:
                search.warnings.append(
                    {"field": name, "message": "Invalid search field for this query."}
                )
                continue
        except ValueError:
            search.warnings.append({"field": name, "message": f"Invalid value {value!r}."})
            continue
        search.fields.setdefault(name, Interval()).narrow(low, high)
    return search
