"""Cart recovery: one message for each abandoned checkout, once its delay has passed,
unless the person has bought since (``[messaging.cart_recovery]``, see
:class:`~omnicrm.engage.settings.CartRecoverySettings`).

It runs as campaigns, one a month per shop (``cart-recovery-2026-12``), so everything
a campaign honours holds: the message is an outbox row sent by the shop's
:class:`~omnicrm.engage.sender.Sender` (consent, suppressions, frequency caps, quiet
hours, the hold-out group, coupons, tracking), and ``omnicrm campaigns report`` shows
what it sent and what was bought within the attribution window after it. A person gets
at most one recovery message a month (the outbox holds one row per campaign and person);
a second cart left in the same month is recorded as ``reached``.

:func:`recover_carts` is the scheduler's job for one shop. Each run:

1. decides every checkout whose delay has passed (and not ``expires`` more): one row in
   ``cart_recoveries`` per checkout, written in the same transaction as the outbox row it
   plans, and only where no row is yet (another process's, a run before a restart), so
   a checkout is decided once and never gets two messages. Completed, or followed by a
   purchase on any channel: ``bought``, nothing sent;
2. takes back (``suppressed``, reason ``bought``) the planned messages whose person has
   bought or completed the cart since they were planned (while the quiet hours held them);
3. has the sender send the recovery campaigns' planned rows.

Nothing is decided or sent in the quiet hours; a checkout that came due in them is sent
once they end (within ``expires``). Guests (a checkout with no customer) and customers not
yet in a profile wait for the CRM refresh, within ``expires`` too.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from omnicrm.core.consent import Refusal
from omnicrm.core.store.schema import checkouts, orders
from omnicrm.crm.profiles import is_purchase, member_orders
from omnicrm.crm.schema import profile_members
from omnicrm.engage import campaigns as campaigns_
from omnicrm.engage import coupons
from omnicrm.engage.campaigns import HOLDOUT, Campaign, CampaignError, Variant, assign
from omnicrm.engage.permission import may_send_many
from omnicrm.engage.schema import campaigns, cart_recoveries, outbox
from omnicrm.engage.settings import CartRecoverySettings
from omnicrm.engage.templates import CartLine, CheckoutFields
from omnicrm.errors import LockedError

if TYPE_CHECKING:
    from omnicrm.engage.sender import Sender, SendResult

log = logging.getLogger("omnicrm.engage")

SEGMENT = "abandoned_checkout_date > -31d"
"""What a recovery campaign's ``segment`` says (its recipients are chosen checkout by
checkout, never by planning the segment)."""
BOUGHT = "bought"
"""The outcome of a checkout, and the reason of a planned message taken back, when the
person completed the cart or bought something since it began."""


@dataclass
class Recovery:
    """What one run did in one shop."""

    planned: int = 0  # checkouts given a message (the hold-out group's included)
    outcomes: dict[str, int] = field(default_factory=dict)  # the others, by outcome
    withdrawn: int = 0  # planned messages taken back: the person bought meanwhile
    sent: list[SendResult] = field(default_factory=list)
    waiting: str | None = None  # why nothing was done (quiet hours, another sender)


def recovery_url(checkout_id: str, given: str | None, rule: CartRecoverySettings) -> str | None:
    """The link back to checkout ``checkout_id``: the platform's (``given``), else the
    one the shop's template makes."""
    if given:
        return given
    if rule.recovery_url is None:
        return None
    return rule.recovery_url.format(id=urllib.parse.quote(checkout_id, safe=""))


def campaign_name(rule: CartRecoverySettings, at: dt.datetime, tz: dt.tzinfo) -> str:
    """The recovery campaign of the month ``at`` falls in (the shop's time)."""
    return f"{rule.name}-{at.astimezone(tz):%Y-%m}"


def recover_carts(
    sender: Sender, *, now: dt.datetime | None = None, currency: str = "JPY"
) -> Recovery | None:
    """Decide, take back and send ``sender``'s shop's cart recovery messages (see the
    module); None when the shop has no enabled ``[messaging.cart_recovery]``.
    ``currency``: the shop's, a coupon's amount is in."""
    rule = sender.settings.cart_recovery
    if rule is None or not rule.enabled:
        return None
    now = now or sender.clock()
    done = Recovery()
    if sender.policy.quiet_until(now) is not None:
        done.waiting = "quiet hours"
        return done
    campaign = _campaign_of_month(sender, rule, now, currency)
    if campaign.status in ("paused", "cancelled"):
        # The operator's word on this month's recovery: nothing decided while paused
        # (decided on resume, within expires), nothing at all once cancelled.
        done.waiting = f"campaign {campaign.name} is {campaign.status}"
    else:
        _decide(sender, rule, campaign, now, done)
    done.withdrawn = _take_back(sender, now)
    for pending in _with_rows_to_send(sender):
        try:
            done.sent.append(sender.send(pending.id))
        except LockedError as exc:
            # SQLite: another sender has the shop's outbox; it sends these rows too.
            done.waiting = str(exc)
            break
        except CampaignError as exc:  # paused or cancelled meanwhile: honoured
            log.info("cart recovery of shop %s: %s", sender.shop, exc)
    return done


