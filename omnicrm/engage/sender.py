"""The sender: outbox rows out through a dispatcher, each at most once.

Each row goes through three committed steps:

1. claimed: the sender takes a batch of :data:`BATCH` ``planned`` rows as its own in
   one statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two senders never take
   the same row; SQLite has one writer, and one sender per shop holds the shop's outbox
   lock);
2. handed_over: :data:`HANDOVER` rows at a time, just before the dispatcher is called
   for them, after they passed :func:`~omnicrm.engage.permission.may_send_many` (or
   ``suppressed`` with the reason), in one transaction committed before the first of
   them goes to the dispatcher;
3. the provider's answers: ``sent``, ``rejected`` or ``failed``, recorded for the
   group once it has been dispatched. A refusal the dispatcher calls a bounce (a
   permanent SMTP failure of the address, LINE's "not a friend":
   :attr:`omnicrm.DispatchOutcome.bounced`) also puts the address on the shop's
   suppression list as ``bounced``, in the same commit, so no later message goes to it.

A sender that dies leaves rows claimed (never handed over: back to ``planned``) or
handed over without an answer: those may have gone out, so they become ``unknown`` and
wait for the operator, never resent. Handing over a group at once keeps this: a row is
dispatched only after its hand-over was committed, so whatever a crash interrupts is
``handed_over`` (then ``unknown``) or still ``claimed`` (never dispatched). The price is
that one crash may leave up to :data:`HANDOVER` rows ``unknown``, some of which never
went out; the operator sees them, nothing is sent twice. Consent is read for each group
just before its hand-over, so an unsubscribe holds from the next group on.

Whatever stops a run (no row left, a pause, the quiet hours), the sender then calls the
dispatcher's ``finish`` (:attr:`omnicrm.Dispatcher.finish`), before the campaign may be
marked done: a dispatcher that collects a run's messages into files (postal labels)
completes them there, and a run after a crash completes what the dead one left.

With :class:`~omnicrm.engage.tracking.Links` each message carries its signed
unsubscribe token (``metadata["unsubscribe_token"]``, which the email dispatcher puts in
its List-Unsubscribe link and mailto), and the HTML body of a tracked email campaign
(:func:`~omnicrm.engage.campaigns.tracks`) has its links rewritten and the open pixel
added (:func:`~omnicrm.engage.tracking.instrument`).

A coupon campaign's codes are created on its platform (:func:`omnicrm.engage.coupons.publish`)
before its first row is claimed; while any is missing there nothing is sent.

:meth:`Sender.recover` settles a dead sender's rows at start, for rows of senders that
are no longer alive (on PostgreSQL each live sender holds an advisory lock named after
it; on SQLite the shop's lock means no other sender runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, func, select, update

from omnicrm.core.channels import Connection as PlatformConnection
from omnicrm.core.consent import Refusal, suppress
from omnicrm.core.dispatch import DeliveryStatus, DispatchOutcome, Message
from omnicrm.core.host import Host
from omnicrm.core.records import Consent, ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import order_lines, orders
from omnicrm.crm.products import ProductSettings
from omnicrm.crm.profiles import is_purchase, member_orders
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.engage import coupons, recovery
from omnicrm.engage.campaigns import (
    HOLDOUT,
    Campaign,
    CampaignError,
    assign,
    dispatcher_for,
    get,
    message_id,
    tracks,
)
from omnicrm.engage.permission import (
    Policy,
    Verdict,
    may_send,
    may_send_many,
    members_of,
    postal_addresses_of,
)
from omnicrm.engage.schema import campaigns, outbox
from omnicrm.engage.settings import MessagingSettings
from omnicrm.engage.templates import (
    RECOMMENDED,
    SAMPLE,
    CheckoutFields,
    Fields,
    RecommendationFields,
    TemplateError,
    render,
)
from omnicrm.engage.tracking import Links, MessageRef, Purpose, instrument
from omnicrm.errors import LockedError

log = logging.getLogger("omnicrm.engage")

BATCH = 100
"""Rows claimed at once."""
HANDOVER = 20
"""Rows checked, rendered and handed over in one transaction (at most this many become
``unknown`` when the sender dies)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SendResult:
    """What one run of the sender did."""

    sent: int = 0
    rejected: int = 0
    failed: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    waiting_until: dt.datetime | None = None  # stopped by the quiet hours
    # Stopped by the quiet hours, the campaign is the scheduler's from ``waiting_until``
    # on (see :meth:`Sender.send`); False after a run with a ``limit``.
    scheduled: bool = False
    stopped: str | None = None  # paused or cancelled while sending
    finished: bool = False  # no row left to send


