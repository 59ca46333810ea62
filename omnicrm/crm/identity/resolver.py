"""Clustering source customers into people, in memory and deterministically.

Candidate pairs come only from shared key values (an email, a phone, a member code):
never all pairs. Each pair is judged on its own (names, birth dates, gender), the
evidence is ordered strongest first and clusters are joined with union-find, but a union
is refused when the two *clusters* conflict as wholes: a name in one that conflicts with
a name in the other, two birth dates, an operator's separation between any members. So a
chain A~B~C cannot join a mother and her son through a family email and a record that
shows no name.

A key value that two different people are seen to hold (a family's email, a shared
landline) is *contested*: it still joins records whose names agree, but no longer those
whose names cannot be compared, since it would not say which of the people they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from omnicrm.core.heap import without_gc
from omnicrm.crm.identity.nearmiss import SLIPS, Blocker, Suggestion, birth_date_slip, show
from omnicrm.crm.identity.normalize import (
    NameMatch,
    PersonName,
    compare_names,
    is_mobile,
    normalize_email,
    phone_numbers,
)
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind, MatchRule

RecordRef = tuple[str, str]
"""A source customer: (connection, record id)."""

Key = tuple[KeyKind, str]
"""A normalised match key: (kind, value)."""

LINK_RULE = "link"
"""The reason recorded for a merge an operator asked for."""

_GENDERS = frozenset({"female", "male"})


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """What identity resolution knows of one source customer, normalised."""

    connection: str
    record_id: str
    keys: tuple[Key, ...] = ()
    name: PersonName = field(default_factory=PersonName)
    birth_date: dt.date | None = None
    gender: str | None = None  # 'female' or 'male'; anything else is unknown

    @property
    def ref(self) -> RecordRef:
        return (self.connection, self.record_id)

    @classmethod
    def build(
        cls,
        connection: str,
        record_id: str,
        *,
        settings: IdentitySettings,
        junk: frozenset[Key] | None = None,
        email: str | None = None,
        phone: str | None = None,
        member_code: str | None = None,
        family_name: str | None = None,
        given_name: str | None = None,
        family_name_kana: str | None = None,
        given_name_kana: str | None = None,
        birth_date: dt.date | None = None,
        gender: str | None = None,
    ) -> SourceIdentity:
        """Normalise a source customer's fields; ``junk`` (from
        :meth:`IdentitySettings.junk`, computed once by a caller building many) is
        dropped."""
        junk = settings.junk() if junk is None else junk
        found: list[Key] = []
        for kind, value in (
            (KeyKind.EMAIL, normalize_email(email)),
            *((KeyKind.PHONE, number) for number in phone_numbers(phone, settings.region)),
            (KeyKind.MEMBER_CODE, settings.member_code_format(connection).normalize(member_code)),
        ):
            if value is not None and (kind, value) not in junk:
                found.append((kind, value))
        return cls(
            connection,
            record_id,
            tuple(found),
            PersonName.of(family_name, given_name, family_name_kana, given_name_kana),
            birth_date,
            gender if gender in _GENDERS else None,
        )


@dataclass(frozen=True, slots=True)
class MergeEdge:
    """One union of two clusters: the pair of records that made it, and why."""

    a: RecordRef
    b: RecordRef
    rule: str
    keys: tuple[Key, ...] = ()
    names: NameMatch | None = None
    birth_date: str | None = None  # 'same', or 'unknown' (one record has none)
    gender: str | None = None  # 'same', or 'unknown'

    def evidence(self) -> dict[str, Any]:
        """The reason as JSON-ready data: the keys both records hold, how names compared,
        how the birth dates and genders did."""
        if self.rule == LINK_RULE:
            return {"operator": "link"}
        return {
            "keys": {str(kind): value for kind, value in self.keys},
            "names": None if self.names is None else str(self.names),
            "birth_date": self.birth_date,
            "gender": self.gender,
        }


@dataclass(frozen=True)
class Resolution:
    """Clusters (each sorted, in order of their first member), the edges that made them,
    and the pairs refused for one reason only (strongest first), for an operator."""

    clusters: list[tuple[RecordRef, ...]]
    edges: list[MergeEdge]
    suggestions: list[Suggestion] = field(default_factory=list)
    _index: dict[RecordRef, int] = field(default_factory=dict, repr=False, compare=False)

    def cluster_of(self, ref: RecordRef) -> int:
        """The position in :attr:`clusters` of the cluster holding ``ref``."""
        if not self._index:
            for position, cluster in enumerate(self.clusters):
                for member in cluster:
                    self._index[member] = position
        return self._index[ref]


# Evidence order inside a phase: how the names compared.
_NAME_RANK = {NameMatch.AGREE: 0, NameMatch.CLOSE: 1, NameMatch.UNKNOWN: 2}


class _Clusters:
    """Union-find whose roots carry what a conflict check needs."""

    def __init__(self, identities: Sequence[SourceIdentity], separations: dict[int, set[int]]):
        n = len(identities)
        self.parent = list(range(n))
        self.size = [1] * n
        self.separations = separations
        # Per root, only where there is something: most clusters hold one name.
        self.names: dict[int, list[PersonName]] = {}
        self.births: dict[int, set[dt.date]] = {}
        self.genders: dict[int, set[str]] = {}
        self.members: dict[int, list[int]] = {}  # roots of more than one member
        for i, identity in enumerate(identities):
            if not identity.name.empty:
                self.names[i] = [identity.name]
            if identity.birth_date is not None:
                self.births[i] = {identity.birth_date}
            if identity.gender is not None:
                self.genders[i] = {identity.gender}

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def _members(self, root: int) -> Sequence[int]:
        return self.members.get(root, (root,))

    def ambiguous(self, ra: int, rb: int, neighbours: Mapping[int, list[int]]) -> bool:
        """Whether a key of one cluster also leads to a third cluster that is known to be
        another person than the second: the key then does not say which of them it is.

        A nameless guest checkout with a family's email and the son's phone is not the
        mother, though its email is hers too.
        """
        for this, that in ((ra, rb), (rb, ra)):
            for member in self._members(this):
                for other in neighbours.get(member, ()):
                    root = self.find(other)
                    if root != ra and root != rb and self.conflict(root, that, operator=False):
                        return True
        return False

    def conflict(self, ra: int, rb: int, *, operator: bool, ignore: str = "") -> bool:
        """Whether clusters ``ra`` and ``rb`` are known to be different people.

        An operator's link overrides names, birth dates and gender, never a separation.
        ``ignore`` names a field (``names``, ``birth_date``, ``gender``) not to count.
        """
        if self.separations:
            small, other = (ra, rb) if self.size[ra] <= self.size[rb] else (rb, ra)
            for member in self._members(small):
                for apart in self.separations.get(member, ()):
                    if self.find(apart) == other:
                        return True
        if operator:
            return False
        births_a, births_b = self.births.get(ra), self.births.get(rb)
        if births_a and births_b and births_a != births_b and ignore != "birth_date":
            return True
        genders_a, genders_b = self.genders.get(ra), self.genders.get(rb)
        if genders_a and genders_b and genders_a != genders_b and ignore != "gender":
            return True
        names_a, names_b = self.names.get(ra), self.names.get(rb)
        if names_a and names_b and ignore != "names":
            for x in names_a:
                for y in names_b:
                    if compare_names(x, y) is NameMatch.CONFLICT:
                        return True
        return False

    def union(self, ra: int, rb: int) -> None:
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        members = self.members.get(ra)
        if members is None:
            self.members[ra] = members = [ra]
        members.extend(self.members.pop(rb, (rb,)))
        births = self.births.pop(rb, None)
        if births:
            self.births.setdefault(ra, set()).update(births)
        genders = self.genders.pop(rb, None)
        if genders:
            self.genders.setdefault(ra, set()).update(genders)
        names = self.names.pop(rb, None)
        if names:
            known = self.names.setdefault(ra, [])
            known.extend(n for n in names if n not in known)


def resolve(
    identities: Iterable[SourceIdentity],
    settings: IdentitySettings,
    *,
    links: Iterable[tuple[RecordRef, RecordRef]] = (),
    separations: Iterable[tuple[RecordRef, RecordRef]] = (),
) -> Resolution:
    """Cluster ``identities`` into people.

    ``links`` are the operator's must-links (joined whatever names or birth dates say),
    ``separations`` their cannot-links (never in one cluster, not even through others).
    Pairs naming records not in ``identities`` are ignored. The same input gives the
    same output, whatever its order.
    """
    # Resolution builds millions of small tuples, lists and sets, none of them in a
    # reference cycle; the collector would rescan them over and over and more than
    # double the run time.
    with without_gc():
        return _resolve(identities, settings, links=links, separations=separations)


def _resolve(
    identities: Iterable[SourceIdentity],
    settings: IdentitySettings,
    *,
    links: Iterable[tuple[RecordRef, RecordRef]] = (),
    separations: Iterable[tuple[RecordRef, RecordRef]] = (),
) -> Resolution:
    people = sorted(identities, key=lambda s: (s.connection, s.record_id))
    index: dict[RecordRef, int] = {}
    for i, person in enumerate(people):
        if index.setdefault(person.ref, i) != i:
            raise ValueError(f"source customer {person.ref} given twice")

    apart: dict[int, set[int]] = {}
    for x, y in separations:
        sx, sy = index.get(x), index.get(y)
        if sx is not None and sy is not None and sx != sy:
            apart.setdefault(sx, set()).add(sy)
            apart.setdefault(sy, set()).add(sx)

    candidates, contested, neighbours, refused = _candidate_pairs(people, settings, apart)
    edges, unmatched = _edges(people, settings, candidates, contested)

    clusters = _Clusters(people, apart)
    accepted: list[MergeEdge] = []
    operator_pairs: set[tuple[int, int]] = set()
    for x, y in links:
        lx, ly = index.get(x), index.get(y)
        if lx is not None and ly is not None and lx != ly:
            operator_pairs.add((min(lx, ly), max(lx, ly)))
    for i, j in sorted(operator_pairs):
        ri, rj = clusters.find(i), clusters.find(j)
        if ri != rj and not clusters.conflict(ri, rj, operator=True):
            clusters.union(ri, rj)
            accepted.append(MergeEdge(people[i].ref, people[j].ref, LINK_RULE))

    blocked: list[_Blocked] = []
    crowded: list[_Crowded] = []  # accepted as a pair, refused for a third record
    for _phase, _rule, _rank, _nkeys, i, j, rule, verdict, keys in edges:
        ri, rj = clusters.find(i), clusters.find(j)
        if ri == rj:
            continue
        needed = [k for k in keys if k[0] in rule.keys]
        if verdict is NameMatch.UNKNOWN and any(k in contested for k in needed):
            # Contested since the edge was chosen, by a refusal below.
            blocked.append((i, j, keys, verdict, rule, _HELD_BY_TWO))
            continue
        # Two single records were judged as a pair already (names, birth dates, gender,
        # separation); only clusters can hide a conflict between other members.
        single = clusters.size[ri] == 1 and clusters.size[rj] == 1
        if not single and clusters.conflict(ri, rj, operator=False):
            # Whatever joins these two is held by two different people.
            contested.update(needed)
            crowded.append((i, j, keys, verdict, rule))
            continue
        if (
            verdict is NameMatch.UNKNOWN
            and not _vouched(people[i], people[j], keys, contested, settings)
            and clusters.ambiguous(ri, rj, neighbours)
        ):
            blocked.append((i, j, keys, verdict, rule, "also leads to another person"))
            continue
        clusters.union(ri, rj)
        born = "same" if _same_birth_date(people[i], people[j]) else "unknown"
        sex = "same" if people[i].gender and people[i].gender == people[j].gender else "unknown"
        accepted.append(
            MergeEdge(people[i].ref, people[j].ref, rule.name, keys, verdict, born, sex)
        )

    groups: dict[int, list[RecordRef]] = {}
    for i, person in enumerate(people):
        groups.setdefault(clusters.find(i), []).append(person.ref)
    # Members come in index order, so each list is sorted and the first is the least.
    ordered = sorted((tuple(members) for members in groups.values()), key=lambda c: c[0])
    near = _NearMisses(people, settings, clusters, contested, refused.contests)
    return Resolution(ordered, accepted, near.find(refused.pairs, unmatched, blocked, crowded))


_Candidate = tuple[int, int, tuple[Key, ...], NameMatch]


def _member_conflicts(x: SourceIdentity, y: SourceIdentity) -> Iterator[Blocker]:
    """How two records of two clusters conflict, as the clusters' check sees it."""
    if x.birth_date is not None and y.birth_date is not None and x.birth_date != y.birth_date:
        slip = birth_date_slip(x.birth_date, y.birth_date)
        yield Blocker(
            x.ref,
            y.ref,
            "birth_date",
            slip,
            f"{show(x.ref)} born {x.birth_date}, {show(y.ref)} born {y.birth_date}: {SLIPS[slip]}",
        )
    if x.gender is not None and y.gender is not None and x.gender != y.gender:
        detail = f"{show(x.ref)} {x.gender}, {show(y.ref)} {y.gender}"
        yield Blocker(x.ref, y.ref, "gender", "gender", detail)
    if compare_names(x.name, y.name) is NameMatch.CONFLICT:
        detail = f"{show(x.ref)} and {show(y.ref)}: the names differ"
        yield Blocker(x.ref, y.ref, "names", "names", detail)


