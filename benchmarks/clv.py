"""Predicted CLV: seconds for rfm_summary, the BG/NBD fit and the Gamma-Gamma fit.

Three parts, each printing its figures:

- ``cdnow``: the CDNOW sample (2,357 customers; calibration to 1997-09-30, weeks),
  with the fitted parameters beside the published ones;
- ``synthetic``: 1,000,000 customers simulated from a BG/NBD process with known
  parameters (and Gamma-Gamma spend), as transactions with dates; the recovered
  parameters are printed beside the true ones, and the BG/NBD fit is timed beside the
  ``lifetimes`` package's ``BetaGeoFitter`` on the same arrays (in a virtualenv of its
  own, ``benchmarks/.venv-lifetimes``, made on first use). Goal: at least twice as fast,
  the same parameters to three decimals (the exit status is 1 otherwise);
- ``store``: the whole pipeline on a store: N orders (default 1,000,000) written
  straight into a fresh SQLite or PostgreSQL database, then ``score_clv`` (read,
  summary, fits, set-based write of every profile's score) and each purchase report
  timed.

    .venv/bin/python benchmarks/clv.py                      # cdnow + synthetic
    .venv/bin/python benchmarks/clv.py synthetic --customers 100000
    .venv/bin/python benchmarks/clv.py synthetic --no-lifetimes
    .venv/bin/python benchmarks/clv.py store --backend both --orders 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import venv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.core.store.schema import orders
from omnicrm.crm.analytics import reports
from omnicrm.crm.analytics.clv import (
    BgNbd,
    GammaGamma,
    TransactionColumns,
    rfm_summary,
)
from omnicrm.crm.analytics.scoring import score_clv
from omnicrm.crm.schema import profile_members, profiles

SHOP = DEFAULT_SHOP  # the store holds one shop

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "cdnow"
CDNOW = REFERENCE / "CDNOW_sample.txt"
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# Synthetic truth: BG/NBD (rates per week) and Gamma-Gamma spend.
TRUE_BGNBD = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}
TOKYO = ZoneInfo("Asia/Tokyo")
# lifetimes as it was measured: its last release, with the numpy and pandas of its time.
LIFETIMES_VENV = Path(__file__).resolve().parent / ".venv-lifetimes"
LIFETIMES_PINS = [
    "lifetimes==0.11.3",
    "numpy==1.26.4",
    "pandas==2.0.3",
    "scipy==1.13.1",
    "autograd==1.9.1",
    "dill==0.4.1",
]
LIFETIMES_SCRIPT = Path(__file__).resolve().parent / "lifetimes_fit.py"
SPEEDUP_GOAL = 2.0


def timed(label: str, fn: Callable[[], Any], width: int = 28) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"  {label:<{width}} {time.perf_counter() - started:8.3f} s")
    return result


def show_params(model: BgNbd, truth: dict[str, float], what: str) -> None:
    print(f"  {'parameter':<10} {'fitted':>10} {'(3 dp)':>8} {what:>10}")
    for name, want in truth.items():
        value = getattr(model, name)
        print(f"  {name:<10} {value:10.4f} {round(value, 3):8.3f} {want:10.4f}")


# --------------------------------------------------------------------------- CDNOW


def cdnow() -> None:
    if not CDNOW.is_file():
        print(f"CDNOW: {CDNOW} not found (../shared/reference is absent); skipped")
        return
    rows = []
    for line in CDNOW.read_text().splitlines():
        _master, sample_id, ymd, _cds, dollars = line.split()
        rows.append(
            (int(sample_id), dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:])), float(dollars))
        )
    print(f"CDNOW sample: {len(rows):,} transactions")
    summary = timed("rfm_summary", lambda: rfm_summary(rows, dt.date(1997, 9, 30)))
    print(f"  {len(summary):,} customers, {int(summary.x.sum()):,} repeat purchases")
    model = timed("BG/NBD fit", lambda: BgNbd.fit(summary.x, summary.t_x, summary.T))
    gg = timed("Gamma-Gamma fit", lambda: GammaGamma.fit(summary.x, summary.m))
    show_params(model, PUBLISHED, "published")
    print(f"  log-likelihood {model.log_likelihood:.2f} (published -9582.4)")
    print(
        f"  Gamma-Gamma p={gg.p:.3f} q={gg.q:.3f} v={gg.v:.3f} (Fader & Hardie: 6.25, 3.74, 15.44)"
    )


# --------------------------------------------------------------------------- synthetic


def simulate(n: int, seed: int) -> tuple[TransactionColumns, np.datetime64, int]:
    """Transactions of ``n`` customers drawn from BG/NBD + Gamma-Gamma.

    Each customer's first purchase falls in the first 13 weeks; calibration ends 39
    weeks after the start (as in CDNOW). While alive, purchases arrive as a Poisson
    process (rate ~ Gamma(r, alpha) per week); after each repeat purchase the customer
    drops out with probability p ~ Beta(a, b). Spends are Gamma(p, nu), nu ~ Gamma(q, v).
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01", "D")
    end_week = 39.0
    first = rng.uniform(0.0, 13.0, n)  # weeks since start
    big_t = end_week - first
    lam = rng.gamma(TRUE_BGNBD["r"], 1.0 / TRUE_BGNBD["alpha"], n)
    p_drop = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], n)
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["v"], n)

    ids = [np.arange(n)]
    weeks = [first]
    # Repeat purchases, step by step for the customers still buying.
    active = np.arange(n)
    clock = np.zeros(n)
    while active.size:
        clock[active] += rng.exponential(1.0 / lam[active])
        inside = clock[active] <= big_t[active]
        active = active[inside]
        ids.append(active)
        weeks.append(first[active] + clock[active])
        active = active[rng.random(active.size) >= p_drop[active]]
    cust = np.concatenate(ids)
    at = np.concatenate(weeks)
    days = start + np.floor(at * 7).astype("timedelta64[D]")
    amounts = rng.gamma(TRUE_GG["p"], 1.0 / nu[cust])
    return (
        TransactionColumns(cust, days, amounts),
        start + np.timedelta64(int(end_week * 7), "D"),
        cust.size,
    )


