"""Segment counts: every segment in one scan of a shop's ``profiles``, kept as a history.

Everything here works within one shop: its segments, its profiles (every query leads
with ``profiles.shop``, so the (shop, id) index keeps the other shops' rows unread), its
history and its snapshot. A full count is
``SELECT SUM(CASE WHEN <segment> THEN 1 ELSE 0 END), ...`` over the shop's profiles.
After a sync that changed a few profiles, the counts move by what those profiles did:
count the changed profiles before the change and after it, and apply the difference to
the last recorded counts (`begin_recount` does exactly this, and falls back to a full
count whenever the last counts cannot be trusted to be current).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
)

from omnicrm.crm.schema import profiles, segment_counts, segments
from omnicrm.crm.segments._dates import local_today
from omnicrm.crm.segments._sql import among, get_state, get_states, of_shop, put_state
from omnicrm.crm.segments.catalog import NAME_PATTERN, get_segment
from omnicrm.crm.segments.compile import DEFAULT_TZ, compile_expression
from omnicrm.crm.segments.language import (
    Node,
    SegmentError,
    SegmentSyntaxError,
    parse,
)
from omnicrm.crm.segments.scoring import (
    LIFECYCLE_STATE,
    RFM_STATE,
    full_scoring_of,
    last_full_scoring,
)

log = logging.getLogger(__name__)

# Segments per SELECT: far below SQLite's 2,000 result columns.
_SEGMENT_CHUNK = 500
# crm_state key of the last recorded counts, which incremental counts start from.
SNAPSHOT_STATE = "segment_counts"
# Above this many changed profiles a full count is cheaper than two counts of the subset.
MAX_INCREMENTAL = 100_000


def count_segments(
    conn: Connection,
    expressions: Mapping[str, str | Node],
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
) -> dict[str, int]:
    """How many of ``shop``'s profiles each expression selects, in one scan.

    ``profile_ids`` restricts the count to those profiles (ids that no longer exist, or
    are another shop's, count nothing). Raises SegmentSyntaxError for a bad expression.
    """
    names = list(expressions)
    conditions = [compile_expression(expressions[name], now, tz) for name in names]
    if profile_ids is None:
        return _count(conn, shop, names, conditions, None)
    if not profile_ids:
        return dict.fromkeys(names, 0)
    return _count(conn, shop, names, conditions, among(conn, profile_ids))


def _count(
    conn: Connection,
    shop: str,
    names: list[str],
    conditions: list[ColumnElement[bool]],
    where: ColumnElement[bool] | None,
) -> dict[str, int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END) per condition, in one scan of the
    shop's profiles (``where`` narrows it further)."""
    return _count_also(conn, shop, names, conditions, where, None)[0]


def _count_also(
    conn: Connection,
    shop: str,
    names: list[str],
    conditions: list[ColumnElement[bool]],
    where: ColumnElement[bool] | None,
    also: ColumnElement[Any] | None,
) -> tuple[dict[str, int], Any]:
    """`_count`, and the value of the scalar subquery ``also`` from the same round trip."""
    counts = dict.fromkeys(names, 0)
    extra = None
    for start in range(0, max(len(names), 1), _SEGMENT_CHUNK):
        part = names[start : start + _SEGMENT_CHUNK]
        columns: list[ColumnElement[Any]] = [
            func.sum(case((cond, 1), else_=0))
            for cond in conditions[start : start + _SEGMENT_CHUNK]
        ]
        if also is not None and start == 0:
            columns.append(also)
        if not columns:
            break
        query = select(*columns).select_from(profiles).where(of_shop(shop))
        if where is not None:
            query = query.where(where)
        row = tuple(conn.execute(query).one())
        if also is not None and start == 0:
            extra = row[-1]
            row = row[:-1]
        for name, value in zip(part, row, strict=True):
            counts[name] = int(value or 0)
    return counts, extra


def _parsed(conn: Connection, shop: str) -> dict[str, tuple[str, Node]]:
    """Every segment of ``shop``'s expression, as text and parsed. One that no longer
    parses (the language changed under it) is left out with a warning, so it cannot stop
    the others' counts."""
    parsed: dict[str, tuple[str, Node]] = {}
    query = select(segments.c.name, segments.c.expression).where(segments.c.shop == shop)
    for name, text in conn.execute(query):
        try:
            parsed[name] = (text, parse(text))
        except SegmentSyntaxError as exc:
            log.warning("segment %s of shop %s is not counted: %s", name, shop, exc)
    return parsed


def defined_expressions(conn: Connection, *, shop: str) -> dict[str, Node]:
    """Every segment of ``shop``'s parsed expression (see `_parsed`)."""
    return {name: node for name, (_, node) in _parsed(conn, shop).items()}


def count_all(
    conn: Connection,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
) -> dict[str, int]:
    """`count_segments` over every segment of ``shop``."""
    expressions = defined_expressions(conn, shop=shop)
    return count_segments(conn, expressions, now, tz, profile_ids, shop=shop)


def apply_delta(
    counts: Mapping[str, int], before: Mapping[str, int], after: Mapping[str, int]
) -> dict[str, int]:
    """``counts`` moved by what a subset did: + after - before, per segment."""
    return {
        name: count + after.get(name, 0) - before.get(name, 0) for name, count in counts.items()
    }


def record_counts(
    conn: Connection, counts: Mapping[str, int], at: dt.datetime, *, shop: str
) -> None:
    """Append ``shop``'s ``counts`` to its history at time ``at`` (replacing any taken
    at ``at``).

    The counts are also kept as the shop's last snapshot (with the expressions they
    counted), which an incremental count starts from.
    """
    if not counts:
        return
    conn.execute(
        delete(segment_counts).where(
            segment_counts.c.shop == shop,
            segment_counts.c.counted_at == at,
            segment_counts.c.segment.in_(list(counts)),
        )
    )
    conn.execute(
        insert(segment_counts),
        [
            {"shop": shop, "segment": name, "counted_at": at, "count": n}
            for name, n in counts.items()
        ],
    )
    expressions = {
        row.name: row.expression
        for row in conn.execute(
            select(segments.c.name, segments.c.expression).where(
                segments.c.shop == shop, segments.c.name.in_(list(counts))
            )
        )
    }
    snapshot = {
        "at": at.isoformat(),
        "counts": {name: [expressions.get(name), n] for name, n in counts.items()},
    }
    put_state(conn, SNAPSHOT_STATE, snapshot, at, shop=shop)


def record_new_count(
    conn: Connection, name: str, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TZ, *, shop: str
) -> int:
    """Count ``shop``'s segment ``name`` just defined and record it, so its count shows
    at once.

    Appends the count to its history and puts it into the last snapshot beside the other
    segments' counts (those stay as they were: they are still true until a profile
    changes, and every change goes through a refresh that records them anew).
    """
    expression = get_segment(conn, name, shop=shop).expression
    count = count_segments(conn, {name: expression}, now, tz, shop=shop)[name]
    conn.execute(
        delete(segment_counts).where(
            segment_counts.c.shop == shop,
            segment_counts.c.counted_at == now,
            segment_counts.c.segment == name,
        )
    )
    conn.execute(
        insert(segment_counts).values(shop=shop, segment=name, counted_at=now, count=count)
    )
    snapshot = get_state(conn, SNAPSHOT_STATE, shop=shop)
    if snapshot:
        snapshot["counts"][name] = [expression, count]
        put_state(conn, SNAPSHOT_STATE, snapshot, now, shop=shop)
    return count


def prune_history(
    conn: Connection,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    *,
    shop: str,
    keep_days: int = 31,
) -> int:
    """Thin ``shop``'s history older than ``keep_days`` to each segment's last count of
    each day.

    A count after every sync is worth having for the recent weeks the terminal UI
    draws; beyond that, one a day keeps the trend without a row per sync for ever.
    Returns how many rows went.
    """
    cutoff = now - dt.timedelta(days=keep_days)
    old = conn.execute(
        select(segment_counts.c.segment, segment_counts.c.counted_at)
        .where(segment_counts.c.shop == shop, segment_counts.c.counted_at < cutoff)
        .order_by(segment_counts.c.segment, segment_counts.c.counted_at)
    ).all()
    last_of_day: dict[tuple[str, dt.date], dt.datetime] = {}
    for segment, at in old:  # ascending, so the last one seen of a day stays
        last_of_day[(segment, at.astimezone(tz).date())] = at
    keep = set(last_of_day.items())
    gone = [
        (segment, at)
        for segment, at in old
        if ((segment, at.astimezone(tz).date()), at) not in keep
    ]
    if gone:
        conn.execute(
            delete(segment_counts).where(
                segment_counts.c.shop == shop,
                segment_counts.c.segment == bindparam("name"),
                segment_counts.c.counted_at == bindparam("at"),
            ),
            [{"name": segment, "at": at} for segment, at in gone],
        )
    return len(gone)


@dataclass(frozen=True)
class CountPoint:
    at: dt.datetime
    count: int


@dataclass(frozen=True)
class LatestCount:
    """A segment's last recorded count, and the one before it (None if none)."""

    segment: str
    count: int
    at: dt.datetime
    previous: int | None
    previous_at: dt.datetime | None

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.count - self.previous


# Built once: the segments screen asks it of every segment each time counts land, and
# building the statement took half of each call.
_HISTORY = (
    select(segment_counts.c.counted_at, segment_counts.c.count)
    .where(
        segment_counts.c.shop == bindparam("shop"), segment_counts.c.segment == bindparam("name")
    )
    .order_by(segment_counts.c.counted_at.desc())
    .limit(bindparam("limit"))
)


def history(conn: Connection, name: str, limit: int = 100, *, shop: str) -> list[CountPoint]:
    """The last ``limit`` recorded counts of ``shop``'s segment ``name``, oldest first."""
    rows = conn.execute(_HISTORY, {"shop": shop, "name": name, "limit": limit}).all()
    return [CountPoint(row.counted_at, row.count) for row in reversed(rows)]


def latest_counts(conn: Connection, *, shop: str) -> dict[str, LatestCount]:
    """The last count of every segment of ``shop`` that has one, with the change since
    the count before it."""
    latest: dict[str, LatestCount] = {}
    for name in conn.execute(select(segments.c.name).where(segments.c.shop == shop)).scalars():
        # Two index seeks per segment on the (shop, segment, counted_at) key, however
        # long the history has grown.
        points = history(conn, name, 2, shop=shop)
        if points:
            last = points[-1]
            before = points[0] if len(points) == 2 else None
            latest[name] = LatestCount(
                name,
                last.count,
                last.at,
                before.count if before else None,
                before.at if before else None,
            )
    return latest


# -- incremental counts --------------------------------------------------------------------


class Recount:
    """Counts across a change of some profiles; made by `begin_recount`."""

    def __init__(
        self,
        shop: str,
        conditions: Mapping[str, ColumnElement[bool]],
        profile_ids: list[int] | None,
    ) -> None:
        self.shop = shop
        self.names = list(conditions)
        self.conditions = list(conditions.values())
        self.profile_ids = profile_ids
        # Set by begin_recount when the count can be incremental:
        self.base: dict[str, int] | None = None  # the last recorded counts
        self.base_at: dt.datetime | None = None
        self.before: dict[str, int] | None = None  # the changed profiles' counts before
        self.max_id = 0  # the shop's largest profile id before the change
        self.incremental: bool | None = None  # how finish() counted, once it has

    def finish(self, conn: Connection) -> dict[str, int]:
        """The counts of every segment now: the last counts moved by the changed
        profiles' difference, or a full count when that would not be exact."""
        full_since = last_full_scoring(conn, shop=self.shop)
        if (
            self.before is None
            or self.base is None
            or self.base_at is None
            or self.profile_ids is None
            or (full_since is not None and full_since > self.base_at)
        ):
            self.incremental = False
            return _count(conn, self.shop, self.names, self.conditions, None)
        # The same profiles again, and any made since begin (ids above the shop's largest
        # then: they counted nothing before), found first by a range of the (shop, id)
        # index. In one WHERE, ``ids OR id > max_id`` was answered by reading the whole
        # shop's index range (PostgreSQL and SQLite), or without the shop on that side
        # from the primary key, through every later profile of every other shop.
        made = conn.execute(
            select(profiles.c.id).where(of_shop(self.shop), profiles.c.id > self.max_id)
        ).scalars()
        ids = [*self.profile_ids, *made]
        after = (
            _count(conn, self.shop, self.names, self.conditions, among(conn, ids))
            if ids
            else dict.fromkeys(self.names, 0)
        )
        self.incremental = True
        return apply_delta(self.base, self.before, after)


def begin_recount(
    conn: Connection,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
) -> Recount:
    """Start counting every segment of ``shop`` across a change of ``profile_ids`` (the
    shop's profiles; another shop's ids count nothing).

    Call it before the change with the ids of every profile the change may alter or
    delete (None: anything may change), make the change, then call ``finish()`` for the
    counts and `record_counts` them. Profiles created by the change are found by id
    (above the largest id at the start), so they need not be known beforehand.

    ``finish()`` counts only the changed profiles when the last recorded counts are of
    every segment as defined now, recorded together on the shop's same day as ``now``
    (dates in expressions are whole days), with no full RFM or lifecycle scoring since;
    otherwise it counts everything.
    """
    parsed = _parsed(conn, shop)
    conditions = {name: compile_expression(node, now, tz) for name, (_, node) in parsed.items()}
    ids = None if profile_ids is None else sorted(set(profile_ids))
    recount = Recount(shop, conditions, ids)
    texts = {name: text for name, (text, _) in parsed.items()}
    base, base_at = _trusted_base(conn, shop, texts, now, tz)
    if ids is None or len(ids) > MAX_INCREMENTAL or base is None:
        return recount
    recount.base, recount.base_at = base, base_at
    # One seek at the end of the shop's (shop, id) range, asked with the count (one round
    # trip less); ids are given out store-wide in ascending order, so the shop's new
    # profiles come above it.
    top = select(func.max(profiles.c.id)).where(of_shop(shop)).scalar_subquery()
    # Nothing matches no ids: the count is all zeros, and the largest id still comes.
    where = among(conn, ids) if ids else profiles.c.id.is_(None)
    recount.before, max_id = _count_also(conn, shop, recount.names, recount.conditions, where, top)
    recount.max_id = int(max_id or 0)
    return recount


def _trusted_base(
    conn: Connection,
    shop: str,
    expressions: Mapping[str, str],
    now: dt.datetime,
    tz: dt.tzinfo,
) -> tuple[dict[str, int] | None, dt.datetime | None]:
    """The shop's last recorded counts, if an incremental count can start from them."""
    # The snapshot and when the scores were last all redone, in one query.
    states = get_states(conn, [SNAPSHOT_STATE, RFM_STATE, LIFECYCLE_STATE], shop=shop)
    snapshot = states.get(SNAPSHOT_STATE)
    if not snapshot or not expressions:
        return None, None
    at = dt.datetime.fromisoformat(snapshot["at"])
    recorded: dict[str, list[Any]] = snapshot["counts"]
    if any(recorded.get(name, [None])[0] != text for name, text in expressions.items()):
        return None, None  # a segment new or redefined since
    if at > now or local_today(at, tz) != local_today(now, tz):
        return None, None
    full_since = full_scoring_of(states)
    if full_since is not None and full_since > at:
        return None, None
    return {name: int(recorded[name][1]) for name in expressions}, at


# -- members ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A profile in a segment, as a sample shows it."""

    id: int
    name: str | None
    email: str | None
    prefecture: str | None
    number_of_orders: int
    amount_spent: float
    last_order_at: dt.datetime | None
    rfm_group: str | None
    lifecycle_stage: str


def resolve(conn: Connection, name_or_expression: str, *, shop: str) -> tuple[str | None, Node]:
    """``shop``'s segment's name and parsed expression, or (None, the parsed expression)."""
    row = conn.execute(
        select(segments.c.expression).where(
            segments.c.shop == shop, segments.c.name == name_or_expression
        )
    ).scalar()
    if row is not None:
        return name_or_expression, parse(row)
    try:
        return None, parse(name_or_expression)
    except SegmentSyntaxError:
        if NAME_PATTERN.fullmatch(name_or_expression):
            get_segment(conn, name_or_expression, shop=shop)  # raises "no segment named ..."
        raise


def members(
    conn: Connection,
    name_or_expression: str,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    limit: int = 20,
    *,
    shop: str,
) -> list[Member]:
    """Up to ``limit`` of ``shop``'s profiles in a segment (by name) or an expression,
    lowest id first."""
    if limit < 0:
        raise SegmentError(f"limit must be 0 or more, got {limit}")
    _, node = resolve(conn, name_or_expression, shop=shop)
    condition: ColumnElement[bool] = compile_expression(node, now, tz)
    p = profiles.c
    rows = conn.execute(
        select(
            p.id,
            p.family_name,
            p.given_name,
            p.email,
            p.prefecture,
            p.number_of_orders,
            p.amount_spent,
            p.last_order_at,
            p.rfm_group,
            p.lifecycle_stage,
        )
        .where(of_shop(shop), condition)
        .order_by(p.id)
        .limit(limit)
    ).all()
    return [
        Member(
            row.id,
            " ".join(n for n in (row.family_name, row.given_name) if n) or None,
            row.email,
            row.prefecture,
            row.number_of_orders,
            row.amount_spent,
            row.last_order_at,
            row.rfm_group,
            row.lifecycle_stage,
        )
        for row in rows
    ]
