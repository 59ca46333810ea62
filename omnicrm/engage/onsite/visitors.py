"""The storefront's visitors and events in the store: visits counted, a visitor joined
to the customer who signs in with it, what the offers need to know of a visitor
(:class:`~omnicrm.engage.onsite.offers.VisitorState`), and the impressions, clicks and
product views the script reports. Every function works inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Insert,
    Integer,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from omnicrm.core.store.schema import customers, orders
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.crm.segments import SegmentError, compile_expression
from omnicrm.crm.segments.counts import resolve
from omnicrm.engage.onsite.offers import VisitorState
from omnicrm.engage.onsite.settings import OfferSettings
from omnicrm.engage.schema import onsite_events, onsite_visitors

log = logging.getLogger("omnicrm.engage")

# What the script makes: 22+ URL-safe characters of a random UUID or better. Anything
# else is refused, so an id can carry nothing of a person's.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
KINDS = ("impression", "click", "view")
MAX_EVENTS = 50  # per report


class BadEvent(ValueError):
    """An event the script could not have sent; the message says which and why."""


@dataclass(frozen=True)
class Event:
    """One thing a visitor did: saw or clicked an offer's variant, or viewed a product."""

    kind: str
    offer: str | None = None
    variant: str | None = None
    product: str | None = None


@dataclass(frozen=True)
class Customer:
    """The source customer a visitor signed in as, and the profile that holds them."""

    connection: str
    record_id: str
    profile_id: int | None


_UPSERTS: dict[str, Insert] = {}


def _upsert(dialect: str) -> Insert:
    """The statement of :func:`touch`, built once per backend (it runs on every request)."""
    made = _UPSERTS.get(dialect)
    if made is None:
        v = onsite_visitors.c
        insert_of = pg_insert if dialect == "postgresql" else sqlite_insert
        at = bindparam("now", type_=v.last_seen_at.type)
        upsert = insert_of(onsite_visitors).values(
            shop=bindparam("shop"), id=bindparam("id"), visits=1, first_seen_at=at, last_seen_at=at
        )
        # One statement: two first requests of a new visitor at once cannot collide.
        made = _UPSERTS[dialect] = upsert.on_conflict_do_update(
            index_elements=[v.shop, v.id],
            set_={
                "last_seen_at": upsert.excluded.last_seen_at,
                "visits": v.visits + bindparam("more", type_=Integer()),
            },
        )
    return made


def touch(conn: Connection, shop: str, visitor: str, *, now: dt.datetime, new_visit: bool) -> None:
    """Note that ``visitor`` is here: first seen (its first visit), or seen again (one
    more visit if the script says a visit begins)."""
    conn.execute(
        _upsert(conn.dialect.name),
        {"shop": shop, "id": visitor, "now": now, "more": 1 if new_visit else 0},
    )
    if new_visit:
        conn.execute(_VISIT, {"shop": shop, "visitor": visitor, "at": now})


@dataclass(frozen=True)
class Visit:
    """What one storefront request writes: ``visitor`` seen (``new_visit``: a visit
    begins), joined to ``join`` (connection, record id) if given, its ``events``."""

    shop: str
    visitor: str
    now: dt.datetime
    new_visit: bool
    join: tuple[str, str] | None = None
    events: Sequence[Event] = ()


def write_visits(conn: Connection, items: Sequence[Visit]) -> list[int]:
    """Write many requests' :class:`Visit` with one statement of each kind (in order:
    the visitors, their visits, the joins, the events); how many events each had."""
    conn.execute(
        _upsert(conn.dialect.name),
        [
            {"shop": i.shop, "id": i.visitor, "now": i.now, "more": 1 if i.new_visit else 0}
            for i in items
        ],
    )
    begun = [{"shop": i.shop, "visitor": i.visitor, "at": i.now} for i in items if i.new_visit]
    if begun:
        conn.execute(_VISIT, begun)
    for i in items:
        if i.join is not None:
            join(conn, i.shop, i.visitor, *i.join)
    events = [row for i in items for row in _event_rows(i.shop, i.visitor, i.events, i.now)]
    if events:
        conn.execute(insert(onsite_events), events)
    return [len(i.events) for i in items]


