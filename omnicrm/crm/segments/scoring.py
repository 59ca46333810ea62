"""RFM scores and groups, and lifecycle stages, written onto ``profiles`` in set-based SQL.

RFM. Recency is the number of whole days (in the shop's zone) since the last purchase,
frequency ``number_of_orders``, monetary ``amount_spent``, over the profiles with at
least one purchase. Each metric orders those profiles from worst to best (most days
first; fewest orders; least spent) and takes its quintile cut points: cut i (i = 1..4)
is the value of the profile at position ceil(i * N / 5) of that order. A profile's score
is 1 plus the number of cuts its value is strictly better than, so 1..5.

Ties: profiles with the same value always get the same score, and a tie at a cut takes
the lower score. Where one value spans several quintiles the scores in between are
empty: with 60 % one-time buyers, every one-time buyer has F = 1 and the next frequency
scores F = 4. Profiles without a purchase have no scores and no group.

Groups come from R and FM = floor((F + M) / 2) on the grid in `RFM_RULES` (every one of
the 125 (R, F, M) combinations falls in exactly one group).

Everything here works within one shop: the cuts are that shop's purchasers' (another
shop's customers never move them), and only that shop's profiles are scored.

The cuts are kept in the shop's ``crm_state`` ('rfm_cuts') with the day they were taken, so a
refresh of a few profiles scores them against the same cuts. On a new day (in the
shop's zone) every profile's recency has moved, so the next call rescoring all of them
takes new cuts, whatever it was asked; `update_lifecycle` likewise.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, select, tuple_, update

from omnicrm.crm.schema import profiles
from omnicrm.crm.segments._dates import day_start, local_today
from omnicrm.crm.segments._sql import among, get_state, get_states, of_shop, put_state
from omnicrm.crm.segments.compile import DEFAULT_TZ

RFM_STATE = "rfm_cuts"
LIFECYCLE_STATE = "lifecycle"

# -- the rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RfmRule:
    """One RFM group: the (R, FM) boxes it covers, FM = floor((F + M) / 2)."""

    group: str
    title: str
    description: str
    boxes: tuple[tuple[tuple[int, int], tuple[int, int]], ...]  # ((r_lo, r_hi), (fm_lo, fm_hi))

    def matches(self, r: int, f: int, m: int) -> bool:
        fm = (f + m) // 2
        return any(rl <= r <= rh and fl <= fm <= fh for (rl, rh), (fl, fh) in self.boxes)

    @property
    def rule(self) -> str:
        """The rule as text, e.g. 'R 5, FM 4-5'."""

        def span(lo: int, hi: int) -> str:
            return str(lo) if lo == hi else f"{lo}-{hi}"

        return " or ".join(f"R {span(*r)}, FM {span(*fm)}" for r, fm in self.boxes)


RFM_RULES: tuple[RfmRule, ...] = (
    RfmRule(
        "champions",
        "Champions",
        "Bought most recently, buy often and spend the most.",
        (((5, 5), (4, 5)),),
    ),
    RfmRule(
        "loyal",
        "Loyal",
        "Buy often and spend well; bought fairly recently.",
        (((3, 4), (4, 5)),),
    ),
    RfmRule(
        "potential_loyalist",
        "Potential loyalist",
        "Recent customers with average frequency and spend.",
        (((4, 5), (2, 3)),),
    ),
    RfmRule("new", "New", "Bought most recently, little so far.", (((5, 5), (1, 1)),)),
    RfmRule("promising", "Promising", "Bought recently, little so far.", (((4, 4), (1, 1)),)),
    RfmRule(
        "need_attention",
        "Need attention",
        "Average recency, frequency and spend.",
        (((3, 3), (3, 3)),),
    ),
    RfmRule(
        "about_to_sleep",
        "About to sleep",
        "Average recency, low frequency and spend.",
        (((3, 3), (1, 2)),),
    ),
    RfmRule(
        "at_risk",
        "At risk",
        "Bought often and spent well, but long ago.",
        (((1, 2), (3, 4)),),
    ),
    RfmRule(
        "cannot_lose",
        "Cannot lose",
        "Were among the best (top frequency and spend), not seen for long.",
        (((1, 2), (5, 5)),),
    ),
    RfmRule(
        "hibernating",
        "Hibernating",
        "Low spend and frequency, long ago.",
        (((2, 2), (1, 2)), ((1, 1), (2, 2))),
    ),
    RfmRule("lost", "Lost", "Lowest recency, frequency and spend.", (((1, 1), (1, 1)),)),
)


def rfm_group(r: int, f: int, m: int) -> str:
    """The group of scores (r, f, m), each 1..5."""
    if not all(1 <= s <= 5 for s in (r, f, m)):
        raise ValueError(f"RFM scores run from 1 to 5, got {(r, f, m)}")
    (rule,) = [rule for rule in RFM_RULES if rule.matches(r, f, m)]
    return rule.group


# Lifecycle: days since the last purchase, in the shop's zone, and purchases.
NEW_DAYS = 30  # one purchase, fewer than 30 days ago: new
ACTIVE_DAYS = 90  # fewer than 90 days ago: still active (90+ is dormant)
LAPSED_DAYS = 365  # 365+ days: lapsed
LOYAL_ORDERS = 5  # active with 5+ purchases: loyal; 2-4: repeat


# -- RFM -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RfmCuts:
    """Quintile cut points, worst to best; recency in days (so descending)."""

    recency_days: tuple[int, int, int, int]
    frequency: tuple[int, int, int, int]
    monetary: tuple[float, float, float, float]
    profiles: int  # profiles with a purchase when the cuts were taken
    day: dt.date  # the shop's date the cuts were taken on

    def as_json(self) -> dict[str, Any]:
        return {
            "recency_days": list(self.recency_days),
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
            "profiles": self.profiles,
            "day": self.day.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RfmCuts:
        r, f, m = data["recency_days"], data["frequency"], data["monetary"]
        return cls(
            (int(r[0]), int(r[1]), int(r[2]), int(r[3])),
            (int(f[0]), int(f[1]), int(f[2]), int(f[3])),
            (float(m[0]), float(m[1]), float(m[2]), float(m[3])),
            int(data["profiles"]),
            dt.date.fromisoformat(data["day"]),
        )


def _purchased() -> ColumnElement[bool]:
    return and_(profiles.c.number_of_orders > 0, profiles.c.last_order_at.is_not(None))


def stored_cuts(conn: Connection, *, shop: str) -> RfmCuts | None:
    """The cuts ``shop``'s last full scoring took, if it found any purchases."""
    return _cuts_of(get_state(conn, RFM_STATE, shop=shop))


