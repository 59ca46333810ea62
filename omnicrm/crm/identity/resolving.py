"""Identity resolution against the store: profile_members, identity_keys, identity_merges.

Every function takes a SQLAlchemy ``Connection`` and works inside the caller's
transaction, so a refresh either resolves and rebuilds together or not at all.

Incremental: :func:`resolve_pending` drains ``profile_changes`` and re-resolves only
what the changed source customers reach: their profiles, the records sharing a key
with them, and so on until nothing new is reached (a household, in practice). The
resolver is deterministic and a reached group is closed under everything that could
join it, so the result is the one a full :func:`resolve_all` would give.

Resolution works within one shop (a client business, ``shop``): it drains that shop's
changes, reads that shop's source customers and looks keys up under that shop only,
so records of two shops are never one person, whatever they share (email, phone,
member code, names). Every row it writes carries the shop.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, delete, func, insert, literal, select, update

from omnicrm.core.heap import without_gc
from omnicrm.core.store.planner import one_of, unindexed
from omnicrm.core.store.schema import customers, profile_changes
from omnicrm.crm.identity._tables import (
    bulk_insert,
    chunks,
    delete_where,
    insert_keys,
    keys_of,
    memberships,
    pair_chunks,
    pair_in,
    source_identities,
    stored_overrides,
    utc_now,
)
from omnicrm.crm.identity.nearmiss import Suggestion
from omnicrm.crm.identity.resolver import (
    Key,
    MergeEdge,
    RecordRef,
    Resolution,
    SourceIdentity,
    resolve,
)
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind
from omnicrm.crm.schema import (
    identity_keys,
    identity_merges,
    identity_suggestions,
    interactions,
    nps_responses,
    profile_members,
    profile_values,
    profiles,
)


@dataclass(frozen=True)
class ResolveResult:
    """What a resolution changed: profiles to rebuild, profiles deleted."""

    touched: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    records: int = 0  # source customers re-resolved
    changes: int = 0  # source customers drained from profile_changes (as often as queued)
    created: frozenset[int] = frozenset()  # new profiles (all touched)


@dataclass(frozen=True)
class Plan:
    """A resolution prepared but not written: what changed and which profiles it reaches.

    :func:`plan` drains the queue and refreshes the changed records' identity_keys; the
    profiles themselves are untouched until :func:`apply`, so a caller can look at the
    reached profiles before they change (a segment recount does).
    """

    settings: IdentitySettings
    shop: str
    changed: frozenset[RecordRef]  # the source customers drained from profile_changes
    reach: frozenset[int]  # existing profiles that apply may alter or delete
    changes: int = 0  # source customers drained from profile_changes (as often as queued)
    everything: bool = False
    _identities: tuple[SourceIdentity, ...] = field(default=(), repr=False)
    _old: dict[RecordRef, int] = field(default_factory=dict, repr=False)


def plan(
    conn: Connection, settings: IdentitySettings, *, shop: str, everything: bool = False
) -> Plan:
    """Drain ``shop``'s ``profile_changes`` and prepare to re-resolve what the changes
    reach; ``everything``: every source customer of the shop (a first run, changed
    ``[identity]`` rules)."""
    seeds, drained = _drain(conn, shop)
    with without_gc():
        if everything:
            return _plan_all(conn, settings, shop, seeds, drained)
        return _plan_reached(conn, settings, shop, seeds, drained)


def apply(
    conn: Connection, prepared: Plan, now: dt.datetime | None = None, *, new_rows: bool = True
) -> ResolveResult:
    """Resolve and write what :func:`plan` prepared.

    ``new_rows`` False: new profiles get their ids (``created``) but no row yet; the
    caller inserts them whole in this transaction (``rebuild_profiles(new=...)``, as a
    CRM refresh does) instead of filling in a bare row a moment later.
    """
    now = now or utc_now()
    if not prepared.everything and not prepared._identities and not prepared._old:
        return ResolveResult(changes=prepared.changes)
    shop = prepared.shop
    links, separations = stored_overrides(conn, shop=shop)
    with without_gc():
        resolution = resolve(
            prepared._identities, prepared.settings, links=links, separations=separations
        )
        result = _apply(
            conn,
            resolution,
            prepared._old,
            shop=shop,
            seeds=None if prepared.everything else set(prepared.changed),
            now=now,
            new_rows=new_rows,
        )
    return replace(result, changes=prepared.changes)


def resolve_pending(
    conn: Connection, settings: IdentitySettings, now: dt.datetime | None = None, *, shop: str
) -> ResolveResult:
    """Drain ``shop``'s ``profile_changes`` and re-resolve what the changed source
    customers reach."""
    return apply(conn, plan(conn, settings, shop=shop), now)


def resolve_all(
    conn: Connection, settings: IdentitySettings, now: dt.datetime | None = None, *, shop: str
) -> ResolveResult:
    """Re-resolve every source customer of ``shop`` (a first run, or changed
    ``[identity]`` settings).

    Drains the shop's ``profile_changes`` too: everything pending is covered. Every
    profile of the shop left is reported touched.
    """
    return apply(conn, plan(conn, settings, shop=shop, everything=True), now)


def _drain(conn: Connection, shop: str) -> tuple[set[RecordRef], int]:
    """Take everything ``shop`` has queued (other shops' rows wait for their own refresh),
    by the (shop, seq) index.

    One statement deletes the rows and returns them. Read first and deleted after, a
    row a sync committed in between (on PostgreSQL a lower seq can commit last) was
    deleted unread, and its customers' change lost; now it is taken whole, or left for
    the next refresh.
    """
    q = profile_changes.c
    taken = conn.execute(
        delete(profile_changes).where(q.shop == shop).returning(q.connection, q.record_ids)
    )
    seeds: set[RecordRef] = set()
    queued = 0
    for connection, record_ids in taken:
        seeds.update((connection, record_id) for record_id in record_ids)
        queued += len(record_ids)
    return seeds, queued


def _plan_all(
    conn: Connection, settings: IdentitySettings, shop: str, seeds: set[RecordRef], drained: int
) -> Plan:
    identities = _rekey_shop(conn, settings, shop)
    old = _shop_members(conn, shop)
    reach = frozenset(conn.execute(select(profiles.c.id).where(profiles.c.shop == shop)).scalars())
    return Plan(settings, shop, frozenset(seeds), reach, drained, True, identities, old)


def _rekey_shop(
    conn: Connection, settings: IdentitySettings, shop: str
) -> tuple[SourceIdentity, ...]:
    """Every present source customer of ``shop``, normalised, its keys written afresh."""
    identities = tuple(source_identities(conn, settings, None, shop=shop))
    conn.execute(delete(identity_keys).where(identity_keys.c.shop == shop))
    insert_keys(conn, identities, shop=shop)
    return identities


def _shop_members(conn: Connection, shop: str) -> dict[RecordRef, int]:
    """The profile of every member of ``shop``."""
    # From the shop's profiles (the (shop, id) index) to their members (by profile id):
    # no index of profile_members leads with the shop, and one that did would be taken
    # by SQLite for the lookups by (connection, record_id), reading the whole shop.
    return {
        (row.connection, row.record_id): row.profile_id
        for row in conn.execute(
            select(
                profile_members.c.connection,
                profile_members.c.record_id,
                profile_members.c.profile_id,
            )
            .select_from(profiles)
            .join(profile_members, profile_members.c.profile_id == profiles.c.id)
            .where(profiles.c.shop == shop, profile_members.c.shop == shop)
        )
    }


# From this many changed records a refresh checks whether they name the whole shop.
_WHOLE_SHOP = 10_000


def _whole_shop(conn: Connection, shop: str, seeds: set[RecordRef]) -> dict[RecordRef, int] | None:
    """The shop's memberships when ``seeds`` name every record the shop holds anything
    of (its present customers, its profiles' members, the holders of its keys), as
    after a first import; None otherwise.

    Then everything reached from the seeds is the seeds, and the whole shop is read in
    a few statements instead of looked up 500 records at a time, round after round:
    the same identities, memberships and oversized keys, so the same resolution.
    """
    if len(seeds) < _WHOLE_SHOP:
        return None
    present = (customers.c.shop == shop, customers.c.withdrawn_at.is_(None))
    count = conn.execute(select(func.count()).select_from(customers).where(*present)).scalar()
    if int(count or 0) > len(seeds):
        return None
    for query in (
        select(customers.c.connection, customers.c.id).where(*present),
        select(identity_keys.c.connection, identity_keys.c.record_id)
        .where(identity_keys.c.shop == shop)
        .distinct(),
    ):
        if any((a, b) not in seeds for a, b in conn.execute(query)):
            return None
    old = _shop_members(conn, shop)
    return None if any(ref not in seeds for ref in old) else old


def _plan_reached(
    conn: Connection, settings: IdentitySettings, shop: str, seeds: set[RecordRef], drained: int
) -> Plan:
    """Refresh the seeds' keys, then gather everything they reach (within ``shop``)."""
    if not seeds:
        return Plan(settings, shop, frozenset(), frozenset(), drained)
    whole = _whole_shop(conn, shop, seeds)
    if whole is not None:
        everyone = _rekey_shop(conn, settings, shop)
        held = Counter(key for s in everyone for key in s.keys)
        oversized = {key for key, n in held.items() if n > settings.max_key_group}
        return Plan(
            settings,
            shop,
            frozenset(seeds),
            frozenset(whole.values()),
            drained,
            False,
            _without(everyone, oversized),
            whole,
        )
    old_keys = keys_of(conn, seeds, shop=shop)
    fresh = {s.ref: s for s in source_identities(conn, settings, seeds, shop=shop)}
    delete_where(
        conn,
        identity_keys,
        (identity_keys.c.connection, identity_keys.c.record_id),
        seeds,
        shop=shop,
    )
    insert_keys(conn, fresh.values(), shop=shop)

    reached, oversized = _reach(
        conn, settings, shop, seeds, {k for ks in old_keys.values() for k in ks}
    )
    others = reached - fresh.keys()
    identities = list(fresh.values()) + list(source_identities(conn, settings, others, shop=shop))
    old = memberships(conn, reached, shop=shop)
    return Plan(
        settings,
        shop,
        frozenset(seeds),
        frozenset(old.values()),
        drained,
        False,
        _without(identities, oversized),
        old,
    )


def _without(
    identities: Sequence[SourceIdentity], oversized: set[Key]
) -> tuple[SourceIdentity, ...]:
    """``identities`` without the ``oversized`` keys: the resolver sees only the reached
    holders of a key; the store knows it is held by more than max_key_group and so is
    nobody's key."""
    if not oversized:
        return tuple(identities)
    return tuple(
        SourceIdentity(
            s.connection,
            s.record_id,
            tuple(k for k in s.keys if k not in oversized),
            s.name,
            s.birth_date,
            s.gender,
        )
        for s in identities
    )


def resolve_reached(
    conn: Connection,
    settings: IdentitySettings,
    seeds: set[RecordRef],
    now: dt.datetime,
    *,
    shop: str,
) -> ResolveResult:
    """Re-resolve what ``seeds`` reach now in ``shop``, leaving the queue as it is."""
    return apply(conn, _plan_reached(conn, settings, shop, seeds, 0), now)


def _reach(
    conn: Connection,
    settings: IdentitySettings,
    shop: str,
    seeds: set[RecordRef],
    extra_keys: set[Key],
) -> tuple[set[RecordRef], set[Key]]:
    """The records ``seeds`` reach through profiles, shared keys and operator links,
    transitively, within ``shop``; and the keys found held by too many records to
    count. A key another shop's records hold too reaches none of them: the lookup
    leads with the shop (the (shop, kind, value) index)."""
    links: dict[RecordRef, set[RecordRef]] = {}
    for a, b in stored_overrides(conn, shop=shop)[0]:
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
        profile_ids = set(memberships(conn, frontier, shop=shop).values()) - seen_profiles
        seen_profiles |= profile_ids
        for chunk in chunks(sorted(profile_ids)):
            found.update(
                (row.connection, row.record_id)
                for row in conn.execute(
                    select(profile_members.c.connection, profile_members.c.record_id).where(
                        profile_members.c.shop == shop, profile_members.c.profile_id.in_(chunk)
                    )
                )
            )
        # Records sharing a key.
        keys = {k for ks in keys_of(conn, frontier, shop=shop).values() for k in ks} | pending_keys
        keys -= seen_keys
        seen_keys |= keys
        pending_keys = set()
        holders: dict[Key, list[RecordRef]] = {}
        for key_chunk in pair_chunks(keys):
            for row in conn.execute(
                select(
                    identity_keys.c.kind,
                    identity_keys.c.value,
                    identity_keys.c.connection,
                    identity_keys.c.record_id,
                ).where(
                    identity_keys.c.shop == shop,
                    pair_in(identity_keys.c.kind, identity_keys.c.value, key_chunk),
                )
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
    shop: str,
    seeds: set[RecordRef] | None,
    now: dt.datetime,
    new_rows: bool = True,
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
    new_ids: list[int] = []
    if fresh_positions:
        count = len(fresh_positions)
        new_ids = _new_profiles(conn, count, shop, now) if new_rows else _new_ids(conn, count)
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

    _write_members(conn, shop, old, new, now)
    _write_merges(conn, shop, resolution.edges, new, old_ids | set(assigned.values()), now)
    covered = None if seeds is None else set(new) | set(old)
    _write_suggestions(conn, shop, resolution.suggestions, covered, now)
    _retire(conn, shop, retired, old, new)
    return ResolveResult(
        frozenset(touched), frozenset(retired), len(new), created=frozenset(new_ids)
    )


def _new_profiles(conn: Connection, count: int, shop: str, now: dt.datetime) -> list[int]:
    """Insert ``count`` bare profiles of ``shop`` (the profile refresh fills them in);
    their ids, ascending."""
    # One statement whatever the count: a row per number of a series, the columns'
    # defaults bound once. An executemany with RETURNING cost ~160 us a row on
    # PostgreSQL and ~70 us on SQLite (a first refresh creates a profile per person).
    if conn.dialect.name == "postgresql":
        numbers: Any = func.generate_series(1, count)
    else:
        # SQLite's generate_series is an extension the driver may lack.
        numbers = select(literal(1).label("n")).cte("numbers", recursive=True)
        numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < count))
    series = select(
        literal(shop, profiles.c.shop.type), literal(now, profiles.c.updated_at.type)
    ).select_from(numbers)
    statement = (
        insert(profiles)
        .from_select(["shop", "updated_at"], series, include_defaults=True)
        .returning(profiles.c.id)
    )
    return sorted(int(pid) for pid in conn.execute(statement).scalars())


def _new_ids(conn: Connection, count: int) -> list[int]:
    """``count`` ids for profiles whose rows the caller inserts in this transaction,
    ascending: what inserting them now would have given."""
    if conn.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(profiles.name, profiles.c.id.name)
        numbers = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        return sorted(int(pid) for pid in conn.execute(numbers).scalars())
    # SQLite gives a new row the largest id plus one, and a refresh is its only writer
    # until it commits (BEGIN IMMEDIATE).
    top = int(conn.execute(select(func.max(profiles.c.id))).scalar() or 0)
    return list(range(top + 1, top + count + 1))


def _write_members(
    conn: Connection,
    shop: str,
    old: dict[RecordRef, int],
    new: dict[RecordRef, int],
    now: dt.datetime,
) -> None:
    gone = [ref for ref, pid in old.items() if new.get(ref) != pid]
    delete_where(
        conn,
        profile_members,
        (profile_members.c.connection, profile_members.c.record_id),
        gone,
        shop=shop,
    )
    rows = [
        {"connection": ref[0], "record_id": ref[1], "profile_id": pid}
        for ref, pid in sorted(new.items())
        if old.get(ref) != pid
    ]
    bulk_insert(conn, profile_members, rows, {"shop": shop, "joined_at": now})


def _write_merges(
    conn: Connection,
    shop: str,
    edges: Sequence[MergeEdge],
    new: dict[RecordRef, int],
    profile_ids: set[int],
    now: dt.datetime,
) -> None:
    """Replace the merge edges of the re-resolved profiles, keeping the time of an edge
    that was there before."""
    before: dict[tuple[RecordRef, RecordRef, str], dt.datetime] = {}
    # 5,000 ids a statement, as one array on PostgreSQL: a first refresh names every
    # profile of the shop here.
    for chunk in chunks(sorted(profile_ids), 5000):
        for row in conn.execute(
            select(
                identity_merges.c.a_connection,
                identity_merges.c.a_record,
                identity_merges.c.b_connection,
                identity_merges.c.b_record,
                identity_merges.c.rule,
                identity_merges.c.merged_at,
            ).where(
                unindexed(identity_merges.c.shop) == shop,
                one_of(conn.dialect.name, identity_merges.c.profile_id, chunk),
            )
        ):
            a, b = (row.a_connection, row.a_record), (row.b_connection, row.b_record)
            before[(a, b, row.rule)] = row.merged_at
        conn.execute(
            delete(identity_merges).where(
                unindexed(identity_merges.c.shop) == shop,
                one_of(conn.dialect.name, identity_merges.c.profile_id, chunk),
            )
        )
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
    # The bulk writer (COPY on PostgreSQL): a first refresh writes an edge for every
    # record that joined another, and Core's executemany sent them a row at a time.
    bulk_insert(conn, identity_merges, rows, {"shop": shop}, _MERGE_COLUMNS)


# What _write_merges writes: every column but the serial id.
_MERGE_COLUMNS = tuple(c.name for c in identity_merges.columns if c.name != "id")


def _write_suggestions(
    conn: Connection,
    shop: str,
    found: Sequence[Suggestion],
    covered: set[RecordRef] | None,
    now: dt.datetime,
) -> None:
    """Replace the suggestions naming the re-resolved records (``covered``; None: every
    record of the shop) with ``found``. A pair suggested before keeps its row (its id,
    which the operator decides by, and its time); one no longer suggested (decided,
    merged, changed) goes."""
    table = identity_suggestions
    if covered is None or len(covered) >= _WHOLE_SHOP:
        # Most of the shop: read it whole once rather than by key 500 records at a time.
        queries = [select(table).where(table.c.shop == shop)]
    else:
        # Found by key: the shop only checks them (see omnicrm.core.store.planner).
        queries = [
            select(table).where(unindexed(table.c.shop) == shop, pair_in(*columns, chunk))
            for columns in (
                (table.c.a_connection, table.c.a_record),
                (table.c.b_connection, table.c.b_record),
            )
            for chunk in pair_chunks(covered)
        ]
    before: dict[tuple[RecordRef, RecordRef], Any] = {}
    for query in queries:
        for row in conn.execute(query):
            a, b = (row.a_connection, row.a_record), (row.b_connection, row.b_record)
            if covered is None or a in covered or b in covered:
                before[(a, b)] = row
    fresh = {(s.a, s.b): s for s in found}
    stale = sorted(row.id for pair, row in before.items() if pair not in fresh)
    for id_chunk in chunks(stale):
        conn.execute(delete(table).where(table.c.id.in_(id_chunk)))
    rows = []
    for pair, suggestion in fresh.items():
        evidence = suggestion.evidence()
        values = {
            "conflict": suggestion.conflict,
            "strength": suggestion.strength,
            "evidence": evidence,
        }
        held = before.get(pair)
        if held is None:
            rows.append(
                {
                    "shop": shop,
                    "a_connection": pair[0][0],
                    "a_record": pair[0][1],
                    "b_connection": pair[1][0],
                    "b_record": pair[1][1],
                    "found_at": now,
                    **values,
                }
            )
        elif (held.conflict, held.strength, dict(held.evidence)) != tuple(values.values()):
            conn.execute(update(table).where(table.c.id == held.id).values(**values))
    for row_chunk in chunks(rows, 5000):
        conn.execute(insert(table), row_chunk)


def _retire(
    conn: Connection,
    shop: str,
    retired: set[int],
    old: dict[RecordRef, int],
    new: dict[RecordRef, int],
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
    for chunk in chunks(sorted(retired)):
        conn.execute(
            delete(profile_values).where(
                unindexed(profile_values.c.shop) == shop, profile_values.c.profile_id.in_(chunk)
            )
        )
        conn.execute(delete(profiles).where(profiles.c.shop == shop, profiles.c.id.in_(chunk)))
