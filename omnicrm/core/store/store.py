"""The store: source records, sync state, run history and webhook events.

SQLite (WAL) in the user's data dir by default, PostgreSQL (psycopg 3) by URL. Writes
of a batch of records and the checkpoint that covers them happen in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Integer,
    Row,
    RowMapping,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Checkout, Customer, Medium, Order, Product, Record
from omnicrm.core.store import (
    exports,
    failures,
    locks,
    personal,
    rows,
    shop_rename,
    table_writers,
)
from omnicrm.core.store.changes import queue_changes
from omnicrm.core.store.planner import one_of
from omnicrm.core.store.private import private_dir, private_file
from omnicrm.core.store.schema import (
    address_links,
    checkouts,
    connection_controls,
    connection_shops,
    customers,
    json_text,
    order_lines,
    orders,
    product_variants,
    products,
    redactions,
    sync_runs,
    sync_state,
    webhook_events,
)
from omnicrm.errors import ConfigError, DataError, LockedError, StoreError, TransientError

_MIGRATIONS = Path(__file__).with_name("migrations")


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    MISSED = "missed"  # the scheduler could not start it in time
    SKIPPED = "skipped"  # another run of the same connection held the lock


@dataclass(frozen=True)
class StreamState:
    """Where a stream resumes: its cursor and the plugin's own state."""

    cursor: dt.datetime | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One row of the run history."""

    id: int
    connection: str
    trigger: str
    full: bool
    status: RunStatus
    started_at: dt.datetime
    ended_at: dt.datetime | None
    records_read: int
    records_written: int
    errors: int
    error: str | None
    error_kind: str | None
    rate_limit_wait: float
    streams: Mapping[str, Any]

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while running."""
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Deleted and overwritten content is zeroed, not left in free space of the file,
    # where a redacted person could still be read.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


