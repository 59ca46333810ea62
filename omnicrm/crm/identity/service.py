"""Identity resolution against the store: profile_members, identity_keys, identity_merges.

Every function takes a SQLAlchemy ``Connection`` and works inside the caller's
transaction, so a refresh either resolves and rebuilds together or not at all.

Incremental: :func:`resolve_pending` drains ``profile_changes`` and re-resolves only
what the changed source customers reach: their profiles, the records sharing a key
with them, and so on until nothing new is reached (a household, in practice). The
resolver is deterministic and a reached group is closed under everything that could
join it, so the result is the one a full :func:`resolve_all` would give.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from omnicrm.core.store import table_writers
from omnicrm.core.store.schema import customers, profile_changes
from omnicrm.crm.identity.resolver import (
    Key,
    MergeEdge,
    RecordRef,
    Resolution,
    SourceIdentity,
    resolve,
    without_gc,
)
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind
from omnicrm.crm.schema import (
    identity_keys,
    identity_merges,
    identity_overrides,
    interactions,
    nps_responses,
    profile_members,
    profile_values,
    profiles,
)
from omnicrm.errors import OmnicrmError

LINK = "link"
SEPARATE = "separate"

_CHUNK = 500  # rows per IN list: two parameters each, well under every driver's limit

T = TypeVar("T")


class UnknownProfileError(OmnicrmError):
    """No profile has this id."""


class UnknownRecordError(OmnicrmError):
    """No source customer has this (connection, record id)."""


class NothingToUnmergeError(OmnicrmError):
    """The record is alone in its profile already."""


@dataclass(frozen=True)
class ResolveResult:
    """What a resolution changed: profiles to rebuild, profiles deleted."""

    touched: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    records: int = 0  # source customers re-resolved
    changes: int = 0  # profile_changes rows drained


@dataclass(frozen=True)
class Member:
    """A source customer of a profile, as its channel wrote it."""

    connection: str
    record_id: str
    name: str | None
    email: str | None
    phone: str | None
    joined_at: dt.datetime


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


# -- resolving ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A resolution prepared but not written: what changed and which profiles it reaches.

    :func:`plan` drains the queue and refreshes the changed records' identity_keys; the
    profiles themselves are untouched until :func:`apply`, so a caller can look at the
    reached profiles before they change (a segment recount does).
    """

    settings: IdentitySettings
    changed: frozenset[RecordRef]  # the source customers drained from profile_changes
    reach: frozenset[int]  # existing profiles that apply may alter or delete
    changes: int = 0  # profile_changes rows drained
    everything: bool = False
    _identities: tuple[SourceIdentity, ...] = field(default=(), repr=False)
    _old: dict[RecordRef, int] = field(default_factory=dict, repr=False)


def plan(conn: Connection, settings: IdentitySettings, *, everything: bool = False) -> Plan:
    """Drain ``profile_changes`` and prepare to re-resolve what the changes reach;
    ``everything``: every source customer (a first run, changed ``[identity]`` rules)."""
    seeds, drained = _drain(conn)
    with without_gc():
        if everything:
            return _plan_all(conn, settings, seeds, drained)
        return _plan_reached(conn, settings, seeds, drained)


def apply(conn: Connection, prepared: Plan, now: dt.datetime | None = None) -> ResolveResult:
    """Resolve and write what :func:`plan` prepared."""
    now = now or _now()
    if not prepared.everything and not prepared._identities and not prepared._old:
        return ResolveResult(changes=prepared.changes)
    links, separations = _overrides(conn)
    with without_gc():
        resolution = resolve(
            prepared._identities, prepared.settings, links=links, separations=separations
        )
        result = _apply(
            conn,
            resolution,
            prepared._old,
            seeds=None if prepared.everything else set(prepared.changed),
            now=now,
        )
    return ResolveResult(result.touched, result.removed, result.records, prepared.changes)


def resolve_pending(
    conn: Connection, settings: IdentitySettings, now: dt.datetime | None = None
) -> ResolveResult:
    """Drain ``profile_changes`` and re-resolve what the changed source customers reach."""
    return apply(conn, plan(conn, settings), now)


def resolve_all(
    conn: Connection, settings: IdentitySettings, now: dt.datetime | None = None
) -> ResolveResult:
    """Re-resolve every source customer (a first run, or changed ``[identity]`` settings).

    Drains ``profile_changes`` too: everything pending is covered. Every profile left is
    reported touched.
    """
    return apply(conn, plan(conn, settings, everything=True), now)


