"""What each on-site offer did, per variant: impressions, clicks, CTR, conversions, CVR
and revenue, with each variant's difference from the control and its 95% interval
(:mod:`omnicrm.engage.stats`).

The unit is the person: a visitor, or every browser a signed-in customer used (their
profile). A person belongs to the variant of their first impression of the offer. A
conversion is an order of the person's profile, from any channel of the shop, placed
within ``days`` after that first impression; revenue is what those orders total.
Cancelled, refunded and returned orders do not count. The control is the first variant
by name (A), or the one named.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omnicrm.core.store.schema import orders
from omnicrm.crm.schema import profile_members
from omnicrm.engage.onsite.settings import OfferSettings
from omnicrm.engage.recommend.baskets import LEFT_OUT
from omnicrm.engage.schema import onsite_events, onsite_visitors
from omnicrm.engage.stats import Difference, mean_difference, rate_difference


@dataclass(frozen=True)
class VariantResult:
    """One variant's figures; the differences are from the control (None for it)."""

    variant: str
    impressions: int
    people: int  # who saw it
    clicks: int
    clickers: int
    conversions: int  # people who ordered within the window
    revenue: Decimal
    revenue_per_person: list[float] = field(repr=False, default_factory=list)
    ctr_difference: Difference | None = None
    cvr_difference: Difference | None = None
    revenue_difference: Difference | None = None

    @property
    def ctr(self) -> float:
        return self.clickers / self.people if self.people else float("nan")

    @property
    def cvr(self) -> float:
        return self.conversions / self.people if self.people else float("nan")


@dataclass(frozen=True)
class OfferResult:
    """An offer's figures per variant; the properties add its variants up (a person is
    in one variant only, so the sums count each person once)."""

    offer: str
    control: str
    variants: list[VariantResult]

    @property
    def impressions(self) -> int:
        return sum(v.impressions for v in self.variants)

    @property
    def people(self) -> int:
        return sum(v.people for v in self.variants)

    @property
    def clicks(self) -> int:
        return sum(v.clicks for v in self.variants)

    @property
    def conversions(self) -> int:
        return sum(v.conversions for v in self.variants)

    @property
    def revenue(self) -> Decimal:
        return sum((v.revenue for v in self.variants), Decimal(0))

    @property
    def cvr(self) -> float:
        """Conversions over people, every variant together (NaN before anyone saw it)."""
        people = self.people
        return self.conversions / people if people else float("nan")


def _by_person(conn: Connection, shop: str, offer: str, kind: str) -> Any:
    """Per visitor and variant: how many ``kind`` events, the first one's time, and the
    profile the visitor signed in as (None: anonymous)."""
    e, v, pm = onsite_events.c, onsite_visitors.c, profile_members.c
    signed_in = and_(pm.shop == v.shop, pm.connection == v.connection, pm.record_id == v.record_id)
    return conn.execute(
        select(e.visitor, e.variant, func.count(), func.min(e.at), pm.profile_id)
        .select_from(
            onsite_events.join(
                onsite_visitors, and_(v.shop == e.shop, v.id == e.visitor)
            ).outerjoin(profile_members, signed_in)
        )
        .where(e.shop == shop, e.offer == offer, e.kind == kind)
        .group_by(e.visitor, e.variant, pm.profile_id)
    )


def _key(visitor: str, profile: int | None) -> str:
    return f"p{profile}" if profile is not None else f"v{visitor}"


def _people(
    conn: Connection, shop: str, offer: str
) -> dict[str, tuple[str, dt.datetime, int | None]]:
    """Person key -> (variant, first impression, profile id) for ``offer``."""
    found: dict[str, tuple[str, dt.datetime, int | None]] = {}
    for visitor, variant, _n, first, profile in _by_person(conn, shop, offer, "impression"):
        key = _key(visitor, profile)
        if key not in found or first < found[key][1]:
            found[key] = (variant, first, profile)
    return found