def synthetic(n: int, seed: int, lifetimes: Path | None) -> bool:
    """Prints the figures; False when the comparison with lifetimes misses its goal."""
    print(f"synthetic: {n:,} customers from BG/NBD {TRUE_BGNBD} and Gamma-Gamma {TRUE_GG}")
    columns, end, count = timed("simulate (not the product)", lambda: simulate(n, seed))
    print(f"  {count:,} transactions")
    summary = timed("rfm_summary", lambda: rfm_summary(columns, end))
    print(f"  {len(summary):,} customers, {int((summary.x > 0).sum()):,} with repeat purchases")
    fit = partial(BgNbd.fit, summary.x, summary.t_x, summary.T)
    model = timed("BG/NBD fit", fit)
    gg = timed("Gamma-Gamma fit", lambda: GammaGamma.fit(summary.x, summary.m))
    show_params(model, TRUE_BGNBD, "true")
    for name, want in TRUE_GG.items():
        print(f"  {name:<10} {getattr(gg, name):10.4f} {want:10.4f}")
    print(
        "  (purchases are counted per day, as in production: two on one day are one,"
        " which nudges the rate estimates down slightly)"
    )
    if lifetimes is None:
        return True
    return against_lifetimes(summary.x, summary.t_x, summary.T, fit, lifetimes)


