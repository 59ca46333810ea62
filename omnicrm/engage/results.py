"""What a campaign did: per variant and for the hold-out group, what was sent, what came
back (opens, clicks) and what was bought after it, with each variant's lift over the
hold-out group and how sure it is.

Who counts, per group:

- a variant's recipients are its messages the medium accepted (``sent``); a message
  whose fate is ``unknown`` is left out (it may never have gone). ``bounced`` are those
  the medium refused (``rejected``) and those sent whose address bounced afterwards (on
  the suppression list as bounced since the hand-over); ``delivered`` is sent minus the
  latter.
- the hold-out group's "recipients" are its members who would have been sent the message
  (reason ``holdout``: see :mod:`omnicrm.engage.campaigns`), the same kind of people.

A conversion is a purchase (``paid`` or ``fulfilled``) by any of the person's merged
source customers, on any channel (the store's POS included), placed within the
attribution window (``[messaging] attribution_days``, default 7, or the campaign's own)
after their message was handed over; for the hold-out group, after the campaign's send
began (its first hand-over), so both are counted over a window of the same length.
Revenue is the total of those orders. A variant is compared with the hold-out group on
the conversion rate (Newcombe's interval) and on revenue per recipient (Welch's), from
:mod:`omnicrm.engage.stats`.

The arithmetic (:func:`attribute`, :func:`summarise`) is plain Python over plain
values; :func:`campaign_results` reads them from the store.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from omnicrm.core.consent import Refusal
from omnicrm.core.records import Medium
from omnicrm.core.store.schema import orders, suppressions
from omnicrm.crm.profiles import is_purchase
from omnicrm.crm.schema import profile_members
from omnicrm.engage.campaigns import HOLDOUT, Campaign, CampaignError, tracks
from omnicrm.engage.schema import message_events, outbox
from omnicrm.engage.settings import MessagingSettings
from omnicrm.engage.stats import Difference, mean_difference, rate_difference

RECIPIENT = "sent"
"""The outbox status of a variant's recipients."""


@dataclass(frozen=True)
class Recipient:
    """One member of a group, for attribution: their outbox row, group and window start."""

    row: int
    group: str
    start: dt.datetime


@dataclass(frozen=True)
class Purchase:
    """An order of a recipient's (by their outbox row)."""

    row: int
    placed_at: dt.datetime
    total: Decimal


def attribute(
    recipients: Iterable[Recipient], purchases: Iterable[Purchase], window: dt.timedelta
) -> dict[int, Decimal]:
    """The revenue of each converted recipient (by outbox row): the total of their
    purchases placed from their window's start to ``window`` after it."""
    starts = {r.row: r.start for r in recipients}
    revenue: dict[int, Decimal] = {}
    for p in purchases:
        start = starts.get(p.row)
        if start is not None and start <= p.placed_at < start + window:
            revenue[p.row] = revenue.get(p.row, Decimal(0)) + p.total
    return revenue


@dataclass(frozen=True)
class Group:
    """The figures of one variant, or of the hold-out group."""

    name: str
    planned: int
    suppressed: dict[str, int]  # by reason
    statuses: dict[str, int]
    sent: int
    bounced: int
    delivered: int
    opened: int
    clicked: int
    recipients: int  # the conversion rate's denominator (see the module)
    converted: int
    revenue: Decimal
    revenue_squares: float  # the sum of each recipient's revenue squared (its variance)

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.recipients if self.recipients else math.nan

    @property
    def revenue_per_recipient(self) -> float:
        return float(self.revenue) / self.recipients if self.recipients else math.nan

    @property
    def revenue_variance(self) -> float:
        """The sample variance of revenue per recipient (NaN under two recipients)."""
        n = self.recipients
        if n < 2:
            return math.nan
        mean = float(self.revenue) / n
        return max(0.0, (self.revenue_squares - n * mean * mean) / (n - 1))


@dataclass(frozen=True)
class Comparison:
    """A variant against the hold-out group: the differences (variant minus hold-out)."""

    variant: str
    conversion_rate: Difference
    revenue_per_recipient: Difference


