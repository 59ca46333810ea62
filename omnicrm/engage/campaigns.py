"""Campaigns: a segment, a message and a medium, planned into the outbox, then sent.

Life of a campaign: ``draft`` (or ``scheduled`` with a time) -> ``planned`` (one outbox
row per recipient, suppressed ones with their reason) -> ``sending`` -> ``done``; an
operator may ``pause`` (the sender stops after the row in hand), ``resume`` and
``cancel`` (rows not yet handed over are cancelled).

A campaign is refused at creation, before anything is sent, when its segment does not
parse, a template names an unknown field, or its medium has no dispatcher configured
with valid settings in the shop; the error says which and why.

Variants and the hold-out group are assigned by a hash of the campaign and the person,
so planning again assigns everyone the same. A person of the hold-out group is recorded
as held out (reason ``holdout``) only when they would otherwise have been sent the
message; one who would have been suppressed anyway keeps that reason. The held-out ones
are thus the same kind of people as the recipients, and what they bought is the baseline
a variant's conversions are compared with (:mod:`omnicrm.engage.results`).

An email campaign tracks opens and clicks (:mod:`omnicrm.engage.tracking`) as it or the
shop's ``[messaging] tracking`` says, by default where ``[web] base_url`` is set: the
links point there. One told to track without a base URL is refused when planned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    String,
    Subquery,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    null,
    select,
    union,
    update,
)

from omnicrm.core import consent
from omnicrm.core.consent import Refusal
from omnicrm.core.host import Host
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store.schema import (
    UtcDateTime,
    address_links,
    consent_records,
    customers,
    suppressions,
)
from omnicrm.core.writeback import CouponSpec
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.crm.segments import SegmentError, compile_expression
from omnicrm.crm.segments.counts import resolve
from omnicrm.engage import coupons, split
from omnicrm.engage.permission import COUNTED
from omnicrm.engage.schema import campaigns, outbox
from omnicrm.engage.settings import MessagingSettings
from omnicrm.engage.templates import check_template
from omnicrm.errors import ConfigError, DataError

log = logging.getLogger("omnicrm.engage")

HOLDOUT = "holdout"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class CampaignError(DataError):
    """A campaign that cannot be created or moved as asked; the message says why."""


class Variant(BaseModel):
    """One version of the message; recipients are split by ``weight``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: float = Field(default=1.0, gt=0)
    subject: str | None = None
    body: str = Field(min_length=1)
    html: str | None = None  # an HTML alternative of the body (email)


@dataclass(frozen=True)
class Campaign:
    id: int
    shop: str
    name: str
    segment: str
    medium: Medium
    dispatcher: str
    variants: tuple[Variant, ...]
    holdout: float
    status: str
    scheduled_at: dt.datetime | None
    created_at: dt.datetime
    planned_at: dt.datetime | None
    finished_at: dt.datetime | None
    tracking: bool | None = None  # None: as the shop's [messaging] says
    attribution_days: int | None = None  # None: as the shop's [messaging] says

    def window(self, settings: MessagingSettings) -> dt.timedelta:
        """How long after a message an order counts as its conversion."""
        return dt.timedelta(days=self.attribution_days or settings.attribution_days)


def tracks(campaign: Campaign, settings: MessagingSettings, base_url: str | None) -> bool:
    """Whether ``campaign``'s messages carry open and click tracking (email only): as the
    campaign says, else the shop's ``[messaging] tracking``, else where ``base_url`` is
    set. A CampaignError if it is told to track and there is no ``base_url``."""
    wanted = campaign.tracking if campaign.tracking is not None else settings.tracking
    if campaign.medium != Medium.EMAIL:
        return False
    if wanted is None:
        return base_url is not None
    if wanted and base_url is None:
        raise CampaignError(
            f"campaign {campaign.name} tracks opens and clicks, but [web] base_url is not "
            "set: set it to the public https address of `omnicrm webhooks serve` (the "
            "links point there), or turn tracking off (--no-tracking, or [messaging] "
            "tracking = false)"
        )
    return wanted