@dataclass
class _Refused:
    """The pairs refused as two people for one field only (a near miss's first kind),
    and how many refused pairs contest each key (one: only the pair itself does)."""

    pairs: list[tuple[int, int, tuple[Key, ...], NameMatch, str]] = field(default_factory=list)
    contests: dict[Key, int] = field(default_factory=dict)


def _candidate_pairs(
    people: Sequence[SourceIdentity], settings: IdentitySettings, apart: Mapping[int, set[int]]
) -> tuple[list[_Candidate], set[Key], dict[int, list[int]], _Refused]:
    """Every pair that shares a usable key value and is not known to be two people, with
    the keys it shares and how its names compare; the key values seen held by two
    different people; for records whose names do not compare with a key neighbour's,
    all their key neighbours; and the pairs refused for one conflicting field."""
    holders: dict[Key, list[int]] = {}
    for i, person in enumerate(people):
        for key in person.keys:
            found = holders.get(key)
            if found is None:
                holders[key] = [i]
            else:
                found.append(i)
    limit = settings.max_key_group
    shared: dict[tuple[int, int], list[Key]] = {}
    for key, group in holders.items():
        if len(group) < 2 or len(group) > limit:
            continue
        for x in range(len(group) - 1):
            for y in range(x + 1, len(group)):
                pair = (group[x], group[y])
                keys = shared.get(pair)
                if keys is None:
                    shared[pair] = [key]
                else:
                    keys.append(key)

    gender_blocks = settings.gender_blocks
    candidates: list[_Candidate] = []
    contested: set[Key] = set()
    refused = _Refused()
    unsure: set[int] = set()
    for (i, j), keys in shared.items():
        a, b = people[i], people[j]
        verdict = compare_names(a.name, b.name)
        conflicts = [
            field
            for field, differs in (
                ("names", verdict is NameMatch.CONFLICT),
                (
                    "birth_date",
                    a.birth_date is not None
                    and b.birth_date is not None
                    and a.birth_date != b.birth_date,
                ),
                ("gender", bool(gender_blocks and a.gender and b.gender and a.gender != b.gender)),
            )
            if differs
        ]
        separated = j in apart.get(i, ())
        if conflicts or separated:
            contested.update(keys)
            for key in keys:
                refused.contests[key] = refused.contests.get(key, 0) + 1
            if len(conflicts) == 1 and not separated:
                refused.pairs.append((i, j, tuple(sorted(keys)), verdict, conflicts[0]))
        else:
            candidates.append((i, j, tuple(sorted(keys)), verdict))
            if verdict is NameMatch.UNKNOWN:
                unsure.add(i)
                unsure.add(j)
    # Only the records an UNKNOWN edge touches are ever asked for their neighbours.
    neighbours: dict[int, list[int]] = {}
    if unsure:
        for i, j in shared:
            if i in unsure:
                neighbours.setdefault(i, []).append(j)
            if j in unsure:
                neighbours.setdefault(j, []).append(i)
    return candidates, contested, neighbours, refused


