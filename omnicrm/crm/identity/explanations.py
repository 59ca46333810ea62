"""Why a profile is what it is: its members, the merges that made it, the overrides.

Within one shop: a profile of another shop is not found, and no other shop's merge or
override is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, select

from omnicrm.core.store.schema import customers
from omnicrm.crm.identity.normalize import person_name
from omnicrm.crm.identity.resolver import RecordRef
from omnicrm.crm.schema import identity_merges, identity_overrides, profile_members, profiles
from omnicrm.errors import OmnicrmError


class UnknownProfileError(OmnicrmError):
    """No profile of the shop has this id."""


@dataclass(frozen=True)
class Member:
    """A source customer of a profile, as its channel wrote it."""

    connection: str
    record_id: str
    name: str | None  # written name (reading): the resolver compares both; None: no name
    email: str | None
    phone: str | None
    joined_at: dt.datetime
    birth_date: dt.date | None = None
    gender: str | None = None


@dataclass(frozen=True)
class Merge:
    """One edge of a profile's merge tree: two records and why they are one person."""

    profile_id: int
    a: RecordRef
    b: RecordRef
    rule: str
    evidence: dict[str, Any]
    merged_at: dt.datetime


@dataclass(frozen=True)
class Override:
    """An operator's decision: ``link`` or ``separate`` two source customers."""

    id: int
    kind: str
    a: RecordRef
    b: RecordRef
    note: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Explanation:
    """Why a profile is what it is: its members, the merges and the operator's overrides."""

    profile_id: int
    members: list[Member] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)


def explain(conn: Connection, profile_id: int, *, shop: str) -> Explanation:
    """A profile of ``shop``: its members, the merges that made it and the overrides
    that bear on it."""
    exists = conn.execute(
        select(profiles.c.id).where(profiles.c.shop == shop, profiles.c.id == profile_id)
    ).first()
    if exists is None:
        raise UnknownProfileError(f"no profile {profile_id} in shop {shop!r}")
    rows = conn.execute(
        select(
            profile_members.c.connection,
            profile_members.c.record_id,
            profile_members.c.joined_at,
            customers.c.family_name,
            customers.c.given_name,
            customers.c.family_name_kana,
            customers.c.given_name_kana,
            customers.c.email,
            customers.c.phone,
            customers.c.birth_date,
            customers.c.gender,
        )
        .select_from(
            profile_members.outerjoin(
                customers,
                and_(
                    customers.c.connection == profile_members.c.connection,
                    customers.c.id == profile_members.c.record_id,
                    customers.c.shop == shop,
                ),
            )
        )
        .where(profile_members.c.shop == shop, profile_members.c.profile_id == profile_id)
        .order_by(profile_members.c.connection, profile_members.c.record_id)
    )
    members = [
        Member(
            row.connection,
            row.record_id,
            person_name(
                row.family_name,
                row.given_name,
                row.family_name_kana,
                row.given_name_kana,
                reading=True,
            )
            or None,
            row.email,
            row.phone,
            row.joined_at,
            row.birth_date,
            row.gender,
        )
        for row in rows
    ]
    merges = [
        _merge(row)
        for row in conn.execute(
            select(identity_merges)
            .where(identity_merges.c.shop == shop, identity_merges.c.profile_id == profile_id)
            .order_by(identity_merges.c.id)
        )
    ]
    refs = {(m.connection, m.record_id) for m in members}
    overrides = [
        Override(
            row.id,
            row.kind,
            (row.a_connection, row.a_record),
            (row.b_connection, row.b_record),
            row.note,
            row.created_at,
        )
        for row in conn.execute(
            select(identity_overrides)
            .where(identity_overrides.c.shop == shop)
            .order_by(identity_overrides.c.id)
        )
        if (row.a_connection, row.a_record) in refs or (row.b_connection, row.b_record) in refs
    ]
    return Explanation(profile_id, members, merges, overrides)


_WEIGHED = (("names", "names"), ("birth_date", "birth date"), ("gender", "gender"))


def describe(evidence: dict[str, Any]) -> str:
    """Every piece of evidence weighed, in a line: the keys both records hold, how their
    names, birth dates and genders compared (``email a@b.jp; names agree; birth date
    same; gender unknown``); an operator's link says so."""
    if "operator" in evidence:
        return "linked by an operator"
    keys = ", ".join(f"{kind} {value}" for kind, value in sorted(evidence.get("keys", {}).items()))
    weighed = [f"{label} {evidence[name]}" for name, label in _WEIGHED if evidence.get(name)]
    return "; ".join(part for part in (keys, *weighed) if part) or "-"


def recent_merges(conn: Connection, limit: int = 50, *, shop: str) -> list[Merge]:
    """The latest merges across the profiles of ``shop``, newest first."""
    return [
        _merge(row)
        for row in conn.execute(
            select(identity_merges)
            .where(identity_merges.c.shop == shop)
            .order_by(identity_merges.c.merged_at.desc(), identity_merges.c.id.desc())
            .limit(limit)
        )
    ]


def _merge(row: Any) -> Merge:
    return Merge(
        row.profile_id,
        (row.a_connection, row.a_record),
        (row.b_connection, row.b_record),
        row.rule,
        dict(row.evidence),
        row.merged_at,
    )
