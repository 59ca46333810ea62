"""The pairs the rules refused for one reason, as the resolver left them, and the
operator's decision on one: link (one person) or separate (two), for good.

The resolver writes ``identity_suggestions`` for the records it re-resolves (see
`nearmiss.py` for what a suggestion is). A decision is an override like any other
(``identity_overrides``): a link joins the pair at once, a separation keeps it apart,
and since the resolver honours both on every later run, a decided pair is never
suggested again.

A pair may be refused for a third record: one already one person with a side, whose
birth date (gender, name) conflicts with the other side (``blocked_by``). A link then
makes the pair and that record one person (linking them too, or the next run would
keep the pair and drop the third record); a split says the third record is someone
else: the pair is linked and the third record separated from both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from omnicrm.core.store.schema import customers
from omnicrm.crm.identity._tables import pair_in
from omnicrm.crm.identity.nearmiss import show
from omnicrm.crm.identity.normalize import person_name
from omnicrm.crm.identity.overrides import decide_pairs
from omnicrm.crm.identity.resolver import RecordRef
from omnicrm.crm.identity.resolving import ResolveResult
from omnicrm.crm.identity.rules import IdentitySettings
from omnicrm.crm.schema import identity_suggestions
from omnicrm.errors import OmnicrmError

DECISIONS = ("link", "separate", "split")


class UnknownSuggestionError(OmnicrmError):
    """No suggestion of the shop has this id (decided, or gone with a refresh)."""


class NothingToSplitError(OmnicrmError):
    """A split asked of a suggestion no third record blocks, or one whose conflict lies
    between two records that are neither of the pair."""


@dataclass(frozen=True)
class Side:
    """One record of a suggested pair, as its channel wrote it."""

    ref: RecordRef
    name: str | None  # written name (reading); None: no name
    birth_date: dt.date | None


@dataclass(frozen=True)
class PairSuggestion:
    """A pair the rules refused for one reason, with everything weighed: ``evidence``
    holds the shared keys, how names, birth dates and genders compared, the conflict
    (``birth_date``, ``gender``, ``names`` or ``household``), why, the rule that
    would have joined them but for it, and (``blocked_by``) the other records of their
    two profiles that conflict on that field."""

    id: int
    a: Side
    b: Side
    conflict: str
    strength: int
    evidence: dict[str, Any]
    found_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``."""
        return {
            "id": self.id,
            "records": [_side_json(self.a), _side_json(self.b)],
            "conflict": self.conflict,
            "strength": self.strength,
            "evidence": self.evidence,
            "found_at": self.found_at.isoformat(),
        }

    @property
    def blocked_by(self) -> list[tuple[RecordRef, RecordRef]]:
        """The other conflicting records, one of each side's profile (a's first)."""
        return [
            ((first[0], first[1]), (second[0], second[1]))
            for first, second in (b["records"] for b in self.evidence.get("blocked_by", ()))
        ]

    def third_records(self) -> list[RecordRef]:
        """The records that block the pair without being one of it (what a split takes
        out); NothingToSplitError if none does, or a conflict names neither side."""
        pair = {self.a.ref, self.b.ref}
        third: set[RecordRef] = set()
        for first, second in self.blocked_by:
            if first not in pair and second not in pair:
                raise NothingToSplitError(
                    f"suggestion {self.id}: {show(first)} and {show(second)} conflict,"
                    " neither of the pair: link or separate it"
                )
            third.update({first, second} - pair)
        if not third:
            raise NothingToSplitError(
                f"suggestion {self.id}: no third record blocks the pair: link or separate it"
            )
        return sorted(third)


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "connection": side.ref[0],
        "record_id": side.ref[1],
        "name": side.name,
        "birth_date": None if side.birth_date is None else side.birth_date.isoformat(),
    }


def suggestions(conn: Connection, *, shop: str, limit: int | None = None) -> list[PairSuggestion]:
    """The undecided suggestions of ``shop``, strongest first."""
    query = (
        select(identity_suggestions)
        .where(identity_suggestions.c.shop == shop)
        .order_by(identity_suggestions.c.strength.desc(), identity_suggestions.c.id)
    )
    return _load(conn, query if limit is None else query.limit(limit), shop)


def _load(conn: Connection, query: Any, shop: str) -> list[PairSuggestion]:
    rows = conn.execute(query).all()
    pairs = [((r.a_connection, r.a_record), (r.b_connection, r.b_record)) for r in rows]
    sides = _sides(conn, {ref for pair in pairs for ref in pair}, shop)
    return [
        PairSuggestion(
            row.id,
            sides.get(a) or Side(a, None, None),
            sides.get(b) or Side(b, None, None),
            row.conflict,
            row.strength,
            dict(row.evidence),
            row.found_at,
        )
        for row, (a, b) in zip(rows, pairs, strict=True)
    ]


def _sides(conn: Connection, refs: set[RecordRef], shop: str) -> dict[RecordRef, Side]:
    found: dict[RecordRef, Side] = {}
    if not refs:
        return found
    for row in conn.execute(
        select(
            customers.c.connection,
            customers.c.id,
            customers.c.family_name,
            customers.c.given_name,
            customers.c.family_name_kana,
            customers.c.given_name_kana,
            customers.c.birth_date,
        ).where(customers.c.shop == shop, pair_in(customers.c.connection, customers.c.id, refs))
    ):
        name = person_name(
            row.family_name,
            row.given_name,
            row.family_name_kana,
            row.given_name_kana,
            reading=True,
        )
        ref = (row.connection, row.id)
        found[ref] = Side(ref, name or None, row.birth_date)
    return found


def decide(
    conn: Connection,
    suggestion_id: int,
    decision: str,
    note: str | None = None,
    *,
    shop: str,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> tuple[PairSuggestion, ResolveResult]:
    """Decide suggestion ``suggestion_id`` of ``shop`` for good: ``link`` (one person,
    with the records that blocked it), ``separate`` (two people) or ``split`` (the pair
    is one person, the records that blocked it someone else). The records are resolved
    at once and the suggestion goes. An unknown id raises UnknownSuggestionError; a
    split with no third record to take out NothingToSplitError."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r}: expected link, separate or split")
    found = _load(
        conn,
        select(identity_suggestions).where(
            identity_suggestions.c.shop == shop, identity_suggestions.c.id == suggestion_id
        ),
        shop,
    )
    chosen = found[0] if found else None
    if chosen is None:
        raise UnknownSuggestionError(
            f"no suggestion {suggestion_id} in shop {shop!r}: decided already, or gone with"
            " a refresh (list them again)"
        )
    pair = (chosen.a.ref, chosen.b.ref)
    note = note or f"suggestion {suggestion_id}: {chosen.conflict}"
    links: list[tuple[RecordRef, RecordRef]] = []
    apart: list[tuple[RecordRef, RecordRef]] = []
    if decision == "link":
        links = [pair, *chosen.blocked_by]
    elif decision == "separate":
        apart = [pair]
    else:
        third = chosen.third_records()
        links = [pair]
        apart = [(ref, side) for ref in third for side in pair]
    result = decide_pairs(conn, links, apart, note, shop=shop, settings=settings, now=now)
    return chosen, result