def _personal_key(
    keys: Iterable[Key], contested: Container[Key], settings: IdentitySettings
) -> bool:
    """Whether ``keys`` hold a key of one person that no two people are seen to share."""
    for key in keys:
        kind, value = key
        if key in contested or (kind in settings.household_keys and kind is not KeyKind.PHONE):
            continue
        if kind is KeyKind.PHONE:
            if settings.personal_mobiles and is_mobile(value):
                return True
        else:
            return True
    return False


def _vouched(
    a: SourceIdentity,
    b: SourceIdentity,
    keys: Iterable[Key],
    contested: set[Key],
    settings: IdentitySettings,
) -> bool:
    """Whether a pair says by itself which of a household it is: it shares a member card
    no two people are seen with, or a personal mobile and the birth date. Then a landline
    or an email the rest of the household shares does not make it ambiguous."""
    keys = list(keys)
    card = KeyKind.MEMBER_CODE not in settings.household_keys and any(
        k[0] is KeyKind.MEMBER_CODE and k not in contested for k in keys
    )
    return card or (_same_birth_date(a, b) and _personal_key(keys, contested, settings))


def _same_birth_date(a: SourceIdentity, b: SourceIdentity) -> bool:
    return a.birth_date is not None and a.birth_date == b.birth_date


_Edge = tuple[int, int, int, int, int, int, MatchRule, NameMatch, tuple[Key, ...]]


