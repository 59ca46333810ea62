"""The shared wallet: earning on orders, redeeming, adjusting, balances.

Every entry belongs to one shop, hangs on a source customer (connection, customer_id) of
that shop and is unique on (shop, source, event_id); a profile's wallet is the sum over
its members. Every function works within the shop it is given: a profile of another shop
is unknown there. All work on a SQLAlchemy ``Connection`` inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    select,
    update,
)

from omnicrm.core.records import OrderStatus
from omnicrm.core.store.planner import one_of
from omnicrm.core.store.schema import connection_shops, customers, orders
from omnicrm.crm.points._common import (
    MAX_ID,
    Entry,
    EntryKind,
    EventConflictError,
    InsufficientPointsError,
    PointsError,
    UnknownProfileError,
    entry_from_row,
    insert_rows,
    insert_select,
    max_entry_id,
    member_join,
    prefixed,
    refresh_since,
    refresh_where,
    sql_plus_months,
    utc_now,
)
from omnicrm.crm.points.expiry import pending
from omnicrm.crm.points.settings import EarnBase, PointsSettings, Rounding
from omnicrm.crm.profiles import PURCHASE_STATUSES
from omnicrm.crm.schema import points_entries, profile_members, profiles

UNDONE = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value, OrderStatus.RETURNED.value)
OPERATOR = "operator"

_CHUNK = 5000
# Customers whose orders one pass of apply_order_points reads: their ids are one
# parameter (planner.one_of), and a first refresh names every customer of a connection,
# four statements a chunk.
_ORDER_CHUNK = 50_000


@dataclass(frozen=True)
class Balance:
    """A profile's wallet: the total and the part held by each connection's member."""

    profile_id: int
    total: int
    by_connection: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AppliedPoints:
    """How many entries one pass over the orders wrote."""

    earned: int = 0
    redeemed: int = 0
    reversed: int = 0

    @property
    def total(self) -> int:
        return self.earned + self.redeemed + self.reversed


# -- orders -> entries --------------------------------------------------------------------


def apply_order_points(
    conn: Connection,
    settings: PointsSettings,
    now: dt.datetime,
    connection: str | None = None,
    customer_ids: Iterable[str] | None = None,
    *,
    shop: str,
    balances: bool = True,
) -> AppliedPoints:
    """Write the entries the orders call for and that are not in the ledger yet.

    A purchase (paid or fulfilled) earns ``earn:<order id>``: by the rule, or as the
    order's ``points_earned`` for a master connection. Points spent on a purchase
    (``points_redeemed``) are ``redeem:<order id>``. An order later cancelled, refunded or
    returned gets ``reverse:earn:<order id>`` and ``reverse:redeem:<order id>`` undoing
    those. All keyed under the order's connection, so running it again writes nothing.
    Only ``shop``'s orders; ``connection`` and ``customer_ids`` (of that connection)
    narrow it to those orders. Balances of the profiles reached are refreshed, unless
    ``balances`` is False: the caller rebuilds those profiles, balances included (a CRM
    refresh), and a pass rewriting each of them first would be wasted.
    """
    if not settings.enabled:
        return AppliedPoints()
    # Only orders of a customer: entries hang on one. (IS NOT NULL is not repeated beside
    # an IN list: SQLite would range-scan the index for it instead of probing the list.)
    scopes: list[ColumnElement[bool]]
    if connection is not None:
        # A connection's orders are all of its shop: no shop filter on them, which would
        # tempt SQLite to walk the shop's (shop, placed_at) index instead of probing
        # (connection, customer_id) for the few customers changed.
        _check_connection(conn, connection, shop)
    if customer_ids is not None:
        if connection is None:
            raise ValueError("customer_ids needs the connection they belong to")
        ids = sorted(set(customer_ids))
        scopes = [
            and_(
                orders.c.connection == connection,
                one_of(conn.dialect.name, orders.c.customer_id, ids[start : start + _ORDER_CHUNK]),
            )
            for start in range(0, len(ids), _ORDER_CHUNK)
        ]
    elif connection is not None:
        scopes = [and_(orders.c.connection == connection, orders.c.customer_id.is_not(None))]
    else:
        scopes = [and_(orders.c.shop == shop, orders.c.customer_id.is_not(None))]
    before = max_entry_id(conn)
    earned = redeemed = reversed_ = 0
    for scope in scopes:
        earned += insert_select(conn, _earn_query(conn, settings, now, scope, shop))
        redeemed += insert_select(conn, _redeem_query(scope, shop))
        for kind in (EntryKind.EARN, EntryKind.REDEEM):
            reversed_ += insert_select(conn, _reverse_query(conn, settings, kind, scope, shop))
    if balances:
        refresh_since(conn, before, shop=shop)
    return AppliedPoints(earned, redeemed, reversed_)


def _check_connection(conn: Connection, connection: str, shop: str) -> None:
    """ValueError when ``connection`` belongs to another shop than ``shop``."""
    owner = conn.execute(
        select(connection_shops.c.shop).where(connection_shops.c.connection == connection)
    ).scalar()
    if owner is not None and owner != shop:
        raise ValueError(f"connection {connection!r} belongs to another shop, not {shop!r}")


def _not_recorded(shop: str, source: Any, event_id: Any) -> ColumnElement[bool]:
    # The shop first: the ledger's unique key (shop, source, event_id) answers it.
    seen = points_entries.alias("seen")
    return ~exists().where(
        seen.c.shop == shop, seen.c.source == source, seen.c.event_id == event_id
    )


def _units(column: Any) -> Any:
    """A Money column in ten-thousandths, as an integer (exact below 10^11 yen)."""
    return cast(func.round(cast(column, Float) * literal_column("10000")), BigInteger)


def _base_units(settings: PointsSettings) -> Any:
    base = _units(orders.c.total) - _units(orders.c.shipping_total)
    if settings.base is EarnBase.TOTAL:
        return _units(orders.c.total)
    if settings.base is EarnBase.TOTAL_EXCL_SHIPPING_AND_TAX:
        return base - _units(orders.c.tax_total)
    return base


def _rounded(units: Any, rate: Fraction, rounding: Rounding) -> Any:
    """units * rate / 10000, rounded, in integer SQL arithmetic (no float error)."""
    if rate == 0:
        return literal_column("0", BigInteger)
    a = units * literal_column(str(rate.numerator), BigInteger)
    b = rate.denominator * 10000
    if rounding is Rounding.UP:
        return (a + literal_column(str(b - 1), BigInteger)) // literal_column(str(b), BigInteger)
    if rounding is Rounding.NEAREST:
        two = literal_column("2", BigInteger)
        return (a * two + literal_column(str(b), BigInteger)) // literal_column(
            str(2 * b), BigInteger
        )
    return a // literal_column(str(b), BigInteger)


def _rule_points(settings: PointsSettings) -> Any:
    """Points by the rule: one CASE branch per (connection, channel) multiplier pair."""
    units = _base_units(settings)
    whens: list[tuple[ColumnElement[bool], Any]] = []
    for conn_name in settings.connection_multipliers:
        for channel in settings.channel_multipliers:
            whens.append(
                (
                    and_(orders.c.connection == conn_name, orders.c.channel == channel),
                    _rounded(units, settings.rate(conn_name, channel), settings.rounding),
                )
            )
    for conn_name in settings.connection_multipliers:
        whens.append(
            (
                orders.c.connection == conn_name,
                _rounded(units, settings.rate(conn_name, None), settings.rounding),
            )
        )
    for channel in settings.channel_multipliers:
        whens.append(
            (
                orders.c.channel == channel,
                _rounded(units, settings.rate(None, channel), settings.rounding),
            )
        )
    default = _rounded(units, settings.rate(None, None), settings.rounding)
    return case(*whens, else_=default) if whens else default


def _earn_query(
    conn: Connection,
    settings: PointsSettings,
    now: dt.datetime,
    scope: ColumnElement[bool],
    shop: str,
) -> Any:
    by_rule: list[ColumnElement[bool]] = [
        orders.c.currency == settings.currency,
        orders.c.placed_at <= now - dt.timedelta(days=settings.delay_days),
    ]
    if settings.start is not None:
        by_rule.append(orders.c.placed_at >= settings.start)
    master = orders.c.connection.in_(settings.masters) if settings.masters else false()
    points = case(
        (master, func.coalesce(orders.c.points_earned, 0)),
        (and_(*by_rule), _rule_points(settings)),
        else_=literal_column("0", BigInteger),
    )
    candidates = (
        select(
            orders.c.connection,
            orders.c.id,
            orders.c.customer_id,
            orders.c.placed_at,
            points.label("points"),
        )
        .where(scope, orders.c.status.in_(PURCHASE_STATUSES))
        .subquery()
    )
    event_id = prefixed("earn:", candidates.c.id)
    expires: Any = null()
    if settings.expiry_months is not None:
        expires = sql_plus_months(conn, candidates.c.placed_at, settings.expiry_months)
    return select(
        literal(shop),
        candidates.c.connection,
        event_id,
        candidates.c.connection,
        candidates.c.customer_id,
        literal(EntryKind.EARN.value),
        candidates.c.points,
        candidates.c.placed_at,
        expires,
        candidates.c.id,
        null(),
    ).where(candidates.c.points > 0, _not_recorded(shop, candidates.c.connection, event_id))


def _redeem_query(scope: ColumnElement[bool], shop: str) -> Any:
    event_id = prefixed("redeem:", orders.c.id)
    return select(
        literal(shop),
        orders.c.connection,
        event_id,
        orders.c.connection,
        orders.c.customer_id,
        literal(EntryKind.REDEEM.value),
        -orders.c.points_redeemed,
        orders.c.placed_at,
        null(),
        orders.c.id,
        null(),
    ).where(
        scope,
        orders.c.status.in_(PURCHASE_STATUSES),
        orders.c.points_redeemed > 0,
        _not_recorded(shop, orders.c.connection, event_id),
    )


def _reverse_query(
    conn: Connection,
    settings: PointsSettings,
    kind: EntryKind,
    scope: ColumnElement[bool],
    shop: str,
) -> Any:
    """Undo the earn (or redemption) of orders now cancelled, refunded or returned."""
    target = points_entries.alias("target")
    expired = points_entries.alias("expired")
    event_id = prefixed("reverse:", target.c.event_id)
    undone_at = func.coalesce(orders.c.cancelled_at, orders.c.updated_at)
    # What already expired of an earn cannot be taken back a second time.
    already_expired = (
        select(expired.c.points)
        .where(
            expired.c.shop == shop,
            expired.c.source == target.c.source,
            expired.c.event_id == prefixed("expire:", target.c.event_id),
        )
        .scalar_subquery()
    )
    expires: Any = null()
    if kind is EntryKind.REDEEM and settings.expiry_months is not None:
        # Points given back are as good as newly earned: they expire from the refund.
        expires = sql_plus_months(conn, undone_at, settings.expiry_months)
    return (
        select(
            literal(shop),
            target.c.source,
            event_id,
            target.c.connection,
            target.c.customer_id,
            literal(EntryKind.REVERSE.value),
            -(target.c.points + func.coalesce(already_expired, 0)),
            undone_at,
            expires,
            orders.c.id,
            null(),
        )
        .select_from(
            orders.join(
                target,
                and_(
                    target.c.shop == shop,
                    target.c.source == orders.c.connection,
                    target.c.event_id == prefixed(f"{kind.value}:", orders.c.id),
                ),
            )
        )
        .where(scope, orders.c.status.in_(UNDONE), _not_recorded(shop, target.c.source, event_id))
    )


# -- operator and caller entries ------------------------------------------------------------


def primary_member(conn: Connection, profile_id: int, *, shop: str) -> tuple[str, str]:
    """The source customer new redemptions and adjustments of a profile hang on.

    The member whose customer record was updated most recently (ties: by connection and
    id), so points follow the account the person actually uses; a member whose record is
    gone counts as the oldest. Holds the profile until the transaction ends (a row lock on
    PostgreSQL, the write lock on SQLite), so a balance read next stays true.
    UnknownProfileError when ``shop`` has no such profile.
    """
    _lock_profile(conn, profile_id, shop)
    row = conn.execute(
        select(profile_members.c.connection, profile_members.c.record_id)
        .select_from(
            profile_members.outerjoin(
                customers,
                and_(
                    customers.c.connection == profile_members.c.connection,
                    customers.c.id == profile_members.c.record_id,
                ),
            )
        )
        .where(profile_members.c.profile_id == profile_id)
        .order_by(
            customers.c.updated_at.is_(None),
            customers.c.updated_at.desc(),
            profile_members.c.connection,
            profile_members.c.record_id,
        )
        .limit(1)
    ).first()
    if row is None:
        raise UnknownProfileError(f"profile {profile_id} has no source customer to hold points")
    return row.connection, row.record_id


def redeem(
    conn: Connection,
    profile_id: int,
    points: int,
    *,
    now: dt.datetime | None = None,
    event_id: str | None = None,
    source: str = OPERATOR,
    note: str | None = None,
    settings: PointsSettings | None = None,
    shop: str,
) -> Entry:
    """Spend ``points`` from the profile's wallet; refuses to overdraw it.

    With ``settings``, points whose expiry date has come by ``now`` expire first, so
    they cannot be spent.

    Keyed (``shop``, ``source``, ``redeem:<event_id>``): the same event again returns the
    entry already recorded and spends nothing. Without an event id every call is a new one.
    """
    if points <= 0:
        raise PointsError(f"points to redeem must be positive, got {points}")
    key = _caller_key(EntryKind.REDEEM, event_id)
    connection, customer_id = primary_member(conn, profile_id, shop=shop)  # holds the wallet
    found = _recorded(conn, shop, source, key)
    if found is not None:
        return _same_or_conflict(conn, found, profile_id, EntryKind.REDEEM, -points)
    now = now or utc_now()
    if settings is not None:
        # Points past their date are gone before anything is spent from the wallet.
        insert_rows(conn, pending(conn, profile_id, now, settings, shop=shop))
    available = _wallet_total(conn, profile_id)
    if points > available:
        raise InsufficientPointsError(profile_id, points, available)
    return _record(
        conn,
        profile_id,
        shop=shop,
        source=source,
        event_id=key,
        connection=connection,
        customer_id=customer_id,
        kind=EntryKind.REDEEM,
        points=-points,
        occurred_at=now,
        expires_at=None,
        note=note,
    )


def adjust(
    conn: Connection,
    profile_id: int,
    points: int,
    note: str,
    *,
    event_id: str | None = None,
    now: dt.datetime | None = None,
    source: str = OPERATOR,
    expires_at: dt.datetime | None = None,
    shop: str,
) -> Entry:
    """Add (or, negative, take away) points by hand, with the reason in ``note``.

    Keyed (``shop``, ``source``, ``adjust:<event_id>``) like :func:`redeem`. May take a wallet
    below zero (a correction is a correction). Granted points never expire unless
    ``expires_at`` says when.
    """
    if points == 0:
        raise PointsError("an adjustment of 0 points changes nothing")
    if not note.strip():
        raise PointsError("an adjustment needs a note saying why")
    key = _caller_key(EntryKind.ADJUST, event_id)
    connection, customer_id = primary_member(conn, profile_id, shop=shop)  # holds the wallet
    found = _recorded(conn, shop, source, key)
    if found is not None:
        return _same_or_conflict(conn, found, profile_id, EntryKind.ADJUST, points)
    return _record(
        conn,
        profile_id,
        shop=shop,
        source=source,
        event_id=key,
        connection=connection,
        customer_id=customer_id,
        kind=EntryKind.ADJUST,
        points=points,
        occurred_at=now or utc_now(),
        expires_at=expires_at if points > 0 else None,
        note=note,
    )


def _caller_key(kind: EntryKind, event_id: str | None) -> str:
    if event_id is None:
        return f"{kind.value}:{uuid.uuid4().hex}"
    if not event_id.strip() or len(event_id) > MAX_ID:
        raise PointsError(f"an event id is 1 to {MAX_ID} characters, got {event_id!r}")
    return f"{kind.value}:{event_id}"


def _recorded(conn: Connection, shop: str, source: str, event_id: str) -> Entry | None:
    row = (
        conn.execute(
            select(points_entries).where(
                points_entries.c.shop == shop,
                points_entries.c.source == source,
                points_entries.c.event_id == event_id,
            )
        )
        .mappings()
        .first()
    )
    return entry_from_row(row) if row is not None else None


def _same_or_conflict(
    conn: Connection, found: Entry, profile_id: int, kind: EntryKind, points: int
) -> Entry:
    owner = conn.execute(
        select(profile_members.c.profile_id).where(
            profile_members.c.connection == found.connection,
            profile_members.c.record_id == found.customer_id,
        )
    ).scalar()
    if found.kind is not kind or found.points != points or owner != profile_id:
        raise EventConflictError(
            f"event {found.event_id!r} of {found.source!r} is already recorded as "
            f"{found.kind.value} {found.points:+d} on profile {owner}; not {kind.value} "
            f"{points:+d} on profile {profile_id}"
        )
    return found


def _record(conn: Connection, profile_id: int, **values: Any) -> Entry:
    insert_rows(conn, [values])
    entry = _recorded(conn, values["shop"], values["source"], values["event_id"])
    assert entry is not None  # just written in this transaction
    refresh_where(conn, profiles.c.id == profile_id)
    return entry


def _lock_profile(conn: Connection, profile_id: int, shop: str) -> None:
    """Check ``shop`` has the profile and hold it until the transaction ends, so two
    redemptions of one wallet cannot both pass the balance check."""
    mine = and_(profiles.c.id == profile_id, profiles.c.shop == shop)
    if conn.dialect.name == "sqlite":
        # A write (of nothing) takes SQLite's write lock before the balance is read; a
        # read alone would not, and another writer could spend the same points meanwhile.
        written = conn.execute(update(profiles).where(mine).values(id=profiles.c.id))
        found = written.rowcount > 0
    else:
        found = (
            conn.execute(select(profiles.c.id).where(mine).with_for_update()).first() is not None
        )
    if not found:
        raise UnknownProfileError(_unknown(profile_id, shop))


def _unknown(profile_id: int, shop: str) -> str:
    # The same words whether the id is free or another shop's: nothing of it shows here.
    return f"no profile {profile_id} in shop {shop!r}"


def _check_profile(conn: Connection, profile_id: int, shop: str) -> None:
    # Once the profile is known to be the shop's, its wallet is read through its members
    # (all of the shop) with no shop filter on the ledger: one would tempt SQLite to walk
    # the shop's whole ledger by its (shop, source, event_id) key.
    found = conn.execute(
        select(profiles.c.id).where(profiles.c.id == profile_id, profiles.c.shop == shop)
    ).first()
    if found is None:
        raise UnknownProfileError(_unknown(profile_id, shop))


def _wallet_total(conn: Connection, profile_id: int) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(points_entries.c.points), 0))
            .select_from(member_join())
            .where(profile_members.c.profile_id == profile_id)
        ).scalar_one()
    )


# -- reading --------------------------------------------------------------------------------


def balance(
    conn: Connection,
    profile_id: int,
    *,
    now: dt.datetime | None = None,
    settings: PointsSettings | None = None,
    shop: str,
) -> Balance:
    """The profile's wallet: in total and per connection of its members.

    With ``now`` and ``settings``, points whose expiry date has come by ``now`` are left
    out even when no expiry run has written them yet (read-only: nothing is written).
    Without, the ledger as recorded. Every screen showing a balance passes both.
    UnknownProfileError when ``shop`` has no such profile.
    """
    _check_profile(conn, profile_id, shop)
    due = pending(conn, profile_id, now, settings, shop=shop) if now and settings else []
    rows = conn.execute(
        select(points_entries.c.connection, func.sum(points_entries.c.points))
        .select_from(member_join())
        .where(profile_members.c.profile_id == profile_id)
        .group_by(points_entries.c.connection)
        .order_by(points_entries.c.connection)
    ).all()
    by_connection = {name: int(total) for name, total in rows}
    for row in due:
        by_connection[row["connection"]] += row["points"]
    return Balance(profile_id, sum(by_connection.values()), by_connection)


def history(conn: Connection, profile_id: int, *, shop: str) -> list[Entry]:
    """Every entry of the profile's wallet, oldest first (UnknownProfileError when
    ``shop`` has no such profile)."""
    _check_profile(conn, profile_id, shop)
    result = conn.execute(
        select(points_entries)
        .select_from(member_join())
        .where(profile_members.c.profile_id == profile_id)
        .order_by(points_entries.c.occurred_at, points_entries.c.id)
    ).mappings()
    return [entry_from_row(row) for row in result]


def refresh_balances(
    conn: Connection, profile_ids: Iterable[int] | None = None, *, shop: str
) -> int:
    """Write profiles.points_balance from the ledger (all of ``shop``'s profiles, or those
    of them given).

    Needed after anything that changes which source customers a profile holds (a merge,
    an unmerge); the ledger's own writers refresh the profiles they reach. Returns how
    many profiles were updated.
    """
    if profile_ids is None:
        return refresh_where(conn, profiles.c.shop == shop)
    ids = sorted(set(profile_ids))
    return sum(
        refresh_where(
            conn,
            and_(
                profiles.c.shop == shop,
                one_of(conn.dialect.name, profiles.c.id, ids[start : start + _CHUNK]),
            ),
        )
        for start in range(0, len(ids), _CHUNK)
    )
