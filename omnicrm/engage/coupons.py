"""Coupons: one unique code per recipient of a campaign, created on the shop's platform,
and their redemptions read back from the orders.

A campaign created with a coupon (``--coupon "10%,min=3000,expires=2027-01-31,prefix=XMAS"``)
issues a code to every recipient when it is planned (:func:`issue`): the prefix, a dash
and ten characters of an alphabet without look-alikes (no 0/O, 1/I), drawn with
:mod:`secrets`, unique in the shop. Templates show it as ``{{ coupon_code }}``.

Before the first message goes out, the codes are created on the platform of the
campaign's connection (:func:`publish`), through its channel type's ``coupons``
capability (Shopify: discount codes). A code the platform refuses (taken by a code of
the shop's own) is replaced by a new one and offered again. A shop whose channels
create no codes keeps them in omnicrm only; the operator enters them in the platform.

A redemption is an order of the shop, on any channel, that used one of the campaign's
codes (:attr:`omnicrm.Order.discount_codes`), placed after the campaign was planned;
:func:`redemptions` counts them per variant.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select, update

from omnicrm.core.channels import Connection as PlatformConnection
from omnicrm.core.host import Host
from omnicrm.core.records import OrderStatus
from omnicrm.core.store import Store
from omnicrm.core.store.schema import orders
from omnicrm.core.writeback import CouponSpec, DiscountKind, WriteContext
from omnicrm.engage.schema import campaign_coupons, coupon_codes, outbox
from omnicrm.errors import DataError

log = logging.getLogger("omnicrm.engage")

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Capitals and digits without 0/O and 1/I, which a customer would mistype."""
LENGTH = 10  # 32**10: a code cannot be guessed from another
_PREFIX = re.compile(r"[A-Z0-9]{1,20}")
ROUNDS = 3  # replacements of refused codes before giving up
_NOT_SALES = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)


class CouponError(DataError):
    """A coupon that cannot be described, issued or created as asked; says why."""


# -- the spec ------------------------------------------------------------------------------