def _campaign_of_month(
    sender: Sender, rule: CartRecoverySettings, now: dt.datetime, currency: str
) -> Campaign:
    """This month's recovery campaign, created (checked as any campaign is) if need be."""
    name = campaign_name(rule, now, sender.policy.tz)
    with sender.store.engine.connect() as conn:
        try:
            return campaigns_.get(conn, name, shop=sender.shop)
        except CampaignError:
            pass
    month_end = (now.astimezone(sender.policy.tz).replace(day=28) + dt.timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    coupon = rule.coupon_spec(month_end, sender.policy.tz, currency)
    # Where the codes are created: the rule's connection, or the shop's only one that can.
    maker = (
        coupons.platform_connection(
            sender.host,
            list(sender.connections.values()),
            shop=sender.shop,
            chosen=rule.coupon_connection,
        )
        if coupon
        else None
    )
    try:
        with sender.store.engine.begin() as conn:
            campaign_id = campaigns_.create(
                conn,
                sender.host,
                sender.settings,
                shop=sender.shop,
                name=name,
                segment=SEGMENT,
                medium=rule.medium,
                variants=[Variant(name="A", subject=rule.subject, body=rule.body, html=rule.html)],
                now=now,
                coupon=coupon,
                coupon_connection=maker,
                checkout=True,
            )
            conn.execute(
                update(campaigns)
                .where(campaigns.c.shop == sender.shop, campaigns.c.id == campaign_id)
                .values(status="planned", planned_at=now)
            )
        log.info("cart recovery of shop %s: campaign %s begins", sender.shop, name)
    except IntegrityError:
        pass  # another process created it at the same moment: theirs is the one
    with sender.store.engine.connect() as conn:
        return campaigns_.get(conn, name, shop=sender.shop)


def _due(sender: Sender, rule: CartRecoverySettings, now: dt.datetime) -> list[Any]:
    """The shop's checkouts due now and not decided yet, with their buyer's profile and
    whether they completed it or bought since it began."""
    k, pm, r = checkouts.c, profile_members.c, cart_recoveries.c
    decided = (
        select(r.checkout_id)
        .where(r.shop == k.shop, r.connection == k.connection, r.checkout_id == k.id)
        .exists()
    )
    # The member table twice: once for the checkout's buyer, once (inside member_orders)
    # for the buyer's profile's other members.
    buyer = profile_members.alias("buyer")
    bought_since = (
        select(orders.c.id)
        .select_from(member_orders())
        .where(
            pm.shop == sender.shop,
            pm.profile_id == buyer.c.profile_id,
            is_purchase(),
            orders.c.placed_at >= k.created_at,
        )
        .correlate(checkouts, buyer)
        .exists()
    )
    with sender.store.engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    k.connection,
                    k.id,
                    k.customer_id,
                    k.updated_at,
                    k.recovery_url,
                    buyer.c.profile_id,
                    (k.completed_at.is_not(None) | bought_since).label("bought"),
                )
                .join(
                    buyer,
                    (buyer.c.shop == k.shop)
                    & (buyer.c.connection == k.connection)
                    & (buyer.c.record_id == k.customer_id),
                )
                .where(
                    k.shop == sender.shop,
                    k.customer_id.is_not(None),
                    k.updated_at <= now - rule.delay,
                    k.updated_at > now - rule.delay - rule.expires,
                    ~decided,
                )
                .order_by(k.updated_at, k.connection, k.id)
            )
        )