# The storefront's statements, built once: they run on every request (building one
# costs about as much as running it on SQLite).
_VISIT = insert(onsite_events).values(
    shop=bindparam("shop"), visitor=bindparam("visitor"), kind="visit", at=bindparam("at")
)
_V, _E = onsite_visitors.c, onsite_events.c
_JOIN = (
    update(onsite_visitors)
    .where(
        _V.shop == bindparam("to_shop"),
        _V.id == bindparam("to_visitor"),
        or_(
            _V.connection.is_(None),
            _V.connection != bindparam("to_connection"),
            _V.record_id != bindparam("to_record_id"),
        ),
    )
    .values(connection=bindparam("to_connection"), record_id=bindparam("to_record_id"))
)
_SEEN = select(_V.id, _V.visits, _V.connection, _V.record_id).where(
    _V.shop == bindparam("shop"), _V.id.in_(bindparam("ids", expanding=True))
)
_IMPRESSIONS = and_(
    _E.shop == bindparam("shop"),
    _E.visitor.in_(bindparam("ids", expanding=True)),
    _E.kind == "impression",
    _E.offer.in_(bindparam("capped", expanding=True)),
)
_TOTALS = (
    select(_E.visitor, _E.offer, func.count()).where(_IMPRESSIONS).group_by(_E.visitor, _E.offer)
)
_RECENT = select(_E.visitor, _E.offer, _E.at).where(
    _IMPRESSIONS, _E.at >= bindparam("since", type_=_E.at.type)
)
_BROWSERS = select(_V.id).where(
    _V.shop == bindparam("shop"),
    _V.connection == bindparam("connection"),
    _V.record_id == bindparam("record_id"),
)


def join(conn: Connection, shop: str, visitor: str, connection: str, record_id: str) -> None:
    """``visitor`` is the customer ``record_id`` of ``connection`` from now on, with its
    past visits and events (they are keyed by the visitor)."""
    conn.execute(
        _JOIN,
        {
            "to_shop": shop,
            "to_visitor": visitor,
            "to_connection": connection,
            "to_record_id": record_id,
        },
    )


def customer_of(
    conn: Connection, shop: str, connection: str, record_ids: Sequence[str]
) -> Customer | None:
    """The first of ``record_ids`` (ways a platform writes one customer's id) that the
    shop knows in ``connection``, with its profile; None if none is known."""
    c = orders.c  # a customer known only by orders still counts
    pm = profile_members.c
    for record_id in record_ids:
        profile = conn.execute(
            select(pm.profile_id).where(
                pm.shop == shop, pm.connection == connection, pm.record_id == record_id
            )
        ).scalar_one_or_none()
        if profile is not None:
            return Customer(connection, record_id, profile)
    for record_id in record_ids:
        known = (
            conn.execute(
                select(customers.c.id).where(
                    customers.c.connection == connection, customers.c.id == record_id
                )
            ).first()
            or conn.execute(
                select(c.id).where(c.connection == connection, c.customer_id == record_id).limit(1)
            ).first()
        )
        if known is not None:
            return Customer(connection, record_id, None)
    return None


def first_name(conn: Connection, shop: str, profile_id: int) -> str | None:
    """The profile's given name: the one piece of personal data the storefront shows."""
    return conn.execute(
        select(profiles.c.given_name).where(profiles.c.shop == shop, profiles.c.id == profile_id)
    ).scalar_one_or_none()


def browsers(conn: Connection, shop: str, customer: Customer) -> list[str]:
    """The browsers (visitor ids) that signed in as ``customer``."""
    return list(
        conn.execute(
            _BROWSERS,
            {"shop": shop, "connection": customer.connection, "record_id": customer.record_id},
        ).scalars()
    )


# Impressions this recent are kept one by one (older ones only counted): today in any
# zone began less than this long ago.
RECENT = dt.timedelta(days=2)


@dataclass
class Seen:
    """One browser as the store has it: its visits, the customer it signed in as, and
    its impressions of capped offers (the count per offer, and the recent ones' times)."""

    visits: int
    customer: tuple[str, str] | None = None
    totals: dict[str, int] = field(default_factory=dict)
    recent: dict[str, list[dt.datetime]] = field(default_factory=dict)


def seen(
    conn: Connection, shop: str, ids: Sequence[str], capped: Sequence[str], *, now: dt.datetime
) -> dict[str, Seen]:
    """The browsers ``ids`` the store knows (one missing is new), with their impressions
    of the ``capped`` offers."""
    found = {
        row.id: Seen(
            row.visits, None if row.connection is None else (row.connection, row.record_id)
        )
        for row in conn.execute(_SEEN, {"shop": shop, "ids": list(ids)})
    }
    if not capped or not found:
        return found
    mine = {"shop": shop, "ids": list(found), "capped": list(capped)}
    for visitor, offer, total in conn.execute(_TOTALS, mine):
        found[visitor].totals[offer] = int(total)
    for visitor, offer, at in conn.execute(_RECENT, {**mine, "since": now - RECENT}):
        found[visitor].recent.setdefault(offer, []).append(at)
    return found