@dataclass(frozen=True)
class Results:
    """What :func:`campaign_results` found."""

    campaign: Campaign
    tracked: bool
    window: dt.timedelta
    sent_from: dt.datetime | None  # the first hand-over: the hold-out group's window start
    counted_until: dt.datetime | None  # when the last recipient's window closes
    groups: list[Group]
    comparisons: list[Comparison] = field(default_factory=list)
    unknown: int = 0

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    def open(self, now: dt.datetime) -> bool:
        """Whether conversions may still come in (a window has not closed yet)."""
        return self.counted_until is None or now < self.counted_until

    def to_json(self) -> dict[str, Any]:
        """The results as JSON-ready values: money as decimal strings, a missing
        interval bound as null."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        def diff(d: Difference) -> dict[str, Any]:
            return {
                "value": num(d.value),
                "low": num(d.low),
                "high": num(d.high),
                "confidence": d.confidence,
                "significant": d.significant,
            }

        c = self.campaign
        return {
            "campaign": c.name,
            "shop": c.shop,
            "medium": c.medium.value,
            "status": c.status,
            "tracked": self.tracked,
            "attribution_days": self.window.days,
            "sent_from": self.sent_from.isoformat() if self.sent_from else None,
            "counted_until": self.counted_until.isoformat() if self.counted_until else None,
            "unknown": self.unknown,
            "groups": [
                {
                    "name": g.name,
                    "planned": g.planned,
                    "sent": g.sent,
                    "suppressed": dict(sorted(g.suppressed.items())),
                    "statuses": dict(sorted(g.statuses.items())),
                    "delivered": g.delivered,
                    "bounced": g.bounced,
                    "opened": g.opened if self.tracked else None,
                    "clicked": g.clicked if self.tracked else None,
                    "recipients": g.recipients,
                    "converted": g.converted,
                    "conversion_rate": num(g.conversion_rate),
                    "revenue": format(g.revenue.normalize(), "f"),
                    "revenue_per_recipient": num(g.revenue_per_recipient),
                }
                for g in self.groups
            ],
            "comparisons": [
                {
                    "variant": k.variant,
                    "against": HOLDOUT,
                    "conversion_rate": diff(k.conversion_rate),
                    "revenue_per_recipient": diff(k.revenue_per_recipient),
                }
                for k in self.comparisons
            ],
        }


def summarise(
    name: str,
    rows: Mapping[tuple[str, str | None], int],
    *,
    bounced_later: int,
    opened: int,
    clicked: int,
    recipients: int,
    revenue: Sequence[Decimal],
) -> Group:
    """One group's figures from its outbox rows counted by (status, reason) and what
    came back; ``revenue``: each converted recipient's."""
    statuses: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    for (status, reason), n in rows.items():
        statuses[status] += n
        if status == "suppressed":
            suppressed[reason or "unknown"] += n
    sent = statuses.get("sent", 0)
    return Group(
        name=name,
        planned=sum(statuses.values()),
        suppressed=dict(suppressed),
        statuses=dict(statuses),
        sent=sent,
        bounced=statuses.get("rejected", 0) + statuses.get("bounced", 0) + bounced_later,
        delivered=sent - bounced_later,
        opened=opened,
        clicked=clicked,
        recipients=recipients,
        converted=len(revenue),
        revenue=sum(revenue, Decimal(0)),
        revenue_squares=sum(float(r) ** 2 for r in revenue),
    )


def compare(group: Group, holdout: Group) -> Comparison:
    """``group`` against the hold-out group."""
    return Comparison(
        group.name,
        rate_difference(group.converted, group.recipients, holdout.converted, holdout.recipients),
        mean_difference(
            group.recipients,
            group.revenue_per_recipient if group.recipients else 0.0,
            group.revenue_variance,
            holdout.recipients,
            holdout.revenue_per_recipient if holdout.recipients else 0.0,
            holdout.revenue_variance,
        ),
    )


# -- the store ---------------------------------------------------------------------------