def _cuts_of(state: dict[str, Any] | None) -> RfmCuts | None:
    cuts = state.get("cuts") if state else None
    return RfmCuts.from_json(cuts) if cuts else None


def score_rfm(
    conn: Connection,
    now: dt.datetime,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
    tz: dt.tzinfo = DEFAULT_TZ,
) -> RfmCuts | None:
    """Set rfm_recency, rfm_frequency, rfm_monetary and rfm_group of ``shop``'s profiles.

    Without ``profile_ids`` (or when the stored cuts are from an earlier day, or there
    are none yet): new cuts over every profile of the shop with a purchase, stored in
    crm_state, and every profile of the shop scored.
    With ``profile_ids``: those profiles only (ids of another shop are left alone),
    against the stored cuts. Returns the cuts used (None when no profile has a purchase).
    """
    return _score(conn, now, profile_ids, tz, shop, rfm=True, lifecycle=False)


def update_lifecycle(
    conn: Connection,
    now: dt.datetime,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
    tz: dt.tzinfo = DEFAULT_TZ,
) -> bool:
    """Set lifecycle_stage of ``shop``'s profiles; every one of them when ``profile_ids``
    is None or the day changed since the shop's last full update. Returns whether every
    profile of the shop was updated.

    prospect: no purchase. lapsed: last purchase 365+ days ago. dormant: 90-364 days.
    Otherwise (active): new with one purchase under 30 days ago, second_purchase_candidate
    with one purchase 30-89 days ago, repeat with 2-4 purchases, loyal with 5 or more.
    """
    today = local_today(now, tz)
    state = get_state(conn, LIFECYCLE_STATE, shop=shop)
    full = _full(state, today, profile_ids)
    _score(conn, now, profile_ids, tz, shop, rfm=False, lifecycle=True)
    return full


