"""Segment expressions to a SQLAlchemy boolean over ``profiles``.

The SQL is the same on SQLite and PostgreSQL: plain comparisons with bound parameters
(dates and ages are turned into bounds here, in Python, from ``now`` and the shop's
zone, never computed per row) and EXISTS over ``profile_values`` for list attributes.

NOT is pushed down to the conditions, each negated exactly: a condition never matches a
profile that has no value for its attribute (``prefecture != '東京都'`` leaves out
profiles without a prefecture), and ``NOT c`` matches exactly the profiles ``c`` does
not, those included.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, not_, or_

from omnicrm.crm.schema import profile_values, profiles
from omnicrm.crm.segments._dates import add_months, day_start, local_today
from omnicrm.crm.segments.language import (
    And,
    Condition,
    Kind,
    Node,
    Not,
    Op,
    Or,
    RelativeDate,
    Value,
    parse,
)

DEFAULT_TZ = ZoneInfo("Asia/Tokyo")


def compile_expression(
    expression: str | Node, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TZ
) -> ColumnElement[bool]:
    """A boolean over ``profiles`` true for the profiles ``expression`` selects at ``now``.

    Relative dates, date literals and ages resolve against ``now`` in the shop's zone
    ``tz``: a date means that whole day there.
    """
    node = parse(expression) if isinstance(expression, str) else expression
    return _Compiler(now, tz).compile(node, negated=False)


class _Compiler:
    def __init__(self, now: dt.datetime, tz: dt.tzinfo) -> None:
        self.tz = tz
        self.today = local_today(now, tz)

    def compile(self, node: Node, *, negated: bool) -> ColumnElement[bool]:
        if isinstance(node, Not):
            return self.compile(node.item, negated=not negated)
        if isinstance(node, And | Or):
            parts = [self.compile(item, negated=negated) for item in node.items]
            # De Morgan: NOT (a AND b) = NOT a OR NOT b.
            conjunction = isinstance(node, And) != negated
            return and_(*parts) if conjunction else or_(*parts)
        return self.condition(node, negated=negated)

    def condition(self, cond: Condition, *, negated: bool) -> ColumnElement[bool]:
        attribute = cond.attribute
        if attribute.kind is Kind.LIST:
            return self.listed(cond, negated=negated)
        column = profiles.c[attribute.column]
        if cond.op is Op.IS_NULL:
            return column.is_not(None) if negated else column.is_(None)
        if cond.op is Op.IS_NOT_NULL:
            return column.is_(None) if negated else column.is_not(None)
        if attribute.kind is Kind.DATE:
            positive = self.dates(column, cond.op, [self.day(v) for v in cond.values])
        elif attribute.kind is Kind.AGE:
            positive = self.ages(column, cond.op, [_int(v) for v in cond.values])
        else:
            positive = _compare(column, cond.op, list(cond.values))
        if not negated:
            return positive
        # The comparison is unknown (so false) where the column is NULL; its complement
        # must hold there.
        flipped = not_(positive)
        return or_(flipped, column.is_(None)) if attribute.nullable else flipped

    def listed(self, cond: Condition, *, negated: bool) -> ColumnElement[bool]:
        where = [
            # The profile's shop too: a profile's values are all of its shop, and with it
            # PostgreSQL carries a query's shop into profile_values and reads them through
            # the (shop, attr, value) index, never another shop's values.
            profile_values.c.shop == profiles.c.shop,
            profile_values.c.profile_id == profiles.c.id,
            profile_values.c.attr == cond.attribute.column,
        ]
        if cond.op in (Op.CONTAINS, Op.NOT_CONTAINS):
            where.append(profile_values.c.value == cond.values[0])
        found = exists().where(*where)
        positive = cond.op in (Op.CONTAINS, Op.IS_NOT_NULL)
        return found if positive != negated else ~found

    def day(self, value: Value) -> dt.date:
        if isinstance(value, RelativeDate):
            return value.resolve(self.today)
        assert isinstance(value, dt.date)
        return value

    def dates(
        self, column: ColumnElement[dt.datetime], op: Op, days: list[dt.date]
    ) -> ColumnElement[bool]:
        """A comparison of whole days: ``= d`` is any time on day d in the shop's zone."""

        def start(day: dt.date) -> dt.datetime:
            return day_start(day, self.tz)

        def end(day: dt.date) -> dt.datetime:  # the start of the next day
            return day_start(day + dt.timedelta(days=1), self.tz)

        day = days[0]
        if op is Op.EQ:
            return and_(column >= start(day), column < end(day))
        if op is Op.NE:
            return or_(column < start(day), column >= end(day))
        if op is Op.LT:
            return column < start(day)
        if op is Op.LE:
            return column < end(day)
        if op is Op.GT:
            return column >= end(day)
        if op is Op.GE:
            return column >= start(day)
        low, high = sorted(days)
        return and_(column >= start(low), column < end(high))

    def ages(self, column: ColumnElement[dt.date], op: Op, ages: list[int]) -> ColumnElement[bool]:
        """Ages as birth-date bounds: age >= n exactly when born on or before today - n years."""

        def at_least(years: int) -> ColumnElement[bool]:
            return column <= add_months(self.today, -12 * years)

        def below(years: int) -> ColumnElement[bool]:  # age < years
            return column > add_months(self.today, -12 * years)

        age = ages[0]
        if op is Op.EQ:
            return and_(at_least(age), below(age + 1))
        if op is Op.NE:
            return or_(below(age), at_least(age + 1))
        if op is Op.LT:
            return below(age)
        if op is Op.LE:
            return below(age + 1)
        if op is Op.GT:
            return at_least(age + 1)
        if op is Op.GE:
            return at_least(age)
        low, high = sorted(ages)
        return and_(at_least(low), below(high + 1))


def _compare(column: ColumnElement[object], op: Op, values: list[Value]) -> ColumnElement[bool]:
    value = values[0]
    if op is Op.EQ:
        return column == value
    if op is Op.NE:
        return column != value
    if op is Op.LT:
        return column < value
    if op is Op.LE:
        return column <= value
    if op is Op.GT:
        return column > value
    if op is Op.GE:
        return column >= value
    if op is Op.BETWEEN:
        low, high = sorted(values, key=float)  # type: ignore[arg-type]
        return column.between(low, high)
    raise AssertionError(f"{op} on a scalar attribute")  # the parser allows no other


def _int(value: Value) -> int:
    assert isinstance(value, int)
    return value