class Store:
    """Access to one omnicrm database."""

    def __init__(
        self,
        url: str,
        *,
        exports_dir: Path | None = None,
        shops: Mapping[str, str] | None = None,
        default_shop: str = DEFAULT_SHOP,
        shop_ids: Iterable[str] = (),
    ) -> None:
        parsed = failures.parse_url(url)
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"unsupported database {backend!r}: use sqlite:/// or postgresql://",
                key="store.url",
            )
        if backend == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
            raise ConfigError(
                f"unsupported driver {parsed.drivername!r}: use sqlite:/// or "
                "postgresql:// (psycopg 3)",
                key="store.url",
            )
        self.url = parsed
        self.dialect = backend
        self._path: Path | None = None
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._path = Path(parsed.database or "").expanduser()
            # Owner-only from the start: SQLite gives its -wal and -shm the file's mode.
            try:
                private_dir(self._path.parent)
                private_file(self._path)
            except OSError as exc:
                raise failures.store_error(exc, parsed, opening=True) from None
        self._exports_dir = exports_dir
        # The shop the config gives each connection, and the one for connections it
        # does not name; what the store holds (connection_shops) wins, see shop_of.
        self._configured_shops = dict(shops or {})
        self.default_shop = default_shop
        self._shop_ids = frozenset(shop_ids)  # the config's shops, where known
        self._shops: dict[str, str] = {}
        # Errors never show the values of a statement: they are customers' personal data.
        self.engine: Engine = create_engine(parsed, json_serializer=json_text, hide_parameters=True)
        event.listen(self.engine, "handle_error", failures.on_engine_error)
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        exports_dir: Path | None = None,
        shops: Mapping[str, str] | None = None,
        default_shop: str = DEFAULT_SHOP,
        shop_ids: Iterable[str] = (),
        check_shops: bool = True,
    ) -> Store:
        """Open the store at ``url``, bringing its schema up to date unless told not to.

        ``shops`` maps connection names to the shop (client business) each belongs to;
        connections it leaves out belong to ``default_shop``. A connection keeps the shop
        its records were first written under: a config that moves one raises ConfigError
        (unless ``check_shops`` is False: `rename_shop` is how such a config is met),
        which offers the rename when the shop it leaves is not among ``shop_ids`` (the
        config's shops, where known).

        A store that cannot be opened raises StoreError (``opening`` set). Opening it for
        writing also ends the runs a dead process (or a lost store) left 'running'.
        """
        store = cls(
            url,
            exports_dir=exports_dir,
            shops=shops,
            default_shop=default_shop,
            shop_ids=shop_ids,
        )
        if migrate:
            try:
                store.migrate()
                store.reap_stale_runs()
                if check_shops:
                    store._check_shops()
            except (SQLAlchemyError, OSError) as exc:
                store.close()
                raise failures.store_error(exc, store.url, opening=True) from None
            except ConfigError:
                store.close()
                raise
        return store

    @property
    def exports_dir(self) -> Path:
        """Where data-request exports are written: ``exports`` in the data dir unless
        the store was opened with another."""
        if self._exports_dir is None:
            from omnicrm.core.settings import data_dir

            self._exports_dir = data_dir() / "exports"
        return self._exports_dir

    def error(self, exc: BaseException) -> StoreError:
        """``exc``, a failure of this store, as the one line the operator sees."""
        return exc if isinstance(exc, StoreError) else failures.store_error(exc, self.url)

    def __repr__(self) -> str:
        # Never show a password that may be in the URL.
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        """Apply any Alembic migrations not yet applied."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            # Where an older store's rows go (migration 0004).
            config.attributes["shops"] = self._configured_shops
            config.attributes["default_shop"] = self.default_shop
            command.upgrade(config, "head")

    # -- shops ---------------------------------------------------------------

    def shop_of(self, connection: str, conn: Connection | None = None) -> str:
        """The shop whose customers ``connection`` brings: the one its records were
        first written under, else the configured one. Recorded on first use (in
        ``conn``'s transaction when given), so the connection never changes shop."""
        shop = self._shops.get(connection)
        if shop is not None:
            return shop
        if conn is None:
            with self.engine.begin() as own:
                return self.shop_of(connection, own)
        stored = conn.execute(
            select(connection_shops.c.shop).where(connection_shops.c.connection == connection)
        ).scalar()
        if stored is not None:
            self._shops[connection] = stored
            return str(stored)
        # Not cached until a later call reads it back: the first write's transaction
        # may yet roll back.
        shop = self._configured_shops.get(connection, self.default_shop)
        upsert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        conn.execute(
            upsert(connection_shops)
            .values(connection=connection, shop=shop, assigned_at=_now())
            .on_conflict_do_nothing()
        )
        return shop

    def shops(self) -> dict[str, str]:
        """Every connection the store has records of, with its shop."""
        with self.engine.connect() as conn:
            return {
                row.connection: row.shop
                for row in conn.execute(
                    select(connection_shops.c.connection, connection_shops.c.shop)
                )
            }

    def _check_shops(self) -> None:
        """Refuse a config that moves a connection holding records to another shop (its
        customers would join another business's customer base); record the others."""
        stored = self.shops()
        with self.engine.begin() as conn:
            for connection, shop in sorted(self._configured_shops.items()):
                held = stored.get(connection)
                if held is None or held == shop:
                    continue
                if self._holds_records(conn, connection):
                    raise ConfigError(
                        self._renamed(stored, held, shop)
                        or (
                            f"connection {connection!r} holds the customers of shop {held!r}"
                            f" and cannot move to shop {shop!r}: a shop's customers never"
                            " join another shop's; give the new shop a connection of its own"
                        ),
                        key=f"connections.{connection}.shop",
                    )
                conn.execute(
                    update(connection_shops)
                    .where(connection_shops.c.connection == connection)
                    .values(shop=shop, assigned_at=_now())
                )

    def _renamed(self, stored: Mapping[str, str], held: str, shop: str) -> str | None:
        """The refusal for a config that gives shop ``held`` a new name, ``shop``: every
        connection of ``held`` the config names goes to ``shop``, which holds none yet.
        Offered, not done: a rename moves a whole customer base, and a typo in the config
        must not do that (``omnicrm shops rename``)."""
        if held in self._shop_ids or shop in stored.values():
            return None  # two shops of the config, or one holding data already: a move
        named = [c for c, s in stored.items() if s == held and c in self._configured_shops]
        if any(self._configured_shops[c] != shop for c in named):
            return None
        return (
            f"the store holds shop {held!r}; the config names {shop!r} for its connections"
            f" ({', '.join(sorted(named))}): if {shop!r} is {held!r} under a new name, run"
            f" `omnicrm shops rename {held} {shop}` (its customers, segments, points and"
            " history move with it)"
        )

    def rename_shop(self, old: str, new: str) -> dict[str, int]:
        """Give shop ``old`` the id ``new``: every row of it, in every table with a shop
        column, in one transaction; the rows moved, by table. Raises ShopRenameError when
        the store holds no shop ``old`` or ``new`` already holds data."""
        with self.engine.begin() as conn:
            moved = shop_rename.rename_shop(conn, old, new)
        self._shops.clear()
        return moved

    @staticmethod
    def _holds_records(conn: Connection, connection: str) -> bool:
        return any(
            conn.execute(
                select(table.c.connection).where(table.c.connection == connection).limit(1)
            ).first()
            is not None
            for table in (customers, orders, products)
        )

    # -- locks ---------------------------------------------------------------

    def lock(self, connection: str) -> AbstractContextManager[None]:
        """Hold the sync lock of ``connection``; raises LockedError if another run has it."""
        if self.dialect == "postgresql":
            return locks.advisory_lock(self.engine, connection)
        if self._path is None:
            return locks.memory_lock(f"{id(self)}:{connection}")
        return locks.file_lock(self._path.with_name(self._path.name + ".locks"), connection)

    # -- sync state and records ------------------------------------------------

    def stream_state(self, connection: str, stream: Stream) -> StreamState:
        """The saved cursor and plugin state of one stream (empty before its first run)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sync_state.c.cursor, sync_state.c.state).where(
                    sync_state.c.connection == connection, sync_state.c.stream == stream.value
                )
            ).one_or_none()
        return StreamState(row.cursor, row.state) if row else StreamState()

    def write_batch(
        self,
        connection: str,
        stream: Stream,
        records: Sequence[Record],
        checkpoint: StreamState | None = None,
        *,
        run_id: int | None = None,
        read: int = 0,
    ) -> int:
        """Upsert ``records`` and save ``checkpoint`` in one transaction.

        A record is written when it is new or its ``updated_at`` is later than the stored
        one; the same (id, updated_at) again is a duplicate and skipped. ``run_id`` and
        ``read`` bump that run's live counters in the same transaction. Returns how many
        records were written.
        """
        self._check_stream(connection, stream)
        return self._write_batches(connection, [(stream, records, read)], checkpoint, run_id)[
            stream
        ]

    def write_all(
        self,
        connection: str,
        batches: Iterable[tuple[Stream, Sequence[Record]]],
        *,
        run_id: int | None = None,
    ) -> dict[Stream, int]:
        """Write every batch of ``batches`` (stream, records) in one transaction: all of
        them or, on any error, none (an imported file is whole or not there at all).

        Each batch is written as :meth:`write_batch` writes one, without a checkpoint;
        ``batches`` is read as it is written, so it may stream a file of any size.
        Returns how many records of each stream were written.
        """
        counted = ((stream, records, len(records)) for stream, records in batches)
        return self._write_batches(connection, counted, None, run_id)

    def _write_batches(
        self,
        connection: str,
        batches: Iterable[tuple[Stream, Sequence[Record], int]],
        checkpoint: StreamState | None,
        run_id: int | None,
    ) -> dict[Stream, int]:
        """Write (stream, records, read) batches, each with ``checkpoint`` (given for one
        batch only), in one transaction; see :meth:`write_batch`."""
        written: dict[Stream, int] = {}
        # Named in an error before the first batch.
        stream: Stream = Stream.ORDERS
        records: Sequence[Any] = ()
        try:
            with self._writing() as conn:
                for stream, records, read in batches:
                    self._check_stream(connection, stream)
                    count = self._write_records(conn, connection, stream, records)
                    written[stream] = written.get(stream, 0) + count
                    self._save_progress(conn, connection, stream, checkpoint, run_id, read, count)
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                # Another writer inserted one of these ids between our read and write.
                # Nothing was committed; the engine retries from the last checkpoint.
                raise TransientError(f"concurrent write to {stream} of {connection!r}") from exc
            raise self._refused(connection, stream, records, exc) from exc
        except SQLAlchemyError as exc:
            if failures.is_failure(exc):
                raise self.error(exc) from None
            if type(exc) is StatementError:
                raise  # a value its column type refused, before the database saw it
            raise self._refused(connection, stream, records, exc) from exc
        return written

    @staticmethod
    def _check_stream(connection: str, stream: Stream) -> None:
        if stream not in _TABLES:
            # A new stream kind brings its own storage (docs/plugins.md, "Adding a stream
            # kind"): never write its records into another stream's table.
            raise StoreError(f"the store keeps no {stream} records ({connection!r})")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from the start, so no
        other writer (a webhook) can slip in between _newer's read and our write."""
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def _write_records(
        self,
        conn: Connection,
        connection: str,
        stream: Stream,
        records: Sequence[Record],
    ) -> int:
        """Upsert ``records`` in ``conn``'s transaction, queueing the profiles they reach;
        returns how many were written."""
        records = self._not_redacted(conn, connection, stream, records)
        touched: Sequence[str | None]
        if stream is Stream.PRODUCTS:
            # A catalogue reaches no customer's profile.
            return self._upsert_products(conn, connection, records)  # type: ignore[arg-type]
        if stream is Stream.CUSTOMERS:
            touched = self._upsert_customers(conn, connection, records)  # type: ignore[arg-type]
        elif stream is Stream.CHECKOUTS:
            touched = self._upsert_checkouts(conn, connection, records)  # type: ignore[arg-type]
        else:
            touched = self._upsert_orders(conn, connection, records)  # type: ignore[arg-type]
        self._note_changes(conn, connection, touched)
        return len(touched)

    @staticmethod
    def _refused(
        connection: str, stream: Stream, records: Sequence[Any], exc: SQLAlchemyError
    ) -> DataError:
        # Named by id, never by value: the values are a customer's personal data.
        which = f"record {records[0].id!r}" if len(records) == 1 else "record"
        return DataError(
            f"the store refused a {stream} {which} of {connection!r}: {failures.cause(exc)}"
        )

    def _newer(
        self,
        conn: Connection,
        table: Any,
        connection: str,
        batch: Sequence[Record],
    ) -> tuple[list[Any], list[Any]]:
        """Split a batch into (new, updated) records, dropping duplicates and stale ones."""
        latest: dict[str, Record] = {record.id: record for record in batch}
        if len(latest) < len(batch):
            # An id more than once: its latest version, the first of equal ones.
            latest = {}
            for record in batch:
                seen = latest.get(record.id)
                if seen is None or record.updated_at > seen.updated_at:
                    latest[record.id] = record
        # Locked on PostgreSQL until our write commits.
        stored = table_writers.writers(self.engine)(table).versions(conn, connection, list(latest))
        if not stored:  # a first sync's every batch
            return list(latest.values()), []
        new = [r for r in latest.values() if r.id not in stored]
        changed = [r for r in latest.values() if r.id in stored and r.updated_at > stored[r.id]]
        return new, changed

    def _one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        """``column IN values``, one parameter on PostgreSQL (see planner.one_of)."""
        return one_of(self.dialect, column, values)

    def _upsert_customers(
        self, conn: Connection, connection: str, batch: Sequence[Customer]
    ) -> list[str]:
        """Write the new and changed customers; returns the ids written."""
        new, changed = self._newer(conn, customers, connection, batch)
        writers = table_writers.writers(self.engine)
        writer = writers(customers)
        now = _now()
        shop = self.shop_of(connection, conn)
        same = {"shop": shop, "synced_at": now}
        new_rows = writer.encode([rows.customer_row(connection, c, now) for c in new], same)
        changed_rows = writer.encode([rows.customer_row(connection, c, now) for c in changed], same)
        writer.update(conn, changed_rows)
        writer.insert(conn, new_rows)
        if new_rows:
            writers.ensure_stats(conn, customers, connection, len(new_rows))
        self._link_line_users(conn, connection, shop, [*new, *changed], now)
        return [c.id for c in [*new, *changed]]

    @staticmethod
    def _link_line_users(
        conn: Connection, connection: str, shop: str, batch: Sequence[Customer], now: dt.datetime
    ) -> None:
        """Link the LINE user id a platform keeps for a customer (a LINE-connect app's)
        to them, as the account link flow would; a link already naming them is left as
        it is. Never a consent (docs/line.md)."""
        from omnicrm.core import links  # imported here: links imports the store's schema

        wanted = {c.line_user_id: c.id for c in batch if c.line_user_id}
        if not wanted:
            return
        a = address_links.c
        addresses = sorted(wanted)
        have: dict[str, tuple[str, str]] = {}
        for start in range(0, len(addresses), 5000):
            rows = conn.execute(
                select(a.address, a.connection, a.record_id).where(
                    a.shop == shop,
                    a.medium == Medium.LINE.value,
                    a.address.in_(addresses[start : start + 5000]),
                )
            )
            have.update({address: (c, r) for address, c, r in rows})
        for address, record_id in wanted.items():
            if have.get(address) != (connection, record_id):
                links.link(
                    conn,
                    shop=shop,
                    medium=Medium.LINE,
                    address=address,
                    member=(connection, record_id),
                    at=now,
                    method="channel",
                )

    def _upsert_orders(
        self, conn: Connection, connection: str, batch: Sequence[Order]
    ) -> list[str | None]:
        """Write the new and changed orders; returns their customers' ids, one per order."""
        new, changed = self._newer(conn, orders, connection, batch)
        writers = table_writers.writers(self.engine)
        order_writer, line_writer = writers(orders), writers(order_lines)
        now = _now()
        same = {"shop": self.shop_of(connection, conn), "connection": connection, "synced_at": now}
        # Rows read straight from the records and encoded as the driver takes them, no
        # dict nor value tuple in between: a first sync writes millions of rows. A value
        # the store refuses fails the batch there; the transaction undoes what it wrote.
        if changed:
            # An order's lines are replaced, not merged: drop the stored ones first.
            ids = [o.id for o in changed]
            for start in range(0, len(ids), 5000):
                conn.execute(
                    delete(order_lines).where(
                        order_lines.c.connection == connection,
                        self._one_of(order_lines.c.order_id, ids[start : start + 5000]),
                    )
                )
            order_writer.update(
                conn, order_writer.encode_records(changed, rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
            )
        if new:
            order_writer.insert(
                conn, order_writer.encode_records(new, rows.ORDER_FIELDS, rows.ORDER_LOOP, same)
            )
            # Before the lines: their foreign-key checks look orders up by primary key.
            writers.ensure_stats(conn, orders, connection, len(new))
        written = [*new, *changed]
        lines = line_writer.insert(
            conn,
            line_writer.encode_records(
                written, rows.LINE_FIELDS, rows.LINE_LOOP, {"connection": connection}
            ),
        )
        if lines:
            writers.ensure_stats(conn, order_lines, connection, lines)
        return [o.customer_id for o in written]

    def _upsert_checkouts(
        self, conn: Connection, connection: str, batch: Sequence[Checkout]
    ) -> list[str | None]:
        """Write the new and changed checkouts; returns their customers' ids, one each."""
        new, changed = self._newer(conn, checkouts, connection, batch)
        writer = table_writers.writers(self.engine)(checkouts)
        same = {
            "shop": self.shop_of(connection, conn),
            "connection": connection,
            "synced_at": _now(),
        }
        fields = ("id", "customer_id", "created_at", "updated_at", "completed_at", "currency")
        encoded = [
            writer.encode(
                [
                    {
                        **{name: getattr(c, name) for name in fields},
                        "total": c.total,
                        "item_count": c.item_count,
                        "recovery_url": c.recovery_url,
                        "lines": [line.model_dump(mode="json") for line in c.lines],
                        "raw": c.raw,
                    }
                    for c in part
                ],
                same,
            )
            for part in (new, changed)
        ]
        writer.update(conn, encoded[1])
        writer.insert(conn, encoded[0])
        return [c.customer_id for c in [*new, *changed]]

    def _upsert_products(self, conn: Connection, connection: str, batch: Sequence[Product]) -> int:
        """Write the new and changed products, each with all of its variants (which
        replace the stored ones); returns how many products were written."""
        new, changed = self._newer(conn, products, connection, batch)
        writers = table_writers.writers(self.engine)
        product_writer, variant_writer = writers(products), writers(product_variants)
        shop = self.shop_of(connection, conn)
        same = {"shop": shop, "connection": connection, "synced_at": _now()}
        # Encoded as the driver takes them, as orders are.
        if changed:
            ids = [p.id for p in changed]
            for start in range(0, len(ids), 5000):
                conn.execute(
                    delete(product_variants).where(
                        product_variants.c.connection == connection,
                        self._one_of(product_variants.c.product_id, ids[start : start + 5000]),
                    )
                )
            product_writer.update(
                conn,
                product_writer.encode_records(
                    changed, rows.PRODUCT_FIELDS, rows.PRODUCT_LOOP, same
                ),
            )
        if new:
            product_writer.insert(
                conn,
                product_writer.encode_records(new, rows.PRODUCT_FIELDS, rows.PRODUCT_LOOP, same),
            )
            writers.ensure_stats(conn, products, connection, len(new))
        variant_writer.insert(
            conn,
            variant_writer.encode_records(
                [*new, *changed],
                rows.VARIANT_FIELDS,
                rows.VARIANT_LOOP,
                {"shop": shop, "connection": connection},
            ),
        )
        return len(new) + len(changed)

    def _note_changes(
        self, conn: Connection, connection: str, customer_ids: Iterable[str | None]
    ) -> None:
        """Queue the customers whose profile a change reaches, in the change's transaction."""
        ids = {i for i in customer_ids if i is not None}
        if ids:
            queue_changes(conn, self.shop_of(connection, conn), connection, ids)

    def _save_progress(
        self,
        conn: Connection,
        connection: str,
        stream: Stream,
        checkpoint: StreamState | None,
        run_id: int | None,
        read: int,
        written: int,
    ) -> None:
        """Save ``checkpoint`` and add to run ``run_id``'s counters: on PostgreSQL in one
        statement (each is a round trip, and a first sync makes one per batch)."""
        statements = _progress_statements(self.dialect, checkpoint is not None, run_id is not None)
        if not statements:
            return
        params: dict[str, Any] = {"run_id": run_id, "read": read, "written": written}
        if checkpoint is not None:
            params.update(
                state_connection=connection,
                state_stream=stream.value,
                state_cursor=checkpoint.cursor,
                state_state=dict(checkpoint.state),
                state_updated_at=_now(),
            )
        for statement in statements:
            conn.execute(statement, params)

    def customers(self, connection: str | None = None) -> Iterator[Customer]:
        """Stored customers (of one connection, or all), in (connection, id) order."""
        query = select(customers).order_by(customers.c.connection, customers.c.id)
        if connection is not None:
            query = query.where(customers.c.connection == connection)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield rows.customer_from_row(row)

    def orders(self, connection: str | None = None) -> Iterator[Order]:
        """Stored orders with their lines, in (connection, id) order."""
        query = select(orders).order_by(orders.c.connection, orders.c.id)
        if connection is not None:
            query = query.where(orders.c.connection == connection)
        return self._read_orders(query)

    def products(self, connection: str | None = None) -> Iterator[Product]:
        """Stored products with their variants, in (connection, id) order."""
        query = select(products).order_by(products.c.connection, products.c.id)
        if connection is not None:
            query = query.where(products.c.connection == connection)
        variants = select(product_variants).order_by(product_variants.c.position)
        return self._with_children(
            query, variants, product_variants.c.product_id, rows.product_from_row
        )

    def _read_orders(self, query: Any) -> Iterator[Order]:
        lines = select(order_lines).order_by(order_lines.c.line_no)
        return self._with_children(query, lines, order_lines.c.order_id, rows.order_from_row)

    def _with_children(
        self,
        query: Any,
        children: Any,
        parent_id: Any,
        build: Callable[[Any, list[Any]], Any],
    ) -> Iterator[Any]:
        """The records ``query`` selects, each built with its rows of ``children`` (an
        order's lines, a product's variants) whose ``parent_id`` column names it."""
        table = parent_id.table
        with self.engine.connect() as conn:
            # Children are fetched per chunk of parents and grouped by key, so the result
            # does not depend on how the database collates strings.
            result = conn.execute(query).mappings()
            while chunk := result.fetchmany(1000):
                by_parent: dict[tuple[str, str], list[Any]] = {}
                for conn_name in {row["connection"] for row in chunk}:
                    ids = [row["id"] for row in chunk if row["connection"] == conn_name]
                    for child in conn.execute(
                        children.where(
                            table.c.connection == conn_name, self._one_of(parent_id, ids)
                        )
                    ).mappings():
                        key = (child["connection"], child[parent_id.name])
                        by_parent.setdefault(key, []).append(child)
                for row in chunk:
                    yield build(row, by_parent.get((row["connection"], row["id"]), []))

    def count(self, stream: Stream, connection: str | None = None) -> int:
        """How many records of ``stream`` are stored."""
        table = _TABLES[stream]
        query = select(func.count()).select_from(table)
        if connection is not None:
            query = query.where(table.c.connection == connection)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def record_ids(self, connection: str, stream: Stream) -> frozenset[str]:
        """The ids of every record of ``stream`` stored for ``connection``."""
        table = _TABLES[stream]
        with self.engine.connect() as conn:
            return frozenset(
                conn.execute(select(table.c.id).where(table.c.connection == connection)).scalars()
            )

    # -- run history -------------------------------------------------------------

    def start_run(self, connection: str, *, trigger: str, full: bool = False) -> int:
        """Record a run as started; returns its id."""
        return self._insert_run(connection, trigger, full, RunStatus.RUNNING)

    def _insert_run(
        self,
        connection: str,
        trigger: str,
        full: bool,
        status: RunStatus,
        *,
        ended: bool = False,
        error: str | None = None,
    ) -> int:
        now = _now()
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(sync_runs).values(
                    connection=connection,
                    trigger=trigger,
                    full=full,
                    status=status.value,
                    started_at=now,
                    ended_at=now if ended else None,
                    records_read=0,
                    records_written=0,
                    # Why a run was skipped (another holds the lock) is no error of it.
                    errors=1 if error and status is not RunStatus.SKIPPED else 0,
                    error=error,
                    rate_limit_wait=0.0,
                    streams={},
                )
            )
            (run_id,) = result.inserted_primary_key or (0,)
            return int(run_id)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        errors: int = 0,
        error: str | None = None,
        error_kind: str | None = None,
        rate_limit_wait: float = 0.0,
        streams: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how a run ended. Counters were kept up to date by ``write_batch``."""
        with self.engine.begin() as conn:
            conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(
                    status=status.value,
                    ended_at=_now(),
                    errors=errors,
                    error=error,
                    error_kind=error_kind,
                    rate_limit_wait=rate_limit_wait,
                    streams=dict(streams or {}),
                )
            )

    def record_run(
        self, connection: str, status: RunStatus, *, trigger: str, error: str | None = None
    ) -> int:
        """Record a run that never started (missed or skipped)."""
        # One insert: never seen 'running' without its lock, so never taken for stale.
        return self._insert_run(connection, trigger, False, status, ended=True, error=error)

    def reap_stale_runs(self) -> int:
        """Mark failed the 'running' runs whose connection's lock no one holds: the process
        running them died, or lost its store before it could record their end."""
        with self.engine.connect() as conn:
            names = sorted(
                set(
                    conn.execute(
                        select(sync_runs.c.connection).where(
                            sync_runs.c.status == RunStatus.RUNNING.value
                        )
                    ).scalars()
                )
            )
        reaped = 0
        for name in names:
            try:
                with self.lock(name):
                    reaped += self.abandon_running(name)
            except LockedError:
                continue  # its run is alive
        return reaped

    def abandon_running(self, connection: str) -> int:
        """Mark runs still 'running' as failed. Call only while holding the lock."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sync_runs)
                .where(
                    sync_runs.c.connection == connection,
                    sync_runs.c.status == RunStatus.RUNNING.value,
                )
                .values(
                    status=RunStatus.FAILED.value,
                    ended_at=_now(),
                    errors=sync_runs.c.errors + 1,
                    error="abandoned: the process running it stopped, or lost the store, "
                    "before it could record the run's end",
                    error_kind="abandoned",
                )
            )
            return int(result.rowcount)

    def runs(self, connection: str | None = None, *, limit: int = 50) -> list[Run]:
        """The most recent runs first."""
        query = select(sync_runs).order_by(sync_runs.c.id.desc()).limit(limit)
        if connection is not None:
            query = query.where(sync_runs.c.connection == connection)
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(query)]

    def last_runs(self) -> dict[str, Run]:
        """The latest run of each connection."""
        latest = select(func.max(sync_runs.c.id)).group_by(sync_runs.c.connection).scalar_subquery()
        query = select(sync_runs).where(sync_runs.c.id.in_(latest))
        with self.engine.connect() as conn:
            return {row.connection: _run(row) for row in conn.execute(query)}

    # -- webhooks ----------------------------------------------------------------

    def webhook_seen(self, source: str, event_id: str) -> bool:
        """Whether the event (source, event_id) was processed already."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(webhook_events.c.event_id).where(
                    webhook_events.c.source == source, webhook_events.c.event_id == event_id
                )
            ).first()
        return found is not None

    # -- operator controls ---------------------------------------------------------

    def set_paused(self, connection: str, paused: bool) -> None:
        """Pause or resume the scheduled runs of ``connection`` (a manual sync still runs)."""
        values = {"paused": paused, "updated_at": _now()}
        with self.engine.begin() as conn:
            done = conn.execute(
                update(connection_controls)
                .where(connection_controls.c.connection == connection)
                .values(values)
            )
            if done.rowcount == 0:
                conn.execute(insert(connection_controls).values(connection=connection, **values))

    def paused(self) -> set[str]:
        """The connections whose schedule is paused."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(connection_controls.c.connection).where(connection_controls.c.paused)
                ).scalars()
            )

    # -- deletions and personal data ---------------------------------------------

    def delete_records(self, connection: str, stream: Stream, ids: Sequence[str]) -> int:
        """Delete records the platform deleted (an order's lines, a product's variants go
        with it)."""
        table = _TABLES[stream]
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 5000):
                chunk = list(ids[start : start + 5000])
                if stream is Stream.PRODUCTS:
                    conn.execute(
                        delete(product_variants).where(
                            product_variants.c.connection == connection,
                            product_variants.c.product_id.in_(chunk),
                        )
                    )
                elif stream is Stream.CUSTOMERS:
                    self._note_changes(conn, connection, chunk)
                elif stream is Stream.CHECKOUTS:
                    left = select(checkouts.c.customer_id).where(
                        checkouts.c.connection == connection, checkouts.c.id.in_(chunk)
                    )
                    self._note_changes(conn, connection, conn.execute(left).scalars())
                else:
                    owners = select(orders.c.customer_id).where(
                        orders.c.connection == connection, orders.c.id.in_(chunk)
                    )
                    self._note_changes(conn, connection, conn.execute(owners).scalars())
                    conn.execute(
                        delete(order_lines).where(
                            order_lines.c.connection == connection,
                            order_lines.c.order_id.in_(chunk),
                        )
                    )
                result = conn.execute(
                    delete(table).where(table.c.connection == connection, table.c.id.in_(chunk))
                )
                deleted += int(result.rowcount)
        return deleted

    def redact_customer(
        self, connection: str, customer_id: str | None, order_ids: Sequence[str] = ()
    ) -> None:
        """Erase a customer's personal data, every copy the store and its files hold.

        The customer record is deleted; their orders (and ``order_ids``) keep only what
        is not personal (amounts, products, dates) and lose the link to the customer.
        Their points entries, identity keys, merge evidence and the operator's links
        and separations naming them (notes included) go; their profile forgets them at
        once and is rebuilt from any other members by the next CRM refresh, which
        deletes it (with its interactions and NPS answers) if they were its only member.
        Every mention of them in free text (run errors, notes, comments) becomes
        '[redacted]', and their data-request exports are deleted. The records are
        remembered as redacted so a later sync cannot bring them back.
        """
        now = _now()
        with self.engine.begin() as conn:
            order_set = set(order_ids)
            person: RowMapping | None = None
            if customer_id is not None:
                person = (
                    conn.execute(
                        select(customers).where(
                            customers.c.connection == connection, customers.c.id == customer_id
                        )
                    )
                    .mappings()
                    .one_or_none()
                )
                order_set.update(
                    conn.execute(
                        select(orders.c.id).where(
                            orders.c.connection == connection, orders.c.customer_id == customer_id
                        )
                    ).scalars()
                )
            order_list = sorted(order_set)
            payloads: list[Any] = []
            for start in range(0, len(order_list), 5000):
                payloads.extend(
                    conn.execute(
                        select(orders.c.raw).where(
                            orders.c.connection == connection,
                            self._one_of(orders.c.id, order_list[start : start + 5000]),
                        )
                    ).scalars()
                )
            terms = personal.person_terms(person, payloads)
            if customer_id is not None:
                conn.execute(
                    delete(customers).where(
                        customers.c.connection == connection, customers.c.id == customer_id
                    )
                )
                # Their abandoned carts: a recovery link leads to their checkout.
                carts = conn.execute(
                    delete(checkouts)
                    .where(
                        checkouts.c.connection == connection,
                        checkouts.c.customer_id == customer_id,
                    )
                    .returning(checkouts.c.id)
                ).scalars()
                cart_ids = sorted(carts)
                # What the layers above built on them (the CRM's profile, keys, points).
                for holder in personal.holders():
                    holder.forget(conn, connection, [customer_id])
                self._note_changes(conn, connection, [customer_id])
            for order_id in order_list:
                conn.execute(
                    update(orders)
                    .where(orders.c.connection == connection, orders.c.id == order_id)
                    .values(customer_id=None, raw={"id": order_id, "redacted_at": now.isoformat()})
                )
            # Webhooks about them still waiting to be applied hold their data raw.
            subjects = [*([customer_id] if customer_id is not None else []), *order_list]
            inbox.purge_pending(conn, connection, subjects)
            # In the connection's shop: another shop's notes are its own customers'.
            personal.scrub_free_text(conn, terms, shop=self.shop_of(connection, conn))
            tombstones = [(Stream.ORDERS, o) for o in order_list]
            if customer_id is not None:
                tombstones.append((Stream.CUSTOMERS, customer_id))
                tombstones.extend((Stream.CHECKOUTS, c) for c in cart_ids)
            known = {
                (row.stream, row.record_id)
                for row in conn.execute(
                    select(redactions.c.stream, redactions.c.record_id).where(
                        redactions.c.connection == connection
                    )
                )
            }
            fresh = [
                {
                    "connection": connection,
                    "stream": kind.value,
                    "record_id": rid,
                    "redacted_at": now,
                }
                for kind, rid in tombstones
                if (kind.value, rid) not in known
            ]
            if fresh:
                conn.execute(insert(redactions), fresh)
        if customer_id is not None:
            exports.remove_exports(self.exports_dir, connection, customer_id)
        self._purge_old_pages()

    def erase_connection(self, connection: str) -> None:
        """Erase everything held for a connection except its run history, and its
        data-request exports."""
        with self.engine.begin() as conn:
            records = list(
                conn.execute(
                    select(customers.c.id).where(customers.c.connection == connection)
                ).scalars()
            )
            for holder in personal.holders():
                holder.erase(conn, connection, records)
            inbox.purge_pending(conn, connection, None)
            for table in (
                order_lines,
                orders,
                customers,
                product_variants,
                products,
                checkouts,
                sync_state,
                redactions,
            ):
                conn.execute(delete(table).where(table.c.connection == connection))
            conn.execute(delete(webhook_events).where(webhook_events.c.source == connection))
        exports.remove_exports(self.exports_dir, connection)
        self._purge_old_pages()

    def _purge_old_pages(self) -> None:
        """On SQLite, move the write-ahead log into the database and empty it: its old
        page images still hold what was just erased."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def export_customer(self, connection: str, customer_id: str) -> dict[str, Any]:
        """Everything held about one customer, as JSON-ready data (a data request): the
        source record (with its consents), their orders and abandoned checkouts, and what
        the CRM built on it
        (profile, identity keys, points entries, the suggested pairs and the operator's
        decisions naming them, interactions, NPS answers)."""
        found = self._customers_where(connection, customers.c.id == customer_id)
        customer = found[0].model_dump(mode="json") if found else None
        held = list(
            self._read_orders(
                select(orders)
                .where(orders.c.connection == connection, orders.c.customer_id == customer_id)
                .order_by(orders.c.connection, orders.c.id)
            )
        )
        held_above: dict[str, Any] = {}
        with self.engine.connect() as conn:
            left = conn.execute(
                select(checkouts)
                .where(checkouts.c.connection == connection, checkouts.c.customer_id == customer_id)
                .order_by(checkouts.c.created_at, checkouts.c.id)
            ).mappings()
            carts = [
                {
                    key: value.isoformat() if isinstance(value, dt.datetime) else value
                    for key, value in row.items()
                    if key not in ("shop", "synced_at")
                }
                | {"total": str(row["total"])}
                for row in left
            ]
            for holder in personal.holders():
                held_above.update(holder.export(conn, connection, customer_id))
        return {
            "connection": connection,
            "customer_id": customer_id,
            "exported_at": _now().isoformat(),
            "customer": customer,
            "consents": customer["consents"] if customer else [],
            "orders": [o.model_dump(mode="json") for o in held],
            "checkouts": carts,
            **held_above,
        }

    def write_export(
        self,
        connection: str,
        customer_id: str,
        request_id: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Export one customer's data to a new owner-only JSON file; its path.

        The file is named from the connection, the customer's id (checked: a DataError
        if it is not a record id) and the time, under ``exports_dir``; ``request_id``
        (the platform's, unverified text) is recorded inside the file, never in its name.
        ``extra`` joins the document (what is held outside the store: files).
        """
        data = self.export_customer(connection, customer_id)
        data.update(extra or {})
        data["request_id"] = request_id
        return exports.write_export(self.exports_dir, connection, customer_id, data, _now())

    def _customers_where(self, connection: str, condition: Any) -> list[Customer]:
        query = select(customers).where(customers.c.connection == connection, condition)
        with self.engine.connect() as conn:
            return [rows.customer_from_row(row) for row in conn.execute(query).mappings()]

    def _not_redacted(
        self, conn: Connection, connection: str, stream: Stream, records: Sequence[Any]
    ) -> Sequence[Any]:
        """Drop records a redaction erased; cheap when the connection has none."""
        # Asked of every batch: the driver's SQL, no statement built or looked up.
        any_redacted = conn.exec_driver_sql(
            _ANY_REDACTED[self.dialect], (connection, stream.value)
        ).first()
        if any_redacted is None:
            return records
        ids = [r.id for r in records]
        gone: set[str] = set()
        for start in range(0, len(ids), 5000):
            gone.update(
                conn.execute(
                    select(redactions.c.record_id).where(
                        redactions.c.connection == connection,
                        redactions.c.stream == stream.value,
                        self._one_of(redactions.c.record_id, ids[start : start + 5000]),
                    )
                ).scalars()
            )
        return [r for r in records if r.id not in gone] if gone else records


