"""Segment counts: every segment in one scan of ``profiles``, kept as a history.

A full count is ``SELECT SUM(CASE WHEN <segment> THEN 1 ELSE 0 END), ...`` over all
profiles. After a sync that changed a few profiles, the counts move by what those
profiles did: count the changed profiles before the change and after it, and apply the
difference to the last recorded counts (`begin_recount` does exactly this, and falls
back to a full count whenever the last counts cannot be trusted to be current).
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
    or_,
    select,
)

from omnicrm.crm.schema import profiles, segment_counts, segments
from omnicrm.crm.segments._dates import local_today
from omnicrm.crm.segments._sql import among, get_state, put_state
from omnicrm.crm.segments.catalog import NAME_PATTERN, get_segment
from omnicrm.crm.segments.compile import DEFAULT_TZ, compile_expression
from omnicrm.crm.segments.language import (
    Node,
    SegmentError,
    SegmentSyntaxError,
    parse,
)
from omnicrm.crm.segments.scoring import last_full_scoring

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
) -> dict[str, int]:
    """How many profiles each expression selects, in one scan of ``profiles``.

    ``profile_ids`` restricts the count to those profiles (ids that no longer exist
    count nothing). Raises SegmentSyntaxError for a bad expression.
    """
    names = list(expressions)
    conditions = [compile_expression(expressions[name], now, tz) for name in names]
    if profile_ids is None:
        return _count(conn, names, conditions, None)
    if not profile_ids:
        return dict.fromkeys(names, 0)
    return _count(conn, names, conditions, among(conn, profile_ids))


def _count(
    conn: Connection,
    names: list[str],
    conditions: list[ColumnElement[bool]],
    where: ColumnElement[bool] | None,
) -> dict[str, int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END) per condition, in one scan."""
    counts = dict.fromkeys(names, 0)
    for start in range(0, len(names), _SEGMENT_CHUNK):
        part = names[start : start + _SEGMENT_CHUNK]
        columns = [
            func.sum(case((cond, 1), else_=0))
            for cond in conditions[start : start + _SEGMENT_CHUNK]
        ]
        query = select(*columns).select_from(profiles)
        if where is not None:
            query = query.where(where)
        row = conn.execute(query).one()
        for name, value in zip(part, row, strict=True):
            counts[name] = int(value or 0)
    return counts


def _parsed(conn: Connection) -> dict[str, tuple[str, Node]]:
    """Every defined segment's expression, as text and parsed. One that no longer parses
    (the language changed under it) is left out with a warning, so it cannot stop the
    others' counts."""
    parsed: dict[str, tuple[str, Node]] = {}
    for name, text in conn.execute(select(segments.c.name, segments.c.expression)):
        try:
            parsed[name] = (text, parse(text))
        except SegmentSyntaxError as exc:
            log.warning("segment %s is not counted: %s", name, exc)
    return parsed


def defined_expressions(conn: Connection) -> dict[str, Node]:
    """Every defined segment's parsed expression (see `_parsed`)."""
    return {name: node for name, (_, node) in _parsed(conn).items()}


def count_all(
    conn: Connection,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    profile_ids: Collection[int] | None = None,
) -> dict[str, int]:
    """`count_segments` over every defined segment."""
    return count_segments(conn, defined_expressions(conn), now, tz, profile_ids)


def apply_delta(
    counts: Mapping[str, int], before: Mapping[str, int], after: Mapping[str, int]
) -> dict[str, int]:
    """``counts`` moved by what a subset did: + after - before, per segment."""
    return {
        name: count + after.get(name, 0) - before.get(name, 0) for name, count in counts.items()
    }


def record_counts(conn: Connection, counts: Mapping[str, int], at: dt.datetime) -> None:
    """Append ``counts`` to the history at time ``at`` (replacing any taken at ``at``).

    The counts are also kept as the last snapshot (with the expressions they counted),
    which an incremental count starts from.
    """
    if not counts:
        return
    conn.execute(
        delete(segment_counts).where(
            segment_counts.c.counted_at == at, segment_counts.c.segment.in_(list(counts))
        )
    )
    conn.execute(
        insert(segment_counts),
        [{"segment": name, "counted_at": at, "count": n} for name, n in counts.items()],
    )
    expressions = {
        row.name: row.expression
        for row in conn.execute(
            select(segments.c.name, segments.c.expression).where(segments.c.name.in_(list(counts)))
        )
    }
    snapshot = {
        "at": at.isoformat(),
        "counts": {name: [expressions.get(name), n] for name, n in counts.items()},
    }
    put_state(conn, SNAPSHOT_STATE, snapshot, at)


def record_new_count(
    conn: Connection, name: str, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TZ
) -> int:
    """Count the segment ``name`` just defined and record it, so its count shows at once.

    Appends the count to its history and puts it into the last snapshot beside the other
    segments' counts (those stay as they were: they are still true until a profile
    changes, and every change goes through a refresh that records them anew).
    """
    expression = get_segment(conn, name).expression
    count = count_segments(conn, {name: expression}, now, tz)[name]
    conn.execute(
        delete(segment_counts).where(
            segment_counts.c.counted_at == now, segment_counts.c.segment == name
        )
    )
    conn.execute(insert(segment_counts).values(segment=name, counted_at=now, count=count))
    snapshot = get_state(conn, SNAPSHOT_STATE)
    if snapshot:
        snapshot["counts"][name] = [expression, count]
        put_state(conn, SNAPSHOT_STATE, snapshot, now)
    return count


