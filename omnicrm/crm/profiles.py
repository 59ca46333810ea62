"""Unified profiles: one row per person, built from their source customers and orders.

Identity resolution decides which source customers are one person (``profile_members``);
this module fills in that person's row of ``profiles`` (who they are, what they bought,
their consent) and their multi-valued attributes, and reads a profile back whole for the
command line and the terminal UI.

Every profile belongs to one shop (a client business): builds and lookups work within
the shop they are given and never read another shop's rows.

Rules of the build, so a marketer can rely on them:

- a field takes the most recently updated member's non-empty value;
- consent per medium takes the most recent statement across members; on a tie an
  opt-out wins (never message someone on a guess);
- a purchase is an order that is paid or fulfilled; pending, cancelled, refunded and
  returned orders are kept but not counted;
- store means an order of channel ``pos``; every other channel is EC;
- an abandoned checkout is the latest checkout a member began and did not complete,
  kept only while no order of the person was placed at or after it began (an order
  later means they came back and bought).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Join, Table, and_, delete, func, or_, select, tuple_
from sqlalchemy.sql import ColumnElement

from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store.planner import one_of, unindexed
from omnicrm.core.store.schema import checkouts, customers, order_lines, orders
from omnicrm.crm.bulk import insert_rows, update_rows
from omnicrm.crm.identity.normalize import (
    normalize_email,
    normalize_kana,
    normalize_name,
    normalize_phone,
    person_name,
)
from omnicrm.crm.schema import points_entries, profile_members, profile_values, profiles
from omnicrm.errors import DataError

PURCHASE_STATUSES = ("paid", "fulfilled")
"""Order statuses that count as a purchase."""

STORE_CHANNELS = ("pos",)
"""Order channels that are the physical store; every other channel is EC."""

_CHUNK = 5000
_IDENTITY_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "postal_code",
    "prefecture",
    "company",
    "member_code",
)


def is_purchase() -> ColumnElement[bool]:
    """The condition on ``orders`` that makes an order a purchase."""
    return orders.c.status.in_(PURCHASE_STATUSES)


def joined_to_profiles(table: Table) -> Join:
    """``table`` joined to the profile member its (connection, customer_id) names.

    Rows of a customer that is in no profile (a guest order) drop out.
    """
    return table.join(
        profile_members,
        and_(
            profile_members.c.connection == table.c.connection,
            profile_members.c.record_id == table.c.customer_id,
        ),
    )


def member_orders() -> Join:
    """``orders`` joined to the profile each belongs to."""
    return joined_to_profiles(orders)


# -- building ----------------------------------------------------------------------------


def rebuild_profiles(
    conn: Connection,
    profile_ids: Collection[int] | None,
    *,
    shop: str,
    now: dt.datetime,
    tz: ZoneInfo,
    region: str = "JP",
    new: Collection[int] = (),
) -> int:
    """Recompute the listed profiles of ``shop`` (every profile of the shop when None)
    from their members: who they are, what they bought, their points balance.

    ``new``: profiles that have no row yet (``identity.apply(new_rows=False)``), among
    those listed: inserted whole. Runs on ``conn`` inside the caller's transaction; returns how many
    were rebuilt.
    """
    new = set(new)
    if new and profile_ids is None:
        shops = select(profiles.c.id).where(profiles.c.shop == shop)
        profile_ids = set(conn.execute(shops).scalars()) | new
    elif new and not new <= set(profile_ids or ()):
        raise ValueError("new profiles must be among the profile ids listed")
    built = 0
    for ids in _chunks(conn, shop, profile_ids):
        members = _members(conn, shop, ids, _BUILD_COLUMNS)
        purchases = _purchases(conn, shop, ids, tz)
        channels = _order_values(conn, shop, ids, orders.c.channel)
        stores = _order_values(conn, shop, ids, orders.c.location)
        abandoned = _abandoned_checkouts(conn, shop, ids)
        balances = _balances(conn, shop, ids)
        rows: list[dict[str, Any]] = []
        values: list[dict[str, Any]] = []
        for pid in ids:
            person = members.get(pid, [])
            bought = purchases.get(pid, _Purchases())
            row = _identity(person, region)
            row.update(bought.columns())
            own_channels = channels.get(pid, set())
            row["channel_mix"] = _channel_mix(own_channels)
            row["abandoned_checkout_at"] = abandoned.get(pid)
            row["points_balance"] = balances.get(pid, 0)
            row["updated_at"] = now
            row["pid"] = pid
            rows.append(row)
            tags = {tag for member in person for tag in member["tags"] or []}
            connections = {member["connection"] for member in person}
            for attr, found in (
                ("tag", tags),
                ("channel", own_channels),
                ("store", stores.get(pid, set())),
                ("connection", connections),
            ):
                values.extend(
                    {"profile_id": pid, "attr": attr, "value": v, "shop": shop} for v in found
                )
        # One statement each on PostgreSQL, not one per profile (omnicrm.crm.bulk).
        kept = [row for row in rows if row["pid"] not in new]
        update_rows(conn, profiles, kept, key="pid", column="id", where=profiles.c.shop == shop)
        if len(kept) < len(rows):
            insert_rows(conn, profiles, [_whole(row, shop) for row in rows if row["pid"] in new])
        if kept:
            conn.execute(
                delete(profile_values).where(
                    unindexed(profile_values.c.shop) == shop,
                    one_of(conn.dialect.name, profile_values.c.profile_id, ids),
                )
            )
        insert_rows(conn, profile_values, values)
        built += len(ids)
    return built


def _whole(built: Mapping[str, Any], shop: str) -> dict[str, Any]:
    """The row to insert for a new profile from its build (whose ``pid`` is its id); the
    columns the build leaves out (scores) take their defaults."""
    row = {"id": built["pid"], "shop": shop}
    row.update((name, value) for name, value in built.items() if name != "pid")
    return row


def _chunks(
    conn: Connection, shop: str, profile_ids: Collection[int] | None
) -> Iterator[list[int]]:
    if profile_ids is not None:
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            yield ordered[start : start + _CHUNK]
        return
    last = 0
    while True:
        ids = list(
            conn.execute(
                select(profiles.c.id)
                .where(profiles.c.shop == shop, profiles.c.id > last)
                .order_by(profiles.c.id)
                .limit(_CHUNK)
            ).scalars()
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


# What a build reads of each member: the payload (``raw``), the address and the rest
# are decoded only for a profile read whole.
_BUILD_COLUMNS = tuple(
    customers.c[name]
    for name in (
        *_IDENTITY_FIELDS,
        "connection",
        "gender",
        "email",
        "phone",
        "created_at",
        "updated_at",
        "tags",
        "consents",
    )
)


def _members(
    conn: Connection, shop: str, ids: Sequence[int], columns: Sequence[Any] = (customers,)
) -> dict[int, list[Mapping[Any, Any]]]:
    """Each profile's source customers (``columns`` of them), oldest update first."""
    query = (
        select(profile_members.c.profile_id, *columns)
        .join(
            customers,
            and_(
                customers.c.connection == profile_members.c.connection,
                customers.c.id == profile_members.c.record_id,
                unindexed(customers.c.shop) == shop,
            ),
        )
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, ids),
        )
        # Ties broken by source, so every backend picks the same winner.
        .order_by(
            profile_members.c.profile_id,
            customers.c.updated_at,
            customers.c.connection,
            customers.c.id,
        )
    )
    found: dict[int, list[Mapping[Any, Any]]] = defaultdict(list)
    for row in conn.execute(query).mappings():
        found[row["profile_id"]].append(row)
    return found


