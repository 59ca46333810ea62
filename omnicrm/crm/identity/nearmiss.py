"""Near misses: pairs the resolver refused for one reason only, for an operator to decide.

The resolver (`resolver.py`) finds them among the pairs it compared and refused: a pair
whose only conflict is one field (birth dates that differ, often by a wareki slip or a
day/month swap; two genders; two names where a card or a mobile says otherwise), or
whose only obstacle is a key a household may share. Each is kept with its evidence and
a strength, so the likeliest come first. This module holds what a suggestion is and how
strong it is; the finding is the resolver's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from omnicrm.crm.identity.normalize import NameMatch, is_mobile
from omnicrm.crm.identity.rules import KeyKind

RecordRef = tuple[str, str]
Key = tuple[KeyKind, str]

# Era year N of 明治, 大正, 昭和, 平成, 令和 is the year offset + N.
_ERA_OFFSETS = (1867, 1911, 1925, 1988, 2018)
# Years apart when an era year was read in another era (昭和63 as 平成63: 63 years off).
_WAREKI_GAPS = frozenset(abs(x - y) for x in _ERA_OFFSETS for y in _ERA_OFFSETS if x != y)

SLIPS = {
    "day_month_swap": "day and month swapped",
    "wareki_slip": "the same era year read in another era (wareki)",
    "one_digit": "one digit apart",
    "differs": "different dates",
}


def birth_date_slip(a: dt.date, b: dt.date) -> str:
    """How two different birth dates differ: ``day_month_swap`` (1985-03-04 and
    1985-04-03), ``wareki_slip`` (the same month and day, years apart by the gap
    between two eras: 昭和60 typed as 平成60), ``one_digit`` (a typo) or ``differs``."""
    if a.year == b.year and (a.month, a.day) == (b.day, b.month):
        return "day_month_swap"
    if (a.month, a.day) == (b.month, b.day) and abs(a.year - b.year) in _WAREKI_GAPS:
        return "wareki_slip"
    digits = zip(a.strftime("%Y%m%d"), b.strftime("%Y%m%d"), strict=True)
    if sum(x != y for x, y in digits) == 1:
        return "one_digit"
    return "differs"


# What each piece of evidence adds to a suggestion's strength: a card outweighs a
# personal mobile or an email, which outweigh a household's landline.
_KEY_WEIGHT = {KeyKind.MEMBER_CODE: 40, KeyKind.EMAIL: 30}
_MOBILE, _LANDLINE = 30, 15
_NAME_WEIGHT = {
    NameMatch.AGREE: 30,
    NameMatch.CLOSE: 20,
    NameMatch.UNKNOWN: 0,
    NameMatch.CONFLICT: -40,
}
_BIRTH_WEIGHT = {
    "same": 20,
    "unknown": 0,
    "day_month_swap": 10,
    "wareki_slip": 10,
    "one_digit": 5,
    "differs": -30,
}
_GENDER_WEIGHT = {"same": 0, "unknown": 0, "differs": -10}


# What a conflict with another member of a cluster costs a pair that agrees by itself:
# the pair would join that member too.
_BLOCKER_WEIGHT = {
    "day_month_swap": -10,
    "wareki_slip": -10,
    "one_digit": -15,
    "differs": -50,
    "gender": -10,
    "names": -40,
}


@dataclass(frozen=True, slots=True)
class Blocker:
    """Two records, one of each side's cluster, that conflict on ``field``: joining the
    pair would make them one person too. ``member`` is of the first record's cluster,
    ``other`` of the second's; ``how`` is ``gender``, ``names`` or a birth date slip."""

    member: RecordRef
    other: RecordRef
    field: str
    how: str
    detail: str

    @property
    def weight(self) -> int:
        return _BLOCKER_WEIGHT[self.how]

    def as_json(self) -> dict[str, Any]:
        return {
            "records": [list(self.member), list(self.other)],
            "field": self.field,
            "detail": self.detail,
        }


def show(ref: RecordRef) -> str:
    """A record as the operator types it: ``connection:id``."""
    return f"{ref[0]}:{ref[1]}"


def _key_weight(key: Key) -> int:
    kind, value = key
    if kind is KeyKind.PHONE:
        return _MOBILE if is_mobile(value) else _LANDLINE
    return _KEY_WEIGHT.get(kind, 0)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Two records the rules refused for one reason (``conflict``): what agreed, what
    conflicted and why, and the rule that would have joined them but for it.

    ``conflict`` is ``birth_date``, ``gender``, ``names`` (the one field that differs)
    or ``household`` (a key a household may share, or held by two people, was the only
    evidence that did not count).

    ``blocked_by``: the other records of the two clusters that conflict on that field
    (a birth date of a third record already one person with ``a``): joining the pair
    joins them too. A pair that agrees by itself is suggested for them alone.
    """

    a: RecordRef
    b: RecordRef
    conflict: str
    detail: str
    rule: str
    keys: tuple[Key, ...]
    names: NameMatch
    birth_date: str  # 'same', 'unknown', or how they differ (birth_date_slip)
    gender: str  # 'same', 'unknown' or 'differs'
    blocked_by: tuple[Blocker, ...] = ()

    @property
    def own(self) -> bool:
        """Whether the pair itself shows its conflict (else a third record does)."""
        if self.conflict == "birth_date":
            return self.birth_date not in ("same", "unknown")
        if self.conflict == "names":
            return self.names is NameMatch.CONFLICT
        if self.conflict == "gender":
            return self.gender == "differs"
        return True

    @property
    def strength(self) -> int:
        """The more that agrees (and the more personal the keys), the stronger; a pair
        blocked by a third record pays for that record's conflict."""
        third = 0 if self.own or not self.blocked_by else min(b.weight for b in self.blocked_by)
        return (
            sum(_key_weight(k) for k in self.keys)
            + _NAME_WEIGHT[self.names]
            + _BIRTH_WEIGHT[self.birth_date]
            + _GENDER_WEIGHT[self.gender]
            + third
        )

    def evidence(self) -> dict[str, Any]:
        """Everything weighed, as JSON-ready data."""
        keys: dict[str, list[str]] = {}
        for kind, value in self.keys:
            keys.setdefault(str(kind), []).append(value)
        found: dict[str, Any] = {
            "keys": {kind: ", ".join(values) for kind, values in keys.items()},
            "names": str(self.names),
            "birth_date": self.birth_date,
            "gender": self.gender,
            "conflict": self.conflict,
            "detail": self.detail,
            "rule": self.rule,
        }
        if self.blocked_by:
            found["blocked_by"] = [b.as_json() for b in self.blocked_by]
        return found

    def order(self) -> tuple[int, RecordRef, RecordRef]:
        """Strongest first, then by the records (the same order on every run)."""
        return (-self.strength, self.a, self.b)
