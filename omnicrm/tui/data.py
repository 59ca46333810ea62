"""What the terminal UI reads: connection rows, a connection's detail, and the change check.

Everything here blocks (it talks to the database), so the screens call it from thread
workers only. SQLite is read through a read-only connection of its own, so the UI can
never write by mistake nor hold a write lock the scheduler waits on; a cheap check
(``PRAGMA data_version`` on SQLite, the transaction snapshot on PostgreSQL) tells
whether anything was committed since the last look, so screens reload only then.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, Row, create_engine, func, select, text
from textual.message import Message

from omnicrm.app.config import Config, Connection
from omnicrm.core.channels import ChannelType, Stream
from omnicrm.core.scheduler import trigger_for
from omnicrm.core.store import Run, RunStatus, Store, StreamState
from omnicrm.core.store.schema import connection_controls, sync_runs, sync_state


class StoreChanged(Message):
    """Posted to the screens when something was committed to the store since last look."""


class ShopSwitched(Message):
    """Posted to the screen in front when the operator picked another shop."""


class Reader:
    """Read access to a store for the UI, with a cheap check for new commits.

    Use ``changed()`` from one thread only (the app's poll worker): on SQLite it keeps
    one connection open, because ``data_version`` only means something per connection.
    """

    def __init__(self, store: Store) -> None:
        self.dialect = store.dialect
        self._watch: sqlite3.Connection | None = None
        self._watch_engine: Engine | None = None
        self._last: object = None
        path = store.url.database if store.dialect == "sqlite" else None
        if path not in (None, "", ":memory:"):
            uri = Path(path or "").expanduser().resolve().as_uri() + "?mode=ro"

            def connect() -> sqlite3.Connection:
                # check_same_thread=False: the pool hands connections to any worker thread.
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=5000")
                return conn

            self.engine: Engine = create_engine("sqlite://", creator=connect, hide_parameters=True)
            self._watch = connect()
            self._watch.isolation_level = None  # autocommit: never hold a read snapshot
        else:
            self.engine = store.engine
            if store.dialect == "postgresql":
                self._watch_engine = store.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._owns_engine = self.engine is not store.engine

    def changed(self) -> bool:
        """Whether anything was committed to the store since the previous call.

        The first call answers True. An in-memory SQLite store (tests only) cannot be
        watched from another connection, so it always answers True.
        """
        if self._watch is not None:
            current: object = self._watch.execute("PRAGMA data_version").fetchone()
        elif self._watch_engine is not None:
            # The snapshot (xmin:xmax:in-progress ids) moves whenever a transaction that
            # wrote starts or ends; reading it assigns no id, so our own reads never move it.
            with self._watch_engine.connect() as conn:
                current = conn.execute(text("SELECT txid_current_snapshot()::text")).scalar()
        else:
            return True
        changed = current != self._last
        self._last = current
        return changed

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        if self._owns_engine:
            self.engine.dispose()


TROUBLE = frozenset(
    {
        "invalid",
        RunStatus.FAILED.value,
        RunStatus.RATE_LIMITED.value,
        RunStatus.MISSED.value,
    }
)
"""The healths that need the operator (the connections screen's trouble filter)."""


@dataclass(frozen=True)
class ConnectionRow:
    """One connection as the connections table shows it."""

    name: str
    plugin: str
    where: str  # where it points, as its channel type says (a Shopify shop's domain)
    schedule: str
    enabled: bool
    paused: bool
    last: Run | None
    next_run: dt.datetime | None
    invalid: str | None = None
    shop: str = ""  # the id of the shop (client business) it belongs to; "" if invalid

    @property
    def health(self) -> str:
        """'complete', 'running', 'failed' ... or 'never' (no run yet) or 'invalid'."""
        if self.invalid is not None:
            return "invalid"
        return self.last.status.value if self.last else "never"

    @property
    def trouble(self) -> bool:
        """Whether it needs the operator: its last run failed, was rate-limited or
        missed, or its config does not validate."""
        return self.health in TROUBLE

    @property
    def next_label(self) -> str | None:
        """Why there is no next run ('paused', 'manual', 'disabled'), or None if there is."""
        if self.invalid is not None:
            return "invalid"
        if not self.enabled:
            return "disabled"
        if self.paused:
            return "paused"
        if self.next_run is None:
            return "manual"
        return None


@dataclass(frozen=True)
class ConnectionDetail:
    """A connection's run history, its last errors and the cursor of each stream."""

    row: ConnectionRow
    runs: list[Run]
    errors: list[Run]
    streams: dict[str, StreamState] = field(default_factory=dict)


def _run(row: Row[Any]) -> Run:
    values = dict(row._mapping)
    values["status"] = RunStatus(values["status"])
    return Run(**values)


def next_run(
    connection: Connection, timezone: str, last_started: dt.datetime | None, now: dt.datetime
) -> dt.datetime | None:
    """When the scheduler (another process) will next sync ``connection``, or None.

    An interval job runs at the scheduler's start and then every ``every``, so its grid
    is anchored at the last run; with no run yet it is due now.
    """
    if connection.every is not None:
        trigger = IntervalTrigger(
            seconds=connection.every.total_seconds(),
            start_date=last_started or now,
            timezone=timezone,
        )
        return cast(dt.datetime | None, trigger.get_next_fire_time(None, now))
    cron = trigger_for(connection, timezone)
    return None if cron is None else cast(dt.datetime | None, cron.get_next_fire_time(None, now))


def where_label(connection: Connection, channel: ChannelType | None) -> str:
    """Where ``connection`` points as its channel type describes it (a Shopify shop's
    domain), or "" when the type gives no such label: the channel's name is shown beside
    it already."""
    if channel is None or channel.describe is None:
        return ""
    return channel.describe(connection.settings)


def _last_runs(engine: Engine) -> dict[str, Run]:
    """Each connection's last run that ran, or its last skipped one if none ever did.

    A run skipped because another held the lock (or the schedule was paused) changes
    nothing: it must not hide the run that holds the lock, nor how the last one ended.
    """
    ran = sync_runs.c.status != RunStatus.SKIPPED.value
    latest = select(func.max(sync_runs.c.id)).group_by(sync_runs.c.connection)
    query = select(sync_runs).where(
        sync_runs.c.id.in_(latest.where(ran).scalar_subquery())
        | sync_runs.c.id.in_(latest.scalar_subquery())
    )
    last: dict[str, Run] = {}
    with engine.connect() as conn:
        for run in map(_run, conn.execute(query.order_by(sync_runs.c.id))):
            kept = last.get(run.connection)
            if kept is None or run.status is not RunStatus.SKIPPED:
                last[run.connection] = run
    return last


def _paused(engine: Engine) -> set[str]:
    query = select(connection_controls.c.connection).where(connection_controls.c.paused)
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def _row(
    config: Config,
    name: str,
    last: Run | None,
    paused: set[str],
    now: dt.datetime,
    channels: Mapping[str, ChannelType],
) -> ConnectionRow:
    connection = config.connections.get(name)
    if connection is None:
        # Invalid in the config (or only in the store's history): shown, never scheduled.
        error = config.invalid.get(name)
        return ConnectionRow(
            name=name,
            plugin="",
            where="",
            schedule="",
            enabled=False,
            paused=name in paused,
            last=last,
            next_run=None,
            invalid=str(error) if error else "not in the config",
        )
    # The interval grid is anchored at the scheduler's runs, not at manual or UI ones,
    # but any run is a fair anchor when the history holds only those.
    return ConnectionRow(
        name=name,
        plugin=connection.channel,
        where=where_label(connection, channels.get(connection.channel)),
        shop=connection.shop,
        schedule=connection.schedule,
        enabled=connection.enabled,
        paused=name in paused,
        last=last,
        next_run=next_run(
            connection, config.scheduler.timezone, last.started_at if last else None, now
        ),
    )


def connection_rows(
    reader: Reader,
    config: Config,
    now: dt.datetime,
    channels: Mapping[str, ChannelType] | None = None,
) -> list[ConnectionRow]:
    """Every configured connection (valid or not), by name, with its last run.

    ``channels`` are the host's channel types, which say where each connection points.
    """
    names = sorted({*config.connections, *config.invalid})
    last = _last_runs(reader.engine)
    paused = _paused(reader.engine)
    known = channels or {}
    return [_row(config, name, last.get(name), paused, now, known) for name in names]


@dataclass(frozen=True)
class ShopRow:
    """One shop as the shop switcher lists it: its connections and how many of them are
    in trouble (None: not read yet)."""

    id: str
    name: str
    connections: int
    trouble: int | None = None

    @property
    def label(self) -> str:
        """Its display name, with the id when the two differ."""
        return shop_label(self.id, self.name)


def shop_label(shop_id: str, name: str) -> str:
    """A shop as the UI names it: '東京茶舗 (tokyo-tea)', or just the id."""
    return name if name == shop_id else f"{name} ({shop_id})"


def shop_rows(config: Config, rows: list[ConnectionRow] | None = None) -> list[ShopRow]:
    """Every shop with its valid connections; given the connection ``rows``, with how
    many are in trouble, those shops first (the most first). Otherwise by id.

    An invalid connection names no shop for sure: it counts in none.
    """
    trouble: dict[str, int] = {}
    for row in rows or []:
        trouble[row.shop] = trouble.get(row.shop, 0) + row.trouble
    shops = [
        ShopRow(
            id=shop.id,
            name=shop.name,
            connections=len(config.connections_of(shop.id)),
            trouble=None if rows is None else trouble.get(shop.id, 0),
        )
        for shop in config.all_shops().values()
    ]
    return sorted(shops, key=lambda shop: (-(shop.trouble or 0), shop.id))


def connection_detail(
    reader: Reader,
    config: Config,
    name: str,
    now: dt.datetime,
    *,
    history: int = 50,
    errors: int = 5,
    streams: tuple[Stream, ...] = (Stream.CUSTOMERS, Stream.ORDERS),
    channels: Mapping[str, ChannelType] | None = None,
) -> ConnectionDetail:
    """One connection: its recent runs (newest first), runs that failed, stream cursors."""
    runs_query = (
        select(sync_runs)
        .where(sync_runs.c.connection == name)
        .order_by(sync_runs.c.id.desc())
        .limit(history)
    )
    errors_query = (
        select(sync_runs)
        .where(
            sync_runs.c.connection == name,
            sync_runs.c.error.is_not(None),
            # A skipped run's note says why it did not run: not an error.
            sync_runs.c.status != RunStatus.SKIPPED.value,
        )
        .order_by(sync_runs.c.id.desc())
        .limit(errors)
    )
    state_query = select(sync_state.c.stream, sync_state.c.cursor, sync_state.c.state).where(
        sync_state.c.connection == name
    )
    with reader.engine.connect() as conn:
        runs = [_run(row) for row in conn.execute(runs_query)]
        failed = [_run(row) for row in conn.execute(errors_query)]
        states = {
            row.stream: StreamState(row.cursor, row.state) for row in conn.execute(state_query)
        }
    # Streams the channel has but never checkpointed still get a line ("never synced").
    cursors = {s.value: states.pop(s.value, StreamState()) for s in streams}
    cursors.update(states)
    paused = _paused(reader.engine)
    ran = [run for run in runs if run.status is not RunStatus.SKIPPED] or runs
    row = _row(config, name, ran[0] if ran else None, paused, now, channels or {})
    return ConnectionDetail(row=row, runs=runs, errors=failed, streams=cursors)
