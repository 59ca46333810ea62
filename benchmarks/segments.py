"""Segment counts over 1,000,000 profiles: a full recount and an incremental one.

Generates N profiles (default 1,000,000) with realistic distributions straight into a
fresh store's ``profiles`` and ``profile_values`` (``executemany`` on SQLite, ``COPY`` on
PostgreSQL; not timed), scores RFM and lifecycle over all of them (timed, for the
record), then measures:

- the full recount of the 20 built-in segments, one scan (goal < 2 s on SQLite);
- an incremental recount after 1,000 profiles change (goal < 100 ms), all of it timed:
  counting the 1,000 before the change, the change itself (their columns and tags, as
  a profile refresh writes them with executemany, then their RFM and lifecycle scores),
  counting them after it and applying the difference to the last recorded counts. The
  counting alone is printed too. Every round's result is checked against a full
  recount.

    .venv/bin/python benchmarks/segments.py                      # both backends
    .venv/bin/python benchmarks/segments.py --backend sqlite --profiles 200000

Exits 1 when a goal is missed or an incremental count differs from the full one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from sqlalchemy import Connection, bindparam, create_engine, func, insert, text, update
from sqlalchemy.engine import make_url

from omnicrm.core.store import Store
from omnicrm.crm.schema import profile_values, profiles
from omnicrm.crm.segments import (
    BUILTIN_SEGMENTS,
    begin_recount,
    count_segments,
    ensure_builtin,
    record_counts,
    score_profiles,
)

FULL_GOAL = 2.0
INCREMENTAL_GOAL = 0.100
TZ = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2025, 6, 16, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo
CHUNK = 50_000

FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"]
GIVEN = ["陽翔", "蓮", "湊", "結菜", "陽葵", "凛", "芽依", "葵", "大翔", "美咲"]
PREFECTURES = [
    ("東京都", 0.16),
    ("神奈川県", 0.09),
    ("大阪府", 0.08),
    ("愛知県", 0.06),
    ("埼玉県", 0.06),
    ("千葉県", 0.05),
    ("兵庫県", 0.05),
    ("北海道", 0.04),
    ("福岡県", 0.04),
    ("静岡県", 0.03),
    ("京都府", 0.03),
    ("広島県", 0.02),
    ("宮城県", 0.02),
    ("沖縄県", 0.01),
    (None, 0.26),  # no address given
]
TAGS = [
    ("LINE友だち", 0.30),
    ("メルマガ", 0.25),
    ("VIP", 0.03),
    ("初回購入", 0.20),
    ("ギフト", 0.08),
    ("楽天経由", 0.06),
    ("法人", 0.01),
    ("定期便", 0.04),
]
STORES = ["shibuya", "shinjuku", "ikebukuro", "umeda", "namba", "sakae", "tenjin", "sapporo"]


# -- data ----------------------------------------------------------------------------------


def _timestamps(epoch: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """UTC 'YYYY-MM-DD HH:MM:SS.ffffff' text, the store's SQLite form."""
    text_ = np.datetime_as_string(epoch.astype("datetime64[s]").astype("datetime64[us]"))
    return np.char.replace(text_, "T", " ")