@functools.cache
def _progress_statements(dialect: str, checkpoint: bool, run: bool) -> tuple[Executable, ...]:
    """The statements of ``Store._save_progress``, built once: building a statement
    (and its cache key) costs more than running it, and a first sync saves its progress
    after every batch. Parameters by name: the checkpoint's ``state_<column>`` for each
    column of ``sync_state``; the run's ``run_id``, ``read`` and ``written`` (named apart
    from columns: Core reserves column names for its own parameters)."""
    statements: list[Any] = []
    if checkpoint:
        upsert = (pg_insert if dialect == "postgresql" else sqlite_insert)(sync_state).values(
            {
                name: bindparam(f"state_{name}", type_=sync_state.c[name].type)
                for name in _STATE_COLUMNS
            }
        )
        statements.append(
            upsert.on_conflict_do_update(
                index_elements=[sync_state.c.connection, sync_state.c.stream],
                set_={name: upsert.excluded[name] for name in ("cursor", "state", "updated_at")},
            )
        )
    if run:
        statements.append(
            update(sync_runs)
            .where(sync_runs.c.id == bindparam("run_id", type_=sync_runs.c.id.type))
            .values(
                records_read=sync_runs.c.records_read + bindparam("read", type_=Integer()),
                records_written=sync_runs.c.records_written + bindparam("written", type_=Integer()),
            )
        )
    if dialect == "postgresql" and len(statements) == 2:
        # The upsert as a data-modifying CTE of the update: both run, in one statement.
        statements = [statements[1].add_cte(statements[0].cte("saved_state"))]
    return tuple(statements)


