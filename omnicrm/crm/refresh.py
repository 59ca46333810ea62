"""The CRM refresh: from what the syncs wrote to current profiles, scores and counts.

Every write, deletion and redaction of a source customer (or of an order) queues that
customer in ``profile_changes`` in the same transaction, so nothing a sync did can be
missed, even across a crash. A refresh drains the queue in one transaction:

1. identity resolution re-resolves the queued customers and the profiles they reach;
2. order points are applied for those customers;
3. the touched profiles are rebuilt (identity fields, purchases, attributes, points
   balance), and points past their expiry date expire;
4. their RFM scores and lifecycle stages are set;
5. every segment is recounted, from the last counts moved by what the touched
   profiles did when that is exact, in full otherwise, and the counts appended to the
   history the terminal UI draws.

Each refresh also expires the points whose date has come (see docs/points.md).
``full`` rescoring everything and recounts in full (the nightly job also fits predicted
CLV and reconciles balances); ``rebuild`` re-resolves every identity
from scratch (after the ``[identity]`` rules change).

A refresh works on one shop (``CrmSettings.shop``): it drains that shop's changes only
and passes the shop to everything it calls, so a refresh of shop A neither waits for
nor drains shop B's queue (on PostgreSQL; SQLite has a single writer anyway).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.heap import without_gc
from omnicrm.core.store import Store
from omnicrm.crm import identity
from omnicrm.crm.analytics.scoring import score_clv
from omnicrm.crm.analytics.settings import AnalyticsSettings
from omnicrm.crm.identity import IdentitySettings
from omnicrm.crm.identity.normalize import numbers_remembered
from omnicrm.crm.points import apply_order_points, expire
from omnicrm.crm.points.settings import PointsSettings
from omnicrm.crm.profiles import rebuild_profiles
from omnicrm.crm.segments import (
    begin_recount,
    ensure_builtin,
    prune_history,
    record_counts,
    score_profiles,
)
from omnicrm.crm.settings import CrmSection

log = logging.getLogger("omnicrm.crm")

# With the shop's key, one lock per shop: two refreshes of a shop at once would drain
# the same queue, while refreshes of two shops touch disjoint rows and may overlap.
_PG_LOCK_KEY = 0x6F6D6E69  # 'omni'


@dataclass(frozen=True)
class CrmSettings:
    """What a refresh of one shop needs from the config."""

    shop: str = DEFAULT_SHOP
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    points: PointsSettings = field(default_factory=PointsSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    crm: CrmSection = field(default_factory=CrmSection)
    timezone: str = "Asia/Tokyo"
    currency: str = "JPY"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did."""

    full: bool
    profiles_touched: int
    profiles_removed: int
    counts: dict[str, int]
    incremental_count: bool
    seconds: float


def refresh(
    store: Store,
    settings: CrmSettings | None = None,
    *,
    full: bool = False,
    rebuild: bool = False,
    now: dt.datetime | None = None,
) -> RefreshResult:
    """Drain the shop's change queue into its profiles, scores and segment counts (one
    transaction)."""
    settings = settings or CrmSettings()
    now = now or dt.datetime.now(dt.UTC)
    tz = settings.tz
    shop = settings.shop
    started = time.perf_counter()
    full = full or rebuild
    # A first refresh holds millions of objects (records, keys, rows), none in a reference
    # cycle: with the collector on, its collections rescanned them all again and again
    # (benchmarks/README.md, first refresh). Resolution and the profile rebuild read the
    # same phone numbers: each is validated once.
    with without_gc(), numbers_remembered():
        with store.engine.begin() as conn, _page_cache(conn, store.dialect):
            _serialise(conn, store.dialect, shop)
            ensure_builtin(conn, now, shop=shop)
            plan = identity.plan(conn, settings.identity, shop=shop, everything=rebuild)
            recount = begin_recount(conn, now, tz, None if full else plan.reach, shop=shop)
            # New profiles are inserted whole by the rebuild, not bare and then updated.
            resolved = identity.apply(conn, plan, now, new_rows=False)
            touched = sorted(resolved.touched)
            # The profiles the new entries reach are all touched: the rebuild writes
            # their balances.
            if rebuild:
                apply_order_points(conn, settings.points, now, shop=shop, balances=False)
            else:
                by_connection: dict[str, list[str]] = defaultdict(list)
                for connection, record_id in plan.changed:
                    by_connection[connection].append(record_id)
                for connection, ids in sorted(by_connection.items()):
                    apply_order_points(
                        conn, settings.points, now, connection, ids, shop=shop, balances=False
                    )
            rebuild_profiles(
                conn,
                None if rebuild else touched,
                shop=shop,
                now=now,
                tz=tz,
                region=settings.identity.region,
                new=resolved.created,
            )
            # Every refresh, not only the nightly one: a first import brings years-old
            # earns already past their date, and balances must never hold them.
            expire(conn, now, settings.points, shop=shop)
            if full:
                clv = settings.analytics
                score_clv(
                    conn,
                    now,
                    clv.clv_horizon_weeks,
                    clv.clv_discount,
                    shop=shop,
                    tz=tz,
                    min_customers=clv.clv_min_customers,
                    min_repeaters=clv.clv_min_repeaters,
                )
            score_profiles(conn, now, None if full else touched, shop=shop, tz=tz)
            counts = recount.finish(conn)
            record_counts(conn, counts, now, shop=shop)
            if full:
                prune_history(conn, now, tz, shop=shop)
        removed = len(resolved.removed)
        del plan, resolved  # gone before the collector resumes, which would scan them
    result = RefreshResult(
        full=full,
        profiles_touched=len(touched),
        profiles_removed=removed,
        counts=counts,
        incremental_count=bool(recount.incremental),
        seconds=time.perf_counter() - started,
    )
    log.info(
        "crm refresh of shop %s: %d profile(s) updated, %d removed, %d segment(s) counted in %.2fs",
        shop,
        result.profiles_touched,
        result.profiles_removed,
        len(counts),
        result.seconds,
    )
    return result


# SQLite's page cache while a refresh runs, in KiB (SQLite's default: 2,000). A first
# refresh writes and reads back tables of millions of rows in one transaction: with the
# default, the dirty pages spilled and were read back through the operating system
# (benchmarks/README.md, the first refresh). Pages are taken only as needed.
_SQLITE_CACHE_KIB = 256 * 1024


@contextlib.contextmanager
def _page_cache(conn: Connection, dialect: str) -> Iterator[None]:
    """A large page cache on SQLite for the block, the connection's own restored after
    (it goes back to the pool)."""
    if dialect != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before) if before is not None else -2000}")


def _serialise(conn: Connection, dialect: str, shop: str) -> None:
    """Wait for any other refresh of ``shop`` so its queue is drained once (on SQLite,
    for any other writer: it has one at a time)."""
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:key AS integer), CAST(:shop AS integer))"),
            {"key": _PG_LOCK_KEY, "shop": shop_lock_key(shop)},
        )


def shop_lock_key(shop: str) -> int:
    """``shop`` as the second key of a PostgreSQL advisory lock (a signed 32-bit int,
    the same in every process; two shops sharing one merely wait for each other)."""
    crc = zlib.crc32(shop.encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc
