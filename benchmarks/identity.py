"""Identity resolution over 1,000,000 source records: records/s.

Generates the records with the test corpus (tests/support/identity_corpus.py: store and
EC records of the same people written the way real data differs, households sharing
phones and emails), scaled up; generation and writing the records into the store are not
timed. Then, each timed on its own:

1. normalisation: ``SourceIdentity.build`` for every record (keys, names);
2. the in-memory resolver (``resolver.resolve``) on those identities, with the corpus's
   pairwise precision and recall;
3. ``identity.resolve_all`` into a fresh SQLite store holding the records: reading them,
   normalising, resolving and writing identity_keys, profiles, profile_members and
   identity_merges, in one transaction;
4. ``identity.resolve_pending`` after 1,000 of the records changed (an incremental run).

With ``--shops N`` (N > 1) it measures instead one shop among N (issue 12): N shops
holding the same people (every email, phone, member code and name in every shop, the
records written the same way, as an agency's clients sharing customers), their batches
written interleaved into one SQLite store, beside a store holding only the first shop.
In the same run, alternating the two stores, it times the shop's ``resolve_all``, then
``--rounds`` times ``resolve_pending`` after ``--changed`` of its records changed (every
other shop has changes queued too, left pending) and the rebuild of the touched profiles,
and prints both with the ratio (goal: at most ``--goal``, 1.2). Then it checks that each
shop got the profiles the lone shop got, the same records together, and that no identity
row (members, keys, merges, values) of one shop refers to another shop's records or
profiles; and it runs ``EXPLAIN QUERY PLAN`` on every statement of an incremental round
and of a whole-shop resolution, reporting a scan of any table holding several shops'
rows. Exit 1 on any of these.

With ``--first-refresh`` it measures instead the first ``crm.refresh.refresh`` after an
import (issue 14): the records written into a fresh store of each backend (SQLite in a
temp dir, PostgreSQL in a database of its own, dropped afterwards; not timed), every
record queued and none resolved, then the refresh timed (and the CPU time this process
spent in it: the database server's is not counted), with the load average before
and after. ``--statements N`` prints the N statements that took longest in all (COPY,
the PostgreSQL bulk writer, is not counted). Goal: under 3 minutes at 1,000,000 records
on each backend, and PostgreSQL within 1.5 times SQLite; both must give the same
profiles. Exit 1 on a ratio over 1.5 or differing profiles.

    .venv/bin/python benchmarks/identity.py                    # 1,000,000 records
    .venv/bin/python benchmarks/identity.py --records 100000   # a quick check
    .venv/bin/python benchmarks/identity.py --memory-only      # skip the store
    .venv/bin/python benchmarks/identity.py --shops 10 --records 50000   # per shop
    .venv/bin/python benchmarks/identity.py --first-refresh --records 100000 --statements 10
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.store_write import _databases
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolve_all, resolve_pending
from omnicrm.crm.identity.resolver import SourceIdentity, resolve
from omnicrm.crm.profiles import rebuild_profiles
from omnicrm.crm.refresh import CrmSettings, refresh
from tests.support.identity_corpus import Corpus, generate, score

RECORDS_PER_HOUSEHOLD = 2.7  # the corpus averages 2.78: generate a little over, then trim


def _corpus(records: int, seed: int) -> Corpus:
    corpus = generate(int(records / RECORDS_PER_HOUSEHOLD) + 100, seed=seed)
    excess = corpus.records - records
    if excess < 0:
        raise SystemExit(
            f"the corpus came out {-excess} records short; lower RECORDS_PER_HOUSEHOLD"
        )
    # Trim to exactly ``records``, from the end of the larger connection.
    connection = max(corpus.customers, key=lambda c: len(corpus.customers[c]))
    kept = corpus.customers[connection][: len(corpus.customers[connection]) - excess]
    for customer in corpus.customers[connection][len(kept) :]:
        del corpus.truth[(connection, customer.id)]
    corpus.customers[connection] = kept
    return corpus


def _identities(corpus: Corpus, settings: IdentitySettings) -> list[SourceIdentity]:
    junk = settings.junk()
    return [
        SourceIdentity.build(
            connection,
            c.id,
            settings=settings,
            junk=junk,
            email=c.email,
            phone=c.phone,
            member_code=c.member_code,
            family_name=c.family_name,
            given_name=c.given_name,
            family_name_kana=c.family_name_kana,
            given_name_kana=c.given_name_kana,
            birth_date=c.birth_date,
            gender=c.gender.value,
        )
        for connection, customers in corpus.customers.items()
        for c in customers
    ]


def _rate(n: int, seconds: float) -> str:
    return f"{n:,} records in {seconds:.2f} s: {n / seconds:,.0f} records/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-only", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--changed", type=int, default=1000, help="records changed for 4.")
    parser.add_argument(
        "--shops", type=int, default=1, help="one shop among N holding the same people"
    )
    parser.add_argument("--rounds", type=int, default=5, help="incremental rounds (--shops)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default=None,
        help="with --shops (default sqlite) or --first-refresh (default both)",
    )
    parser.add_argument(
        "--first-refresh",
        action="store_true",
        help="time the first refresh after the import, on each backend (issue 14)",
    )
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        help="with --first-refresh: print the N statements that took longest in all",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://127.0.0.1:5432/test",
        help="with --backend postgresql: a server's admin URL (its databases are created"
        " and dropped)",
    )
    parser.add_argument(
        "--goal", type=float, default=1.2, help="largest ratio N shops / one shop (--shops)"
    )
    args = parser.parse_args()
    settings = IdentitySettings()
    if args.first_refresh:
        return _first_refresh(args, settings)
    if args.backend is None:
        args.backend = "sqlite"
    if args.backend == "both":
        parser.error("--backend both goes with --first-refresh")
    if args.shops > 1:
        return _among_shops(args, settings)

    started = time.perf_counter()
    corpus = _corpus(args.records, args.seed)
    print(
        f"generated {corpus.records:,} records of {corpus.people:,} people in "
        f"{corpus.households:,} households ({time.perf_counter() - started:.1f} s, not timed)"
    )

    started = time.perf_counter()
    identities = _identities(corpus, settings)
    print(f"1. normalisation:     {_rate(len(identities), time.perf_counter() - started)}")

    started = time.perf_counter()
    resolution = resolve(identities, settings)
    seconds = time.perf_counter() - started
    print(f"2. resolver (memory): {_rate(len(identities), seconds)}")
    print(f"   {len(resolution.clusters):,} profiles, {len(resolution.edges):,} merges")
    print(f"   {score(corpus.truth, resolution.clusters)}")
    del identities, resolution
    if args.memory_only:
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'identity.db'}")
        started = time.perf_counter()
        for connection, customers in corpus.customers.items():
            for start in range(0, len(customers), 5000):
                store.write_batch(connection, Stream.CUSTOMERS, customers[start : start + 5000])
        print(f"   (records written to SQLite in {time.perf_counter() - started:.1f} s, not timed)")

        started = time.perf_counter()
        with store.engine.begin() as conn:
            result = resolve_all(conn, settings, shop=DEFAULT_SHOP)
        seconds = time.perf_counter() - started
        print(f"3. resolve_all (SQLite): {_rate(result.records, seconds)}")
        print(f"   {len(result.touched):,} profiles")

        changed = _changes(corpus, args.changed)
        store.write_batch("ec", Stream.CUSTOMERS, changed)
        started = time.perf_counter()
        with store.engine.begin() as conn:
            result = resolve_pending(conn, settings, shop=DEFAULT_SHOP)
        seconds = time.perf_counter() - started
        print(
            f"4. resolve_pending after {len(changed):,} changed records (SQLite): "
            f"{seconds * 1000:.0f} ms; {result.records:,} records re-resolved, "
            f"{len(result.touched):,} profiles touched"
        )
        store.close()
    return 0


# -- the first refresh after a large import (issue 14) ---------------------------------

REFRESH_GOAL_S = 180.0  # at 1,000,000 records, on each backend
REFRESH_GOAL_RATIO = 1.5  # PostgreSQL / SQLite


def _first_refresh(args: argparse.Namespace, settings: IdentitySettings) -> int:
    """Import the corpus into a fresh store of each backend (not timed), then time the
    first ``refresh`` of the shop: every record queued, none resolved yet."""
    backends = ["sqlite", "postgresql"] if args.backend in (None, "both") else [args.backend]
    started = time.perf_counter()
    corpus = _corpus(args.records, args.seed)
    print(
        f"generated {corpus.records:,} records of {corpus.people:,} people "
        f"({time.perf_counter() - started:.1f} s, not timed)"
    )
    seconds: dict[str, float] = {}
    groups: dict[str, set[frozenset[tuple[str, str]]]] = {}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite:///{tmp / 'refresh.db'}"
            else:
                (name,) = stack.enter_context(_databases(args.pg_url, ["refresh"]))
                url = make_url(args.pg_url).set(database=name).render_as_string(False)
            store = Store.open(url)
            load = _load()
            started = time.perf_counter()
            for connection, customers in corpus.customers.items():
                for start in range(0, len(customers), 5000):
                    store.write_batch(connection, Stream.CUSTOMERS, customers[start : start + 5000])
            print(
                f"{backend}: records written in {time.perf_counter() - started:.1f} s (not timed)",
                flush=True,
            )
            cpu = time.process_time()
            with _timed_statements(store) as timings:
                result = refresh(store, CrmSettings(identity=settings))
            cpu = time.process_time() - cpu
            seconds[backend] = result.seconds
            verdict = "PASS" if result.seconds < REFRESH_GOAL_S else "FAIL"
            if corpus.records < 1_000_000:
                verdict = "not judged below it"
            print(
                f"{backend}: first refresh of {corpus.records:,} records in "
                f"{result.seconds:.1f} s ({corpus.records / result.seconds:,.0f} records/s; "
                f"this process's CPU {cpu:.1f} s), "
                f"{result.profiles_touched:,} profiles; goal at 1,000,000 records: under "
                f"{REFRESH_GOAL_S:.0f} s, {verdict}; load average {load} -> {_load()}",
                flush=True,
            )
            for statement, (count, total) in sorted(timings.items(), key=lambda item: -item[1][1])[
                : args.statements
            ]:
                print(f"   {total:8.2f} s {count:7,} x  {statement}")
            groups[backend] = _groups(store, DEFAULT_SHOP)
            # To compare runs of two versions at the same --records and --seed.
            print(
                f"{backend}: {len(groups[backend]):,} profiles, grouping digest "
                f"{_digest(groups[backend])}",
                flush=True,
            )
            store.close()
    if len(seconds) < 2:
        return 0
    ratio = seconds["postgresql"] / seconds["sqlite"]
    same = groups["sqlite"] == groups["postgresql"]
    print(
        f"PostgreSQL / SQLite: {ratio:.2f} (goal <= {REFRESH_GOAL_RATIO}: "
        f"{'PASS' if ratio <= REFRESH_GOAL_RATIO else 'FAIL'}); the same profiles on both: "
        f"{'yes' if same else 'NO'} ({len(groups['sqlite']):,} / {len(groups['postgresql']):,})"
    )
    return 0 if same and ratio <= REFRESH_GOAL_RATIO else 1


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def _timed_statements(store: Store) -> Iterator[dict[str, list[float]]]:
    """Time spent in each distinct statement (its first 160 characters) meanwhile:
    [executions, seconds]."""
    timings: dict[str, list[float]] = {}
    starts: list[float] = []

    def before(*_: Any) -> None:
        starts.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        elapsed = time.perf_counter() - starts.pop()
        entry = timings.setdefault(" ".join(statement.split())[:160], [0, 0.0])
        entry[0] += 1
        entry[1] += elapsed

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)
    try:
        yield timings
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        event.remove(store.engine, "after_cursor_execute", after)


def _changes(corpus: Corpus, n: int, start: int = 0, days: int = 1) -> list[Customer]:
    """``n`` EC records from ``start`` edited (their company), ``days`` later."""
    edited = []
    for customer in corpus.customers["ec"][start : start + n]:
        later = customer.updated_at + dt.timedelta(days=days)
        edited.append(customer.model_copy(update={"updated_at": later, "company": "edited"}))
    return edited


# -- one shop among several (issue 12) ------------------------------------------------

# Tables holding several shops' rows: a query of one shop's refresh must not scan them.
_SHOP_TABLES = frozenset(
    {
        "customers",
        "orders",
        "profile_changes",
        "profiles",
        "profile_values",
        "profile_members",
        "identity_keys",
        "identity_merges",
        "identity_overrides",
        "interactions",
        "nps_responses",
        "points_entries",
        "segments",
        "segment_counts",
        "crm_state",
    }
)
_SCAN = re.compile(r"\bSCAN (\w+)")
# A sequential scan, or an index scan (then checked for an index condition).
_SEQ_SCAN = re.compile(r"\b(?:Seq Scan|Index Scan|Index Only Scan) (?:using \w+ )?on (\w+)")
_TZ = ZoneInfo("Asia/Tokyo")


def _shop_names(n: int) -> list[str]:
    return [f"shop{i:02d}" for i in range(n)]


def _connection(shop: str, connection: str) -> str:
    return f"{shop}-{connection}"


def _open_shops(url: str, shops: list[str], corpus: Corpus) -> Store:
    """A store whose ``shops`` each hold the corpus, under connections of their own, the
    batches of the shops interleaved (syncs of several shops run side by side)."""
    store = Store.open(
        url,
        shops={_connection(s, c): s for s in shops for c in corpus.customers},
    )
    for connection, customers in corpus.customers.items():
        for start in range(0, len(customers), 5000):
            for shop in shops:
                store.write_batch(
                    _connection(shop, connection),
                    Stream.CUSTOMERS,
                    customers[start : start + 5000],
                )
    return store


def _timed(store: Store, work: Callable[[Connection], object]) -> float:
    started = time.perf_counter()
    with store.engine.begin() as conn:
        work(conn)
    return time.perf_counter() - started


def _round(store: Store, settings: IdentitySettings, shop: str) -> tuple[float, float, int]:
    """``resolve_pending`` of ``shop`` and the rebuild of what it touched, in one
    transaction as a refresh runs them: seconds of each, profiles touched."""
    with store.engine.begin() as conn:
        started = time.perf_counter()
        result = resolve_pending(conn, settings, shop=shop)
        resolved = time.perf_counter()
        rebuild_profiles(conn, sorted(result.touched), shop=shop, now=_now(), tz=_TZ)
        rebuilt = time.perf_counter()
    return resolved - started, rebuilt - resolved, len(result.touched)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _among_shops(args: argparse.Namespace, settings: IdentitySettings) -> int:
    shops = _shop_names(args.shops)
    target = shops[0]
    started = time.perf_counter()
    corpus = _corpus(args.records, args.seed)
    print(
        f"generated {corpus.records:,} records of {corpus.people:,} people a shop "
        f"({time.perf_counter() - started:.1f} s, not timed); {len(shops)} shops holding "
        f"them all ({corpus.records * len(shops):,} records) beside a store of {target} alone"
    )
    if args.changed * (args.rounds + 1) > len(corpus.customers["ec"]):
        raise SystemExit("--changed x (--rounds + 1) exceeds the EC records: fewer rounds")
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.backend == "sqlite":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            urls = [f"sqlite:///{tmp / 'alone.db'}", f"sqlite:///{tmp / 'shops.db'}"]
        else:  # two fresh databases, dropped afterwards
            admin = make_url(args.pg_url)
            urls = [
                admin.set(database=name).render_as_string(hide_password=False)
                for name in stack.enter_context(_databases(args.pg_url, ["alone", "shops"]))
            ]
        print(f"   backend: {args.backend}")
        started = time.perf_counter()
        alone = _open_shops(urls[0], [target], corpus)
        many = _open_shops(urls[1], shops, corpus)
        print(f"   (records written in {time.perf_counter() - started:.1f} s, not timed)")
        started = time.perf_counter()
        for shop in shops[1:]:
            with many.engine.begin() as conn:
                resolve_all(conn, settings, shop=shop)
                rebuild_profiles(conn, None, shop=shop, now=_now(), tz=_TZ)
        print(
            f"   (the {len(shops) - 1} other shops resolved in "
            f"{time.perf_counter() - started:.1f} s, not timed)"
        )
        if args.backend == "postgresql":
            # Both stores with fresh planner statistics, as autovacuum leaves them: the
            # lone store's tables were too new to have any, the ten shops' had some.
            for store in (alone, many):
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")

        def whole(conn: Connection) -> None:
            resolve_all(conn, settings, shop=target)
            rebuild_profiles(conn, None, shop=target, now=_now(), tz=_TZ)

        one_all = _timed(alone, whole)
        many_all = _timed(many, whole)
        print(
            f"resolve_all + rebuild of {target} ({corpus.records:,} records): "
            f"alone {one_all:.2f} s, among {len(shops)} shops {many_all:.2f} s, "
            f"ratio {many_all / one_all:.2f}"
        )

        if args.backend == "postgresql":
            # Again: the lone store's statistics were taken with its profiles empty.
            for store in (alone, many):
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
        one: list[tuple[float, float, int]] = []
        among: list[tuple[float, float, int]] = []
        for r in range(args.rounds):
            changed = _changes(corpus, args.changed, start=r * args.changed, days=r + 1)
            alone.write_batch(_connection(target, "ec"), Stream.CUSTOMERS, changed)
            for shop in shops:
                many.write_batch(_connection(shop, "ec"), Stream.CUSTOMERS, changed)
            # Alternate which store goes first, so both see the same load on average.
            if r % 2 == 0:
                one.append(_round(alone, settings, target))
                among.append(_round(many, settings, target))
            else:
                among.append(_round(many, settings, target))
                one.append(_round(alone, settings, target))
        for label, index in (("resolve_pending", 0), ("rebuild of the touched", 1)):
            a = statistics.median(t[index] for t in one)
            b = statistics.median(t[index] for t in among)
            print(
                f"{label} after {args.changed:,} changed records, median of {args.rounds}: "
                f"alone {a * 1000:.0f} ms, among {len(shops)} shops {b * 1000:.0f} ms, "
                f"ratio {b / a:.2f}"
            )
        a = statistics.median(t[0] + t[1] for t in one)
        b = statistics.median(t[0] + t[1] for t in among)
        ratio = b / a
        verdict = "PASS" if ratio <= args.goal else "FAIL"
        print(
            f"both, median: alone {a * 1000:.0f} ms, among {len(shops)} shops "
            f"{b * 1000:.0f} ms: ratio {ratio:.2f} (goal <= {args.goal}) {verdict}; "
            f"rounds alone {_ms(one)}, among {_ms(among)}; profiles touched "
            f"{one[0][2]:,} / {among[0][2]:,}"
        )
        if ratio > args.goal:
            failures.append(f"ratio {ratio:.2f} over the goal {args.goal}")

        # One more round (untimed) with every statement recorded, for EXPLAIN.
        changed = _changes(corpus, args.changed, start=args.rounds * args.changed, days=99)
        for shop in shops:
            many.write_batch(_connection(shop, "ec"), Stream.CUSTOMERS, changed)
        with _recorded(many) as statements:
            _round(many, settings, target)
            with many.engine.begin() as conn:
                whole(conn)
            # And a whole refresh of the shop (points, scores, segment counts besides).
            changed = _changes(corpus, args.changed, start=0, days=100)
            many.write_batch(_connection(target, "ec"), Stream.CUSTOMERS, changed)
            refresh(many, CrmSettings(shop=target, identity=settings))
            # The nightly one (CLV, every score, history) and a rebuild (new rules).
            refresh(many, CrmSettings(shop=target, identity=settings), full=True)
            refresh(many, CrmSettings(shop=target, identity=settings), rebuild=True)
        scans, others = _scans(many, statements)
        print(
            f"{'EXPLAIN' if many.dialect == 'postgresql' else 'EXPLAIN QUERY PLAN'} of the "
            f"{len(statements)} distinct statements of a round, a whole-shop resolution and "
            f"refreshes (incremental, full, rebuild): {len(scans)} scan(s) of a table of "
            "several shops; other scans: "
            f"{', '.join(sorted(others)) or 'none'}"
        )
        for line in scans:
            print(f"   {line}")
            failures.append(f"a scan: {line}")

        # The other shops drain their queues too, then everything is checked.
        for shop in shops:
            with many.engine.begin() as conn:
                result = resolve_pending(conn, settings, shop=shop)
                rebuild_profiles(conn, sorted(result.touched), shop=shop, now=_now(), tz=_TZ)
        with alone.engine.begin() as conn:
            resolve_pending(conn, settings, shop=target)
        failures.extend(_check(alone, many, target, shops))
        alone.close()
        many.close()
    if failures:
        print("FAIL:")
        for failure in failures:
            print(f"   {failure}")
        return 1
    print("OK: every shop has the lone shop's profiles, no row refers to another shop's")
    return 0


def _ms(rounds: list[tuple[float, float, int]]) -> str:
    return " ".join(f"{(t[0] + t[1]) * 1000:.0f}" for t in rounds) + " ms"


@contextlib.contextmanager
def _recorded(store: Store) -> Iterator[dict[str, Any]]:
    """The distinct statements run on ``store`` meanwhile, each with its first parameters."""
    statements: dict[str, Any] = {}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if rest and rest[-1] and isinstance(parameters, list):  # executemany
            parameters = parameters[0] if parameters else ()
        statements.setdefault(statement, parameters)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _scans(store: Store, statements: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Each statement whose plan scans a table of several shops, with the plan's line;
    and the other things scanned (JSON arrays of ids, subqueries, one-shop tables).

    On PostgreSQL sequential scans (and hash and merge joins) are turned off for the
    EXPLAIN, so one left in a plan means no index serves the query (small tables are
    scanned by choice otherwise)."""
    pg = store.dialect == "postgresql"
    pattern = _SEQ_SCAN if pg else _SCAN
    # A planner reads an empty table first, whatever its indexes (the corpus has no
    # orders, points or interactions): such a plan says nothing of the index use.
    with store.engine.connect() as conn:
        empty = {
            table
            for table in _SHOP_TABLES
            if not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar()
        }
    found: list[str] = []
    others: set[str] = set()
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if pg:
            # Joins by nested loops too: a hash or merge join over a whole index (chosen
            # when a table is small or empty, as ``orders`` is here) would hide whether an
            # index serves the join's condition.
            for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                cursor.execute(f"SET {setting} = off")
        for statement, parameters in statements.items():
            head = statement.lstrip().split(None, 1)[0].upper()
            if head not in {"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"}:
                continue
            explain = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
            cursor.execute(explain + statement, (parameters or None) if pg else (parameters or ()))
            plan = [str(row[0] if pg else row[-1]) for row in cursor.fetchall()]
            for i, line in enumerate(plan):
                match = pattern.search(line)
                if not match or (pg and _bounded(plan, i)):
                    continue
                table = re.sub(r"_\d+$", "", match.group(1))
                if table in _SHOP_TABLES and table not in empty:
                    found.append(f"{line.strip()}: {' '.join(statement.split())[:300]}")
                elif table in _SHOP_TABLES:
                    others.add(f"{table} (empty: its plan shows nothing)")
                else:
                    others.add(match.group(1))
    finally:
        raw.rollback()  # the SET, and nothing else, is undone
        raw.close()
    return found, others