def dispatcher_for(
    host: Host, settings: MessagingSettings, medium: Medium, *, shop: str
) -> tuple[str, BaseModel]:
    """The dispatcher configured for ``medium`` in ``shop`` and its validated settings; a
    ConfigError saying what is missing otherwise (no secret is ever shown)."""
    key = f"shops.{shop}.messaging.dispatchers.{medium.value}"
    choice = settings.dispatchers.get(medium)
    if choice is None:
        raise ConfigError(
            f"no dispatcher is configured for {medium.value} in shop {shop!r}", key=key
        )
    spec = host.dispatchers.get(choice.dispatcher)
    if spec is None:
        known = ", ".join(sorted(host.dispatchers)) or "none installed"
        raise ConfigError(f"unknown dispatcher {choice.dispatcher!r} (known: {known})", key=key)
    if spec.medium != medium:
        raise ConfigError(
            f"dispatcher {choice.dispatcher!r} sends {spec.medium.value}, not {medium.value}",
            key=key,
        )
    try:
        return choice.dispatcher, spec.settings.model_validate(choice.settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"settings of dispatcher {choice.dispatcher!r} are incomplete or wrong: {problems}",
            key=f"{key}.settings",
        ) from None


def create(
    conn: Connection,
    host: Host,
    settings: MessagingSettings,
    *,
    shop: str,
    name: str,
    segment: str,
    medium: Medium,
    variants: Sequence[Variant],
    holdout: float | None = None,
    scheduled_at: dt.datetime | None = None,
    tracking: bool | None = None,
    attribution_days: int | None = None,
    now: dt.datetime,
    coupon: CouponSpec | None = None,
    coupon_connection: str | None = None,
    checkout: bool = False,
) -> int:
    """Create a campaign of ``shop``, checked whole first (see the module); its id.

    ``coupon``: every recipient gets a unique code of this discount (the template field
    ``coupon_code``), created on ``coupon_connection``'s platform before sending (None:
    on none; see :mod:`omnicrm.engage.coupons`). ``checkout``: its templates may name
    the abandoned checkout (a cart recovery's, :mod:`omnicrm.engage.recovery`)."""
    if not _NAME.fullmatch(name):
        raise CampaignError(
            f"campaign name {name!r}: letters, digits, '-', '_' and '.' (at most 100)"
        )
    if conn.execute(
        select(campaigns.c.id).where(campaigns.c.shop == shop, campaigns.c.name == name)
    ).first():
        raise CampaignError(f"shop {shop!r} already has a campaign named {name!r}")
    try:
        resolve(conn, segment, shop=shop)
    except SegmentError as exc:
        raise CampaignError(f"segment: {exc}") from None
    dispatcher, _ = dispatcher_for(host, settings, medium, shop=shop)
    if not variants:
        raise CampaignError("a campaign needs a message (at least one variant)")
    if len({v.name for v in variants}) != len(variants) or HOLDOUT in {v.name for v in variants}:
        raise CampaignError(f"variant names must differ and not be {HOLDOUT!r}")
    for v in variants:
        if medium == Medium.EMAIL and not v.subject:
            raise CampaignError(f"variant {v.name}: an email needs a subject")
        if medium == Medium.LINE and v.subject:
            raise CampaignError(f"variant {v.name}: a LINE message has no subject")
        if v.html is not None and medium != Medium.EMAIL:
            raise CampaignError(f"variant {v.name}: only an email has an HTML body")
        may = {"coupon": coupon is not None, "checkout": checkout}
        if v.subject:
            check_template(v.subject, what=f"variant {v.name} subject", **may)
        check_template(v.body, what=f"variant {v.name} body", **may)
        if v.html is not None:
            check_template(v.html, what=f"variant {v.name} HTML body", html=True, **may)
    if tracking and medium != Medium.EMAIL:
        raise CampaignError("tracking opens and clicks is for email (its HTML body) only")
    if attribution_days is not None and not 1 <= attribution_days <= 90:
        raise CampaignError(f"the attribution window is 1 to 90 days, not {attribution_days}")
    share = settings.holdout if holdout is None else holdout
    if not 0 <= share <= 0.5:
        raise CampaignError(f"the hold-out share is 0 to 0.5, not {share}")
    if scheduled_at is not None and scheduled_at.utcoffset() is None:
        raise CampaignError("a scheduled time needs a timezone")
    result = conn.execute(
        insert(campaigns).values(
            shop=shop,
            name=name,
            segment=segment,
            medium=medium.value,
            dispatcher=dispatcher,
            variants=[v.model_dump() for v in variants],
            holdout=share,
            status="scheduled" if scheduled_at else "draft",
            scheduled_at=scheduled_at,
            created_at=now,
            tracking=tracking,
            attribution_days=attribution_days,
        )
    )
    campaign_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if coupon is not None:
        coupons.attach(
            conn,
            shop=shop,
            campaign_id=campaign_id,
            spec=coupon,
            connection=coupon_connection,
            now=now,
        )
    log.info("campaign %s created in shop %s (%s, %s)", name, shop, medium.value, dispatcher)
    return campaign_id