def _drain(conn: Connection) -> tuple[set[RecordRef], int]:
    """Take everything queued up to now (later rows are left for the next refresh)."""
    max_seq = conn.execute(select(func.max(profile_changes.c.seq))).scalar()
    if max_seq is None:
        return set(), 0
    seeds = {
        (row.connection, row.record_id)
        for row in conn.execute(
            select(profile_changes.c.connection, profile_changes.c.record_id).where(
                profile_changes.c.seq <= max_seq
            )
        )
    }
    drained = conn.execute(delete(profile_changes).where(profile_changes.c.seq <= max_seq))
    return seeds, int(drained.rowcount)


def _plan_all(
    conn: Connection, settings: IdentitySettings, seeds: set[RecordRef], drained: int
) -> Plan:
    identities = tuple(_identities(conn, settings, None))
    conn.execute(delete(identity_keys))
    _insert_keys(conn, identities)
    old = {
        (row.connection, row.record_id): row.profile_id
        for row in conn.execute(
            select(
                profile_members.c.connection,
                profile_members.c.record_id,
                profile_members.c.profile_id,
            )
        )
    }
    reach = frozenset(conn.execute(select(profiles.c.id)).scalars())
    return Plan(settings, frozenset(seeds), reach, drained, True, identities, old)


def _plan_reached(
    conn: Connection, settings: IdentitySettings, seeds: set[RecordRef], drained: int
) -> Plan:
    """Refresh the seeds' keys, then gather everything they reach."""
    if not seeds:
        return Plan(settings, frozenset(), frozenset(), drained)
    old_keys = _keys_of(conn, seeds)
    fresh = {s.ref: s for s in _identities(conn, settings, seeds)}
    _delete_where(
        conn, identity_keys, (identity_keys.c.connection, identity_keys.c.record_id), seeds
    )
    _insert_keys(conn, fresh.values())

    reached, oversized = _reach(conn, settings, seeds, {k for ks in old_keys.values() for k in ks})
    others = reached - fresh.keys()
    identities = list(fresh.values()) + list(_identities(conn, settings, others))
    if oversized:
        # The resolver sees only the reached holders of a key; the store knows it is
        # held by more than max_key_group and so is nobody's key.
        identities = [
            SourceIdentity(
                s.connection,
                s.record_id,
                tuple(k for k in s.keys if k not in oversized),
                s.name,
                s.birth_date,
                s.gender,
            )
            for s in identities
        ]
    old = _memberships(conn, reached)
    return Plan(
        settings, frozenset(seeds), frozenset(old.values()), drained, False, tuple(identities), old
    )


def _resolve_reached(
    conn: Connection, settings: IdentitySettings, seeds: set[RecordRef], now: dt.datetime
) -> ResolveResult:
    """Re-resolve what ``seeds`` reach now, leaving the queue as it is."""
    return apply(conn, _plan_reached(conn, settings, seeds, 0), now)


def _reach(
    conn: Connection, settings: IdentitySettings, seeds: set[RecordRef], extra_keys: set[Key]
) -> tuple[set[RecordRef], set[Key]]:
    """The records ``seeds`` reach through profiles, shared keys and operator links,
    transitively; and the keys found held by too many records to count."""
    links: dict[RecordRef, set[RecordRef]] = {}
    for a, b in _overrides(conn)[0]:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    reached: set[RecordRef] = set(seeds)
    seen_profiles: set[int] = set()
    seen_keys: set[Key] = set()
    oversized: set[Key] = set()
    frontier = set(seeds)
    pending_keys = set(extra_keys)
    while frontier or pending_keys:
        found: set[RecordRef] = set()
        # Whole profiles: a member that leaves changes what its profile may join.
        profile_ids = set(_memberships(conn, frontier).values()) - seen_profiles
        seen_profiles |= profile_ids
        for chunk in _chunks(sorted(profile_ids)):
            found.update(
                (row.connection, row.record_id)
                for row in conn.execute(
                    select(profile_members.c.connection, profile_members.c.record_id).where(
                        profile_members.c.profile_id.in_(chunk)
                    )
                )
            )
        # Records sharing a key.
        keys = {k for ks in _keys_of(conn, frontier).values() for k in ks} | pending_keys
        keys -= seen_keys
        seen_keys |= keys
        pending_keys = set()
        holders: dict[Key, list[RecordRef]] = {}
        for key_chunk in _pair_chunks(keys):
            for row in conn.execute(
                select(
                    identity_keys.c.kind,
                    identity_keys.c.value,
                    identity_keys.c.connection,
                    identity_keys.c.record_id,
                ).where(_pair_in(identity_keys.c.kind, identity_keys.c.value, key_chunk))
            ):
                holders.setdefault((KeyKind(row.kind), row.value), []).append(
                    (row.connection, row.record_id)
                )
        for key, refs in holders.items():
            if len(refs) > settings.max_key_group:
                oversized.add(key)
            else:
                found.update(refs)
        for ref in frontier:
            found.update(links.get(ref, ()))
        frontier = found - reached
        reached |= frontier
    return reached, oversized