def sum_state(
    browsers: Iterable[Seen],
    *,
    known: bool,
    facts: CustomerFacts | None,
    now: dt.datetime,
    tz: ZoneInfo,
) -> VisitorState:
    """The :class:`VisitorState` of a visitor seen in ``browsers`` (one, or every
    browser of a signed-in customer)."""
    local = now.astimezone(tz)
    midnight = dt.datetime.combine(local.date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    visits = 0
    impressions: dict[str, tuple[int, int]] = {}
    for browser in browsers:
        visits += browser.visits
        for offer, total in browser.totals.items():
            today = sum(1 for at in browser.recent.get(offer, ()) if at >= midnight)
            before = impressions.get(offer, (0, 0))
            impressions[offer] = (before[0] + today, before[1] + total)
    return VisitorState(
        visits=visits,
        purchased=facts.purchased if facts is not None else False,
        in_segment=dict(facts.in_segment) if facts is not None else {},
        impressions=impressions,
        known=known,
    )


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules need of a signed-in customer: whether they bought anything, and
    which offers' segments hold them (by offer name)."""

    purchased: bool
    in_segment: Mapping[str, bool]


def segment_members(
    conn: Connection,
    shop: str,
    offers: Mapping[str, OfferSettings],
    *,
    now: dt.datetime,
    tz: ZoneInfo,
) -> dict[str, frozenset[int]]:
    """The profiles in each offer's segment (offers naming one), read in one statement
    per offer: the storefront keeps them a while instead of asking per customer."""
    found: dict[str, frozenset[int]] = {}
    for name, offer in offers.items():
        if offer.segment is None:
            continue
        try:
            _, node = resolve(conn, offer.segment, shop=shop)
            condition = compile_expression(node, now, tz)
        except SegmentError as exc:
            log.warning("offer %s of shop %s: segment: %s", name, shop, exc)
            continue
        found[name] = frozenset(
            conn.execute(select(profiles.c.id).where(profiles.c.shop == shop, condition)).scalars()
        )
    return found


def customer_facts(
    conn: Connection,
    shop: str,
    offers: Mapping[str, OfferSettings],
    customer: Customer,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    members: Mapping[str, frozenset[int]] | None = None,
) -> CustomerFacts:
    """``customer``'s purchases (any channel of their profile) and segments (from
    ``members``, :func:`segment_members`, if the caller has them)."""
    purchased = False
    if customer.profile_id is not None:
        purchased = bool(
            conn.execute(
                select(profiles.c.number_of_orders).where(
                    profiles.c.shop == shop, profiles.c.id == customer.profile_id
                )
            ).scalar_one_or_none()
        )
    purchased = purchased or (
        conn.execute(
            select(orders.c.id)
            .where(
                orders.c.connection == customer.connection,
                orders.c.customer_id == customer.record_id,
            )
            .limit(1)
        ).first()
        is not None
    )
    in_segment: dict[str, bool] = {}
    if members is not None:
        if customer.profile_id is not None:
            in_segment = {name: customer.profile_id in held for name, held in members.items()}
        return CustomerFacts(purchased, in_segment)
    for name, offer in offers.items():
        if offer.segment is None or customer.profile_id is None:
            continue
        try:
            _, node = resolve(conn, offer.segment, shop=shop)
            condition = compile_expression(node, now, tz)
        except SegmentError as exc:
            log.warning("offer %s of shop %s: segment: %s", name, shop, exc)
            continue
        in_segment[name] = (
            conn.execute(
                select(profiles.c.id).where(
                    profiles.c.shop == shop, profiles.c.id == customer.profile_id, condition
                )
            ).first()
            is not None
        )
    return CustomerFacts(purchased, in_segment)


def capped(offers: Mapping[str, OfferSettings]) -> list[str]:
    """The offers with a cap of impressions: the ones whose impressions the rules count."""
    return [name for name, offer in offers.items() if offer.max_impressions is not None]


def state(
    conn: Connection,
    shop: str,
    visitor: str,
    offers: Mapping[str, OfferSettings],
    *,
    customer: Customer | None,
    now: dt.datetime,
    tz: ZoneInfo,
    facts: CustomerFacts | None = None,
) -> VisitorState:
    """What the offers' rules need to know of ``visitor`` (signed in as ``customer``,
    whose ``facts`` the caller may have at hand): ``visitor`` and the customer's other
    browsers summed."""
    ids = {visitor, *(browsers(conn, shop, customer) if customer is not None else ())}
    found = seen(conn, shop, sorted(ids), capped(offers), now=now)
    if customer is not None and facts is None:
        facts = customer_facts(conn, shop, offers, customer, now=now, tz=tz)
    return sum_state(found.values(), known=visitor in found, facts=facts, now=now, tz=tz)


def check_events(raw: object, offers: Mapping[str, OfferSettings]) -> list[Event]:
    """The events of a report body (``{"events": [...]}``), each checked against the
    shop's offers; :class:`BadEvent` naming the first wrong one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise BadEvent('the body is {"events": [...]}')
    items = raw["events"]
    if len(items) > MAX_EVENTS:
        raise BadEvent(f"at most {MAX_EVENTS} events per report")
    found: list[Event] = []
    for index, item in enumerate(items):
        where = f"events[{index}]"
        if not isinstance(item, dict):
            raise BadEvent(f"{where}: an object")
        kind = item.get("kind")
        if kind not in KINDS:
            raise BadEvent(f"{where}.kind: one of {', '.join(KINDS)}")
        if kind == "view":
            product = item.get("product")
            if not isinstance(product, str) or not 0 < len(product) <= 255:
                raise BadEvent(f"{where}.product: a product id or SKU")
            found.append(Event("view", product=product))
            continue
        name, variant = item.get("offer"), item.get("variant")
        offer = offers.get(name) if isinstance(name, str) else None
        if offer is None:
            raise BadEvent(f"{where}.offer: not an offer of this shop")
        if variant not in {v.name for v in offer.all_variants()}:
            raise BadEvent(f"{where}.variant: not a variant of offer {name}")
        found.append(Event(kind, offer=name, variant=str(variant)))
    return found


def record(
    conn: Connection, shop: str, visitor: str, events: Sequence[Event], *, now: dt.datetime
) -> int:
    """Write ``events`` of ``visitor``; how many."""
    if not events:
        return 0
    conn.execute(insert(onsite_events), _event_rows(shop, visitor, events, now))
    return len(events)


def _event_rows(
    shop: str, visitor: str, events: Sequence[Event], now: dt.datetime
) -> list[dict[str, object]]:
    return [
        {
            "shop": shop,
            "visitor": visitor,
            "kind": ev.kind,
            "offer": ev.offer,
            "variant": ev.variant,
            "product": ev.product,
            "at": now,
        }
        for ev in events
    ]


def forget(conn: Connection, shop: str, connection: str, record_ids: Sequence[str]) -> None:
    """Delete the visitors who signed in as these customers, with their events."""
    v, e = onsite_visitors.c, onsite_events.c
    ids = list(
        conn.execute(
            select(v.id).where(
                v.shop == shop, v.connection == connection, v.record_id.in_(list(record_ids))
            )
        ).scalars()
    )
    if not ids:
        return
    conn.execute(delete(onsite_events).where(e.shop == shop, e.visitor.in_(ids)))
    conn.execute(delete(onsite_visitors).where(v.shop == shop, v.id.in_(ids)))


def export(conn: Connection, shop: str, connection: str, record_id: str) -> list[dict[str, object]]:
    """The visitors who signed in as the customer, each with its events."""
    v, e = onsite_visitors.c, onsite_events.c
    found: list[dict[str, object]] = []
    for row in conn.execute(
        select(v.id, v.visits, v.first_seen_at, v.last_seen_at)
        .where(and_(v.shop == shop, v.connection == connection, v.record_id == record_id))
        .order_by(v.first_seen_at)
    ):
        events = conn.execute(
            select(e.kind, e.offer, e.variant, e.product, e.at)
            .where(e.shop == shop, e.visitor == row.id)
            .order_by(e.id)
        ).mappings()
        found.append(
            {
                "visitor": row.id,
                "visits": row.visits,
                "first_seen_at": row.first_seen_at.isoformat(),
                "last_seen_at": row.last_seen_at.isoformat(),
                "events": [
                    {k: (x.isoformat() if isinstance(x, dt.datetime) else x) for k, x in ev.items()}
                    for ev in events
                ],
            }
        )
    return found