def get(conn: Connection, name_or_id: str | int, *, shop: str) -> Campaign:
    """``shop``'s campaign by name (or id); a CampaignError naming it if there is none."""
    c = campaigns.c
    query = select(campaigns).where(c.shop == shop)
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        query = query.where(c.id == int(name_or_id))
    else:
        query = query.where(c.name == name_or_id)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise CampaignError(f"shop {shop!r} has no campaign {name_or_id!r}")
    return Campaign(
        id=row["id"],
        shop=row["shop"],
        name=row["name"],
        segment=row["segment"],
        medium=Medium(row["medium"]),
        dispatcher=row["dispatcher"],
        variants=tuple(Variant.model_validate(v) for v in row["variants"]),
        holdout=row["holdout"],
        status=row["status"],
        scheduled_at=row["scheduled_at"],
        created_at=row["created_at"],
        planned_at=row["planned_at"],
        finished_at=row["finished_at"],
        tracking=row["tracking"],
        attribution_days=row["attribution_days"],
    )


def list_campaigns(conn: Connection, *, shop: str) -> list[Campaign]:
    ids = conn.execute(
        select(campaigns.c.id).where(campaigns.c.shop == shop).order_by(campaigns.c.id)
    ).scalars()
    return [get(conn, i, shop=shop) for i in list(ids)]


# -- assignment --------------------------------------------------------------------------

# The hash is plain integer arithmetic modulo the prime 2**31 - 1 (every product stays
# below 2**63), which SQLite and PostgreSQL compute natively and exactly as Python does:
# planning assigns in the database what assign() says here. Each round is an affine map
# keyed by the campaign followed by x**5, a bijection modulo this prime that mixes
# neighbouring ids apart; two rounds split consecutive ids and different campaigns
# independently (within a tenth of a per cent over a million ids).
_PRIME = split.SPAN