_STATE_COLUMNS = ("connection", "stream", "cursor", "state", "updated_at")

# Where each stream's records are kept.
_TABLES = {
    Stream.CUSTOMERS: customers,
    Stream.ORDERS: orders,
    Stream.PRODUCTS: products,
    Stream.CHECKOUTS: checkouts,
}

# Whether any record of a connection's stream was ever redacted (most never were).
_ANY_REDACTED = {
    "sqlite": "SELECT 1 FROM redactions WHERE connection = ? AND stream = ? LIMIT 1",
    "postgresql": "SELECT 1 FROM redactions WHERE connection = %s AND stream = %s LIMIT 1",
}


def _is_unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (a race between writers), as opposed to a record the schema refuses."""
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    name = getattr(exc.orig, "sqlite_errorname", "")
    return name in ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")


def _run(row: Row[Any]) -> Run:
    return Run(
        id=row.id,
        connection=row.connection,
        trigger=row.trigger,
        full=row.full,
        status=RunStatus(row.status),
        started_at=row.started_at,
        ended_at=row.ended_at,
        records_read=row.records_read,
        records_written=row.records_written,
        errors=row.errors,
        error=row.error,
        error_kind=row.error_kind,
        rate_limit_wait=row.rate_limit_wait,
        streams=row.streams,
    )


# inbox builds on Store (its functions take one), so it is imported once Store exists.
from omnicrm.core.store import inbox  # noqa: E402