def score_profiles(
    conn: Connection,
    now: dt.datetime,
    profile_ids: Collection[int] | None = None,
    *,
    shop: str,
    tz: dt.tzinfo = DEFAULT_TZ,
) -> RfmCuts | None:
    """`score_rfm` and `update_lifecycle` together, in one UPDATE of ``shop``'s profiles:
    what a refresh calls. Every profile of the shop is scored when either would score
    every profile."""
    return _score(conn, now, profile_ids, tz, shop, rfm=True, lifecycle=True)


def _full(state: dict[str, Any] | None, today: dt.date, profile_ids: object) -> bool:
    """Whether every profile is to be scored: asked to, or the last full scoring (its
    ``state``) was not today."""
    if profile_ids is None:
        return True
    return state is None or state.get("day") != today.isoformat()


def _score(
    conn: Connection,
    now: dt.datetime,
    profile_ids: Collection[int] | None,
    tz: dt.tzinfo,
    shop: str,
    *,
    rfm: bool,
    lifecycle: bool,
) -> RfmCuts | None:
    today = local_today(now, tz)
    keys = [key for key, wanted in ((RFM_STATE, rfm), (LIFECYCLE_STATE, lifecycle)) if wanted]
    # Both states in one query (the cuts are in the RFM one).
    states = get_states(conn, keys, shop=shop) if profile_ids is not None else {}
    full = any(_full(states.get(key), today, profile_ids) for key in keys)
    cuts = _cuts_of(states.get(RFM_STATE)) if rfm and not full else None
    # No cuts yet (nobody had bought at the last full scoring): take them now, or the
    # first buyers would stay unscored until tomorrow.
    full = full or (rfm and cuts is None)
    values: dict[str, Any] = {}
    if rfm:
        if full:
            cuts = _take_cuts(conn, now, tz, shop)
        values.update(_rfm_values(cuts, today, tz))
    if lifecycle:
        values["lifecycle_stage"] = _stage(today, tz)
    # Only rows whose scores change: a day's rescoring leaves most as they were, and an
    # UPDATE that rewrites a row with its own values still costs the write (on
    # PostgreSQL a new row version and its index entries).
    changed = tuple_(*(profiles.c[name] for name in values)).is_distinct_from(
        tuple_(*values.values())
    )
    for where in _targets(conn, shop, None if full else profile_ids):
        conn.execute(update(profiles).values(**values).where(where, changed))
    if full:
        stamp = {"day": today.isoformat(), "full_at": now.isoformat()}
        if rfm:
            cut_state = {**stamp, "cuts": cuts.as_json() if cuts else None}
            put_state(conn, RFM_STATE, cut_state, now, shop=shop)
        if lifecycle:
            put_state(conn, LIFECYCLE_STATE, stamp, now, shop=shop)
    return cuts


def _take_cuts(conn: Connection, now: dt.datetime, tz: dt.tzinfo, shop: str) -> RfmCuts | None:
    today = local_today(now, tz)
    n = conn.execute(
        select(func.count()).select_from(profiles).where(of_shop(shop), _purchased())
    ).scalar_one()
    if n == 0:
        return None
    positions = [math.ceil(i * n / 5) for i in (1, 2, 3, 4)]
    last = _cut_values(conn, shop, profiles.c.last_order_at, positions)
    frequency = _cut_values(conn, shop, profiles.c.number_of_orders, positions)
    monetary = _cut_values(conn, shop, profiles.c.amount_spent, positions)
    r = [(today - ts.astimezone(tz).date()).days for ts in last]
    f = [int(v) for v in frequency]
    m = [float(v) for v in monetary]
    return RfmCuts(
        (r[0], r[1], r[2], r[3]), (f[0], f[1], f[2], f[3]), (m[0], m[1], m[2], m[3]), n, today
    )