def _keys(campaign_id: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two rounds' (multiplier, offset) of ``campaign_id``'s hash."""
    digest = hashlib.blake2b(f"omnicrm.campaign:{campaign_id}".encode(), digest_size=16).digest()
    a, b, c, d = (int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4))
    return (a % (_PRIME - 1) + 1, b % _PRIME), (c % (_PRIME - 1) + 1, d % _PRIME)


def _round(x: Any, multiplier: int, offset: int) -> Any:
    """One round of the hash, over an int in Python or a column in SQL alike."""
    y = (x * multiplier + offset) % _PRIME
    y2 = y * y % _PRIME
    return y2 * y2 % _PRIME * y % _PRIME


def _unit(campaign_id: int, profile_id: int) -> int:
    """A number in [0, 2**31 - 1) fixed by the campaign and the person."""
    first, second = _keys(campaign_id)
    return int(_round(_round(profile_id % _PRIME, *first), *second))


def _edges(campaign: Campaign) -> list[tuple[int, str]]:
    """(upper bound of the hash, group) for the hold-out group then each variant."""
    bounds = split.edges(
        [(v.name, v.weight) for v in campaign.variants],
        holdout=campaign.holdout,
        holdout_name=HOLDOUT,
    )
    # The hold-out group keeps its (empty) share when there is none: planning names it.
    return bounds if campaign.holdout > 0 else [(0, HOLDOUT), *bounds]


def assign(campaign: Campaign, profile_id: int) -> str:
    """The variant (or the hold-out group) ``profile_id`` is in: the same every time."""
    unit = _unit(campaign.id, profile_id)
    return next(name for edge, name in _edges(campaign) if unit < edge)


def message_id(campaign: Campaign, profile_id: int) -> str:
    """The message's identity, the same on every attempt (a Message-ID, a retry key)."""
    return f"{campaign.shop}.c{campaign.id}.p{profile_id}.{campaign.medium.value}"


# -- planning ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What planning wrote: rows to send and rows suppressed, by reason."""

    planned: int
    suppressed: dict[str, int]

    @property
    def total(self) -> int:
        return self.planned + sum(self.suppressed.values())


_ADDRESS = {
    Medium.EMAIL: profiles.c.email,
    Medium.SMS: profiles.c.phone,
    Medium.POSTAL: profiles.c.postal_code,  # the full address is read at send time
}


def _address_column(shop: str, medium: Medium) -> ColumnElement[Any]:
    """Where ``medium`` reaches a profile, as a column of ``profiles`` (NULL: nowhere)."""
    column = _ADDRESS.get(medium)
    if column is not None:
        return column
    if medium == Medium.LINE:
        # The user id most lately linked to one of the profile's members.
        a, pm = address_links.c, profile_members.c
        return (
            select(a.address)
            .join(
                profile_members,
                (pm.shop == a.shop)
                & (pm.connection == a.connection)
                & (pm.record_id == a.record_id),
            )
            .where(a.shop == shop, a.medium == medium.value, pm.profile_id == profiles.c.id)
            .order_by(a.linked_at.desc())
            .limit(1)
            .scalar_subquery()
        )
    return cast(null(), String)


def plan(
    conn: Connection,
    campaign: Campaign,
    settings: MessagingSettings,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    base_url: str | None = None,
) -> Plan:
    """Write the outbox rows of ``campaign`` (draft or scheduled): every profile of its
    segment gets one, to send or suppressed with the first reason that stops it (the
    hold-out group's last: see the module). ``base_url``: ``[web] base_url``, without
    which a campaign told to track is refused (:func:`tracks`).

    One ``INSERT ... SELECT``: the hash, the suppression list, the statements made
    through omnicrm and the caps are all joined and decided in the database.
    """
    if campaign.status not in ("draft", "scheduled"):
        raise CampaignError(f"campaign {campaign.name} is {campaign.status}: planned already")
    tracks(campaign, settings, base_url)
    shop, medium = campaign.shop, campaign.medium
    try:
        _, node = resolve(conn, campaign.segment, shop=shop)
    except SegmentError as exc:
        raise CampaignError(f"segment: {exc}") from None
    p, s = profiles.c, suppressions.c
    address = _address_column(shop, medium)
    statement = _latest_statements(shop, medium)
    # Addresses of printable ASCII are normalised in SQL as normalize_address does in
    # Python; any other (a full-width space, a full-width letter) is looked up after.
    key = func.trim(address)
    listed = (
        (s.shop == shop)
        & (s.medium == medium.value)
        & (s.address == (func.lower(key) if medium == Medium.EMAIL else key))
        & ~_irregular(conn, address)
    )
    # The caps and withdrawals as joins, not IN lists in the select list: PostgreSQL
    # runs an IN list it expects to be large again for every row (no hash), which
    # made a re-plan of a million profiles take minutes.
    over = _over_caps(shop, medium, settings, now)
    capped_ids: Subquery | None = None
    if over:
        capped_ids = (union(*over) if len(over) > 1 else over[0]).subquery("capped")
    gone = _withdrawn_profiles(shop).subquery("gone")
    source: Any = profiles.outerjoin(statement, statement.c.profile_id == p.id)
    source = source.outerjoin(suppressions, listed).outerjoin(gone, gone.c.profile_id == p.id)
    capped: ColumnElement[bool] = false()
    if capped_ids is not None:
        source = source.outerjoin(capped_ids, capped_ids.c.profile_id == p.id)
        capped = capped_ids.c.profile_id.is_not(None)
    withdrawn = gone.c.profile_id.is_not(None)
    # Fences (OFFSET 0) keep the database from computing the hash's rounds and the
    # lookups again for every place the next query uses them.
    first, second = _keys(campaign.id)
    inner = (
        select(
            p.id.label("pid"),
            _round(cast(p.id, BigInteger) % _PRIME, *first).label("mixed"),
            (address.is_(None) | (address == "")).label("no_address"),
            s.reason.label("listed"),
            statement.c.state.label("stated"),
            func.coalesce(p[f"consent_{medium.value}"], "").label("channel"),
            capped.label("capped"),
            withdrawn.label("withdrawn"),
        )
        .select_from(source)
        .where(p.shop == shop, compile_expression(node, now, tz))
        .offset(0)
        .subquery("recipient")
    )
    drawn = (
        select(
            *(c for c in inner.c if c.key != "mixed"),
            _round(inner.c.mixed, *second).label("unit"),
        )
        .offset(0)
        .subquery("drawn")
    )
    r = drawn.c
    edges = _edges(campaign)
    variant = case(*((r.unit < edge, name) for edge, name in edges[:-1]), else_=edges[-1][1])
    reason = case(
        (r.withdrawn, Refusal.WITHDRAWN.value),
        (r.no_address, Refusal.NO_ADDRESS.value),
        (r.listed.is_not(None), r.listed),
        # The channels' statement as the profile keeps it carries no time: one made
        # through omnicrm outranks it (see omnicrm.core.consent).
        (r.stated == ConsentState.OPTED_OUT.value, Refusal.UNSUBSCRIBED.value),
        (
            r.stated.is_not(None) & (r.stated != ConsentState.OPTED_IN.value),
            Refusal.NO_CONSENT.value,
        ),
        (r.stated.is_(None) & (r.channel != ConsentState.OPTED_IN.value), Refusal.NO_CONSENT.value),
        (r.capped, Refusal.FREQUENCY_CAP.value),
        # Last: the hold-out group is those who would have been sent the message.
        (r.unit < edges[0][0], Refusal.HOLDOUT.value),
        else_=null(),
    )
    rows = select(
        literal(shop),
        literal(campaign.id),
        r.pid,
        literal(medium.value),
        variant,
        case((reason.is_(None), "planned"), else_="suppressed"),
        reason,
        literal(f"{shop}.c{campaign.id}.p") + cast(r.pid, String) + literal(f".{medium.value}"),
        literal(now, UtcDateTime()),
    )
    columns = [
        "shop",
        "campaign_id",
        "profile_id",
        "medium",
        "variant",
        "status",
        "reason",
        "message_id",
        "planned_at",
    ]
    jit = None
    if conn.dialect.name == "postgresql":
        # Compiling this one query to machine code took longer than running it; the
        # caller's transaction gets its setting back after.
        jit = conn.exec_driver_sql("SHOW jit").scalar_one()
        conn.exec_driver_sql("SET LOCAL jit = off")
    conn.execute(insert(outbox).from_select(columns, rows))
    if jit is not None:
        conn.execute(select(func.set_config("jit", jit, True)))
    _suppress_irregular(conn, campaign, address)
    issued = coupons.issue(conn, shop=shop, campaign_id=campaign.id, now=now)
    if issued:
        log.info("campaign %s of shop %s: %d coupon code(s) issued", campaign.name, shop, issued)
    conn.execute(
        update(campaigns)
        .where(campaigns.c.shop == shop, campaigns.c.id == campaign.id)
        .values(status="planned", planned_at=now)
    )
    o = outbox.c
    counts: dict[str, int] = {
        reason: n
        for reason, n in conn.execute(
            select(func.coalesce(o.reason, "planned"), func.count())
            .where(o.shop == shop, o.campaign_id == campaign.id)
            .group_by(o.reason)
        )
    }
    planned = counts.pop("planned", 0)
    log.info(
        "campaign %s of shop %s planned: %d to send, suppressed %s",
        campaign.name,
        shop,
        planned,
        counts or "none",
    )
    return Plan(planned, counts)


def _irregular(conn: Connection, address: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether ``address`` has a character outside printable ASCII."""
    if conn.dialect.name == "postgresql":
        return address.op("~", is_comparison=True)("[^ -~]")
    return address.op("GLOB", is_comparison=True)("*[^ -~]*")


def _suppress_irregular(conn: Connection, campaign: Campaign, address: ColumnElement[Any]) -> None:
    """Suppress the rows whose address SQL could not normalise (a rare few) that are on
    the suppression list as :func:`omnicrm.core.consent.normalize_address` keys them."""
    p, o = profiles.c, outbox.c
    rows = conn.execute(
        select(p.id, address).where(p.shop == campaign.shop, _irregular(conn, address))
    ).all()
    if not rows:
        return
    listed = consent.suppressed(conn, shop=campaign.shop, medium=campaign.medium)
    hits: dict[Refusal, list[int]] = {}
    for pid, value in rows:
        refusal = listed.get(consent.normalize_address(campaign.medium, value))
        if refusal is not None:
            hits.setdefault(refusal, []).append(pid)
    for refusal, pids in hits.items():
        for start in range(0, len(pids), 10_000):  # within every driver's parameter limit
            conn.execute(
                update(outbox)
                .where(
                    o.shop == campaign.shop,
                    o.campaign_id == campaign.id,
                    o.profile_id.in_(pids[start : start + 10_000]),
                    # The list outranks all but a withdrawal (the hold-out group too).
                    o.reason.is_(None) | (o.reason != Refusal.WITHDRAWN.value),
                )
                .values(status="suppressed", reason=refusal.value)
            )


def _latest_statements(shop: str, medium: Medium) -> Subquery:
    """The latest statement made through omnicrm about ``medium``, per profile (the
    rule of :func:`omnicrm.core.consent.latest`: an opt-out wins a tie)."""
    r, pm = consent_records.c, profile_members.c
    ranked = (
        select(
            pm.profile_id,
            r.state,
            func.row_number()
            .over(
                partition_by=pm.profile_id,
                order_by=(
                    r.stated_at.desc(),
                    case((r.state == ConsentState.OPTED_OUT.value, 1), else_=0).desc(),
                ),
            )
            .label("rank"),
        )
        .join(
            profile_members,
            (pm.connection == r.connection) & (pm.record_id == r.record_id),
        )
        .where(
            r.shop == shop,
            r.medium == medium.value,
            r.state != ConsentState.UNKNOWN.value,
            pm.shop == shop,
        )
        .subquery("ranked")
    )
    return (
        select(ranked.c.profile_id, ranked.c.state).where(ranked.c.rank == 1).subquery("statement")
    )


def _withdrawn_profiles(shop: str) -> Select[tuple[int]]:
    """The profiles of ``shop`` holding a source customer that withdrew (退会): the
    refresh takes such a member out, so these are the ones it has not reached yet."""
    pm = profile_members.c
    return (
        select(pm.profile_id)
        .join(
            customers,
            (customers.c.connection == pm.connection) & (customers.c.id == pm.record_id),
        )
        .where(pm.shop == shop, customers.c.shop == shop, customers.c.withdrawn_at.is_not(None))
        .distinct()
    )


def _over_caps(
    shop: str, medium: Medium, settings: MessagingSettings, now: dt.datetime
) -> list[Select[tuple[int]]]:
    """For each cap, the profiles one more message through ``medium`` would put over it."""
    o = outbox.c
    return [
        select(o.profile_id)
        .where(
            o.shop == shop,
            o.medium == medium.value,
            o.status.in_(COUNTED),
            o.handed_at >= now - cap.per,
        )
        .group_by(o.profile_id)
        .having(func.count() >= cap.count)
        for cap in settings.caps_for(medium)
    ]


# -- control -----------------------------------------------------------------------------

_MOVES = {
    "schedule": ({"draft", "scheduled"}, "scheduled"),
    "pause": ({"planned", "sending", "scheduled"}, "paused"),
    "resume": ({"paused"}, "planned"),
    "cancel": ({"draft", "scheduled", "planned", "sending", "paused"}, "cancelled"),
}


def move(
    conn: Connection,
    campaign: Campaign,
    action: str,
    *,
    now: dt.datetime,
    at: dt.datetime | None = None,
) -> str:
    """Schedule (at ``at``), pause, resume or cancel ``campaign``; its new status."""
    allowed, target = _MOVES[action]
    if campaign.status not in allowed:
        raise CampaignError(f"campaign {campaign.name} is {campaign.status}: cannot {action} it")
    values: dict[str, Any] = {"status": target}
    if action == "schedule":
        if at is None or at.utcoffset() is None:
            raise CampaignError("schedule needs a time with its timezone")
        values["scheduled_at"] = at
    if action == "resume" and campaign.planned_at is None:
        values["status"] = "scheduled" if campaign.scheduled_at else "draft"
    if action == "cancel":
        values["finished_at"] = now
        o = outbox.c
        conn.execute(
            update(outbox)
            .where(o.shop == campaign.shop, o.campaign_id == campaign.id, o.status == "planned")
            .values(status="cancelled", answered_at=now)
        )
    conn.execute(
        update(campaigns)
        .where(campaigns.c.shop == campaign.shop, campaigns.c.id == campaign.id)
        .values(**values)
    )
    log.info("campaign %s of shop %s: %s", campaign.name, campaign.shop, action)
    return str(values["status"])


def due(conn: Connection, *, shop: str, now: dt.datetime) -> list[Campaign]:
    """``shop``'s scheduled campaigns whose time has come."""
    c = campaigns.c
    ids = conn.execute(
        select(c.id).where(c.shop == shop, c.status == "scheduled", c.scheduled_at <= now)
    ).scalars()
    return [get(conn, i, shop=shop) for i in list(ids)]


# -- report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What a campaign did, from its outbox rows."""

    campaign: Campaign
    by_status: dict[str, int]
    suppressed: dict[str, int]  # by reason
    by_variant: dict[str, dict[str, int]]  # variant -> status -> rows

    @property
    def planned(self) -> int:
        return sum(self.by_status.values())

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)


def report(conn: Connection, campaign: Campaign) -> Report:
    o = outbox.c
    rows = conn.execute(
        select(o.variant, o.status, o.reason, func.count())
        .where(o.shop == campaign.shop, o.campaign_id == campaign.id)
        .group_by(o.variant, o.status, o.reason)
    )
    by_status: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    by_variant: dict[str, Counter[str]] = {}
    for variant, status, reason, n in rows:
        by_status[status] += n
        if status == "suppressed":
            suppressed[reason or "unknown"] += n
        by_variant.setdefault(variant, Counter())[status] += n
    return Report(
        campaign,
        dict(by_status),
        dict(suppressed),
        {v: dict(c) for v, c in sorted(by_variant.items())},
    )


def unknown_rows(conn: Connection, campaign: Campaign) -> Iterator[tuple[int, str, str | None]]:
    """The rows whose fate is unknown (profile id, message id, address), for the operator."""
    o = outbox.c
    rows = conn.execute(
        select(o.profile_id, o.message_id, o.address)
        .where(o.shop == campaign.shop, o.campaign_id == campaign.id, o.status == "unknown")
        .order_by(o.id)
    )
    yield from ((profile_id, message, address) for profile_id, message, address in rows)