def _bounded(plan: list[str], i: int) -> bool:
    """Whether the PostgreSQL plan node at line ``i`` reads by an index condition: an
    index scan without one (a filter only) reads the whole index, every shop's."""
    if "Seq Scan" in plan[i]:
        return False
    for line in plan[i + 1 :]:
        if "->" in line:
            break
        if "Index Cond:" in line:
            return True
    return False


def _check(alone: Store, many: Store, target: str, shops: list[str]) -> list[str]:
    """Every shop of ``many`` holds the profiles ``alone`` holds (the same records together,
    their connections renamed); no identity row refers to another shop's."""
    failures: list[str] = []
    expected = _groups(alone, target)
    total = 0
    for shop in shops:
        groups = _groups(many, shop)
        total += len(groups)
        if groups != expected:
            failures.append(
                f"{shop} has {len(groups):,} profiles, the lone shop {len(expected):,}, "
                f"{len(groups ^ expected):,} differ"
            )
    with many.engine.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM profiles")).scalar_one()
        if held != total:
            failures.append(f"the store holds {held:,} profiles, its shops {total:,}")
        for label, query in _CROSSED.items():
            crossed = conn.execute(text(query)).scalar_one()
            if crossed:
                failures.append(f"{crossed:,} {label}")
    print(
        f"checked: {len(shops)} shops x {len(expected):,} profiles = {total:,} "
        f"(the lone shop: {len(expected):,})"
    )
    return failures