def _rule_for(
    a: SourceIdentity,
    b: SourceIdentity,
    keys: tuple[Key, ...],
    verdict: NameMatch,
    contested: Container[Key],
    settings: IdentitySettings,
    *,
    same_birth: bool,
    trusted: bool = False,
) -> tuple[int, MatchRule] | None:
    """The first rule (and its position) that joins a pair sharing ``keys`` whose names
    compare as ``verdict``; ``trusted``: counting the keys a household may share or two
    people are seen with as if they were one person's."""
    kinds = {kind for kind, _value in keys}
    if verdict is NameMatch.UNKNOWN and not trusted:
        # A contested key cannot vouch for a record that shows no comparable name.
        kinds -= {kind for kind, value in keys if (kind, value) in contested}
        if (
            settings.household_keys
            and not same_birth
            and not _personal_key(keys, contested, settings)
        ):
            # ﾅｵｺ and 翔太 on a family's email and landline, or a newsletter signup
            # with no name on it: they may be mother and son. Only a birthday or a
            # key of one person (a card, a mobile) says they are not.
            kinds -= set(settings.household_keys)
    for position, rule in enumerate(settings.rules):
        if (
            rule.names.allows(verdict)
            and all(k in kinds for k in rule.keys)
            and (not rule.same_birth_date or same_birth)
        ):
            return position, rule
    return None