def prune_history(
    conn: Connection, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TZ, *, keep_days: int = 31
) -> int:
    """Thin the history older than ``keep_days`` to each segment's last count of each day.

    A count after every sync is worth having for the recent weeks the terminal UI
    draws; beyond that, one a day keeps the trend without a row per sync for ever.
    Returns how many rows went.
    """
    cutoff = now - dt.timedelta(days=keep_days)
    old = conn.execute(
        select(segment_counts.c.segment, segment_counts.c.counted_at)
        .where(segment_counts.c.counted_at < cutoff)
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
    .where(segment_counts.c.segment == bindparam("name"))
    .order_by(segment_counts.c.counted_at.desc())
    .limit(bindparam("limit"))
)


def history(conn: Connection, name: str, limit: int = 100) -> list[CountPoint]:
    """The last ``limit`` recorded counts of segment ``name``, oldest first."""
    rows = conn.execute(_HISTORY, {"name": name, "limit": limit}).all()
    return [CountPoint(row.counted_at, row.count) for row in reversed(rows)]


def latest_counts(conn: Connection) -> dict[str, LatestCount]:
    """The last count of every defined segment that has one, with the change since the
    count before it."""
    latest: dict[str, LatestCount] = {}
    for name in conn.execute(select(segments.c.name)).scalars():
        # Two index seeks per segment on the (segment, counted_at) key, however long
        # the history has grown.
        points = history(conn, name, 2)
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
        self, conditions: Mapping[str, ColumnElement[bool]], profile_ids: list[int] | None
    ) -> None:
        self.names = list(conditions)
        self.conditions = list(conditions.values())
        self.profile_ids = profile_ids
        # Set by begin_recount when the count can be incremental:
        self.base: dict[str, int] | None = None  # the last recorded counts
        self.base_at: dt.datetime | None = None
        self.before: dict[str, int] | None = None  # the changed profiles' counts before
        self.max_id = 0  # the largest profile id before the change
        self.incremental: bool | None = None  # how finish() counted, once it has

    def finish(self, conn: Connection) -> dict[str, int]:
        """The counts of every segment now: the last counts moved by the changed
        profiles' difference, or a full count when that would not be exact."""
        full_since = last_full_scoring(conn)
        if (
            self.before is None
            or self.base is None
            or self.base_at is None
            or self.profile_ids is None
            or (full_since is not None and full_since > self.base_at)
        ):
            self.incremental = False
            return _count(conn, self.names, self.conditions, None)
        # The same profiles again, and any made since begin (ids above the largest then:
        # they counted nothing before).
        changed = profiles.c.id > self.max_id
        if self.profile_ids:
            changed = or_(among(conn, self.profile_ids), changed)
        after = _count(conn, self.names, self.conditions, changed)
        self.incremental = True
        return apply_delta(self.base, self.before, after)


def begin_recount(
    conn: Connection,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    profile_ids: Collection[int] | None = None,
) -> Recount:
    """Start counting every defined segment across a change of ``profile_ids``.

    Call it before the change with the ids of every profile the change may alter or
    delete (None: anything may change), make the change, then call ``finish()`` for the
    counts and `record_counts` them. Profiles created by the change are found by id
    (above the largest id at the start), so they need not be known beforehand.

    ``finish()`` counts only the changed profiles when the last recorded counts are of
    every segment as defined now, recorded together on the shop's same day as ``now``
    (dates in expressions are whole days), with no full RFM or lifecycle scoring since;
    otherwise it counts everything.
    """
    parsed = _parsed(conn)
    conditions = {name: compile_expression(node, now, tz) for name, (_, node) in parsed.items()}
    ids = None if profile_ids is None else sorted(set(profile_ids))
    recount = Recount(conditions, ids)
    texts = {name: text for name, (text, _) in parsed.items()}
    base, base_at = _trusted_base(conn, texts, now, tz)
    if ids is None or len(ids) > MAX_INCREMENTAL or base is None:
        return recount
    recount.base, recount.base_at = base, base_at
    recount.max_id = conn.execute(select(func.max(profiles.c.id))).scalar() or 0
    if ids:
        recount.before = _count(conn, recount.names, recount.conditions, among(conn, ids))
    else:
        recount.before = dict.fromkeys(recount.names, 0)
    return recount


def _trusted_base(
    conn: Connection, expressions: Mapping[str, str], now: dt.datetime, tz: dt.tzinfo
) -> tuple[dict[str, int] | None, dt.datetime | None]:
    """The last recorded counts, if an incremental count can start from them."""
    snapshot = get_state(conn, SNAPSHOT_STATE)
    if not snapshot or not expressions:
        return None, None
    at = dt.datetime.fromisoformat(snapshot["at"])
    recorded: dict[str, list[Any]] = snapshot["counts"]
    if any(recorded.get(name, [None])[0] != text for name, text in expressions.items()):
        return None, None  # a segment new or redefined since
    if at > now or local_today(at, tz) != local_today(now, tz):
        return None, None
    full_since = last_full_scoring(conn)
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


def resolve(conn: Connection, name_or_expression: str) -> tuple[str | None, Node]:
    """A segment's name and parsed expression, or (None, the parsed expression)."""
    row = conn.execute(
        select(segments.c.expression).where(segments.c.name == name_or_expression)
    ).scalar()
    if row is not None:
        return name_or_expression, parse(row)
    try:
        return None, parse(name_or_expression)
    except SegmentSyntaxError:
        if NAME_PATTERN.fullmatch(name_or_expression):
            get_segment(conn, name_or_expression)  # raises "no segment named ..."
        raise


def members(
    conn: Connection,
    name_or_expression: str,
    now: dt.datetime,
    tz: dt.tzinfo = DEFAULT_TZ,
    limit: int = 20,
) -> list[Member]:
    """Up to ``limit`` profiles of a segment (by name) or an expression, lowest id first."""
    if limit < 0:
        raise SegmentError(f"limit must be 0 or more, got {limit}")
    _, node = resolve(conn, name_or_expression)
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
        .where(condition)
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