def against_lifetimes(
    x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, fit: Callable[[], BgNbd], python: Path
) -> bool:
    """lifetimes' BetaGeoFitter and BgNbd.fit on the same arrays, in the same run.

    omnicrm's fit runs right before and right after lifetimes' (so both see the same
    machine), and the slower of its two times counts. Only the fits are timed: not
    starting the interpreter, importing lifetimes or loading the arrays.
    """
    print(f"BG/NBD on {x.size:,} customers: omnicrm beside lifetimes ({python})")
    with tempfile.TemporaryDirectory(prefix="omnicrm-clv-") as folder:
        arrays = Path(folder) / "rfm.npz"
        np.savez(arrays, x=x, t_x=t_x, T=big_t)
        before, ours = _seconds(fit)
        done = subprocess.run(
            [str(python), str(LIFETIMES_SCRIPT), str(arrays)],
            capture_output=True,
            text=True,
            check=False,
        )
        after, _ = _seconds(fit)
    if done.returncode != 0:
        print(f"  lifetimes failed (exit {done.returncode}):\n{done.stderr.strip()}")
        return False
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    versions = ", ".join(f"{k} {v}" for k, v in theirs["versions"].items())
    omnicrm_s, lifetimes_s = max(before, after), float(theirs["seconds"])
    print(f"  lifetimes ({versions})")
    print(f"  {'':<10} {'omnicrm':>10} {'lifetimes':>10}")
    print(f"  {'seconds':<10} {omnicrm_s:10.2f} {lifetimes_s:10.2f}")
    print(f"  (omnicrm before and after lifetimes: {before:.2f} s, {after:.2f} s)")
    same = True
    for name in ("r", "alpha", "a", "b"):
        mine, other = getattr(ours, name), float(theirs["params"][name])
        agree = round(mine, 3) == round(other, 3)
        same = same and agree
        print(f"  {name:<10} {mine:10.4f} {other:10.4f}  {'same' if agree else 'DIFFERENT'} (3 dp)")
    speedup = lifetimes_s / omnicrm_s
    ok = speedup >= SPEEDUP_GOAL and same
    print(
        f"  omnicrm is {speedup:.1f}x as fast as lifetimes (goal >= {SPEEDUP_GOAL:g}x,"
        f" same parameters to 3 dp): {'ok' if ok else 'MISSED'}"
    )
    return ok


def _seconds(fn: Callable[[], BgNbd]) -> tuple[float, BgNbd]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def lifetimes_python(given: str | None) -> Path:
    """The interpreter that has lifetimes: ``given``, or the benchmark's own virtualenv
    (made, with lifetimes and its pins installed, on first use)."""
    if given:
        return Path(given)
    bindir = "Scripts" if os.name == "nt" else "bin"
    python = LIFETIMES_VENV / bindir / ("python.exe" if os.name == "nt" else "python")
    if not python.exists():
        print(f"making {LIFETIMES_VENV} for lifetimes ({', '.join(LIFETIMES_PINS)})", flush=True)
        venv.create(LIFETIMES_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *LIFETIMES_PINS], check=True
        )
    return python


