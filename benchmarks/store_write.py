"""Store write throughput against a bare-driver floor, on SQLite and PostgreSQL.

Writes N order lines (orders of 1-4 lines, 2.5 on average: 1,000,000 lines are 400,000
orders) through ``Store.write_batch`` in batches of 1,000 orders, each with a checkpoint
and the run counters, exactly as the sync engine calls it. The floor writes the very same
rows, already converted to tuples, into identical tables (built by the same migrations in
a database of their own) with the bare driver: ``executemany`` for sqlite3, ``COPY`` for
psycopg 3, one transaction per batch like the store. Only the writes are timed: records
are built (and the floor's tuples converted) between the timed calls, chunk by chunk, so
memory stays bounded. Store and floor batches alternate, so both see the same machine.

    .venv/bin/python benchmarks/store_write.py                  # 1,000,000 lines, both
    .venv/bin/python benchmarks/store_write.py --lines 20000    # a quick check
    .venv/bin/python benchmarks/store_write.py --backend sqlite --profile /tmp/store.prof

The goal: the store reaches at least 0.7 of the floor's rows/s on each backend at 1,000,000
lines. At the end every row of both databases is compared, in primary-key order.
``--shops N`` sends the batches round N connections, each of a shop of its own (issue 12:
every order carries its shop, the floor writes the same column).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Dialect, Table, create_engine, select, text
from sqlalchemy.engine import make_url

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Order
from omnicrm.core.store import RunStatus, Store, StreamState, rows
from omnicrm.core.store.schema import json_text, order_lines, orders
from omnicrm.core.store.store import _sqlite_pragmas

GOAL = 0.7
CONNECTION = "bench"
JST = dt.timezone(dt.timedelta(hours=9))
START = dt.datetime(2024, 1, 1, 9, 0, tzinfo=JST)
PRODUCTS = [
    "宇治抹茶 100g",
    "ほうじ茶ティーバッグ 20包",
    "玄米茶 200g【季節限定】",
    "有田焼 湯呑み",
    "和紅茶ギフトセット",
    "煎茶 八女 80g",
]
NOTES = [None, None, "ギフト包装希望", "置き配希望", "のし: 御中元"]
TAGS = ["リピーター", "VIP", "初回購入", "楽天経由", "LINE友だち"]


# -- data --------------------------------------------------------------------------------


def generate(n_lines: int, batch: int, seed: int) -> Iterator[list[Order]]:
    """Batches of orders with ``n_lines`` lines in all, the same for the same seed."""
    rng = random.Random(seed)
    made = 0
    i = 0
    chunk: list[Order] = []
    sizes: list[int] = []
    while made < n_lines:
        if not sizes:  # each group of 4 orders has 1, 2, 3 and 4 lines: 2.5 on average
            sizes = [1, 2, 3, 4]
            rng.shuffle(sizes)
        size = min(sizes.pop(), n_lines - made)
        chunk.append(_order(rng, i, size))
        made += size
        i += 1
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _order(rng: random.Random, i: int, n_lines: int) -> Order:
    oid = f"gid://shopify/Order/{5_000_000_000_000 + i}"
    channel = rng.choice(("web", "web", "pos", "app"))
    placed = START + dt.timedelta(seconds=60 * i + rng.randrange(60), microseconds=i % 997)
    lines = []
    subtotal = Decimal(0)
    discounts = Decimal(0)
    for n in range(n_lines):
        price = Decimal(rng.choice((330, 540, 1080, 1980, 3240)))
        quantity = rng.randint(1, 3)
        discount = Decimal(100) if rng.random() < 0.2 else Decimal(0)
        subtotal += price * quantity
        discounts += discount
        product = rng.randrange(500)
        lines.append(
            {
                "sku": f"SKU-{product:05d}",
                "product_id": f"gid://shopify/Product/{8_000_000_000 + product}",
                "variant_id": f"gid://shopify/ProductVariant/{9_000_000_000 + product * 3 + n}",
                "product_name": PRODUCTS[product % len(PRODUCTS)],
                "quantity": quantity,
                "unit_price": price,
                "discount": discount,
            }
        )
    shipping = Decimal(0) if subtotal >= 5000 else Decimal(550)
    tax = ((subtotal - discounts) * Decimal("0.08")).quantize(Decimal(1))
    return Order.model_validate(
        {
            "id": oid,
            "name": f"#{1001 + i}",
            "customer_id": f"gid://shopify/Customer/{7_000_000_000 + rng.randrange(50_000)}",
            "channel": channel,
            "location": "渋谷店" if channel == "pos" else None,
            "status": rng.choice(("paid", "paid", "fulfilled", "cancelled")),
            "placed_at": placed,
            "updated_at": placed + dt.timedelta(minutes=rng.randrange(1, 600)),
            "subtotal": subtotal,
            "discount_total": discounts,
            "shipping_total": shipping,
            "tax_total": tax,
            "total": subtotal - discounts + shipping + tax,
            "lines": lines,
            "raw": {
                "id": oid,
                "name": f"#{1001 + i}",
                "note": rng.choice(NOTES),
                "tags": rng.sample(TAGS, rng.randrange(3)),
                "sourceName": channel,
                "processedAt": placed.isoformat(),
            },
        }
    )


def floor_tuples(
    dialect: Dialect,
    batch: Sequence[Order],
    connection: str = CONNECTION,
    shop: str = DEFAULT_SHOP,
) -> tuple[list[tuple[Any, ...]], ...]:
    """The batch's order and line rows as the driver takes them (not timed), with the
    shop the store writes on every order (the floor writes the same columns).

    Values are encoded by the columns' own SQLAlchemy types, as the store writes them;
    JSON is handed over as text.
    """
    now = dt.datetime.now(dt.UTC)

    def encode(table: Table, dicts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        procs: list[Callable[[Any], Any] | None] = []
        for column in table.columns:
            if column.name == "raw":
                procs.append(json_text)
            else:
                procs.append(column.type.dialect_impl(dialect).bind_processor(dialect))
        names = [column.name for column in table.columns]
        return [
            tuple(p(d[k]) if p else d[k] for k, p in zip(names, procs, strict=True)) for d in dicts
        ]

    order_dicts = [{**rows.order_row(connection, o, now), "shop": shop} for o in batch]
    line_dicts = [line for o in batch for line in rows.line_rows(connection, o)]
    return encode(orders, order_dicts), encode(order_lines, line_dicts)


# -- the two writers ---------------------------------------------------------------------


class Floor:
    def write(self, order_rows: list[tuple[Any, ...]], line_rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteFloor(Floor):
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        _sqlite_pragmas(self.conn, None)  # the store's own connection settings
        self.insert_orders = _insert_sql(orders, "?")
        self.insert_lines = _insert_sql(order_lines, "?")

    def write(self, order_rows: list[tuple[Any, ...]], line_rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(self.insert_orders, order_rows)
        self.conn.executemany(self.insert_lines, line_rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class PostgresFloor(Floor):
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(_libpq(url))
        self.copy_orders = _copy_sql(orders)
        self.copy_lines = _copy_sql(order_lines)
        self.analyzed = False

    def write(self, order_rows: list[tuple[Any, ...]], line_rows: list[tuple[Any, ...]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(self.copy_orders) as copy:
                for row in order_rows:
                    copy.write_row(row)
            if not self.analyzed:
                # As the store does (and autovacuum would, a minute later): without
                # statistics the lines' foreign-key checks may scan every order.
                cur.execute("ANALYZE orders")
            with cur.copy(self.copy_lines) as copy:
                for row in line_rows:
                    copy.write_row(row)
            if not self.analyzed:
                cur.execute("ANALYZE order_lines")
                self.analyzed = True

    def close(self) -> None:
        self.conn.close()


def _insert_sql(table: Table, mark: str) -> str:
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(mark for _ in table.columns)})'


def _copy_sql(table: Table) -> str:
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    return f'COPY "{table.name}" ({names}) FROM STDIN'


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- running -----------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    orders: int
    lines: int
    store_s: float
    floor_s: float
    prepare_s: float
    # CPU seconds of this process in the same calls: on a shared machine, wall seconds
    # include time spent waiting for a core, which the two sides need not share equally.
    store_cpu: float = 0.0
    floor_cpu: float = 0.0

    @property
    def rows(self) -> int:
        return self.orders + self.lines

    @property
    def ratio(self) -> float:
        return self.floor_s / self.store_s

    @property
    def cpu_ratio(self) -> float:
        return self.floor_cpu / self.store_cpu if self.store_cpu else 0.0


def run(
    backend: str,
    store_url: str,
    floor_url: str,
    floor: Callable[[], Floor],
    args: argparse.Namespace,
    profiler: cProfile.Profile | None,
) -> Result:
    shops = connection_shops(args.shops)
    store = Store.open(store_url, shops=shops)
    Store.open(floor_url).close()  # the identical, migrated tables of the floor
    writer = floor()
    dialect = store.engine.dialect
    store_s = floor_s = prepare_s = store_cpu = floor_cpu = 0.0
    n_orders = n_lines = 0
    connections = list(shops) or [CONNECTION]
    try:
        run_ids = {c: store.start_run(c, trigger="benchmark", full=True) for c in connections}
        t = time.perf_counter()
        for n, batch in enumerate(generate(args.lines, args.batch, args.seed)):
            # Batches go round the shops' connections, as syncs of several shops run.
            connection = connections[n % len(connections)]
            checkpoint = StreamState(batch[-1].updated_at, {"batch": n})
            t0 = time.perf_counter()
            c0 = time.process_time()
            prepare_s += t0 - t
            if profiler:
                profiler.enable()
            written = store.write_batch(
                connection,
                Stream.ORDERS,
                batch,
                checkpoint,
                run_id=run_ids[connection],
                read=len(batch),
            )
            if profiler:
                profiler.disable()
            t1 = time.perf_counter()
            store_cpu += time.process_time() - c0
            store_s += t1 - t0
            assert written == len(batch), (written, len(batch))

            order_rows, line_rows = floor_tuples(
                dialect, batch, connection, shops.get(connection, DEFAULT_SHOP)
            )
            t2 = time.perf_counter()
            c2 = time.process_time()
            prepare_s += t2 - t1
            writer.write(order_rows, line_rows)
            t = time.perf_counter()
            floor_cpu += time.process_time() - c2
            floor_s += t - t2
            n_orders += len(order_rows)
            n_lines += len(line_rows)
            if args.progress and n % 50 == 0:
                print(f"  {backend}: {n_lines:,} lines", file=sys.stderr, flush=True)
        for run_id in run_ids.values():
            store.finish_run(run_id, RunStatus.COMPLETE)
    finally:
        writer.close()
        store.close()
    _check_same(store_url, floor_url, n_orders, n_lines)
    return Result(backend, n_orders, n_lines, store_s, floor_s, prepare_s, store_cpu, floor_cpu)


def connection_shops(n: int) -> dict[str, str]:
    """``n`` connections, each in a shop of its own (none: the one connection in the
    default shop)."""
    if n <= 1:
        return {}
    return {f"{CONNECTION}{i}": f"shop{i:02d}" for i in range(n)}


def _check_same(store_url: str, floor_url: str, n_orders: int, n_lines: int) -> None:
    """Both databases hold the same rows (apart from ``synced_at``), every one of them.

    Rows are read in the order of each table's full primary key on both sides: ordered
    by a part of the key (say ``order_id`` alone), rows that tie come back in whatever
    order the database finds them, which may differ between the two databases.
    """
    for table in (orders, order_lines):
        cols = [c for c in table.columns if c.name != "synced_at"]
        query = select(*cols).order_by(*table.primary_key.columns)
        engines = [create_engine(url) for url in (store_url, floor_url)]
        try:
            with engines[0].connect() as store_conn, engines[1].connect() as floor_conn:
                both = [
                    conn.execution_options(yield_per=5000).execute(query)
                    for conn in (store_conn, floor_conn)
                ]
                count = 0
                for store_row, floor_row in zip_longest(*both):
                    if store_row != floor_row:
                        key = [c.name for c in table.primary_key.columns]
                        raise AssertionError(
                            f"the store and the floor hold different {table.name}: "
                            f"store {_key(store_row, key)}, floor {_key(floor_row, key)}"
                        )
                    count += 1
        finally:
            for engine in engines:
                engine.dispose()
        want = n_orders if table is orders else n_lines
        assert count == want, f"{table.name}: {count:,} rows in each, {want:,} written"


def _key(row: Any, key: list[str]) -> str:
    """The primary key of ``row`` (or that there is none), for a message."""
    if row is None:
        return "(no row)"
    return ", ".join(f"{name}={getattr(row, name)!r}" for name in key)


def sqlite(args: argparse.Namespace, profiler: cProfile.Profile | None) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="omnicrm-bench-"))
    try:
        store_path, floor_path = tmp / "store.db", tmp / "floor.db"
        return run(
            "sqlite",
            f"sqlite:///{store_path}",
            f"sqlite:///{floor_path}",
            lambda: SqliteFloor(floor_path),
            args,
            profiler,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def postgresql(args: argparse.Namespace, profiler: cProfile.Profile | None) -> Result:
    admin_url = make_url(args.pg_url)
    with _databases(args.pg_url, ["store", "floor"]) as (store_db, floor_db):
        store_url = admin_url.set(database=store_db).render_as_string(hide_password=False)
        floor_url = admin_url.set(database=floor_db).render_as_string(hide_password=False)
        return run(
            "postgresql",
            store_url,
            floor_url,
            lambda: PostgresFloor(floor_url),
            args,
            profiler,
        )


@contextmanager
def _databases(admin_url: str, names: list[str]) -> Iterator[list[str]]:
    """Fresh databases on the server of ``admin_url``, dropped afterwards."""
    prefix = f"omnicrm_bench_{uuid.uuid4().hex[:8]}"
    dbs = [f"{prefix}_{name}" for name in names]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for db in dbs:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
        yield dbs
    finally:
        with admin.connect() as conn:
            for db in dbs:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def report(result: Result) -> None:
    def line(what: str, seconds: float, cpu: float) -> str:
        return (
            f"  {what:<6} {seconds:8.2f} s  {result.rows / seconds:>11,.0f} rows/s"
            f"  {result.lines / seconds:>11,.0f} lines/s  (CPU {cpu:.2f} s)"
        )

    verdict = "ok" if result.ratio >= GOAL else "BELOW GOAL"
    print(f"{result.backend}: {result.orders:,} orders + {result.lines:,} lines", flush=True)
    print(line("floor", result.floor_s, result.floor_cpu))
    print(line("store", result.store_s, result.store_cpu))
    print(f"  ratio store/floor {result.ratio:.2f} (goal >= {GOAL}: {verdict})")
    if result.backend == "sqlite":
        # SQLite works in this process, so its CPU seconds are all of both sides' work;
        # a PostgreSQL server's are not counted.
        print(f"  ratio in CPU time {result.cpu_ratio:.2f} (what a loaded machine skews least)")
    print(f"  (not timed: building records and floor tuples {result.prepare_s:.1f} s)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000, help="order lines to write")
    parser.add_argument("--batch", type=int, default=1000, help="orders per write_batch call")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both", help="what to run"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://127.0.0.1:5432/test",
        help="a PostgreSQL server's admin URL; the benchmark creates and drops its databases",
    )
    parser.add_argument(
        "--shops",
        type=int,
        default=1,
        help="write round the connections of N shops (one connection each), batch by batch",
    )
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the store's writes to FILE")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)

    backends: list[Callable[[argparse.Namespace, cProfile.Profile | None], Result]] = []
    if args.backend in ("sqlite", "both"):
        backends.append(sqlite)
    if args.backend in ("postgresql", "both"):
        backends.append(postgresql)
    print(
        f"store write benchmark: {args.lines:,} order lines, {args.batch:,} orders per batch,"
        f" {max(args.shops, 1)} shop(s),"
        f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version},"
        f" psycopg {psycopg.__version__}",
        flush=True,
    )
    ok = True
    for bench in backends:
        profiler = cProfile.Profile() if args.profile else None
        result = bench(args, profiler)
        report(result)
        ok = ok and result.ratio >= GOAL
        if profiler:
            path = f"{args.profile}.{result.backend}"
            profiler.dump_stats(path)
            print(f"  profile of the store's writes: {path}")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