def _cut_values(conn: Connection, shop: str, column: Any, positions: list[int]) -> list[Any]:
    """The values at 1-based ``positions`` of ``shop``'s purchasers ordered by ``column``."""
    rank = func.row_number().over(order_by=column).label("rank")
    ranked = select(column.label("value"), rank).where(of_shop(shop), _purchased()).subquery()
    rows = conn.execute(
        select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(sorted(set(positions))))
    ).all()
    found = {int(row.rank): row.value for row in rows}
    return [found[p] for p in positions]


def _rfm_values(cuts: RfmCuts | None, today: dt.date, tz: dt.tzinfo) -> dict[str, Any]:
    if cuts is None:
        return {"rfm_recency": None, "rfm_frequency": None, "rfm_monetary": None, "rfm_group": None}
    last = profiles.c.last_order_at
    # days < cut  <=>  the last purchase's day is after today - cut  <=>  on or after
    # the start of today - cut + 1.
    since = [day_start(today - dt.timedelta(days=c - 1), tz) for c in cuts.recency_days]
    recency = case(
        (last >= since[3], 5),
        (last >= since[2], 4),
        (last >= since[1], 3),
        (last >= since[0], 2),
        else_=1,
    )
    frequency = _above(profiles.c.number_of_orders, cuts.frequency)
    monetary = _above(profiles.c.amount_spent, cuts.monetary)
    # One CASE on R * 100 + F + M (evaluated once per row) over the 125 combinations.
    group = case(_groups(), value=recency * 100 + frequency + monetary)
    scored = _purchased()
    return {
        "rfm_recency": case((scored, recency), else_=None),
        "rfm_frequency": case((scored, frequency), else_=None),
        "rfm_monetary": case((scored, monetary), else_=None),
        "rfm_group": case((scored, group), else_=None),
    }


@functools.cache
def _groups() -> dict[int, str]:
    """R * 100 + F + M to its group, for every combination: worked out once, not on
    every refresh."""
    return {
        r * 100 + f + m: rfm_group(r, f, m)
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
    }


def _above(column: Any, cuts: Sequence[float]) -> ColumnElement[int]:
    """1 + the number of cuts ``column`` is strictly above (cuts ascend)."""
    return case(
        (column > cuts[3], 5),
        (column > cuts[2], 4),
        (column > cuts[1], 3),
        (column > cuts[0], 2),
        else_=1,
    )


# -- lifecycle -----------------------------------------------------------------------------


def _stage(today: dt.date, tz: dt.tzinfo) -> ColumnElement[str]:
    """The lifecycle stage of a profile (see `update_lifecycle`), as a CASE."""

    def since(days: int) -> dt.datetime:  # the start of the day ``days`` days ago
        return day_start(today - dt.timedelta(days=days), tz)

    last = profiles.c.last_order_at
    orders = profiles.c.number_of_orders
    return case(
        (~_purchased(), "prospect"),
        (last < since(LAPSED_DAYS - 1), "lapsed"),
        (last < since(ACTIVE_DAYS - 1), "dormant"),
        (and_(orders == 1, last >= since(NEW_DAYS - 1)), "new"),
        (orders == 1, "second_purchase_candidate"),
        (orders >= LOYAL_ORDERS, "loyal"),
        else_="repeat",
    )


# -- shared helpers ------------------------------------------------------------------------


def _targets(
    conn: Connection, shop: str, profile_ids: Collection[int] | None
) -> list[ColumnElement[bool]]:
    """The WHERE of an update: every profile of the shop, or those ids of it (nothing
    when empty)."""
    if profile_ids is None:
        return [of_shop(shop)]
    return [and_(of_shop(shop), among(conn, profile_ids))] if profile_ids else []


def last_full_scoring(conn: Connection, *, shop: str) -> dt.datetime | None:
    """When RFM or lifecycle was last recomputed over every profile of ``shop`` (the
    later of the two)."""
    return full_scoring_of(get_states(conn, [RFM_STATE, LIFECYCLE_STATE], shop=shop))


def full_scoring_of(states: dict[str, dict[str, Any]]) -> dt.datetime | None:
    """`last_full_scoring` from the crm_state values already read (by key)."""
    moments = [
        dt.datetime.fromisoformat(states[key]["full_at"])
        for key in (RFM_STATE, LIFECYCLE_STATE)
        if states.get(key, {}).get("full_at")
    ]
    return max(moments) if moments else None
