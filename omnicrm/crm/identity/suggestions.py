"""The pairs the rules refused for one reason, as the resolver left them, and the
operator's decision on one: link (one person) or separate (two), for good.

The resolver writes ``identity_suggestions`` for the records it re-resolves (see
`nearmiss.py` for what a suggestion is). A decision is an override like any other
(``identity_overrides``): a link joins the pair at once, a separation keeps it apart,
and since the resolver honours both on every later run, a decided pair is never
suggested again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from omnicrm.core.store.schema import customers
from omnicrm.crm.identity._tables import pair_in
from omnicrm.crm.identity.normalize import person_name
from omnicrm.crm.identity.overrides import link, separate
from omnicrm.crm.identity.resolver import RecordRef
from omnicrm.crm.identity.resolving import ResolveResult
from omnicrm.crm.identity.rules import IdentitySettings
from omnicrm.crm.schema import identity_suggestions
from omnicrm.errors import OmnicrmError

DECISIONS = ("link", "separate")


class UnknownSuggestionError(OmnicrmError):
    """No suggestion of the shop has this id (decided, or gone with a refresh)."""


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
    (``birth_date``, ``gender``, ``names`` or ``household``), why, and the rule that
    would have joined them but for it."""

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
    """Link (``link``: one person) or separate (``separate``: two people) the pair of
    suggestion ``suggestion_id`` of ``shop``, for good; the pair is resolved at once and
    its suggestion goes. An unknown id raises UnknownSuggestionError."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r}: expected link or separate")
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
    act = link if decision == "link" else separate
    note = note or f"suggestion {suggestion_id}: {chosen.conflict}"
    result = act(conn, chosen.a.ref, chosen.b.ref, note, shop=shop, settings=settings, now=now)
    return chosen, result