def _identity(members: Sequence[Mapping[Any, Any]], region: str) -> dict[str, Any]:
    """The person's fields from their members: latest non-empty value wins."""
    row: dict[str, Any] = {name: None for name in _IDENTITY_FIELDS}
    row.update(email=None, phone=None, gender="unknown", first_seen_at=None)
    emails: list[str] = []
    phones: list[str] = []
    for member in members:  # oldest first, so later ones overwrite
        for name in _IDENTITY_FIELDS:
            if member[name] not in (None, ""):
                row[name] = member[name]
        if member["gender"] != "unknown":
            row["gender"] = member["gender"]
        email = normalize_email(member["email"])
        if email:
            row["email"] = email
            emails.append(email)
        phone = normalize_phone(member["phone"], region)
        if phone:
            row["phone"] = phone
            phones.append(phone)
        created = member["created_at"]
        if created is not None and (row["first_seen_at"] is None or created < row["first_seen_at"]):
            row["first_seen_at"] = created
    row.update(_consents(members))
    row["search_text"] = _search_text(members, emails, phones)
    return row


def _consents(members: Sequence[Mapping[Any, Any]]) -> dict[str, str]:
    """Per medium, the latest consent statement across members; opt-out wins a tie.

    A member that was never asked (unknown) states nothing, so it cannot undo an
    opt-in or opt-out another member recorded.
    """
    latest: dict[str, tuple[str, bool, str]] = {}
    for member in members:
        for consent in member["consents"] or []:
            when = consent.get("updated_at") or member["updated_at"].isoformat()
            when = str(when)
            state = consent["state"]
            if state == ConsentState.UNKNOWN.value:
                continue
            # Sort key: time, then opted-out above anything else stated at that time.
            key = (when, state == ConsentState.OPTED_OUT.value, state)
            if consent["medium"] not in latest or key > latest[consent["medium"]]:
                latest[consent["medium"]] = key
    return {
        f"consent_{medium.value}": latest[medium.value][2]
        if medium.value in latest
        else ConsentState.UNKNOWN.value
        for medium in Medium
    }