def generate(
    n: int, seed: int, postgres: bool
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Chunks of (profile rows, profile_values rows), in the tables' column order."""
    rng = np.random.default_rng(seed)
    now_s = NOW.timestamp()
    columns = [c.name for c in profiles.columns]
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        ids = np.arange(start + 1, start + size + 1)
        buyer = rng.random(size) < 0.8
        orders = np.where(buyer, np.minimum(rng.geometric(0.45, size), 60), 0)
        days = np.minimum(rng.exponential(220, size), 1500)
        last = now_s - days * 86400 - rng.uniform(0, 3600, size)
        span = np.where(orders > 1, rng.uniform(0, 720, size) * 86400, 0.0)
        first = last - span
        seen = np.where(
            buyer,
            first - rng.exponential(30, size) * 86400,
            now_s - rng.uniform(0, 1500, size) * 86400,
        )
        amount = np.round(orders * rng.lognormal(np.log(6000), 0.6, size))
        mix = np.where(
            buyer, rng.choice(["store_only", "ec_only", "both"], size, p=[0.35, 0.45, 0.2]), "none"
        )
        mix = np.where((mix == "both") & (orders < 2), "ec_only", mix)
        known_birth = rng.random(size) < 0.75
        age_days = np.clip(rng.normal(42, 13, size), 16, 90) * 365.25
        birth = (np.datetime64(NOW.date()) - age_days.astype("timedelta64[D]")).astype(str)
        pref_names = [p for p, _ in PREFECTURES]
        pref = rng.choice(len(pref_names), size, p=[w for _, w in PREFECTURES])
        gender = rng.choice(
            ["female", "male", "other", "unknown"], size, p=[0.55, 0.35, 0.01, 0.09]
        )
        consent = ["opted_in", "opted_out", "pending", "unknown"]
        email_c = rng.choice(consent, size, p=[0.45, 0.15, 0.02, 0.38])
        line_c = rng.choice(consent, size, p=[0.30, 0.05, 0.0, 0.65])
        clv = np.where(buyer, np.round(amount * rng.uniform(0.1, 1.5, size)), np.nan)
        points = np.where(buyer, (amount * 0.01 * rng.random(size)).astype(int), 0)
        suffix = "+00" if postgres else ""
        last_t, first_t, seen_t = (_timestamps(a) for a in (last, first, seen))
        now_t = _timestamps(np.array([now_s]))[0] + suffix
        family = rng.integers(0, len(FAMILY), size)
        given = rng.integers(0, len(GIVEN), size)
        rows = []
        for i in range(size):
            b = bool(buyer[i])
            value = {
                "id": int(ids[i]),
                "family_name": FAMILY[family[i]],
                "given_name": GIVEN[given[i]],
                "email": f"customer{ids[i]}@example.jp",
                "phone": f"+8190{ids[i]:08d}",
                "birth_date": birth[i] if known_birth[i] else None,
                "gender": gender[i],
                "prefecture": pref_names[pref[i]],
                "consent_email": email_c[i],
                "consent_sms": "unknown",
                "consent_line": line_c[i],
                "consent_postal": "unknown",
                "first_seen_at": seen_t[i] + suffix,
                "number_of_orders": int(orders[i]),
                "amount_spent": float(amount[i]),
                "first_order_at": first_t[i] + suffix if b else None,
                "last_order_at": last_t[i] + suffix if b else None,
                "purchase_days": int(orders[i]),
                "channel_mix": mix[i],
                "lifecycle_stage": "prospect",
                "predicted_clv": float(clv[i]) if b else None,
                "p_alive": None,
                "points_balance": int(points[i]),
                "updated_at": now_t,
            }
            rows.append(tuple(value.get(c) for c in columns))
        values: list[tuple[Any, ...]] = []
        tag_masks = [(t, rng.random(size) < p) for t, p in TAGS]
        app = rng.random(size) < 0.25
        store_pick = rng.integers(0, len(STORES), size)
        second_store = rng.random(size) < 0.2
        for i in range(size):
            pid = int(ids[i])
            found = [("tag", t) for t, mask in tag_masks if mask[i]]
            m = mix[i]
            if m in ("store_only", "both"):
                found.append(("channel", "pos"))
                found.append(("store", STORES[store_pick[i]]))
                if second_store[i]:
                    found.append(("store", STORES[(store_pick[i] + 1) % len(STORES)]))
                found.append(("connection", "pos"))
            if m in ("ec_only", "both"):
                found.append(("channel", "app" if app[i] else "web"))
                found.append(("connection", "shopify"))
            if m == "none":
                found.append(("connection", "shopify" if app[i] else "ec-cube"))
            values.extend((pid, attr, v) for attr, v in sorted(set(found)))
        yield rows, values


def load_sqlite(path: Path, n: int, seed: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    p_sql = _insert_sql(profiles.name, [c.name for c in profiles.columns], "?")
    v_sql = _insert_sql(profile_values.name, [c.name for c in profile_values.columns], "?")
    for rows, values in generate(n, seed, postgres=False):
        db.executemany(p_sql, rows)
        db.executemany(v_sql, values)
        db.commit()
    db.close()


def load_postgres(url: str, n: int, seed: int) -> None:
    with psycopg.connect(_libpq(url)) as db:
        for rows, values in generate(n, seed, postgres=True):
            with db.cursor() as cur:
                for table, data in ((profiles, rows), (profile_values, values)):
                    names = ", ".join(f'"{c.name}"' for c in table.columns)
                    with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                        for row in data:
                            copy.write_row(row)
            db.commit()
        # The sequence behind profiles.id, past the ids written by hand.
        db.execute("SELECT setval(pg_get_serial_sequence('profiles', 'id'), %s)", (n,))
        db.execute("ANALYZE profiles")
        db.execute("ANALYZE profile_values")
        db.commit()


def _insert_sql(table: str, columns: list[str], mark: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(mark for _ in columns)})'


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- the measurements ------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    load_s: float = 0.0
    scoring_s: float = 0.0
    full_s: list[float] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: int = 0

    @property
    def full(self) -> float:
        return statistics.median(self.full_s)

    @property
    def incremental(self) -> float:
        return statistics.median(r["total"] for r in self.rounds)

    @property
    def ok(self) -> bool:
        full_ok = self.backend != "sqlite" or self.full < FULL_GOAL
        return full_ok and self.incremental < INCREMENTAL_GOAL and self.mismatches == 0


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def measure(store: Store, n: int, args: argparse.Namespace, result: Result) -> None:
    builtins = {s.name: s.expression for s in BUILTIN_SEGMENTS}
    with store.engine.begin() as conn:
        result.scoring_s, _ = _timed(lambda: score_profiles(conn, NOW, tz=TZ))
        ensure_builtin(conn, NOW)
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE profiles")  # as autovacuum would after the scoring
    with store.engine.begin() as conn:
        for _ in range(args.repeat):
            seconds, counts = _timed(lambda: count_segments(conn, builtins, NOW, TZ))
            result.full_s.append(seconds)
        result.counts = counts
        record_counts(conn, counts, NOW)
    rng = np.random.default_rng(args.seed + 1)
    for round_ in range(args.rounds):
        now = NOW + dt.timedelta(minutes=1 + round_)
        ids = sorted(int(i) for i in rng.choice(n, args.changed, replace=False) + 1)
        changes = _changes(ids, now, rng, round_)
        with store.engine.connect() as conn:
            trans = conn.begin()
            timings: dict[str, float] = {}
            start = time.perf_counter()
            recount = begin_recount(conn, now, TZ, ids)
            timings["before"] = time.perf_counter() - start
            mark = time.perf_counter()
            _apply(conn, changes)
            timings["update"] = time.perf_counter() - mark
            mark = time.perf_counter()
            score_profiles(conn, now, ids, tz=TZ)
            timings["rescore"] = time.perf_counter() - mark
            mark = time.perf_counter()
            counts = recount.finish(conn)
            timings["after"] = time.perf_counter() - mark
            timings["total"] = time.perf_counter() - start
            timings["recount"] = timings["before"] + timings["after"]
            mark = time.perf_counter()
            record_counts(conn, counts, now)
            trans.commit()
            timings["record+commit"] = time.perf_counter() - mark
            if not recount.incremental:
                print(f"  round {round_}: counted in full, not incrementally", flush=True)
                result.mismatches += 1
            with conn.begin():
                full = count_segments(conn, builtins, now, TZ)
            if full != counts:
                result.mismatches += 1
                diff = {k: (counts[k], full[k]) for k in full if full[k] != counts[k]}
                print(f"  round {round_}: incremental != full: {diff}", flush=True)
        result.rounds.append(timings)


def _changes(
    ids: list[int], now: dt.datetime, rng: np.random.Generator, round_: int
) -> dict[str, Any]:
    """What a sync does to 1,000 profiles: 70 % buy again, 5 % get a refund, 25 % get a
    tag (and move house)."""
    kinds = rng.choice(["buy", "refund", "tag"], len(ids), p=[0.70, 0.05, 0.25])
    buys = [
        {
            "pid": pid,
            "last": now - dt.timedelta(minutes=5),
            "spent": float(rng.integers(1000, 20000)),
        }
        for pid, kind in zip(ids, kinds, strict=True)
        if kind == "buy"
    ]
    refunds = [{"pid": pid} for pid, kind in zip(ids, kinds, strict=True) if kind == "refund"]
    tags = [pid for pid, kind in zip(ids, kinds, strict=True) if kind == "tag"]
    return {"buys": buys, "refunds": refunds, "tags": tags, "tag": f"キャンペーン{round_}"}


def _apply(conn: Connection, changes: dict[str, Any]) -> None:
    p = profiles.c
    last = p.last_order_at.type
    if changes["buys"]:
        conn.execute(
            update(profiles)
            .where(p.id == bindparam("pid"))
            .values(
                number_of_orders=p.number_of_orders + 1,
                amount_spent=p.amount_spent + bindparam("spent"),
                last_order_at=bindparam("last", type_=last),
                first_order_at=func.coalesce(p.first_order_at, bindparam("last", type_=last)),
            ),
            changes["buys"],
        )
    if changes["refunds"]:
        conn.execute(
            update(profiles)
            .where(p.id == bindparam("pid"), p.number_of_orders > 0)
            .values(number_of_orders=p.number_of_orders - 1),
            changes["refunds"],
        )
    if changes["tags"]:
        conn.execute(
            insert(profile_values),
            [
                {"profile_id": pid, "attr": "tag", "value": changes["tag"]}
                for pid in changes["tags"]
            ],
        )
        conn.execute(
            update(profiles).where(p.id == bindparam("pid")).values(prefecture="東京都"),
            [{"pid": pid} for pid in changes["tags"]],
        )


# -- running -------------------------------------------------------------------------------


def sqlite(args: argparse.Namespace) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="omnicrm-bench-segments-"))
    try:
        path = tmp / "store.db"
        store = Store.open(f"sqlite:///{path}")
        result = Result("sqlite")
        result.load_s, _ = _timed(lambda: load_sqlite(path, args.profiles, args.seed))
        measure(store, args.profiles, args, result)
        store.close()
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def postgresql(args: argparse.Namespace) -> Result | None:
    admin_url = make_url(args.pg_url)
    try:
        with _database(args.pg_url) as name:
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            store = Store.open(url)
            result = Result("postgresql")
            result.load_s, _ = _timed(lambda: load_postgres(url, args.profiles, args.seed))
            measure(store, args.profiles, args, result)
            store.close()
            return result
    except _Unreachable as exc:
        print(f"postgresql: skipped, not reachable at {admin_url.render_as_string()}: {exc}")
        return None