def _decide(
    sender: Sender,
    rule: CartRecoverySettings,
    campaign: Campaign,
    now: dt.datetime,
    done: Recovery,
) -> None:
    """Decide each due checkout and plan its message (see the module), in one
    transaction per run."""
    due = _due(sender, rule, now)
    if not due:
        return
    shop = sender.shop
    upsert = pg_insert if sender.store.dialect == "postgresql" else sqlite_insert
    with sender.store.engine.begin() as conn:
        holdout = [c.profile_id for c in due if assign(campaign, c.profile_id) == HOLDOUT]
        # One held out is recorded so only if they would have been sent it (as planning
        # a campaign does); otherwise with the reason that stops them.
        verdicts = may_send_many(
            conn,
            shop=shop,
            profile_ids=holdout,
            medium=campaign.medium,
            now=now,
            policy=sender.policy,
        )
        for checkout in due:
            if checkout.bought:
                outcome = BOUGHT
            elif recovery_url(checkout.id, checkout.recovery_url, rule) is None:
                outcome = "no_link"
            else:
                outcome = "planned"
            claimed = conn.execute(
                upsert(cart_recoveries)
                .values(
                    shop=shop,
                    connection=checkout.connection,
                    checkout_id=checkout.id,
                    customer_id=checkout.customer_id,
                    profile_id=checkout.profile_id,
                    campaign_id=campaign.id if outcome == "planned" else None,
                    outcome=outcome,
                    due_at=checkout.updated_at + rule.delay,
                    decided_at=now,
                )
                .on_conflict_do_nothing()
                .returning(cart_recoveries.c.checkout_id)
            ).first()
            if claimed is None:
                continue  # another process decided it first
            if outcome == "planned" and not _plan_one(conn, campaign, checkout.profile_id, now):
                outcome = "reached"
                conn.execute(
                    update(cart_recoveries)
                    .where(
                        cart_recoveries.c.shop == shop,
                        cart_recoveries.c.connection == checkout.connection,
                        cart_recoveries.c.checkout_id == checkout.id,
                    )
                    .values(outcome=outcome)
                )
            if outcome == "planned":
                done.planned += 1
                if checkout.profile_id in verdicts:
                    verdict = verdicts[checkout.profile_id]
                    refusal = Refusal.HOLDOUT if verdict else verdict.refusal or Refusal.NO_CONSENT
                    _suppress(conn, campaign, checkout.profile_id, refusal.value)
            else:
                done.outcomes[outcome] = done.outcomes.get(outcome, 0) + 1
        coupons.issue(conn, shop=shop, campaign_id=campaign.id, now=now)
        if done.planned:
            # A month's campaign the sender finished earlier has rows to send again.
            conn.execute(
                update(campaigns)
                .where(
                    campaigns.c.shop == shop,
                    campaigns.c.id == campaign.id,
                    campaigns.c.status == "done",
                )
                .values(status="planned", finished_at=None)
            )
    log.info(
        "cart recovery of shop %s: %d checkout(s) given a message, others %s",
        shop,
        done.planned,
        done.outcomes or "none",
    )


def _plan_one(conn: Connection, campaign: Campaign, profile_id: int, now: dt.datetime) -> bool:
    """Write ``profile_id``'s outbox row of ``campaign``; False if they have one."""
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    variant = assign(campaign, profile_id)
    # RETURNING, not the row count: PostgreSQL's driver counts an insert that returns
    # the new id as a row whether or not the conflict skipped it.
    return (
        conn.execute(
            upsert(outbox)
            .values(
                shop=campaign.shop,
                campaign_id=campaign.id,
                profile_id=profile_id,
                medium=campaign.medium.value,
                variant=variant,
                status="planned",
                message_id=campaigns_.message_id(campaign, profile_id),
                planned_at=now,
            )
            .on_conflict_do_nothing()
            .returning(outbox.c.id)
        ).first()
        is not None
    )


def _suppress(conn: Connection, campaign: Campaign, profile_id: int, reason: str) -> None:
    o = outbox.c
    conn.execute(
        update(outbox)
        .where(o.shop == campaign.shop, o.campaign_id == campaign.id, o.profile_id == profile_id)
        .values(status="suppressed", reason=reason)
    )