def campaign_results(
    conn: Connection, campaign: Campaign, *, window: dt.timedelta, tracked: bool
) -> Results:
    """The results of ``campaign`` (see the module), conversions counted over
    ``window`` (:meth:`Campaign.window`)."""
    shop = campaign.shop
    o = outbox.c
    mine = and_(o.shop == shop, o.campaign_id == campaign.id)
    by_group: dict[str, dict[tuple[str, str | None], int]] = {}
    for variant, status, reason, n in conn.execute(
        select(o.variant, o.status, o.reason, func.count())
        .where(mine)
        .group_by(o.variant, o.status, o.reason)
    ):
        by_group.setdefault(variant, {})[(status, reason)] = n
    bounced = _bounced_later(conn, campaign)
    events: dict[tuple[str, str], int] = {
        (variant, kind): n
        for variant, kind, n in conn.execute(
            select(o.variant, message_events.c.kind, func.count())
            .join(
                message_events,
                (message_events.c.shop == o.shop) & (message_events.c.outbox_id == o.id),
            )
            .where(mine, message_events.c.campaign_id == campaign.id)
            .group_by(o.variant, message_events.c.kind)
        )
    }
    first, last = conn.execute(
        select(func.min(o.handed_at), func.max(o.handed_at)).where(mine, o.status == RECIPIENT)
    ).one()
    counted = [
        *(
            Recipient(row, variant, start)
            for row, variant, start in conn.execute(
                select(o.id, o.variant, o.handed_at).where(mine, o.status == RECIPIENT)
            )
        ),
        *(
            # A member held out after the send began (a cart recovery plans each person
            # when their cart is due) is counted from then.
            Recipient(row, HOLDOUT, max(first, planned))
            for row, planned in (
                conn.execute(
                    select(o.id, o.planned_at).where(
                        mine, o.variant == HOLDOUT, o.reason == Refusal.HOLDOUT.value
                    )
                )
                if first is not None
                else ()
            )
        ),
    ]
    if counted and last is not None:
        last = max(last, *(r.start for r in counted))
    revenue = attribute(counted, _purchases(conn, campaign, first, last, window), window)
    sizes = Counter(r.group for r in counted)
    earned: dict[str, list[Decimal]] = {}
    group_of = {r.row: r.group for r in counted}
    for row, amount in revenue.items():
        earned.setdefault(group_of[row], []).append(amount)
    names = [v.name for v in campaign.variants] + [HOLDOUT]
    groups = [
        summarise(
            name,
            by_group.get(name, {}),
            bounced_later=bounced.get(name, 0),
            opened=events.get((name, "open"), 0),
            clicked=events.get((name, "click"), 0),
            recipients=sizes.get(name, 0),
            revenue=earned.get(name, []),
        )
        for name in names
        if name != HOLDOUT or name in by_group
    ]
    held = next((g for g in groups if g.name == HOLDOUT), None)
    comparisons = (
        [compare(g, held) for g in groups if g.name != HOLDOUT] if held is not None else []
    )
    unknown = sum(n for rows in by_group.values() for (s, _), n in rows.items() if s == "unknown")
    return Results(
        campaign,
        tracked,
        window,
        first,
        None if last is None else last + window,
        groups,
        comparisons,
        unknown,
    )


def results_of(
    conn: Connection, campaign: Campaign, settings: MessagingSettings, base_url: str | None
) -> Results:
    """:func:`campaign_results` as the shop's messaging settings (``settings``) and
    ``[web] base_url`` say: tracked as the campaign is, over its attribution window."""
    try:
        tracked = tracks(campaign, settings, base_url)
    except CampaignError:
        tracked = False  # told to track, never could: nothing was tracked
    return campaign_results(conn, campaign, window=campaign.window(settings), tracked=tracked)


def _bounced_later(conn: Connection, campaign: Campaign) -> dict[str, int]:
    """Per group, the sent messages whose address went on the suppression list as
    bounced after the hand-over (a bounce that came back later)."""
    o, s = outbox.c, suppressions.c
    key = func.trim(o.address)
    if campaign.medium == Medium.EMAIL:
        key = func.lower(key)
    rows = conn.execute(
        select(o.variant, func.count())
        .join(
            suppressions,
            (s.shop == o.shop) & (s.medium == o.medium) & (s.address == key),
        )
        .where(
            o.shop == campaign.shop,
            o.campaign_id == campaign.id,
            o.status == RECIPIENT,
            s.reason == Refusal.BOUNCED.value,
            s.since >= o.handed_at,
        )
        .group_by(o.variant)
    )
    return {variant: n for variant, n in rows}


def _purchases(
    conn: Connection,
    campaign: Campaign,
    first: dt.datetime | None,
    last: dt.datetime | None,
    window: dt.timedelta,
) -> list[Purchase]:
    """The purchases of the campaign's recipients and held-out members placed between
    its first hand-over and the close of its last window (each recipient's own window
    is :func:`attribute`'s to apply)."""
    if first is None or last is None:
        return []
    o, pm = outbox.c, profile_members.c
    rows = conn.execute(
        select(o.id, orders.c.placed_at, orders.c.total)
        .select_from(
            outbox.join(
                profile_members, (pm.shop == o.shop) & (pm.profile_id == o.profile_id)
            ).join(
                orders,
                (orders.c.connection == pm.connection) & (orders.c.customer_id == pm.record_id),
            )
        )
        .where(
            o.shop == campaign.shop,
            o.campaign_id == campaign.id,
            or_(
                o.status == RECIPIENT,
                and_(o.variant == HOLDOUT, o.reason == Refusal.HOLDOUT.value),
            ),
            orders.c.shop == campaign.shop,
            is_purchase(),
            orders.c.placed_at >= first,
            orders.c.placed_at < last + window,
        )
    )
    return [Purchase(row, placed_at, Decimal(total)) for row, placed_at, total in rows]