class _Unreachable(Exception):
    pass


@contextmanager
def _database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards."""
    name = f"omnicrm_bench_segments_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise _Unreachable(str(exc).splitlines()[0]) from None
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def report(result: Result, args: argparse.Namespace) -> None:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:7.1f} ms"

    print(f"{result.backend}: {args.profiles:,} profiles", flush=True)
    print(f"  (not timed: generating and loading {result.load_s:.1f} s)")
    print(
        f"  full scoring (RFM cuts, then RFM and lifecycle of every profile) "
        f"{result.scoring_s:.2f} s"
    )
    runs = ", ".join(f"{s:.3f}" for s in result.full_s)
    goal = f" (goal < {FULL_GOAL:.0f} s: {'ok' if result.full < FULL_GOAL else 'MISSED'})"
    print(
        f"  full recount, 20 built-in segments: median {result.full:.3f} s of [{runs}]"
        + (goal if result.backend == "sqlite" else "")
    )
    inc_ok = "ok" if result.incremental < INCREMENTAL_GOAL else "MISSED"
    print(
        f"  incremental recount after {args.changed:,} profiles change: median "
        f"{ms(result.incremental).strip()} over {len(result.rounds)} rounds, from counting the"
        f" {args.changed:,} before the change to the new counts (goal < "
        f"{INCREMENTAL_GOAL * 1000:.0f} ms: {inc_ok}), of which:"
    )
    parts = {
        "before": "count them before",
        "update": "the change (their columns, tags)",
        "rescore": "their RFM and lifecycle",
        "after": "count them after, apply",
        "recount": "the counting alone",
        "record+commit": "(after: history, commit)",
    }
    for key, what in parts.items():
        values = [r[key] for r in result.rounds]
        print(f"    {what:<34} median {ms(statistics.median(values))}  max {ms(max(values))}")
    check = "all equal to a full recount" if not result.mismatches else f"{result.mismatches} WRONG"
    print(f"  incremental counts: {check}")
    shown = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    print(f"  counts: {shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=1000, help="profiles changed per round")
    parser.add_argument("--rounds", type=int, default=5, help="incremental rounds")
    parser.add_argument("--repeat", type=int, default=5, help="full recounts")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://127.0.0.1:5432/test",
        help="a PostgreSQL server's admin URL; the benchmark creates and drops its database",
    )
    parser.add_argument("--seed", type=int, default=20250616)
    args = parser.parse_args(argv)
    print(
        f"segment count benchmark: {args.profiles:,} profiles, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__},"
        f" {os.cpu_count()} CPUs, load average {_load()}",
        flush=True,
    )
    ok = True
    if args.backend in ("sqlite", "both"):
        result = sqlite(args)
        report(result, args)
        ok = ok and result.ok
    if args.backend in ("postgresql", "both"):
        pg = postgresql(args)
        if pg is not None:
            report(pg, args)
            ok = ok and pg.ok
    print(f"load average at the end {_load()}")
    return 0 if ok else 1


def _load() -> str:
    """The machine's load: figures taken under load are not comparable with idle ones."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