def _take_back(sender: Sender, now: dt.datetime) -> int:
    """Suppress (reason ``bought``) the recovery messages still planned whose checkout
    was completed, or whose person bought after it began; how many."""
    shop = sender.shop
    o, r, k = outbox.c, cart_recoveries.c, checkouts.c
    pm = profile_members.c
    bought_since = (
        select(orders.c.id)
        .select_from(member_orders())
        .where(
            pm.shop == shop,
            pm.profile_id == r.profile_id,
            is_purchase(),
            orders.c.placed_at >= k.created_at,
        )
        .exists()
    )
    with sender.store.engine.begin() as conn:
        rows = conn.execute(
            select(o.id, r.connection, r.checkout_id)
            .join(
                cart_recoveries,
                (r.shop == o.shop)
                & (r.campaign_id == o.campaign_id)
                & (r.profile_id == o.profile_id),
            )
            .join(checkouts, (k.connection == r.connection) & (k.id == r.checkout_id))
            .where(
                o.shop == shop,
                o.status == "planned",
                r.outcome == "planned",
                or_(k.completed_at.is_not(None), bought_since),
            )
        ).all()
        if not rows:
            return 0
        conn.execute(
            update(outbox)
            .where(o.shop == shop, o.id.in_([row.id for row in rows]), o.status == "planned")
            .values(status="suppressed", reason=BOUGHT, answered_at=now)
        )
        for row in rows:
            conn.execute(
                update(cart_recoveries)
                .where(
                    r.shop == shop,
                    r.connection == row.connection,
                    r.checkout_id == row.checkout_id,
                )
                .values(outcome=BOUGHT, decided_at=now)
            )
    log.info("cart recovery of shop %s: %d message(s) not sent, bought meanwhile", shop, len(rows))
    return len(rows)


def _with_rows_to_send(sender: Sender) -> list[Campaign]:
    """The shop's recovery campaigns (any month) with planned rows, oldest first."""
    o, r, c = outbox.c, cart_recoveries.c, campaigns.c
    with sender.store.engine.connect() as conn:
        ids = conn.execute(
            select(c.id)
            .where(
                c.shop == sender.shop,
                c.status.in_(("planned", "sending")),
                exists().where(r.shop == c.shop, r.campaign_id == c.id),
                exists().where(o.shop == c.shop, o.campaign_id == c.id, o.status == "planned"),
            )
            .order_by(c.id)
        ).scalars()
        return [campaigns_.get(conn, i, shop=sender.shop) for i in list(ids)]


def checkout_fields(
    conn: Connection,
    *,
    shop: str,
    campaign_id: int,
    profile_ids: Collection[int],
    rule: CartRecoverySettings | None,
    tz: dt.tzinfo,
) -> dict[int, CheckoutFields]:
    """The checkout each of ``profile_ids`` is sent a recovery message about in
    ``campaign_id`` (none for other campaigns' recipients)."""
    r, k = cart_recoveries.c, checkouts.c
    rows = conn.execute(
        select(
            k.id,
            k.recovery_url,
            k.item_count,
            k.total,
            k.currency,
            k.created_at,
            k.lines,
            r.profile_id,
        )
        .join(checkouts, (k.connection == r.connection) & (k.id == r.checkout_id))
        .where(
            r.shop == shop,
            r.campaign_id == campaign_id,
            r.outcome == "planned",
            r.profile_id.in_(list(profile_ids)),
        )
    ).all()
    found: dict[int, CheckoutFields] = {}
    for row in rows:
        url = recovery_url(row.id, row.recovery_url, rule) if rule is not None else row.recovery_url
        if url is None:
            continue
        found[row.profile_id] = CheckoutFields(
            recovery_url=url,
            items=row.item_count,
            total=row.total,
            currency=row.currency,
            started_at=row.created_at.astimezone(tz).date(),
            lines=tuple(_cart_lines(row.lines)),
        )
    return found


def _cart_lines(stored: Any) -> Iterator[CartLine]:
    """The stored lines of a checkout (none for one stored before lines were kept)."""
    for line in stored or ():
        yield CartLine(
            name=line.get("product_name") or "",
            quantity=int(line.get("quantity") or 0),
            unit_price=Decimal(str(line.get("unit_price") or 0)),
        )


def forget(conn: Connection, shop: str, connection: str, record_ids: Sequence[str]) -> None:
    """A redaction of ``record_ids``: their checkouts' messages not sent yet are cancelled
    and the decisions about their checkouts deleted (the checkouts themselves are the
    store's to delete, and a tombstone keeps them from coming back)."""
    r, o = cart_recoveries.c, outbox.c
    mine = and_(r.shop == shop, r.connection == connection, r.customer_id.in_(record_ids))
    pending = conn.execute(
        select(o.id)
        .join(
            cart_recoveries,
            (r.shop == o.shop) & (r.campaign_id == o.campaign_id) & (r.profile_id == o.profile_id),
        )
        .where(mine, o.status == "planned")
    ).scalars()
    ids = list(pending)
    if ids:
        conn.execute(update(outbox).where(o.shop == shop, o.id.in_(ids)).values(status="cancelled"))
    conn.execute(cart_recoveries.delete().where(mine))


__all__ = [
    "BOUGHT",
    "Recovery",
    "campaign_name",
    "checkout_fields",
    "forget",
    "recover_carts",
    "recovery_url",
]