@dataclass(frozen=True)
class Recovered:
    released: int  # claimed, never handed over: back to planned
    unknown: int  # handed over without an answer


class Sender:
    """Sends the outbox rows of one shop's campaigns."""

    def __init__(
        self,
        store: Store,
        host: Host,
        *,
        shop: str,
        shop_name: str,
        settings: MessagingSettings,
        tz: ZoneInfo,
        clock: Callable[[], dt.datetime] = _now,
        sender_id: str | None = None,
        links: Links | None = None,
        connections: Mapping[str, PlatformConnection] | None = None,
        products: ProductSettings | None = None,
        recommend_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        # What a message's recommendations may offer, and how the recommenders weigh.
        self.products = products
        self.recommend_weights = recommend_weights
        # Where a coupon campaign's codes are created before its first message.
        self.connections = connections or {}
        self._coupons: dict[int, coupons.CampaignCoupon | None] = {}  # by campaign id
        self.host = host
        self.shop = shop
        self.shop_name = shop_name
        self.settings = settings
        self.policy = Policy(settings, tz)
        self.clock = clock
        self.links = links
        self.id = sender_id or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[None]:
        """Hold what says this sender is alive (see the module)."""
        name = f"sender:{self.id}" if self.store.dialect == "postgresql" else f"outbox:{self.shop}"
        try:
            with self.store.lock(name):
                yield
        except LockedError:
            raise LockedError(f"another sender is sending shop {self.shop!r}'s outbox") from None

    def _alive(self, sender: str) -> bool:
        if self.store.dialect != "postgresql":
            return False  # the shop's lock is ours: no other sender runs
        if sender == self.id:
            return True
        try:
            with self.store.lock(f"sender:{sender}"):
                return False
        except LockedError:
            return True

    # -- the steps -----------------------------------------------------------------------

    def recover(self, campaign: Campaign) -> Recovered:
        """Settle the rows dead senders left: claimed -> planned, handed over -> unknown."""
        o = outbox.c
        where = (o.shop == self.shop) & (o.campaign_id == campaign.id)
        with self.store.engine.begin() as conn:
            senders = conn.execute(
                select(o.claimed_by)
                .where(where, o.status.in_(("claimed", "handed_over")))
                .distinct()
            ).scalars()
            dead = [s for s in list(senders) if s is not None and not self._alive(s)]
            released = unknown = 0
            for sender in dead:
                mine = where & (o.claimed_by == sender)
                released += conn.execute(
                    update(outbox)
                    .where(mine, o.status == "claimed")
                    .values(status="planned", claimed_by=None, claimed_at=None)
                ).rowcount
                unknown += conn.execute(
                    update(outbox)
                    .where(mine, o.status == "handed_over")
                    .values(status="unknown", answered_at=self.clock())
                ).rowcount
        if unknown:
            log.warning(
                "campaign %s of shop %s: %d message(s) handed over without an answer are "
                "marked unknown (not resent; see `omnicrm campaigns report`)",
                campaign.name,
                self.shop,
                unknown,
            )
        return Recovered(released, unknown)

    def _claim(self, conn: Connection, campaign: Campaign, size: int) -> list[int]:
        o = outbox.c
        query = (
            select(o.id)
            .where(o.shop == self.shop, o.campaign_id == campaign.id, o.status == "planned")
            .order_by(o.id)
            .limit(size)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if ids:
            conn.execute(
                update(outbox)
                .where(o.shop == self.shop, o.id.in_(ids))
                .values(status="claimed", claimed_by=self.id, claimed_at=self.clock())
            )
        return ids

    def send(self, name_or_id: str | int, *, limit: int | None = None) -> SendResult:
        """Send ``shop``'s campaign: recover what a dead sender left, then send every
        planned row (at most ``limit``) until none is left, the campaign is paused or
        cancelled, or the quiet hours begin.

        Stopped by the quiet hours, the campaign is handed to the scheduler
        (:mod:`omnicrm.engage.scheduled`): its scheduled time becomes the end of the
        quiet hours (unless it is due earlier already), so ``omnicrm run`` goes on with
        it then as with any scheduled campaign. A run with a ``limit`` is the operator
        metering the campaign: it is not handed over."""
        result = SendResult()
        with ExitStack() as stack:
            stack.enter_context(self.running())
            with self.store.engine.begin() as conn:
                campaign = get(conn, name_or_id, shop=self.shop)
                if campaign.status not in ("planned", "sending"):
                    raise CampaignError(
                        f"campaign {campaign.name} is {campaign.status}: "
                        + (
                            "plan it first"
                            if campaign.status in ("draft", "scheduled")
                            else "not sending"
                        )
                    )
                name, settings = dispatcher_for(
                    self.host, self.settings, campaign.medium, shop=self.shop
                )
                self._tracks(campaign)  # refused before anything is sent
            # Before the status moves: a campaign whose codes cannot be created stays
            # as it was, with nothing sent.
            self._publish_coupons(campaign)
            with self.store.engine.begin() as conn:
                self._set_status(conn, campaign, "sending")
            self.recover(campaign)
            # One group is dispatched (on a thread of its own) while the next is checked,
            # rendered and handed over, so the database's and the renderer's time
            # overlaps the provider's; the hand-over is still committed before dispatch.
            pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="dispatch"))
            in_flight: Future[list[DeliveryStatus]] | None = None

            def landed() -> None:
                nonlocal in_flight
                if in_flight is not None:
                    for status in in_flight.result():
                        if status == DeliveryStatus.SENT:
                            result.sent += 1
                        elif status == DeliveryStatus.REJECTED:
                            result.rejected += 1
                        else:
                            result.failed += 1
                    in_flight = None

            try:
                while limit is None or result.sent + result.failed + result.rejected < limit:
                    size = BATCH if limit is None else min(BATCH, limit)
                    with self.store.engine.begin() as conn:
                        ids = self._claim(conn, campaign, size)
                    if not ids:
                        result.finished = True
                        break
                    for start in range(0, len(ids), HANDOVER):
                        stop = self._stopped(campaign)
                        if stop is None and (wait := self.policy.quiet_until(self.clock())):
                            result.waiting_until = wait
                            stop = "quiet hours"
                        if stop is not None:
                            self._release(ids[start:])
                            result.stopped = stop
                            break
                        handed = self._hand_over(campaign, ids[start : start + HANDOVER], result)
                        landed()
                        in_flight = pool.submit(self._dispatch, campaign, handed, name, settings)
                    if result.stopped:
                        break
                    if limit is not None:
                        landed()  # the count decides whether to claim more
            finally:
                landed()
            # Whatever stopped this run, the dispatcher completes what it collected (the
            # postal labels) before the campaign can be marked done.
            self.host.finish(name, settings, shop=self.shop, campaign=campaign.name)
            if result.waiting_until is not None and limit is None:
                result.scheduled = self._hand_to_scheduler(campaign, result.waiting_until)
            if result.finished:
                with self.store.engine.begin() as conn:
                    if self._open_rows(conn, campaign) == 0:
                        self._set_status(conn, campaign, "done", finished=True)
                    else:
                        result.finished = False
        return result

    def _publish_coupons(self, campaign: Campaign) -> None:
        """Create the campaign's coupon codes on its platform before any message names
        them; a CampaignError (nothing sent) if some are still missing there."""
        with self.store.engine.connect() as conn:
            coupon = self._coupon(conn, campaign)
        if coupon is None or coupon.connection is None:
            return
        if coupon.connection not in self.connections:
            raise CampaignError(
                f"campaign {campaign.name}'s coupon codes are created on connection "
                f"{coupon.connection!r}, which this sender was not given"
            )
        done = coupons.publish(
            self.store,
            self.host,
            self.connections,
            shop=self.shop,
            campaign_id=campaign.id,
            now=self.clock(),
        )
        if done.created or done.replaced:
            log.info(
                "campaign %s: %d coupon code(s) created on %s (%d replaced after a refusal)",
                campaign.name,
                done.created,
                coupon.connection,
                done.replaced,
            )

    def _hand_over(
        self, campaign: Campaign, row_ids: list[int], result: SendResult
    ) -> list[tuple[int, Message, Verdict]]:
        """Check and render ``row_ids``, then in one commit mark each handed over (or
        suppressed, or failed if it would not render); the rows to dispatch."""
        o = outbox.c
        now = self.clock()
        closed: list[dict[str, object]] = []  # suppressed, or not rendered
        handed: list[tuple[int, Message, Verdict]] = []  # (outbox row, ...)
        with self.store.engine.begin() as conn:
            rows = conn.execute(
                select(o.id, o.profile_id, o.variant, o.message_id)
                .where(o.shop == self.shop, o.id.in_(row_ids))
                .order_by(o.id)
            ).all()
            verdicts = may_send_many(
                conn,
                shop=self.shop,
                profile_ids=[r.profile_id for r in rows],
                medium=campaign.medium,
                now=now,
                policy=self.policy,
            )
            fields = self._fields(
                conn,
                {r.profile_id: r.variant for r in rows if verdicts[r.profile_id]},
                campaign,
            )
            postal = self._postal(conn, campaign, [r.profile_id for r in rows])
            for row in rows:
                verdict = verdicts[row.profile_id]
                error: str | None = None
                if verdict:
                    try:
                        message = self._message(
                            campaign,
                            row.profile_id,
                            fields[row.profile_id],
                            verdict.address,
                            postal.get(row.profile_id),
                            row_id=row.id,
                        )
                    except TemplateError as exc:
                        error = str(exc)
                    else:
                        handed.append((row.id, message, verdict))
                        continue
                reason = verdict.refusal.value if verdict.refusal else "render_failed"
                closed.append(
                    {
                        "row": row.id,
                        "to": "suppressed" if error is None else "failed",
                        "why": reason if error is None else None,
                        "error": error,
                    }
                )
                if error is None:
                    result.suppressed[reason] = result.suppressed.get(reason, 0) + 1
                    log.info("outbox %s suppressed: %s", row.message_id, reason)
                else:
                    result.failed += 1
                    log.warning("outbox %s not rendered: %s", row.message_id, error)
            if closed:
                self._update_rows(
                    conn,
                    closed,
                    status=bindparam("to"),
                    reason=bindparam("why"),
                    error=bindparam("error"),
                    answered_at=now,
                )
            # Committed before the first hand-over: a crash from here on leaves the
            # group 'unknown' (see the module), never planned again.
            if handed:
                self._update_rows(
                    conn,
                    [{"row": row_id, "to": m.to} for row_id, m, _ in handed],
                    status="handed_over",
                    handed_at=now,
                    address=bindparam("to"),
                )
        return handed

    def _dispatch(
        self,
        campaign: Campaign,
        handed: list[tuple[int, Message, Verdict]],
        dispatcher: str,
        settings: BaseModel,
    ) -> list[DeliveryStatus]:
        """Dispatch the handed-over rows, then record their answers in one commit."""
        answers: list[dict[str, object]] = []
        statuses: list[DeliveryStatus] = []
        bounced: list[tuple[str, str | None]] = []  # (address, the provider's answer)
        for row_id, message, verdict in handed:
            outcome = self._dispatch_one(dispatcher, message, settings, verdict)
            statuses.append(outcome.status)
            if outcome.bounced and outcome.status == DeliveryStatus.REJECTED:
                bounced.append((message.to, outcome.error))
            answers.append(
                {
                    "row": row_id,
                    "to": outcome.status.value,
                    "provider": outcome.provider_id,
                    "error": outcome.error,
                    "at": self.clock(),
                }
            )
            log.info("outbox %s %s", message.id, outcome.status.value)
        if answers:
            with self.store.engine.begin() as conn:
                self._update_rows(
                    conn,
                    answers,
                    status=bindparam("to"),
                    provider_id=bindparam("provider"),
                    error=bindparam("error"),
                    answered_at=bindparam("at"),
                )
                for address, answer in bounced:
                    suppress(
                        conn,
                        shop=self.shop,
                        medium=campaign.medium,
                        address=address,
                        reason=Refusal.BOUNCED,
                        at=self.clock(),
                        detail=answer,
                    )
        if bounced:
            log.info(
                "campaign %s: %d address(es) bounced, now suppressed", campaign.name, len(bounced)
            )
        return statuses

    def _update_rows(
        self, conn: Connection, params: list[dict[str, object]], **values: object
    ) -> None:
        """Set ``values`` on the rows ``params`` name (each with its ``row`` id and the
        bound parameters the values take), in one statement."""
        o = outbox.c
        conn.execute(
            update(outbox).where(o.shop == self.shop, o.id == bindparam("row")).values(**values),
            params,
        )

    def _dispatch_one(
        self, dispatcher: str, message: Message, settings: BaseModel, verdict: Verdict
    ) -> DispatchOutcome:
        statement = verdict.statement
        consents = [
            Consent(
                medium=message.medium,
                state=ConsentState.OPTED_IN,
                updated_at=statement.at if statement else None,
                source=statement.source if statement else None,
            )
        ]
        try:
            return self.host.dispatch(dispatcher, message, settings, consents=consents)
        except Exception as exc:  # the plugin failed: the message did not go (it said so)
            return DispatchOutcome(DeliveryStatus.FAILED, error=f"{type(exc).__name__}: {exc}")

    def preview(self, name_or_id: str | int, profile_id: int) -> tuple[Verdict, Message]:
        """What ``campaign`` would send profile ``profile_id`` now, and whether it may."""
        with self.store.engine.connect() as conn:
            campaign = get(conn, name_or_id, shop=self.shop)
            verdict = may_send(
                conn,
                shop=self.shop,
                profile_id=profile_id,
                medium=campaign.medium,
                now=self.clock(),
                policy=self.policy,
                holdout=assign(campaign, profile_id) == HOLDOUT,
            )
            if verdict.refusal == Refusal.NO_ADDRESS and not members_of(
                conn, profile_id, shop=self.shop
            ):
                raise CampaignError(f"shop {self.shop!r} has no profile {profile_id}")
            variant = assign(campaign, profile_id)
            if variant == HOLDOUT:
                variant = campaign.variants[0].name
            fields = self._fields(conn, {profile_id: variant}, campaign, preview=True)[profile_id]
            postal = self._postal(conn, campaign, [profile_id]).get(profile_id)
            message = self._message(campaign, profile_id, fields, verdict.address, postal)
        return verdict, message

    def _postal(
        self, conn: Connection, campaign: Campaign, profile_ids: list[int]
    ) -> dict[int, dict[str, str | None] | None]:
        """The stored addresses of a postal campaign's profiles (none for other media)."""
        if campaign.medium != Medium.POSTAL:
            return {}
        return postal_addresses_of(conn, profile_ids, shop=self.shop)

    def _tracks(self, campaign: Campaign) -> bool:
        base_url = self.links.base_url if self.links else None
        return tracks(campaign, self.settings, base_url)

    def _message(
        self,
        campaign: Campaign,
        profile_id: int,
        fields: Fields,
        to: str | None,
        postal_address: dict[str, str | None] | None = None,
        *,
        row_id: int | None = None,
    ) -> Message:
        """The message of outbox row ``row_id`` (None: a preview, with no links back)."""
        if fields.coupon_code is None and self._has_coupon(campaign):
            raise TemplateError(f"profile {profile_id} has no coupon code of this campaign")
        variant = next(v for v in campaign.variants if v.name == fields.variant)
        subject = render(variant.subject, fields, what="subject") if variant.subject else None
        page = render(variant.html, fields, what="HTML body", html=True) if variant.html else None
        # What a dispatcher needs besides the parts (see Message): a postal label is
        # addressed by name and by the address's parts, not by one line.
        metadata: dict[str, object] = {
            "shop": self.shop,
            "campaign": campaign.name,
            "variant": fields.variant,
            "family_name": fields.family_name,
            "given_name": fields.given_name,
        }
        if postal_address is not None:
            metadata["postal_address"] = postal_address
        if self.links is not None and row_id is not None:
            ref = MessageRef(self.shop, campaign.id, row_id)
            metadata["unsubscribe_token"] = self.links.token(ref, Purpose.UNSUBSCRIBE)
            if page is not None and self._tracks(campaign):
                page = instrument(page, self.links, ref)
        return Message(
            id=message_id(campaign, profile_id),
            medium=campaign.medium,
            customer_id=str(profile_id),
            to=to or "",
            body=render(variant.body, fields, what="body"),
            subject=subject,
            metadata=metadata,
            html=page,
        )

    def _fields(
        self,
        conn: Connection,
        variants: dict[int, str],
        campaign: Campaign,
        *,
        preview: bool = False,
    ) -> dict[int, Fields]:
        """The template fields of each profile (given with its variant), in a few
        queries. A coupon campaign's recipient without a code renders no message (the
        TemplateError says so), except in a preview, which shows a sample code."""
        if not variants:
            return {}
        codes: dict[int, str] = {}
        coupon = self._coupon(conn, campaign)
        if coupon is not None:
            codes = coupons.codes_for(
                conn, shop=self.shop, campaign_id=campaign.id, profile_ids=variants
            )
        p = profiles.c
        pm = profile_members.c
        people = conn.execute(
            select(p.id, p.family_name, p.given_name, p.points_balance).where(
                p.shop == self.shop, p.id.in_(list(variants))
            )
        ).all()
        # Each profile's latest purchase (one of its lines), numbered per profile.
        rank = (
            func.row_number()
            .over(partition_by=pm.profile_id, order_by=orders.c.placed_at.desc())
            .label("rank")
        )
        purchases = (
            select(pm.profile_id, orders.c.placed_at, order_lines.c.product_name, rank)
            .select_from(
                member_orders().outerjoin(
                    order_lines,
                    (order_lines.c.connection == orders.c.connection)
                    & (order_lines.c.order_id == orders.c.id),
                )
            )
            .where(pm.shop == self.shop, pm.profile_id.in_(list(variants)), is_purchase())
            .subquery()
        )
        last = {
            row.profile_id: row
            for row in conn.execute(
                select(
                    purchases.c.profile_id, purchases.c.placed_at, purchases.c.product_name
                ).where(purchases.c.rank == 1)
            )
        }
        carts = self._checkouts(conn, campaign, variants, preview=preview)
        recommended = self._recommendations(conn, campaign, variants)
        found: dict[int, Fields] = {}
        for person in people:
            bought = last.get(person.id)
            found[person.id] = Fields(
                family_name=person.family_name,
                given_name=person.given_name,
                points=person.points_balance,
                last_purchase_at=(
                    bought.placed_at.astimezone(self.policy.tz).date() if bought else None
                ),
                last_purchase=bought.product_name if bought else None,
                shop_name=self.shop_name,
                variant=variants[person.id],
                coupon_code=codes.get(person.id)
                or (_preview_code(coupon.spec.prefix) if coupon and preview else None),
                checkout=carts.get(person.id),
                recommendations=recommended.get(person.id, ()),
            )
        return found

    def _recommendations(
        self, conn: Connection, campaign: Campaign, people: Collection[int]
    ) -> dict[int, tuple[RecommendationFields, ...]]:
        """Each person's recommendations, from the shop's history and catalogue as
        ``omnicrm recommend`` gives them; none for a campaign whose templates do not name
        them (the recommenders' work is then not done at all)."""
        if "recommendations" not in _named(campaign) or not self.host.recommenders:
            return {}
        from omnicrm.engage.recommend import for_customer, shop_catalogue, shop_history

        history = shop_history(self.store.engine, self.shop, now=self.clock())
        catalogue = shop_catalogue(conn, self.shop, self.products)
        return {
            pid: tuple(
                RecommendationFields(r.name, r.price, r.currency, r.url)
                for r in for_customer(
                    self.host,
                    history,
                    str(pid),
                    limit=RECOMMENDED,
                    catalogue=catalogue,
                    weights=self.recommend_weights,
                )
            )
            for pid in people
        }

    def _checkouts(
        self, conn: Connection, campaign: Campaign, people: Collection[int], *, preview: bool
    ) -> dict[int, CheckoutFields]:
        """A cart recovery's checkouts its messages are about (a sample's in a preview
        of someone who has none); none for a campaign whose templates do not name one."""
        if "checkout" not in _named(campaign):
            return {}
        found = recovery.checkout_fields(
            conn,
            shop=self.shop,
            campaign_id=campaign.id,
            profile_ids=people,
            rule=self.settings.cart_recovery,
            tz=self.policy.tz,
        )
        if preview and SAMPLE.checkout is not None:
            return {pid: found.get(pid, SAMPLE.checkout) for pid in people}
        return found

    def _coupon(self, conn: Connection, campaign: Campaign) -> coupons.CampaignCoupon | None:
        # A campaign's coupon never changes once it is created: read it once.
        if campaign.id not in self._coupons:
            self._coupons[campaign.id] = coupons.coupon_of(
                conn, shop=self.shop, campaign_id=campaign.id
            )
        return self._coupons[campaign.id]

    def _has_coupon(self, campaign: Campaign) -> bool:
        if campaign.id not in self._coupons:
            with self.store.engine.connect() as conn:
                self._coupon(conn, campaign)
        return self._coupons[campaign.id] is not None

    # -- status --------------------------------------------------------------------------

    def _stopped(self, campaign: Campaign) -> str | None:
        with self.store.engine.connect() as conn:
            status = conn.execute(
                select(campaigns.c.status).where(
                    campaigns.c.shop == self.shop, campaigns.c.id == campaign.id
                )
            ).scalar_one()
        return status if status in ("paused", "cancelled") else None

    def _hand_to_scheduler(self, campaign: Campaign, at: dt.datetime) -> bool:
        """Make ``campaign`` the scheduler's from ``at`` on; whether it is (a pause or a
        cancel that came first stays: the scheduler owns neither)."""
        c = campaigns.c
        with self.store.engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(
                    c.shop == self.shop,
                    c.id == campaign.id,
                    c.scheduled_at.is_(None) | (c.scheduled_at > at),
                )
                .values(scheduled_at=at)
            )
        return self._stopped(campaign) is None

    def _release(self, ids: list[int]) -> None:
        o = outbox.c
        with self.store.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(
                    o.shop == self.shop,
                    o.id.in_(ids),
                    o.status == "claimed",
                    o.claimed_by == self.id,
                )
                .values(status="planned", claimed_by=None, claimed_at=None)
            )

    def _open_rows(self, conn: Connection, campaign: Campaign) -> int:
        o = outbox.c
        return len(
            conn.execute(
                select(o.id)
                .where(
                    o.shop == self.shop,
                    o.campaign_id == campaign.id,
                    o.status.in_(("planned", "claimed", "handed_over")),
                )
                .limit(1)
            ).all()
        )

    def _set_status(
        self, conn: Connection, campaign: Campaign, status: str, *, finished: bool = False
    ) -> None:
        values: dict[str, object] = {"status": status}
        if finished:
            values["finished_at"] = self.clock()
        conn.execute(
            update(campaigns)
            .where(
                campaigns.c.shop == self.shop,
                campaigns.c.id == campaign.id,
                campaigns.c.status.not_in(("paused", "cancelled")),
            )
            .values(**values)
        )


def _named(campaign: Campaign) -> str:
    """Every template of ``campaign`` in one text, to look for the fields it may name."""
    return " ".join(f"{v.subject or ''} {v.body} {v.html or ''}" for v in campaign.variants)


def _preview_code(prefix: str) -> str:
    """What a preview shows for a code not issued yet (a plan issues the real ones)."""
    return f"{prefix}-XXXXXXXXXX" if prefix else "XXXXXXXXXX"


__all__ = ["BATCH", "HANDOVER", "Recovered", "Refusal", "SendResult", "Sender"]