def _search_text(
    members: Sequence[Mapping[Any, Any]], emails: Sequence[str], phones: Sequence[str]
) -> str:
    """What a lookup matches against: names as written and in hiragana, email, phone."""
    parts: set[str] = set(emails) | set(phones)
    for member in members:
        kanji = normalize_name(f"{member['family_name'] or ''}{member['given_name'] or ''}")
        kana = normalize_kana(
            f"{member['family_name_kana'] or ''}{member['given_name_kana'] or ''}"
        )
        parts.update(p for p in (kanji, kana, member["member_code"]) if p)
    return " ".join(sorted(parts)).lower()


@dataclass
class _Purchases:
    count: int = 0
    amount: float = 0.0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    days: set[dt.date] = field(default_factory=set)

    def columns(self) -> dict[str, Any]:
        return {
            "number_of_orders": self.count,
            "amount_spent": self.amount,
            "first_order_at": self.first,
            "last_order_at": self.last,
            "purchase_days": len(self.days),
        }


def _purchases(
    conn: Connection, shop: str, ids: Sequence[int], tz: ZoneInfo
) -> dict[int, _Purchases]:
    query = (
        select(profile_members.c.profile_id, orders.c.placed_at, orders.c.total)
        .select_from(member_orders())
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, ids),
            is_purchase(),
        )
    )
    found: dict[int, _Purchases] = defaultdict(_Purchases)
    for pid, placed_at, total in conn.execute(query):
        p = found[pid]
        p.count += 1
        p.amount += float(total)
        p.first = placed_at if p.first is None or placed_at < p.first else p.first
        p.last = placed_at if p.last is None or placed_at > p.last else p.last
        p.days.add(placed_at.astimezone(tz).date())
    return found


def _abandoned_checkouts(conn: Connection, shop: str, ids: Sequence[int]) -> dict[int, dt.datetime]:
    """When each person's latest abandoned checkout began, for those who placed no order
    (of any status) at or after it."""
    left = (
        select(profile_members.c.profile_id, func.max(checkouts.c.created_at))
        .select_from(joined_to_profiles(checkouts))
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, ids),
            checkouts.c.completed_at.is_(None),
        )
        .group_by(profile_members.c.profile_id)
    )
    found: dict[int, dt.datetime] = {pid: at for pid, at in conn.execute(left)}
    if not found:
        return found
    ordered = (
        select(profile_members.c.profile_id, func.max(orders.c.placed_at))
        .select_from(member_orders())
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, list(found)),
        )
        .group_by(profile_members.c.profile_id)
    )
    for pid, placed in conn.execute(ordered):
        if placed is not None and placed >= found[pid]:
            del found[pid]
    return found


def _balances(conn: Connection, shop: str, ids: Sequence[int]) -> dict[int, int]:
    """Each profile's points balance: the sum of its members' ledger entries (what
    ``points.refresh_balances`` writes, read here so the build writes each row once)."""
    query = (
        select(profile_members.c.profile_id, func.sum(points_entries.c.points))
        .select_from(joined_to_profiles(points_entries))
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, ids),
        )
        .group_by(profile_members.c.profile_id)
    )
    return {pid: int(total or 0) for pid, total in conn.execute(query)}


def _order_values(
    conn: Connection, shop: str, ids: Sequence[int], column: Any
) -> dict[int, set[str]]:
    query = (
        select(profile_members.c.profile_id, column)
        .select_from(member_orders())
        .where(
            profile_members.c.shop == shop,
            one_of(conn.dialect.name, profile_members.c.profile_id, ids),
            column.is_not(None),
        )
        .distinct()
    )
    found: dict[int, set[str]] = defaultdict(set)
    for pid, value in conn.execute(query):
        found[pid].add(value)
    return found


def _channel_mix(channels: Collection[str]) -> str:
    if not channels:
        return "none"
    store = any(c in STORE_CHANNELS for c in channels)
    ec = any(c not in STORE_CHANNELS for c in channels)
    if store and ec:
        return "both"
    return "store_only" if store else "ec_only"


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCustomer:
    """One channel's record of the person."""

    connection: str
    id: str
    name: str
    email: str | None
    phone: str | None
    member_code: str | None
    updated_at: dt.datetime
    withdrawn_at: dt.datetime | None = None
    """When the member left the platform (退会); the next refresh takes them out of the
    profile (a withdrawn record joins no person)."""


@dataclass(frozen=True)
class ProfileOrder:
    """One of the person's orders, from any channel."""

    connection: str
    id: str
    name: str | None
    placed_at: dt.datetime
    channel: str
    location: str | None
    status: str
    total: Decimal
    currency: str
    products: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """A person as the CRM knows them, across every channel."""

    id: int
    row: Mapping[Any, Any]
    members: tuple[SourceCustomer, ...]
    orders: tuple[ProfileOrder, ...]
    values: Mapping[str, tuple[str, ...]]
    address: Mapping[str, Any] | None = None  # the latest member's, as the channel gave it

    def __getattr__(self, name: str) -> Any:
        # The profile's columns read as attributes: profile.email, profile.rfm_group ...
        try:
            return self.row[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def name(self) -> str:
        """Family then given name, as Japanese write it; kana when that is all we have."""
        r = self.row
        name = person_name(
            r["family_name"], r["given_name"], r["family_name_kana"], r["given_name_kana"]
        )
        return name or "(no name)"

    def age(self, today: dt.date) -> int | None:
        """Age in whole years on ``today``; None without a birth date."""
        born: dt.date | None = self.row["birth_date"]
        if born is None:
            return None
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def load_profile(
    conn: Connection, profile_id: int, *, shop: str, orders_limit: int = 20
) -> Profile:
    """The whole profile of ``shop``; DataError when the shop has no such profile."""
    row = (
        conn.execute(select(profiles).where(profiles.c.shop == shop, profiles.c.id == profile_id))
        .mappings()
        .first()
    )
    if row is None:
        raise DataError(f"no profile {profile_id} in shop {shop!r}")
    member_rows = _members(conn, shop, [profile_id]).get(profile_id, [])
    addresses = [m["address"] for m in member_rows if m["address"]]  # oldest update first
    members = tuple(_source_customer(m) for m in member_rows)
    recent = conn.execute(
        select(orders)
        .select_from(member_orders())
        .where(profile_members.c.shop == shop, profile_members.c.profile_id == profile_id)
        .order_by(orders.c.placed_at.desc())
        .limit(orders_limit)
    ).mappings()
    recent_rows = list(recent)
    products: dict[tuple[str, str], list[str]] = defaultdict(list)
    if recent_rows:
        keys = [(o["connection"], o["id"]) for o in recent_rows]
        for line in conn.execute(
            select(order_lines.c.connection, order_lines.c.order_id, order_lines.c.product_name)
            .where(tuple_(order_lines.c.connection, order_lines.c.order_id).in_(keys))
            .order_by(order_lines.c.line_no)
        ):
            products[(line.connection, line.order_id)].append(line.product_name)
    held = tuple(
        ProfileOrder(
            connection=o["connection"],
            id=o["id"],
            name=o["name"],
            placed_at=o["placed_at"],
            channel=o["channel"],
            location=o["location"],
            status=o["status"],
            total=o["total"],
            currency=o["currency"],
            products=tuple(products[(o["connection"], o["id"])]),
        )
        for o in recent_rows
    )
    values: dict[str, list[str]] = defaultdict(list)
    for attr, value in conn.execute(
        select(profile_values.c.attr, profile_values.c.value)
        .where(profile_values.c.shop == shop, profile_values.c.profile_id == profile_id)
        .order_by(profile_values.c.attr, profile_values.c.value)
    ):
        values[attr].append(value)
    return Profile(
        id=profile_id,
        row=dict(row),
        members=members,
        orders=held,
        values={k: tuple(v) for k, v in values.items()},
        address=addresses[-1] if addresses else None,
    )


def _source_customer(row: Mapping[Any, Any]) -> SourceCustomer:
    """A ``customers`` row as a :class:`SourceCustomer`."""
    return SourceCustomer(
        connection=row["connection"],
        id=row["id"],
        name=person_name(
            row["family_name"], row["given_name"], row["family_name_kana"], row["given_name_kana"]
        ),
        email=row["email"],
        phone=row["phone"],
        member_code=row["member_code"],
        updated_at=row["updated_at"],
        withdrawn_at=row["withdrawn_at"],
    )


# What may appear in an address (unquoted local part, domain): a query made only of these
# may be part of one. Names drop their dots and spaces; a piece of an address keeps them.
_EMAIL_CHARS = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~@-]+")


