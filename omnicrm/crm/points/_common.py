"""What the ledger's parts share: entry kinds, errors, and the SQL every writer runs."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Join,
    Select,
    String,
    and_,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from omnicrm.core.store import table_writers
from omnicrm.crm.profiles import joined_to_profiles
from omnicrm.crm.schema import crm_state, points_entries, profile_members, profiles
from omnicrm.errors import OmnicrmError

# The shop first: every entry belongs to one shop, and the ledger's key leads with it.
ENTRY_COLUMNS = (
    "shop",
    "source",
    "event_id",
    "connection",
    "customer_id",
    "kind",
    "points",
    "occurred_at",
    "expires_at",
    "order_id",
    "note",
)

# Ids of platforms and callers are at most 255 characters (as in the source tables);
# event_id has room for the prefixes the ledger puts before them.
MAX_ID = 255


class EntryKind(StrEnum):
    EARN = "earn"  # points earned on an order (or imported from a POS)
    REDEEM = "redeem"  # points spent
    REVERSE = "reverse"  # undoes an order's earn or redemption when it is cancelled
    EXPIRE = "expire"  # earned points not spent by their expiry date
    ADJUST = "adjust"  # an operator's correction or grant, either sign


class PointsError(OmnicrmError):
    """A points operation was refused."""


class UnknownProfileError(PointsError):
    """No profile has that id (or it has no source customer to hold points)."""


class InsufficientPointsError(PointsError):
    """A redemption asked for more points than the wallet holds."""

    def __init__(self, profile_id: int, requested: int, balance: int) -> None:
        self.profile_id = profile_id
        self.requested = requested
        self.balance = balance
        super().__init__(f"profile {profile_id} has {balance} points; cannot redeem {requested}")


class EventConflictError(PointsError):
    """An event id already recorded is being recorded again with different contents."""


@dataclass(frozen=True)
class Entry:
    """One row of the ledger."""

    id: int
    shop: str
    source: str
    event_id: str
    connection: str
    customer_id: str
    kind: EntryKind
    points: int
    occurred_at: dt.datetime
    expires_at: dt.datetime | None
    order_id: str | None
    note: str | None


def entry_from_row(row: Mapping[Any, Any]) -> Entry:
    return Entry(
        id=row["id"],
        shop=row["shop"],
        source=row["source"],
        event_id=row["event_id"],
        connection=row["connection"],
        customer_id=row["customer_id"],
        kind=EntryKind(row["kind"]),
        points=row["points"],
        occurred_at=row["occurred_at"],
        expires_at=row["expires_at"],
        order_id=row["order_id"],
        note=row["note"],
    )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _insert(conn: Connection) -> Insert:
    """INSERT into the ledger that skips a key another writer recorded meanwhile."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(points_entries).on_conflict_do_nothing(
            index_elements=["shop", "source", "event_id"]
        )
    return sqlite.insert(points_entries).on_conflict_do_nothing(
        index_elements=["shop", "source", "event_id"]
    )


def insert_select(conn: Connection, query: Select[Any]) -> int:
    """Insert the entries ``query`` selects (columns in ENTRY_COLUMNS order); how many."""
    # Callers filter out keys already present (NOT EXISTS) so PostgreSQL's sequence is
    # not spent on conflicts; ON CONFLICT only covers a concurrent writer.
    # ORDER BY event_id: a sort reads all its input before the first row is inserted. On
    # PostgreSQL the NOT EXISTS lookups could otherwise interleave with the inserts, and
    # a ledger the planner believes empty is then looked up by scanning it, new rows
    # included, once per order: quadratic. (SQLite buffers INSERT ... SELECT anyway.)
    ordered = query.order_by(query.selected_columns[ENTRY_COLUMNS.index("event_id")])
    statement = _insert(conn).from_select(list(ENTRY_COLUMNS), ordered)
    # SQLAlchemy keeps an INSERT's rowcount only when asked to.
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    written = max(int(result.rowcount), 0)
    _ensure_stats(conn, written)
    return written


def insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert entries given as dicts, in chunks."""
    statement = _insert(conn)
    for start in range(0, len(rows), 10_000):
        conn.execute(statement, list(rows[start : start + 10_000]))
    if rows:
        _ensure_stats(conn, len(rows))


# Rows written at once after which PostgreSQL's statistics of the ledger are renewed.
_RESTAT_ROWS = 10_000


def _ensure_stats(conn: Connection, written: int) -> None:
    """Keep PostgreSQL's planner statistics of the ledger true after a big write.

    The next statements of the same transaction (the redemptions after the earns of a
    first pass over a million orders) look keys up in the ledger. Planned on statistics
    of a ledger still empty, each lookup becomes a scan of it: quadratic. ANALYZE in this
    transaction counts its own new rows and samples a bounded number of them.
    """
    if conn.dialect.name != "postgresql" or written == 0:
        return
    if written >= _RESTAT_ROWS:
        conn.exec_driver_sql("ANALYZE points_entries")
    else:
        table_writers.writers(conn.engine).ensure_stats(conn, points_entries)


def max_entry_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(points_entries.c.id), 0))).scalar_one())


def member_join() -> Join:
    """points_entries joined to the profile member each entry hangs on."""
    return joined_to_profiles(points_entries)


def _wallet_sum() -> Any:
    """A profile's wallet total, correlated to the profiles row being updated."""
    return (
        select(func.coalesce(func.sum(points_entries.c.points), 0))
        .select_from(member_join())
        .where(profile_members.c.profile_id == profiles.c.id)
        .scalar_subquery()
    )


def refresh_where(conn: Connection, condition: ColumnElement[bool]) -> int:
    """Recompute profiles.points_balance of the profiles matching ``condition``."""
    result = conn.execute(update(profiles).where(condition).values(points_balance=_wallet_sum()))
    return max(int(result.rowcount), 0)


def refresh_since(conn: Connection, after_id: int, *, shop: str) -> int:
    """Recompute the balances of ``shop``'s profiles that entries newer than ``after_id``
    reach (a writer of another shop meanwhile is that shop's business)."""
    # Two steps: as one UPDATE ... WHERE id IN (SELECT ...), PostgreSQL may hash-join the
    # whole ledger even when nothing is new.
    touched = sorted(
        conn.execute(
            select(profile_members.c.profile_id)
            .select_from(member_join())
            # No shop filter here: one would tempt SQLite to walk the shop's ledger (or
            # the members) instead of the few new ids; the profiles updated are the shop's.
            .where(points_entries.c.id > after_id)
            .distinct()
        ).scalars()
    )
    return sum(
        refresh_where(
            conn, and_(profiles.c.shop == shop, profiles.c.id.in_(touched[start : start + 5000]))
        )
        for start in range(0, len(touched), 5000)
    )


def plus_months(value: dt.datetime, months: int) -> dt.datetime:
    """``value`` plus calendar months in UTC, the day clamped to the month's last one."""
    value = value.astimezone(dt.UTC)
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def sql_plus_months(conn: Connection, column: Any, months: int) -> Any:
    """``plus_months`` in SQL, for a UtcDateTime column; the same on both backends."""
    if conn.dialect.name == "postgresql":
        # Month arithmetic on timestamptz follows the session's time zone: do it in UTC.
        # PostgreSQL clamps the day (Jan 31 + 1 month = Feb 28/29), as plus_months does.
        interval: Any = literal_column(f"INTERVAL '{int(months)} months'")
        return func.timezone("UTC", func.timezone("UTC", column) + interval)
    # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC). date(x, '+N months') overflows
    # into the next month (Jan 31 + 1 month = Mar 2): clamp it to the target month's end.
    moved = func.date(column, f"+{int(months)} months")
    month_end = func.date(column, "start of month", f"+{int(months) + 1} months", "-1 day")
    day = case((moved > month_end, month_end), else_=moved)
    return type_coerce(day, String).concat(func.substr(column, 11))


def prefixed(prefix: str, column: Any) -> Any:
    """'prefix' || column, as SQL."""
    return literal(prefix, String).concat(column)


def put_state(conn: Connection, key: str, value: Any, now: dt.datetime, *, shop: str) -> None:
    """Write ``shop``'s crm_state row ``key``."""
    done = conn.execute(
        update(crm_state)
        .where(crm_state.c.shop == shop, crm_state.c.key == key)
        .values(value=value, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(insert(crm_state).values(shop=shop, key=key, value=value, updated_at=now))


def get_state(conn: Connection, key: str, *, shop: str) -> Any:
    """``shop``'s crm_state value ``key``, or None."""
    return conn.execute(
        select(crm_state.c.value).where(crm_state.c.shop == shop, crm_state.c.key == key)
    ).scalar()
