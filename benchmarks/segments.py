"""Segment counts over 1,000,000 profiles: a full recount and an incremental one, in a
store of one shop or of several.

Generates N profiles (default 1,000,000) with realistic distributions straight into a
fresh store's ``profiles`` and ``profile_values`` (``executemany`` on SQLite, ``COPY`` on
PostgreSQL, then ANALYZE (and VACUUM on PostgreSQL) as a store in use has had; not
timed). With ``--shops N`` the profiles are N shops' (N / shops each, in blocks of 50,000
ids taking turns), and shop-0 is measured there and again in a store holding only it,
built from the same seed: the same people, the same changes. On the shop measured it
scores RFM and lifecycle over all its profiles (timed, for the record), then measures:

- the full recount of the 20 built-in segments, one scan (goal < 2 s on SQLite);
- an incremental recount after 1,000 profiles change (goal < 100 ms), all of it timed:
  counting the 1,000 before the change, the change itself (their columns and tags, as
  the profile refresh writes them: ``crm.bulk``, with ``--writes executemany`` or
  ``both`` also as it did before), then their RFM and lifecycle scores, counting them
  after it and applying the difference to the last recorded counts. The counting alone
  is printed too. Every round's result is checked against a full recount.

    .venv/bin/python benchmarks/segments.py                      # both backends
    .venv/bin/python benchmarks/segments.py --backend sqlite --profiles 200000
    .venv/bin/python benchmarks/segments.py --shops 10 --writes both

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
from sqlalchemy import Connection, Float, bindparam, case, create_engine, func, insert, text, update
from sqlalchemy.engine import make_url

from omnicrm.core.store import Store
from omnicrm.crm.bulk import insert_rows, update_rows
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
    blocks: Sequence[np.ndarray[Any, Any]], seed: int, postgres: bool, shop: str
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """One shop's chunks of (profile rows, profile_values rows), in the tables' column
    order, one chunk per block of ids. The same seed and block sizes make the same people
    whatever their ids (the emails and phones number them within the shop)."""
    rng = np.random.default_rng(seed)
    now_s = NOW.timestamp()
    columns = [c.name for c in profiles.columns]
    start = 0
    for ids in blocks:
        size = len(ids)
        person = np.arange(start + 1, start + size + 1)
        start += size
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
                "shop": shop,
                "family_name": FAMILY[family[i]],
                "given_name": GIVEN[given[i]],
                "email": f"customer{person[i]}@example.jp",
                "phone": f"+8190{person[i]:08d}",
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
            values.extend((pid, attr, v, shop) for attr, v in sorted(set(found)))
        yield rows, values


@dataclass(frozen=True)
class Layout:
    """Which shops a store holds and where their profiles' ids lie: each shop's profiles
    in blocks of CHUNK consecutive ids, the shops' blocks taking turns, as shops' first
    syncs and later growth interleave in a real store."""

    shops: list[str]
    blocks: dict[str, list[np.ndarray[Any, Any]]]
    order: list[str]  # whose block comes next, in id order

    @classmethod
    def of(cls, shops: list[str], per_shop: int) -> Layout:
        sizes = [min(CHUNK, per_shop - start) for start in range(0, per_shop, CHUNK)]
        blocks: dict[str, list[np.ndarray[Any, Any]]] = {shop: [] for shop in shops}
        order: list[str] = []
        next_id = 1
        for size in sizes:
            for shop in shops:
                blocks[shop].append(np.arange(next_id, next_id + size))
                order.append(shop)
                next_id += size
        return cls(shops, blocks, order)

    @property
    def total(self) -> int:
        return sum(len(b) for blocks in self.blocks.values() for b in blocks)

    def ids(self, shop: str) -> np.ndarray[Any, Any]:
        return np.concatenate(self.blocks[shop])

    def chunks(
        self, seed: int, postgres: bool
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """Every shop's chunks in id order; shop i's people from seed + i, the same in
        any store that holds that shop."""
        made = {
            shop: generate(self.blocks[shop], seed + _shop_number(shop), postgres, shop)
            for shop in self.shops
        }
        for shop in self.order:
            yield next(made[shop])


def _shop_number(shop: str) -> int:
    return int(shop.rsplit("-", 1)[1])


def load_sqlite(path: Path, layout: Layout, seed: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    p_sql = _insert_sql(profiles.name, [c.name for c in profiles.columns], "?")
    v_sql = _insert_sql(profile_values.name, [c.name for c in profile_values.columns], "?")
    for rows, values in layout.chunks(seed, postgres=False):
        db.executemany(p_sql, rows)
        db.executemany(v_sql, values)
        db.commit()
    db.execute("ANALYZE")  # as a store in use would have: the planner's statistics
    db.commit()
    db.close()


def load_postgres(url: str, layout: Layout, seed: int) -> None:
    with psycopg.connect(_libpq(url)) as db:
        for rows, values in layout.chunks(seed, postgres=True):
            with db.cursor() as cur:
                for table, data in ((profiles, rows), (profile_values, values)):
                    names = ", ".join(f'"{c.name}"' for c in table.columns)
                    with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                        for row in data:
                            copy.write_row(row)
            db.commit()
        # The sequence behind profiles.id, past the ids written by hand.
        db.execute("SELECT setval(pg_get_serial_sequence('profiles', 'id'), %s)", (layout.total,))
        db.commit()
        # As autovacuum leaves a store in use: statistics, and pages whose rows are known
        # visible (a page first read after COPY is otherwise written back for its hint
        # bits, in the middle of the timed counts).
        db.autocommit = True
        db.execute("VACUUM ANALYZE profiles")
        db.execute("VACUUM ANALYZE profile_values")


def _insert_sql(table: str, columns: list[str], mark: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(mark for _ in columns)})'


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- the measurements ------------------------------------------------------------------

# How the change writes the changed profiles: as the profile refresh does now
# (crm.bulk.update_rows: on PostgreSQL a COPY and one UPDATE ... FROM), or as it did
# before (an executemany of single-row UPDATEs), for comparison in the same run.
WRITES = ("bulk", "executemany")


@dataclass
class Result:
    backend: str
    store: str  # what the store holds, e.g. '10 shops, 1,000,000 profiles'
    profiles: int  # of the shop measured
    load_s: float = 0.0
    scoring_s: float = 0.0
    full_s: list[float] = field(default_factory=list)
    rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: int = 0

    @property
    def full(self) -> float:
        return statistics.median(self.full_s)

    def incremental(self, writes: str = "bulk") -> float:
        return statistics.median(r["total"] for r in self.rounds[writes])

    def part(self, writes: str, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds[writes])

    @property
    def ok(self) -> bool:
        full_ok = self.backend != "sqlite" or self.full < FULL_GOAL
        return full_ok and self.incremental() < INCREMENTAL_GOAL and self.mismatches == 0


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def measure(
    store: Store, shop: str, ids: np.ndarray[Any, Any], args: argparse.Namespace, result: Result
) -> None:
    """Score, recount in full and incrementally the profiles of ``shop`` (ids ``ids``)."""
    builtins = {s.name: s.expression for s in BUILTIN_SEGMENTS}
    with store.engine.begin() as conn:
        result.scoring_s, _ = _timed(lambda: score_profiles(conn, NOW, shop=shop, tz=TZ))
        ensure_builtin(conn, NOW, shop=shop)
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE profiles")  # as autovacuum would after the scoring
    with store.engine.begin() as conn:
        for _ in range(args.repeat):
            seconds, counts = _timed(lambda: count_segments(conn, builtins, NOW, TZ, shop=shop))
            result.full_s.append(seconds)
        result.counts = counts
        record_counts(conn, counts, NOW, shop=shop)
    rng = np.random.default_rng(args.seed + 1)
    writes = list(WRITES) if args.writes == "both" else [args.writes]
    result.rounds = {w: [] for w in writes}
    for round_ in range(args.rounds * len(writes)):
        way = writes[round_ % len(writes)]  # taking turns, so both see the same machine
        now = NOW + dt.timedelta(minutes=1 + round_)
        changed = sorted(int(i) for i in ids[rng.choice(len(ids), args.changed, replace=False)])
        changes = _changes(changed, now, rng, round_)
        with store.engine.connect() as conn:
            trans = conn.begin()
            timings: dict[str, float] = {}
            start = time.perf_counter()
            recount = begin_recount(conn, now, TZ, changed, shop=shop)
            timings["before"] = time.perf_counter() - start
            mark = time.perf_counter()
            _apply(conn, changes, shop, way)
            timings["update"] = time.perf_counter() - mark
            mark = time.perf_counter()
            score_profiles(conn, now, changed, shop=shop, tz=TZ)
            timings["rescore"] = time.perf_counter() - mark
            mark = time.perf_counter()
            counts = recount.finish(conn)
            timings["after"] = time.perf_counter() - mark
            timings["total"] = time.perf_counter() - start
            timings["recount"] = timings["before"] + timings["after"]
            mark = time.perf_counter()
            record_counts(conn, counts, now, shop=shop)
            trans.commit()
            timings["record+commit"] = time.perf_counter() - mark
            if not recount.incremental:
                print(f"  round {round_}: counted in full, not incrementally", flush=True)
                result.mismatches += 1
            with conn.begin():
                full = count_segments(conn, builtins, now, TZ, shop=shop)
            if full != counts:
                result.mismatches += 1
                diff = {k: (counts[k], full[k]) for k in full if full[k] != counts[k]}
                print(f"  round {round_}: incremental != full: {diff}", flush=True)
        result.rounds[way].append(timings)


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


def _apply(conn: Connection, changes: dict[str, Any], shop: str, writes: str) -> None:
    p = profiles.c
    last = p.last_order_at.type
    buy_values = {
        "number_of_orders": p.number_of_orders + 1,
        "first_order_at": func.coalesce(p.first_order_at, bindparam("last", type_=last)),
    }
    if writes == "bulk":
        if changes["buys"]:
            update_rows(
                conn,
                profiles,
                changes["buys"],
                key="pid",
                column="id",
                types={"spent": Float(), "last": last},
                values=lambda s: {
                    "number_of_orders": p.number_of_orders + 1,
                    "amount_spent": p.amount_spent + s["spent"],
                    "last_order_at": s["last"],
                    "first_order_at": func.coalesce(p.first_order_at, s["last"]),
                },
            )
        if changes["refunds"]:
            update_rows(
                conn,
                profiles,
                changes["refunds"],
                key="pid",
                column="id",
                values=lambda s: {
                    "number_of_orders": case(
                        (p.number_of_orders > 0, p.number_of_orders - 1), else_=0
                    )
                },
            )
        if changes["tags"]:
            update_rows(
                conn,
                profiles,
                [{"pid": pid, "prefecture": "東京都"} for pid in changes["tags"]],
                key="pid",
                column="id",
            )
    else:
        if changes["buys"]:
            conn.execute(
                update(profiles)
                .where(p.id == bindparam("pid"))
                .values(
                    amount_spent=p.amount_spent + bindparam("spent"),
                    last_order_at=bindparam("last", type_=last),
                    **buy_values,
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
                update(profiles).where(p.id == bindparam("pid")).values(prefecture="東京都"),
                [{"pid": pid} for pid in changes["tags"]],
            )
    if changes["tags"]:
        tagged = [
            {"profile_id": pid, "shop": shop, "attr": "tag", "value": changes["tag"]}
            for pid in changes["tags"]
        ]
        if writes == "bulk":
            insert_rows(conn, profile_values, tagged)
        else:
            conn.execute(insert(profile_values), tagged)


# -- running -------------------------------------------------------------------------------


def shop_names(n: int) -> list[str]:
    return [f"shop-{i}" for i in range(n)]


def describe(layout: Layout) -> str:
    shops = len(layout.shops)
    return f"{shops} shop{'s' if shops > 1 else ''}, {layout.total:,} profiles"


def sqlite(args: argparse.Namespace, layout: Layout, shop: str) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="omnicrm-bench-segments-"))
    try:
        path = tmp / "store.db"
        store = Store.open(f"sqlite:///{path}")
        ids = layout.ids(shop)
        result = Result("sqlite", describe(layout), len(ids))
        result.load_s, _ = _timed(lambda: load_sqlite(path, layout, args.seed))
        measure(store, shop, ids, args, result)
        store.close()
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def postgresql(args: argparse.Namespace, layout: Layout, shop: str) -> Result | None:
    admin_url = make_url(args.pg_url)
    try:
        with _database(args.pg_url) as name:
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            store = Store.open(url)
            ids = layout.ids(shop)
            result = Result("postgresql", describe(layout), len(ids))
            result.load_s, _ = _timed(lambda: load_postgres(url, layout, args.seed))
            measure(store, shop, ids, args, result)
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


PARTS = {
    "before": "count them before",
    "update": "the change (their columns, tags)",
    "rescore": "their RFM and lifecycle",
    "after": "count them after, apply",
    "recount": "the counting alone",
    "record+commit": "(after: history, commit)",
}


def report(results: list[Result], args: argparse.Namespace) -> None:
    """The figures of one backend: one column per store (the shop measured in a store of
    several shops, then the same shop in a store of its own)."""

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    first = results[0]
    print(f"{first.backend}: shop-0 ({first.profiles:,} profiles) in", flush=True)
    rows: list[tuple[str, list[str]]] = [
        ("store", [r.store for r in results]),
        ("(not timed: generating, loading)", [f"{r.load_s:.1f} s" for r in results]),
        ("full scoring of the shop", [f"{r.scoring_s:.2f} s" for r in results]),
        (
            f"full recount, 20 built-ins (median of {args.repeat})",
            [f"{r.full:.3f} s" for r in results],
        ),
    ]
    for writes in first.rounds:
        label = "" if len(first.rounds) == 1 else f" [{writes} writes]"
        rows.append(
            (
                f"incremental, {args.changed:,} changed{label}",
                [ms(r.incremental(writes)) for r in results],
            )
        )
        rows += [
            (f"  {what}", [ms(r.part(writes, key)) for r in results]) for key, what in PARTS.items()
        ]
    width = max(len(label) for label, _ in rows)
    for label, cells in rows:
        print(f"  {label:<{width}}  " + "  ".join(f"{c:>26}" for c in cells))
    for r in results:
        goal = f"full < {FULL_GOAL:.0f} s: {'ok' if r.full < FULL_GOAL else 'MISSED'}, "
        inc = "ok" if r.incremental() < INCREMENTAL_GOAL else "MISSED"
        check = "all equal to a full recount" if not r.mismatches else f"{r.mismatches} WRONG"
        print(
            f"  {r.store}: goals: {goal if r.backend == 'sqlite' else ''}"
            f"incremental < {INCREMENTAL_GOAL * 1000:.0f} ms: {inc}; incremental counts: {check}"
        )
        for writes, rounds in r.rounds.items():
            runs = ", ".join(f"{x['total'] * 1000:.0f}" for x in rounds)
            print(f"    incremental rounds [{writes}], ms: {runs}")
    shown = ", ".join(f"{k} {v:,}" for k, v in first.counts.items())
    print(f"  counts: {shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--profiles", type=int, default=1_000_000, help="profiles in the store, all shops"
    )
    parser.add_argument(
        "--shops",
        type=int,
        default=1,
        help="shops sharing the store (the profiles spread evenly); with more than one, "
        "shop-0 is measured there and again in a store holding only it",
    )
    parser.add_argument("--changed", type=int, default=1000, help="profiles changed per round")
    parser.add_argument("--rounds", type=int, default=5, help="incremental rounds")
    parser.add_argument("--repeat", type=int, default=5, help="full recounts")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--writes",
        choices=[*WRITES, "both"],
        default="bulk",
        help="how the change writes the profiles: as the refresh does (bulk), the "
        "executemany it did before, or both, taking turns (--rounds of each)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://127.0.0.1:5432/test",
        help="a PostgreSQL server's admin URL; the benchmark creates and drops its database",
    )
    parser.add_argument("--seed", type=int, default=20250616)
    args = parser.parse_args(argv)
    if args.shops < 1 or args.profiles < args.shops:
        parser.error("--shops must be 1 or more, and at most --profiles")
    shared = Layout.of(shop_names(args.shops), args.profiles // args.shops)
    layouts = [shared]
    if args.shops > 1:
        layouts.append(Layout.of(shop_names(1), args.profiles // args.shops))
    print(
        f"segment count benchmark: {describe(shared)}, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__},"
        f" {os.cpu_count()} CPUs, load average {_load()}",
        flush=True,
    )
    ok = True
    if args.backend in ("sqlite", "both"):
        results = [sqlite(args, layout, "shop-0") for layout in layouts]
        report(results, args)
        ok = ok and all(r.ok for r in results)
    if args.backend in ("postgresql", "both"):
        found = [postgresql(args, layout, "shop-0") for layout in layouts]
        pg = [r for r in found if r is not None]
        if pg:
            print(f"  server: {_pg_settings(args.pg_url)}")
            report(pg, args)
            ok = ok and all(r.ok for r in pg)
    print(f"load average at the end {_load()}")
    return 0 if ok else 1


def _pg_settings(url: str) -> str:
    """The server's size, which decides whether the changed profiles are read from disk."""
    with psycopg.connect(_libpq(url)) as db:
        found = [
            f"{name} {db.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("server_version", "shared_buffers", "work_mem")
        ]
    return ", ".join(found)


def _load() -> str:
    """The machine's load: figures taken under load are not comparable with idle ones."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