def _email_part(text: str) -> str | None:
    """``text`` as a piece of an email address (``hanako@``, ``@example.jp``,
    ``yamada.h``), lower-cased as addresses are kept; None if it cannot be one."""
    part = unicodedata.normalize("NFKC", text).strip().lower()
    return part if _EMAIL_CHARS.fullmatch(part) else None


@dataclass(frozen=True)
class ProfileMatch:
    """A line of a lookup's answer."""

    id: int
    name: str
    email: str | None
    phone: str | None
    number_of_orders: int
    last_order_at: dt.datetime | None


def find_profiles(
    conn: Connection, query: str, *, shop: str, region: str = "JP", limit: int = 20
) -> list[ProfileMatch]:
    """Profiles of ``shop`` matching an email, a phone number, a member code or a name
    (kanji or kana).

    The query is normalised the way the profiles were, so ``ﾔﾏﾀﾞ``, ``ヤマダ`` and
    ``やまだ`` find the same person, and ``090-1234-5678`` finds ``+819012345678``.
    """
    text = query.strip()
    if not text:
        return []
    needles = {
        n
        for n in (
            normalize_email(text),
            normalize_phone(text, region),
            normalize_kana(text),
            normalize_name(text),
            _email_part(text),
        )
        if n
    }
    conditions = [profiles.c.search_text.contains(n.lower(), autoescape=True) for n in needles]
    if text.isdigit():
        conditions.append(profiles.c.id == int(text))
    rows = conn.execute(
        select(
            profiles.c.id,
            profiles.c.family_name,
            profiles.c.given_name,
            profiles.c.family_name_kana,
            profiles.c.given_name_kana,
            profiles.c.email,
            profiles.c.phone,
            profiles.c.number_of_orders,
            profiles.c.last_order_at,
        )
        .where(profiles.c.shop == shop, or_(*conditions))
        .order_by(profiles.c.last_order_at.desc(), profiles.c.id)
        .limit(limit)
    )
    return [
        ProfileMatch(
            id=r.id,
            name=person_name(r.family_name, r.given_name, r.family_name_kana, r.given_name_kana)
            or "(no name)",
            email=r.email,
            phone=r.phone,
            number_of_orders=r.number_of_orders,
            last_order_at=r.last_order_at,
        )
        for r in rows
    ]


def profile_of(conn: Connection, connection: str, record_id: str, *, shop: str) -> int | None:
    """The profile a source customer of ``shop`` belongs to, if it has been resolved."""
    found: int | None = conn.execute(
        select(profile_members.c.profile_id).where(
            profile_members.c.shop == shop,
            profile_members.c.connection == connection,
            profile_members.c.record_id == record_id,
        )
    ).scalar_one_or_none()
    return found


@dataclass(frozen=True)
class SourceRecord:
    """One source customer on its own: who it is, whether it withdrew (退会), the person
    it belongs to and what its orders add up to (a withdrawn member's orders count in
    the shop's sales, attributed to nobody)."""

    customer: SourceCustomer
    profile_id: int | None
    orders: int  # purchases (paid or fulfilled)
    total: Decimal  # their totals, in the record's orders' currencies summed as given


def load_record(
    conn: Connection, connection: str, record_id: str, *, shop: str
) -> SourceRecord | None:
    """The source customer ``connection``:``record_id`` of ``shop``; None if it has none."""
    row = (
        conn.execute(
            select(customers).where(
                customers.c.shop == shop,
                customers.c.connection == connection,
                customers.c.id == record_id,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    count, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(orders.c.total), 0)).where(
            orders.c.connection == connection,
            orders.c.customer_id == record_id,
            is_purchase(),
        )
    ).one()
    return SourceRecord(
        _source_customer(row),
        profile_of(conn, connection, record_id, shop=shop),
        int(count),
        Decimal(total),
    )


__all__ = [
    "PURCHASE_STATUSES",
    "STORE_CHANNELS",
    "Profile",
    "ProfileMatch",
    "ProfileOrder",
    "SourceCustomer",
    "SourceRecord",
    "find_profiles",
    "is_purchase",
    "joined_to_profiles",
    "load_profile",
    "load_record",
    "member_orders",
    "person_name",
    "profile_of",
    "rebuild_profiles",
]