def _digest(groups: set[frozenset[tuple[str, str]]]) -> str:
    """A short fingerprint of which records are together, whatever the profile ids."""
    ordered = sorted(sorted(group) for group in groups)
    return hashlib.sha256(repr(ordered).encode()).hexdigest()[:16]


def _groups(store: Store, shop: str) -> set[frozenset[tuple[str, str]]]:
    """The records of each profile of ``shop``, their connections without the shop."""
    members: dict[int, set[tuple[str, str]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(
            text(
                "SELECT m.profile_id, m.connection, m.record_id FROM profile_members m"
                " JOIN profiles p ON p.id = m.profile_id WHERE p.shop = :shop"
            ),
            {"shop": shop},
        ):
            connection = row.connection.removeprefix(f"{shop}-")
            members.setdefault(row.profile_id, set()).add((connection, row.record_id))
        bare = conn.execute(
            text(
                "SELECT count(*) FROM profiles p WHERE p.shop = :shop AND NOT EXISTS"
                " (SELECT 1 FROM profile_members m WHERE m.profile_id = p.id)"
            ),
            {"shop": shop},
        ).scalar_one()
    groups = {frozenset(refs) for refs in members.values()}
    if bare:  # a profile with no member: never right, make it differ
        groups.add(frozenset({("no members", str(bare))}))
    return groups


# Rows of one shop referring to another shop's records or profiles.
_CROSSED = {
    "profile_members of another shop's connection": (
        "SELECT count(*) FROM profile_members m JOIN connection_shops c"
        " ON c.connection = m.connection WHERE c.shop <> m.shop"
    ),
    "profile_members in another shop's profile": (
        "SELECT count(*) FROM profile_members m JOIN profiles p ON p.id = m.profile_id"
        " WHERE p.shop <> m.shop"
    ),
    "identity_keys of another shop's connection": (
        "SELECT count(*) FROM identity_keys k JOIN connection_shops c"
        " ON c.connection = k.connection WHERE c.shop <> k.shop"
    ),
    "identity_merges in another shop's profile": (
        "SELECT count(*) FROM identity_merges g JOIN profiles p ON p.id = g.profile_id"
        " WHERE p.shop <> g.shop"
    ),
    "identity_merges joining another shop's records": (
        "SELECT count(*) FROM identity_merges g JOIN connection_shops a"
        " ON a.connection = g.a_connection JOIN connection_shops b"
        " ON b.connection = g.b_connection WHERE a.shop <> g.shop OR b.shop <> g.shop"
    ),
    "profile_values of another shop's profile": (
        "SELECT count(*) FROM profile_values v JOIN profiles p ON p.id = v.profile_id"
        " WHERE p.shop <> v.shop"
    ),
    "profile_members of no customer of their shop": (
        "SELECT count(*) FROM profile_members m WHERE NOT EXISTS (SELECT 1 FROM customers c"
        " WHERE c.connection = m.connection AND c.id = m.record_id AND c.shop = m.shop)"
    ),
}


if __name__ == "__main__":
    sys.exit(main())