# --------------------------------------------------------------------------- store


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="omnicrm-clv-"))
        try:
            yield f"sqlite:///{folder / 'bench.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = create_engine(make_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"omnicrm_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(store: Store, n_orders: int, seed: int) -> int:
    """n_orders orders (9 in 10 paid or fulfilled) of n_orders/4 customers, each its own
    profile, over three years; written with plain INSERTs (not timed)."""
    rng = np.random.default_rng(seed)
    n_customers = max(n_orders // 4, 1)
    now = dt.datetime.now(dt.UTC)
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    # Rows written around the store: record the connection's shop as a sync would.
    assert store.shop_of("shop") == SHOP
    with store.engine.begin() as conn:
        for lo in range(0, n_customers, 50_000):
            ids = range(lo + 1, min(n_customers, lo + 50_000) + 1)
            conn.execute(
                insert(profiles), [{"id": i, "shop": SHOP, "updated_at": now} for i in ids]
            )
            conn.execute(
                insert(profile_members),
                [
                    {
                        "shop": SHOP,
                        "connection": "shop",
                        "record_id": f"c{i}",
                        "profile_id": i,
                        "joined_at": now,
                    }
                    for i in ids
                ],
            )
    # Skewed: a few customers buy often, most once or twice.
    weights = rng.gamma(0.5, 1.0, n_customers)
    customer = rng.choice(n_customers, n_orders, p=weights / weights.sum()) + 1
    seconds = rng.integers(0, 3 * 365 * 86400, n_orders)
    amount = rng.integers(500, 30_000, n_orders)
    status = rng.choice(
        ["paid", "fulfilled", "cancelled", "pending"], n_orders, p=[0.5, 0.4, 0.05, 0.05]
    )
    channel = rng.choice(["web", "pos", "app"], n_orders, p=[0.5, 0.3, 0.2])
    zero = Decimal(0)
    with store.engine.begin() as conn:
        for lo in range(0, n_orders, 50_000):
            batch = []
            for i in range(lo, min(n_orders, lo + 50_000)):
                at = start + dt.timedelta(seconds=int(seconds[i]))
                total = Decimal(int(amount[i]))
                batch.append(
                    {
                        "shop": SHOP,
                        "connection": "shop",
                        "id": f"o{i}",
                        "updated_at": at,
                        "customer_id": f"c{customer[i]}",
                        "channel": str(channel[i]),
                        "status": str(status[i]),
                        "placed_at": at,
                        "currency": "JPY",
                        "subtotal": total,
                        "discount_total": zero,
                        "shipping_total": zero,
                        "tax_total": zero,
                        "total": total,
                        "raw": {},
                        "synced_at": now,
                    }
                )
            conn.execute(insert(orders), batch)
        conn.exec_driver_sql("ANALYZE")
    return n_customers


def store_bench(backend: str, n_orders: int, pg_url: str, seed: int) -> None:
    with database(backend, pg_url) as url:
        store = Store.open(url)
        try:
            print(f"store ({backend}): {n_orders:,} orders")
            n_customers = timed("fill (not timed work)", lambda: fill(store, n_orders, seed))
            print(f"  {n_customers:,} customers")
            now = dt.datetime.now(dt.UTC)
            with store.engine.begin() as conn:
                fit = timed(
                    "score_clv, end to end", lambda: score_clv(conn, now, shop=SHOP, tz=TOKYO)
                )
            print(f"  {fit.status}: {fit.message}")
            for step, seconds in fit.seconds.items():
                print(f"    {step:<26} {seconds:8.3f} s")
            with store.engine.connect() as conn:
                for make in (
                    reports.ltv_customers,
                    reports.ltv_cohorts,
                    reports.repeat_rate,
                    reports.f2_conversion,
                    reports.cohort_retention,
                    reports.average_order_value,
                    reports.purchase_interval,
                ):
                    timed(
                        f"report {make.__name__}", partial(make, conn, shop=SHOP, now=now, tz=TOKYO)
                    )
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "part", nargs="*", help="cdnow, synthetic, store (default: cdnow synthetic)"
    )
    parser.add_argument("--customers", type=int, default=1_000_000, help="synthetic customers")
    parser.add_argument("--orders", type=int, default=1_000_000, help="store: orders")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--no-lifetimes", action="store_true", help="synthetic: skip the comparison"
    )
    parser.add_argument(
        "--lifetimes-python",
        metavar="PATH",
        help=f"an interpreter with lifetimes installed (default: {LIFETIMES_VENV}, made"
        " on first use)",
    )
    args = parser.parse_args(argv)
    # (argparse checks a default list against choices as one value, so check here.)
    parts = args.part or ["cdnow", "synthetic"]
    unknown = sorted(set(parts) - {"cdnow", "synthetic", "store"})
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}: choose cdnow, synthetic, store")
    ok = True
    if "cdnow" in parts:
        cdnow()
    if "synthetic" in parts:
        python = None if args.no_lifetimes else lifetimes_python(args.lifetimes_python)
        ok = synthetic(args.customers, args.seed, python)
    if "store" in parts:
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            store_bench(backend, args.orders, args.pg_url, args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