def parse_spec(
    text: str, *, title: str, currency: str, tz: ZoneInfo, now: dt.datetime
) -> CouponSpec:
    """A :class:`CouponSpec` from the command line's words.

    ``10%`` or ``500`` (an amount in the shop's currency) first, then ``min=AMOUNT``,
    ``expires=YYYY-MM-DD`` (the last day it works, in the shop's timezone; required),
    ``prefix=LETTERS``; comma-separated. Each code can be used once.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise CouponError("--coupon: give the discount, e.g. '10%,expires=2027-01-31'")
    value_text = parts[0].removeprefix("¥").removesuffix("円")
    kind = DiscountKind.FIXED_AMOUNT
    if value_text.endswith("%"):
        kind, value_text = DiscountKind.PERCENTAGE, value_text[:-1]
    value = _amount(value_text, "the discount")
    if kind is DiscountKind.PERCENTAGE and not 0 < value <= 100:
        raise CouponError(f"--coupon: a percentage is over 0 and at most 100, not {value}%")
    if value <= 0:
        raise CouponError(f"--coupon: the discount must be more than 0, not {value}")
    options: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, given = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("min", "expires", "prefix"):
            raise CouponError(
                f"--coupon: {part!r} is not min=AMOUNT, expires=YYYY-MM-DD or prefix=LETTERS"
            )
        if key in options:
            raise CouponError(f"--coupon: {key} is given twice")
        options[key] = given.strip()
    if "expires" not in options:
        raise CouponError("--coupon: give the last day it works, e.g. expires=2027-01-31")
    try:
        last_day = dt.date.fromisoformat(options["expires"])
    except ValueError:
        raise CouponError(
            f"--coupon: expires={options['expires']!r} is not a date (YYYY-MM-DD)"
        ) from None
    ends_at = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    if ends_at <= now:
        raise CouponError(f"--coupon: expires={last_day.isoformat()} is already past")
    prefix = options.get("prefix", "").upper()
    if prefix and not _PREFIX.fullmatch(prefix):
        raise CouponError(f"--coupon: prefix={prefix!r}: 1 to 20 letters A-Z and digits")
    minimum = _amount(options["min"], "min") if "min" in options else None
    return CouponSpec(
        title=title,
        kind=kind,
        value=value,
        currency=currency,
        starts_at=now.astimezone(dt.UTC).replace(microsecond=0),
        ends_at=ends_at,
        minimum_subtotal=minimum,
        usage_limit=1,
        prefix=prefix,
    )


def _amount(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        raise CouponError(f"--coupon: {what} {text!r} is not a number") from None
    if not value.is_finite():
        raise CouponError(f"--coupon: {what} {text!r} is not a number")
    return value


def spec_to_json(spec: CouponSpec) -> dict[str, Any]:
    return {
        "title": spec.title,
        "kind": spec.kind.value,
        "value": str(spec.value),
        "currency": spec.currency,
        "starts_at": spec.starts_at.isoformat(),
        "ends_at": spec.ends_at.isoformat() if spec.ends_at else None,
        "minimum_subtotal": None if spec.minimum_subtotal is None else str(spec.minimum_subtotal),
        "usage_limit": spec.usage_limit,
        "prefix": spec.prefix,
    }


def spec_from_json(data: Mapping[str, Any]) -> CouponSpec:
    return CouponSpec(
        title=data["title"],
        kind=DiscountKind(data["kind"]),
        value=Decimal(data["value"]),
        currency=data["currency"],
        starts_at=dt.datetime.fromisoformat(data["starts_at"]),
        ends_at=dt.datetime.fromisoformat(data["ends_at"]) if data["ends_at"] else None,
        minimum_subtotal=(
            None if data["minimum_subtotal"] is None else Decimal(data["minimum_subtotal"])
        ),
        usage_limit=int(data["usage_limit"]),
        prefix=data["prefix"],
    )


def describe(spec: CouponSpec) -> str:
    """The discount in a few words: '10% off, from ¥3,000, until 2027-01-31 (UTC end)'."""
    off = (
        f"{spec.value.normalize():f}%"
        if spec.kind is DiscountKind.PERCENTAGE
        else (f"{spec.value:,f} {spec.currency}")
    )
    words = [f"{off} off"]
    if spec.minimum_subtotal is not None:
        words.append(f"orders from {spec.minimum_subtotal:,f} {spec.currency}")
    if spec.ends_at is not None:
        words.append(f"until {spec.ends_at.isoformat()}")
    return ", ".join(words) + f", one use per code (prefix {spec.prefix or 'none'})"


# -- the campaign's coupon -----------------------------------------------------------------


def attach(
    conn: Connection,
    *,
    shop: str,
    campaign_id: int,
    spec: CouponSpec,
    connection: str | None,
    now: dt.datetime,
) -> None:
    """Give campaign ``campaign_id`` the coupon ``spec``, created on ``connection``'s
    platform (None: on none)."""
    conn.execute(
        insert(campaign_coupons).values(
            shop=shop,
            campaign_id=campaign_id,
            spec=spec_to_json(spec),
            connection=connection,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class CampaignCoupon:
    """A campaign's coupon: the discount, where it is created, and its platform id."""

    spec: CouponSpec
    connection: str | None
    discount_id: str | None


def coupon_of(conn: Connection, *, shop: str, campaign_id: int) -> CampaignCoupon | None:
    """The campaign's coupon, or None when it has none."""
    c = campaign_coupons.c
    row = conn.execute(
        select(c.spec, c.connection, c.discount_id).where(
            c.shop == shop, c.campaign_id == campaign_id
        )
    ).first()
    if row is None:
        return None
    return CampaignCoupon(spec_from_json(row.spec), row.connection, row.discount_id)