def _edges(
    people: Sequence[SourceIdentity],
    settings: IdentitySettings,
    candidates: Iterable[_Candidate],
    contested: set[Key],
) -> tuple[list[_Edge], list[_Candidate]]:
    """The pairs some rule accepts, strongest evidence first; and the pairs whose names
    cannot be compared that no rule accepts.

    Pairs whose names compare are taken before pairs whose names cannot be compared,
    so a cluster has gathered what is known of its names before a nameless record
    tests it; then by rule order, name agreement, number of shared keys, and the
    records' own order (so the result does not depend on the input order).
    """
    edges: list[_Edge] = []
    unmatched: list[_Candidate] = []
    for candidate in candidates:
        i, j, keys, verdict = candidate
        found = _rule_for(
            people[i],
            people[j],
            keys,
            verdict,
            contested,
            settings,
            same_birth=_same_birth_date(people[i], people[j]),
        )
        if found is None:
            if verdict is NameMatch.UNKNOWN:
                unmatched.append(candidate)
            continue
        position, rule = found
        phase = 1 if verdict is NameMatch.UNKNOWN else 0
        edges.append((phase, position, _NAME_RANK[verdict], -len(keys), i, j, rule, verdict, keys))
    edges.sort(key=lambda e: e[:6])
    return edges, unmatched