def _apply(
    conn: Connection,
    resolution: Resolution,
    old: dict[RecordRef, int],
    *,
    seeds: set[RecordRef] | None,
    now: dt.datetime,
) -> ResolveResult:
    """Write a resolution over the records it covers, keeping profile ids stable.

    ``old`` is the covered records' current membership; every member of those profiles
    is covered. ``seeds`` None means everything was re-resolved (all touched).
    """
    clusters = resolution.clusters
    # A cluster keeps the id of the old profile holding most of its members (ties: the
    # lowest id), largest claims first, each id once.
    claims: list[tuple[int, RecordRef, int, list[tuple[int, int]]]] = []
    for position, cluster in enumerate(clusters):
        counts: dict[int, int] = {}
        for ref in cluster:
            pid = old.get(ref)
            if pid is not None:
                counts[pid] = counts.get(pid, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        claims.append((-(ranked[0][1] if ranked else 0), cluster[0], position, ranked))
    claims.sort(key=lambda c: (c[0], c[1]))
    assigned: dict[int, int] = {}  # cluster position -> profile id
    taken: set[int] = set()
    fresh_positions: list[int] = []
    for _count, _first, position, ranked in claims:
        for pid, _n in ranked:
            if pid not in taken:
                taken.add(pid)
                assigned[position] = pid
                break
        else:
            fresh_positions.append(position)
    fresh_positions.sort()
    if fresh_positions:
        new_ids = _new_profiles(conn, len(fresh_positions), now)
        for position, pid in zip(fresh_positions, new_ids, strict=True):
            assigned[position] = pid

    new: dict[RecordRef, int] = {}
    for position, cluster in enumerate(clusters):
        for ref in cluster:
            new[ref] = assigned[position]

    old_ids = set(old.values())
    retired = old_ids - taken
    touched: set[int] = set()
    for position, cluster in enumerate(clusters):
        pid = assigned[position]
        if (
            seeds is None
            or any(old.get(ref) != pid for ref in cluster)
            or any(ref in seeds for ref in cluster)
        ):
            touched.add(pid)
    # A profile that lost a member (deleted, or gone to another profile) needs a rebuild.
    for ref, pid in old.items():
        if new.get(ref) != pid and pid not in retired:
            touched.add(pid)

    _write_members(conn, old, new, now)
    _write_merges(conn, resolution.edges, new, old_ids | set(assigned.values()), now)
    _retire(conn, retired, old, new)
    return ResolveResult(frozenset(touched), frozenset(retired), len(new))


def _new_profiles(conn: Connection, count: int, now: dt.datetime) -> list[int]:
    """Insert ``count`` bare profiles (the profile refresh fills them in); their ids."""
    ids: list[int] = []
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        rows = conn.execute(
            insert(profiles).returning(profiles.c.id, sort_by_parameter_order=True),
            [{"updated_at": now} for _ in range(n)],
        )
        ids.extend(int(row.id) for row in rows)
    return ids


def _write_members(
    conn: Connection, old: dict[RecordRef, int], new: dict[RecordRef, int], now: dt.datetime
) -> None:
    gone = [ref for ref, pid in old.items() if new.get(ref) != pid]
    _delete_where(
        conn, profile_members, (profile_members.c.connection, profile_members.c.record_id), gone
    )
    rows = [
        {"connection": ref[0], "record_id": ref[1], "profile_id": pid}
        for ref, pid in sorted(new.items())
        if old.get(ref) != pid
    ]
    _bulk_insert(conn, profile_members, rows, {"joined_at": now})


def _write_merges(
    conn: Connection,
    edges: Sequence[MergeEdge],
    new: dict[RecordRef, int],
    profile_ids: set[int],
    now: dt.datetime,
) -> None:
    """Replace the merge edges of the re-resolved profiles, keeping the time of an edge
    that was there before."""
    before: dict[tuple[RecordRef, RecordRef, str], dt.datetime] = {}
    for chunk in _chunks(sorted(profile_ids)):
        for row in conn.execute(
            select(
                identity_merges.c.a_connection,
                identity_merges.c.a_record,
                identity_merges.c.b_connection,
                identity_merges.c.b_record,
                identity_merges.c.rule,
                identity_merges.c.merged_at,
            ).where(identity_merges.c.profile_id.in_(chunk))
        ):
            a, b = (row.a_connection, row.a_record), (row.b_connection, row.b_record)
            before[(a, b, row.rule)] = row.merged_at
        conn.execute(delete(identity_merges).where(identity_merges.c.profile_id.in_(chunk)))
    rows = [
        {
            "profile_id": new[edge.a],
            "a_connection": edge.a[0],
            "a_record": edge.a[1],
            "b_connection": edge.b[0],
            "b_record": edge.b[1],
            "rule": edge.rule,
            "evidence": edge.evidence(),
            "merged_at": before.get((edge.a, edge.b, edge.rule), now),
        }
        for edge in edges
    ]
    for row_chunk in _chunks(rows, 5000):
        conn.execute(insert(identity_merges), row_chunk)


def _retire(
    conn: Connection, retired: set[int], old: dict[RecordRef, int], new: dict[RecordRef, int]
) -> None:
    """Delete profiles no cluster kept. One whose members live on elsewhere hands its
    interactions and NPS answers to the profile that took most of them; one whose
    members are all gone takes them along (the person is gone)."""
    heirs: dict[int, dict[int, int]] = {}
    for ref, pid in old.items():
        if pid in retired and ref in new:
            tally = heirs.setdefault(pid, {})
            tally[new[ref]] = tally.get(new[ref], 0) + 1
    for pid in sorted(retired):
        counts = heirs.get(pid, {})
        for table in (interactions, nps_responses):
            if counts:
                heir = min(counts, key=lambda h: (-counts[h], h))
                conn.execute(update(table).where(table.c.profile_id == pid).values(profile_id=heir))
            else:
                conn.execute(delete(table).where(table.c.profile_id == pid))
    for chunk in _chunks(sorted(retired)):
        conn.execute(delete(profile_values).where(profile_values.c.profile_id.in_(chunk)))
        conn.execute(delete(profiles).where(profiles.c.id.in_(chunk)))


# -- reading the store -------------------------------------------------------------------

_IDENTITY_COLUMNS = (
    customers.c.connection,
    customers.c.id,
    customers.c.email,
    customers.c.phone,
    customers.c.member_code,
    customers.c.family_name,
    customers.c.given_name,
    customers.c.family_name_kana,
    customers.c.given_name_kana,
    customers.c.birth_date,
    customers.c.gender,
)


def _identities(
    conn: Connection, settings: IdentitySettings, refs: set[RecordRef] | None
) -> Iterator[SourceIdentity]:
    """The source customers ``refs`` (None: all) that exist, normalised."""
    junk = settings.junk()
    if refs is None:
        queries = [select(*_IDENTITY_COLUMNS)]
    else:
        queries = [
            select(*_IDENTITY_COLUMNS).where(
                _pair_in(customers.c.connection, customers.c.id, chunk)
            )
            for chunk in _pair_chunks(refs)
        ]
    for query in queries:
        for row in conn.execute(query):
            yield SourceIdentity.build(
                row.connection,
                row.id,
                settings=settings,
                junk=junk,
                email=row.email,
                phone=row.phone,
                member_code=row.member_code,
                family_name=row.family_name,
                given_name=row.given_name,
                family_name_kana=row.family_name_kana,
                given_name_kana=row.given_name_kana,
                birth_date=row.birth_date,
                gender=row.gender,
            )


def _insert_keys(conn: Connection, identities: Iterable[SourceIdentity]) -> None:
    rows = [
        {"connection": s.connection, "record_id": s.record_id, "kind": str(kind), "value": value}
        for s in identities
        for kind, value in s.keys
    ]
    _bulk_insert(conn, identity_keys, rows, {})


def _bulk_insert(
    conn: Connection, table: Any, rows: list[dict[str, Any]], same: dict[str, Any]
) -> None:
    """Insert many rows through the store's bulk writer (COPY on PostgreSQL): a full run
    writes a row per source customer and per key, millions of them."""
    writer = table_writers.writers(conn.engine)(table)
    for chunk in _chunks(rows, 20000):
        writer.insert(conn, writer.encode(chunk, same))


def _keys_of(conn: Connection, refs: Iterable[RecordRef]) -> dict[RecordRef, set[Key]]:
    found: dict[RecordRef, set[Key]] = {}
    for chunk in _pair_chunks(refs):
        for row in conn.execute(
            select(
                identity_keys.c.connection,
                identity_keys.c.record_id,
                identity_keys.c.kind,
                identity_keys.c.value,
            ).where(_pair_in(identity_keys.c.connection, identity_keys.c.record_id, chunk))
        ):
            found.setdefault((row.connection, row.record_id), set()).add(
                (KeyKind(row.kind), row.value)
            )
    return found


def _memberships(conn: Connection, refs: Iterable[RecordRef]) -> dict[RecordRef, int]:
    found: dict[RecordRef, int] = {}
    for chunk in _pair_chunks(refs):
        for row in conn.execute(
            select(
                profile_members.c.connection,
                profile_members.c.record_id,
                profile_members.c.profile_id,
            ).where(_pair_in(profile_members.c.connection, profile_members.c.record_id, chunk))
        ):
            found[(row.connection, row.record_id)] = row.profile_id
    return found


def _overrides(
    conn: Connection,
) -> tuple[list[tuple[RecordRef, RecordRef]], list[tuple[RecordRef, RecordRef]]]:
    """The operator's links and separations (few: each is a decision someone made)."""
    links: list[tuple[RecordRef, RecordRef]] = []
    separations: list[tuple[RecordRef, RecordRef]] = []
    for row in conn.execute(select(identity_overrides).order_by(identity_overrides.c.id)):
        pair = ((row.a_connection, row.a_record), (row.b_connection, row.b_record))
        (links if row.kind == LINK else separations).append(pair)
    return links, separations


def _pair_chunks(pairs: Iterable[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """``pairs`` sorted, in chunks that share their first value where they can."""
    return _chunks(sorted(pairs))


def _pair_in(first: Any, second: Any, pairs: Iterable[tuple[str, str]]) -> Any:
    """``(first, second) IN pairs`` as ``first = a AND second IN (...)`` per first value:
    the form both backends answer from the (connection, id) or (kind, value) index
    (SQLite scans the table for a row-value IN list)."""
    grouped: dict[str, list[str]] = {}
    for a, b in pairs:
        grouped.setdefault(str(a), []).append(b)
    terms = [and_(first == a, second.in_(bs)) for a, bs in sorted(grouped.items())]
    return terms[0] if len(terms) == 1 else or_(*terms)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _delete_where(
    conn: Connection, table: Any, columns: tuple[Any, Any], refs: Iterable[RecordRef]
) -> None:
    for chunk in _pair_chunks(refs):
        conn.execute(delete(table).where(_pair_in(*columns, chunk)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the operator's word -----------------------------------------------------------------


def link(
    conn: Connection,
    a: RecordRef,
    b: RecordRef,
    note: str | None = None,
    *,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Make two source customers one person, whatever the rules say (a must-link).

    Removes a separation between them, records the link, queues both profiles'
    members for the next refresh and resolves them now.
    """
    now = now or _now()
    if a == b:
        raise UnknownRecordError(f"cannot link {_show(a)} with itself")
    _require_records(conn, [a, b])
    _drop_overrides(conn, SEPARATE, a, [b])
    conn.execute(
        insert(identity_overrides).values(
            kind=LINK,
            a_connection=a[0],
            a_record=a[1],
            b_connection=b[0],
            b_record=b[1],
            note=note,
            created_at=now,
        )
    )
    affected = _with_profile_members(conn, {a, b})
    _queue(conn, affected)
    return _resolve_reached(conn, settings, affected, now)


def unmerge(
    conn: Connection,
    connection: str,
    record_id: str,
    note: str | None = None,
    *,
    settings: IdentitySettings,
    now: dt.datetime | None = None,
) -> ResolveResult:
    """Take a source customer out of its profile, for good.

    The record is separated from every other member (so no later run merges it back,
    directly or through others) and any link between them is dropped; the other members
    stay together where they still match. Queues the members for the next refresh and
    resolves them now.
    """
    now = now or _now()
    ref = (connection, record_id)
    _require_records(conn, [ref])
    profile_id = _memberships(conn, [ref]).get(ref)
    members = _members_of(conn, profile_id) if profile_id is not None else []
    others = [m for m in members if m != ref]
    if not others:
        raise NothingToUnmergeError(f"{_show(ref)} is alone in its profile: nothing to unmerge")
    _drop_overrides(conn, LINK, ref, others)
    _drop_overrides(conn, SEPARATE, ref, others)
    conn.execute(
        insert(identity_overrides),
        [
            {
                "kind": SEPARATE,
                "a_connection": ref[0],
                "a_record": ref[1],
                "b_connection": other[0],
                "b_record": other[1],
                "note": note,
                "created_at": now,
            }
            for other in others
        ],
    )
    affected = {ref, *others}
    _queue(conn, affected)
    return _resolve_reached(conn, settings, affected, now)


def _require_records(conn: Connection, refs: Sequence[RecordRef]) -> None:
    found = {
        (row.connection, row.id)
        for row in conn.execute(
            select(customers.c.connection, customers.c.id).where(
                _pair_in(customers.c.connection, customers.c.id, refs)
            )
        )
    }
    for ref in refs:
        if ref not in found:
            raise UnknownRecordError(f"no source customer {_show(ref)} in the store")


def _drop_overrides(
    conn: Connection, kind: str, ref: RecordRef, others: Sequence[RecordRef]
) -> None:
    for other in others:
        conn.execute(
            delete(identity_overrides).where(
                identity_overrides.c.kind == kind,
                or_(
                    and_(
                        identity_overrides.c.a_connection == ref[0],
                        identity_overrides.c.a_record == ref[1],
                        identity_overrides.c.b_connection == other[0],
                        identity_overrides.c.b_record == other[1],
                    ),
                    and_(
                        identity_overrides.c.a_connection == other[0],
                        identity_overrides.c.a_record == other[1],
                        identity_overrides.c.b_connection == ref[0],
                        identity_overrides.c.b_record == ref[1],
                    ),
                ),
            )
        )


def _members_of(conn: Connection, profile_id: int) -> list[RecordRef]:
    return [
        (row.connection, row.record_id)
        for row in conn.execute(
            select(profile_members.c.connection, profile_members.c.record_id)
            .where(profile_members.c.profile_id == profile_id)
            .order_by(profile_members.c.connection, profile_members.c.record_id)
        )
    ]


def _with_profile_members(conn: Connection, refs: set[RecordRef]) -> set[RecordRef]:
    found = set(refs)
    for profile_id in set(_memberships(conn, refs).values()):
        found.update(_members_of(conn, profile_id))
    return found


def _queue(conn: Connection, refs: Iterable[RecordRef]) -> None:
    """Queue source customers for the next profile refresh (which rebuilds them)."""
    rows = [{"connection": c, "record_id": r} for c, r in sorted(refs)]
    if rows:
        conn.execute(insert(profile_changes), rows)


def _show(ref: RecordRef) -> str:
    return f"{ref[0]}:{ref[1]}"


# -- explaining --------------------------------------------------------------------------


def explain(conn: Connection, profile_id: int) -> Explanation:
    """A profile's members, the merges that made it and the overrides that bear on it."""
    exists = conn.execute(select(profiles.c.id).where(profiles.c.id == profile_id)).first()
    if exists is None:
        raise UnknownProfileError(f"no profile {profile_id}")
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
        )
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
        .order_by(profile_members.c.connection, profile_members.c.record_id)
    )
    members = [
        Member(
            row.connection,
            row.record_id,
            _display_name(
                row.family_name, row.given_name, row.family_name_kana, row.given_name_kana
            ),
            row.email,
            row.phone,
            row.joined_at,
        )
        for row in rows
    ]
    merges = [
        _merge(row)
        for row in conn.execute(
            select(identity_merges)
            .where(identity_merges.c.profile_id == profile_id)
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
        for row in conn.execute(select(identity_overrides).order_by(identity_overrides.c.id))
        if (row.a_connection, row.a_record) in refs or (row.b_connection, row.b_record) in refs
    ]
    return Explanation(profile_id, members, merges, overrides)


def recent_merges(conn: Connection, limit: int = 50) -> list[Merge]:
    """The latest merges across all profiles, newest first."""
    return [
        _merge(row)
        for row in conn.execute(
            select(identity_merges)
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


def _display_name(*parts: str | None) -> str | None:
    family, given, family_kana, given_kana = parts
    written = " ".join(p for p in (family, given) if p)
    reading = " ".join(p for p in (family_kana, given_kana) if p)
    if written and reading:
        return f"{written} ({reading})"
    return written or reading or None