def _clickers(conn: Connection, shop: str, offer: str) -> tuple[dict[str, int], set[str]]:
    """Clicks per variant, and the person keys of who clicked."""
    clicks: dict[str, int] = {}
    who: set[str] = set()
    for visitor, variant, n, _first, profile in _by_person(conn, shop, offer, "click"):
        clicks[variant] = clicks.get(variant, 0) + int(n)
        who.add(_key(visitor, profile))
    return clicks, who


def _revenue(
    conn: Connection, shop: str, first_seen: Mapping[int, dt.datetime], days: int
) -> dict[int, tuple[int, Decimal]]:
    """Profile -> (orders, their total) placed within ``days`` after its first impression."""
    if not first_seen:
        return {}
    o, pm = orders.c, profile_members.c
    found: dict[int, tuple[int, Decimal]] = {}
    ids = sorted(first_seen)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            select(pm.profile_id, o.placed_at, o.total)
            .join(
                orders,
                and_(o.connection == pm.connection, o.customer_id == pm.record_id),
            )
            .where(
                pm.shop == shop,
                pm.profile_id.in_(chunk),
                o.shop == shop,
                o.status.not_in([s.value for s in LEFT_OUT]),
                o.cancelled_at.is_(None),
            )
        )
        window = dt.timedelta(days=days)
        for profile, placed, total in rows:
            seen = first_seen[profile]
            if seen <= placed <= seen + window:
                n, amount = found.get(profile, (0, Decimal(0)))
                found[profile] = (n + 1, amount + Decimal(total))
    return found


def offer_report(
    conn: Connection,
    shop: str,
    name: str,
    offer: OfferSettings,
    *,
    days: int,
    control: str | None = None,
) -> OfferResult:
    """The figures of offer ``name`` per variant (see the module)."""
    variants = [v.name for v in offer.all_variants()]
    chosen = control or sorted(variants)[0]
    if chosen not in variants:
        raise ValueError(
            f"offer {name} has no variant {chosen!r} (variants: {', '.join(variants)})"
        )
    e = onsite_events.c
    impressions: dict[str, int] = {
        variant: int(n)
        for variant, n in conn.execute(
            select(e.variant, func.count())
            .where(e.shop == shop, e.offer == name, e.kind == "impression")
            .group_by(e.variant)
        )
    }
    people = _people(conn, shop, name)
    clicks, clickers = _clickers(conn, shop, name)
    bought = _revenue(
        conn, shop, {p: first for _, first, p in people.values() if p is not None}, days
    )
    groups: dict[str, list[tuple[str, int | None]]] = {v: [] for v in variants}
    for key, (variant, _first, profile) in people.items():
        groups.setdefault(variant, []).append((key, profile))
    raw: dict[str, VariantResult] = {}
    for variant, members in groups.items():
        spend = [
            float(bought.get(p, (0, Decimal(0)))[1]) if p is not None else 0.0 for _, p in members
        ]
        raw[variant] = VariantResult(
            variant=variant,
            impressions=impressions.get(variant, 0),
            people=len(members),
            clicks=clicks.get(variant, 0),
            clickers=sum(1 for key, _ in members if key in clickers),
            conversions=sum(1 for _, p in members if p is not None and p in bought),
            revenue=sum(
                (bought[p][1] for _, p in members if p is not None and p in bought), Decimal(0)
            ),
            revenue_per_person=spend,
        )
    base = raw[chosen]
    results = []
    for variant in sorted(raw):
        r = raw[variant]
        if variant == chosen:
            results.append(r)
            continue
        results.append(
            dataclasses.replace(
                r,
                ctr_difference=rate_difference(r.clickers, r.people, base.clickers, base.people),
                cvr_difference=rate_difference(
                    r.conversions, r.people, base.conversions, base.people
                ),
                revenue_difference=_mean_difference(r.revenue_per_person, base.revenue_per_person),
            )
        )
    return OfferResult(offer=name, control=chosen, variants=results)


def _moments(values: Sequence[float]) -> tuple[int, float, float]:
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    variance = statistics.variance(values) if n >= 2 else 0.0
    return n, mean, variance


def _mean_difference(values: Sequence[float], control: Sequence[float]) -> Difference:
    return mean_difference(*_moments(values), *_moments(control))