def new_code(prefix: str) -> str:
    """A fresh random code: ``PREFIX-XXXXXXXXXX`` (or just the ten characters)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{prefix}-{body}" if prefix else body


def _unique_codes(conn: Connection, shop: str, prefix: str, count: int) -> list[str]:
    """``count`` new codes, none of which the shop has issued."""
    found: set[str] = set()
    while len(found) < count:
        drawn = list({new_code(prefix) for _ in range(count - len(found))} - found)
        for start in range(0, len(drawn), 5000):
            part = drawn[start : start + 5000]
            taken = set(
                conn.execute(
                    select(coupon_codes.c.code).where(
                        coupon_codes.c.shop == shop, coupon_codes.c.code.in_(part)
                    )
                ).scalars()
            )
            found |= set(part) - taken
    # Unsorted: a code says nothing of whose it is, nor of its neighbours'.
    return list(found)[:count]


def issue(conn: Connection, *, shop: str, campaign_id: int, now: dt.datetime) -> int:
    """Issue a code to every recipient the campaign's plan will send to (its ``planned``
    outbox rows) who has none yet; how many were issued. Runs in the planning's
    transaction, so a plan and its codes are written together."""
    coupon = coupon_of(conn, shop=shop, campaign_id=campaign_id)
    if coupon is None:
        return 0
    o, k = outbox.c, coupon_codes.c
    have = select(k.profile_id).where(k.shop == shop, k.campaign_id == campaign_id)
    people = list(
        conn.execute(
            select(o.profile_id)
            .where(
                o.shop == shop,
                o.campaign_id == campaign_id,
                o.status == "planned",
                o.profile_id.not_in(have),
            )
            .order_by(o.profile_id)
        ).scalars()
    )
    codes = _unique_codes(conn, shop, coupon.spec.prefix, len(people))
    rows = [
        {
            "shop": shop,
            "code": code,
            "campaign_id": campaign_id,
            "profile_id": pid,
            "issued_at": now,
        }
        for pid, code in zip(people, codes, strict=True)
    ]
    for start in range(0, len(rows), 5000):
        conn.execute(insert(coupon_codes), rows[start : start + 5000])
    return len(rows)


def codes_for(
    conn: Connection, *, shop: str, campaign_id: int, profile_ids: Iterable[int]
) -> dict[int, str]:
    """The code issued to each of ``profile_ids`` in the campaign (those that have one)."""
    k = coupon_codes.c
    wanted = sorted(set(profile_ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 5000):
        found.update(
            conn.execute(
                select(k.profile_id, k.code).where(
                    k.shop == shop,
                    k.campaign_id == campaign_id,
                    k.profile_id.in_(wanted[start : start + 5000]),
                )
            ).all()
        )
    return found


def unpublished(conn: Connection, *, shop: str, campaign_id: int) -> int:
    """How many of the campaign's codes the platform does not hold yet."""
    k = coupon_codes.c
    return int(
        conn.execute(
            select(func.count()).where(
                k.shop == shop, k.campaign_id == campaign_id, k.published_at.is_(None)
            )
        ).scalar_one()
    )


# -- on the platform -------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did: codes created on the platform, codes replaced after a
    refusal, and the platform's discount id."""

    created: int
    replaced: int
    discount_id: str | None


def publish(
    store: Store,
    host: Host,
    connections: Mapping[str, PlatformConnection],
    *,
    shop: str,
    campaign_id: int,
    now: dt.datetime,
) -> Published:
    """Create the campaign's codes the platform does not hold yet on its connection's
    platform; replace any it refuses and offer them again (at most :data:`ROUNDS`
    times). Safe to repeat: a crash between the platform's answer and the record of it
    is settled by the platform's plugin (a code it holds under the same discount counts
    as created). Nothing to do for a campaign without a coupon or a platform."""
    with store.engine.connect() as conn:
        coupon = coupon_of(conn, shop=shop, campaign_id=campaign_id)
    if coupon is None or coupon.connection is None:
        return Published(0, 0, None)
    connection = connections.get(coupon.connection)
    if connection is None:
        raise CouponError(
            f"the campaign's coupon codes are created on connection {coupon.connection!r}, "
            "which the config no longer has"
        )
    issuer = host.channel_type(connection.channel).coupons
    if issuer is None:
        raise CouponError(f"channel {connection.channel!r} cannot create coupon codes")
    ctx: WriteContext[Any] = WriteContext(
        connection.name, connection.channel, connection.settings, log
    )
    k = coupon_codes.c
    discount_id = coupon.discount_id
    created = replaced = 0
    for _round in range(ROUNDS + 1):
        with store.engine.connect() as conn:
            waiting = list(
                conn.execute(
                    select(k.code)
                    .where(k.shop == shop, k.campaign_id == campaign_id, k.published_at.is_(None))
                    .order_by(k.code)
                ).scalars()
            )
        if not waiting:
            return Published(created, replaced, discount_id)
        if _round == ROUNDS:
            break
        result = issuer.create(ctx, coupon.spec, waiting, discount_id=discount_id)
        with store.engine.begin() as conn:
            if result.discount_id and result.discount_id != discount_id:
                discount_id = result.discount_id
                conn.execute(
                    update(campaign_coupons)
                    .where(
                        campaign_coupons.c.shop == shop,
                        campaign_coupons.c.campaign_id == campaign_id,
                    )
                    .values(discount_id=discount_id)
                )
            done = list(result.created)
            for start in range(0, len(done), 5000):
                conn.execute(
                    update(coupon_codes)
                    .where(k.shop == shop, k.code.in_(done[start : start + 5000]))
                    .values(published_at=now)
                )
            created += len(done)
            if result.refused:
                fresh = _unique_codes(conn, shop, coupon.spec.prefix, len(result.refused))
                for (old, why), new in zip(sorted(result.refused.items()), fresh, strict=True):
                    log.warning("coupon code refused by %s (%s): replaced", connection.name, why)
                    conn.execute(
                        update(coupon_codes).where(k.shop == shop, k.code == old).values(code=new)
                    )
                replaced += len(result.refused)
    raise CouponError(
        f"{connection.name} kept refusing coupon codes of campaign {campaign_id} after "
        f"{ROUNDS} rounds of replacements; nothing was sent"
    )