_HELD_BY_TWO = "held by two different people"
_SHARED = "a household may share it"

_Blocked = tuple[int, int, tuple[Key, ...], NameMatch, MatchRule, str]
_Crowded = tuple[int, int, tuple[Key, ...], NameMatch, MatchRule]


class _OthersContest:
    """The keys contested by some refused pair other than the one asking."""

    def __init__(self, contested: set[Key], contests: Mapping[Key, int], own: Iterable[Key]):
        self.contested = contested
        self.own = {k for k in own if contests.get(k, 0) == 1}

    def __contains__(self, key: object) -> bool:
        return key in self.contested and key not in self.own


class _NearMisses:
    """The pairs refused for one reason only, from what the resolution weighed: a pair
    is suggested when, but for that reason, a rule would have joined it, and its
    records ended in two clusters no operator separated."""

    def __init__(
        self,
        people: Sequence[SourceIdentity],
        settings: IdentitySettings,
        clusters: _Clusters,
        contested: set[Key],
        contests: Mapping[Key, int],
    ):
        self.people = people
        self.settings = settings
        self.clusters = clusters
        self.contested = contested
        self.contests = contests
        self._between: dict[tuple[int, int], list[Blocker] | None] = {}

    def find(
        self,
        refused: Iterable[tuple[int, int, tuple[Key, ...], NameMatch, str]],
        unmatched: Iterable[_Candidate],
        blocked: Iterable[_Blocked],
        crowded: Iterable[_Crowded] = (),
    ) -> list[Suggestion]:
        best: dict[tuple[int, int], Suggestion] = {}
        found = [
            *(self._conflicting(*pair) for pair in refused),
            *(self._household(*pair) for pair in unmatched),
            *(self._blocked(*pair) for pair in blocked),
            *(self._crowded(*pair) for pair in crowded),
        ]
        for pair, suggestion in found:
            if suggestion is None:
                continue
            ri, rj = self.clusters.find(pair[0]), self.clusters.find(pair[1])
            if ri == rj:
                continue  # one person after all
            if self.clusters.conflict(ri, rj, operator=False, ignore=suggestion.conflict):
                # An operator kept them apart, or their clusters are two people for
                # another reason than this pair's own (a son's name against the mother's
                # a nameless record joined): deciding this pair would not decide that.
                continue
            # The other records a link makes one person with the pair, too.
            own = {suggestion.a, suggestion.b}
            others = (b for b in self._conflicts(ri, rj) or () if {b.member, b.other} != own)
            suggestion = replace(suggestion, blocked_by=tuple(others))
            if suggestion.strength <= 0:
                continue  # no more for it than against it
            # One suggestion per two clusters: deciding it decides them all.
            slot = (min(ri, rj), max(ri, rj))
            held = best.get(slot)
            if held is None or suggestion.order() < held.order():
                best[slot] = suggestion
        return sorted(best.values(), key=Suggestion.order)

    def _make(
        self,
        i: int,
        j: int,
        keys: tuple[Key, ...],
        verdict: NameMatch,
        conflict: str,
        detail: str,
        rule: MatchRule,
    ) -> Suggestion:
        a, b = self.people[i], self.people[j]
        if a.birth_date is None or b.birth_date is None:
            born = "unknown"
        elif a.birth_date == b.birth_date:
            born = "same"
        else:
            born = birth_date_slip(a.birth_date, b.birth_date)
        if a.gender is None or b.gender is None:
            sex = "unknown"
        else:
            sex = "same" if a.gender == b.gender else "differs"
        return Suggestion(a.ref, b.ref, conflict, detail, rule.name, keys, verdict, born, sex)

    def _conflicting(
        self, i: int, j: int, keys: tuple[Key, ...], verdict: NameMatch, conflict: str
    ) -> tuple[tuple[int, int], Suggestion | None]:
        a, b = self.people[i], self.people[j]
        others = _OthersContest(self.contested, self.contests, keys)
        if conflict == "names":
            # Names that conflict are strong evidence: only a key of one person (a
            # card, a mobile) says otherwise, not a birth date twins share.
            unknown = NameMatch.UNKNOWN
            found = _rule_for(a, b, keys, unknown, others, self.settings, same_birth=False)
            detail = "the names differ"
        else:
            same_birth = conflict != "birth_date" and _same_birth_date(a, b)
            found = _rule_for(a, b, keys, verdict, others, self.settings, same_birth=same_birth)
            if conflict == "birth_date" and a.birth_date and b.birth_date:
                slip = birth_date_slip(a.birth_date, b.birth_date)
                detail = f"birth dates {a.birth_date} and {b.birth_date}: {SLIPS[slip]}"
            else:
                detail = f"genders {a.gender} and {b.gender}"
        if found is None:
            return (i, j), None
        return (i, j), self._make(i, j, keys, verdict, conflict, detail, found[1])

    def _household(
        self, i: int, j: int, keys: tuple[Key, ...], verdict: NameMatch
    ) -> tuple[tuple[int, int], Suggestion | None]:
        a, b = self.people[i], self.people[j]
        found = _rule_for(
            a,
            b,
            keys,
            verdict,
            self.contested,
            self.settings,
            same_birth=_same_birth_date(a, b),
            trusted=True,
        )
        if found is None:
            return (i, j), None
        discounted = [
            f"{kind} {value} ({_HELD_BY_TWO if (kind, value) in self.contested else _SHARED})"
            for kind, value in keys
            if (kind, value) in self.contested or kind in self.settings.household_keys
        ]
        detail = "names cannot be compared, and " + "; ".join(discounted)
        return (i, j), self._make(i, j, keys, verdict, "household", detail, found[1])

    def _conflicts(self, ra: int, rb: int) -> list[Blocker] | None:
        """Every pair of records, one of cluster ``ra`` and one of ``rb``, that
        conflicts (member of ``ra`` first); None when an operator separated any two."""
        slot = (ra, rb)
        if slot in self._between:
            return self._between[slot]
        separations = self.clusters.separations
        members_b = self.clusters._members(rb)
        found: list[Blocker] = []
        for m in self.clusters._members(ra):
            if any(n in separations.get(m, ()) for n in members_b):
                self._between[slot] = None
                return None
            x = self.people[m]
            for n in members_b:
                found.extend(_member_conflicts(x, self.people[n]))
        self._between[slot] = found
        return found

    def _crowded(
        self, i: int, j: int, keys: tuple[Key, ...], verdict: NameMatch, rule: MatchRule
    ) -> tuple[tuple[int, int], Suggestion | None]:
        """A pair ``rule`` joins, refused because a record already one person with one
        of them conflicts with the other: suggested when on one field only."""
        between = self._conflicts(self.clusters.find(i), self.clusters.find(j)) or []
        fields = {b.field for b in between}
        if len(fields) != 1:
            return (i, j), None  # separated, or two people for more than one reason
        (conflict,) = fields
        detail = "blocked by a record already one person with one of them: " + "; ".join(
            b.detail for b in between
        )
        return (i, j), self._make(i, j, keys, verdict, conflict, detail, rule)

    def _blocked(
        self,
        i: int,
        j: int,
        keys: tuple[Key, ...],
        verdict: NameMatch,
        rule: MatchRule,
        why: str,
    ) -> tuple[tuple[int, int], Suggestion | None]:
        needed = ", ".join(f"{kind} {value}" for kind, value in keys if kind in rule.keys)
        detail = f"names cannot be compared, and {needed} {why}"
        return (i, j), self._make(i, j, keys, verdict, "household", detail, rule)