# -- redemptions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """A variant's redeemed codes and the revenue of the orders that used them."""

    redeemed: int
    revenue: Decimal


def redemptions(conn: Connection, *, shop: str, campaign_id: int) -> dict[str, Redemption]:
    """Per variant of the campaign: how many of its codes were used by an order of the
    shop (any channel; cancelled and refunded orders left out) placed since the codes
    were issued, and those orders' total. Variants without a redemption are left out."""
    k, o = coupon_codes.c, outbox.c
    issued = conn.execute(
        select(func.upper(k.code), o.variant, k.issued_at)
        .join(
            outbox,
            (o.shop == k.shop) & (o.campaign_id == k.campaign_id) & (o.profile_id == k.profile_id),
        )
        .where(k.shop == shop, k.campaign_id == campaign_id)
    ).all()
    if not issued:
        return {}
    variant_of = {code: variant for code, variant, _ in issued}
    since = min(at for _, _, at in issued)
    used: dict[str, tuple[str, Decimal]] = {}  # code -> (order, total): a code counts once
    rows = conn.execute(
        select(orders.c.connection, orders.c.id, orders.c.discount_codes, orders.c.total)
        .where(
            orders.c.shop == shop,
            orders.c.placed_at >= since,
            orders.c.discount_codes.is_not(None),
            orders.c.status.not_in(_NOT_SALES),
        )
        .order_by(orders.c.placed_at, orders.c.id)
    )
    for connection, order_id, codes, total in rows:
        for code in codes or []:
            key = str(code).strip().upper()
            if key in variant_of and key not in used:
                used[key] = (f"{connection}:{order_id}", Decimal(total))
    found: dict[str, list[Any]] = {}
    orders_seen: set[str] = set()
    for code, (order, total) in used.items():
        entry = found.setdefault(variant_of[code], [0, Decimal(0)])
        entry[0] += 1
        if order not in orders_seen:  # an order with two of the codes counts once
            orders_seen.add(order)
            entry[1] += total
    return {variant: Redemption(n, revenue) for variant, (n, revenue) in sorted(found.items())}


def platform_connection(
    host: Host, connections: Sequence[PlatformConnection], *, shop: str, chosen: str | None
) -> str | None:
    """The connection of ``shop`` whose platform creates the codes: ``chosen``, or the
    only enabled one whose channel can; None when none can. A CouponError when
    ``chosen`` cannot or several could."""
    able = [
        c
        for c in connections
        if c.shop == shop
        and c.enabled
        and c.channel in host.channel_types
        and host.channel_types[c.channel].coupons is not None
    ]
    if chosen is not None:
        if chosen not in {c.name for c in able}:
            names = ", ".join(c.name for c in able) or "none"
            raise CouponError(
                f"--coupon-connection {chosen!r}: not a connection of shop {shop!r} that "
                f"creates coupon codes (those that do: {names})"
            )
        return chosen
    if len(able) > 1:
        names = ", ".join(c.name for c in able)
        raise CouponError(
            f"shop {shop!r} has several connections that create coupon codes ({names}): "
            "choose one with --coupon-connection"
        )
    return able[0].name if able else None
