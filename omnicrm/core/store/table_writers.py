"""Bulk writes of record rows, without SQLAlchemy Core's per-row work.

Rows are still built by :mod:`rows` and every value is still encoded by its column's own
SQLAlchemy type (``UtcDateTime``, ``Money``, ``Date`` ...) through the bind processor Core
itself would use, so there is one encoding; JSON goes to the driver as text, the same
document Core's serializer makes (:func:`schema.record_json_column`). This module only
skips Core's per-row parameter machinery. New rows go in with ``COPY`` on PostgreSQL and
one ``executemany`` elsewhere, both on the transaction's own driver connection; changed
rows with one ``executemany`` UPDATE. Driver errors, and values a column refuses, are
raised as the SQLAlchemy exceptions Core would raise (``IntegrityError``,
``StatementError`` ...).
"""

from __future__ import annotations

import json
import operator
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson
from sqlalchemy import JSON, Column, Connection, Dialect, Engine, Table, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from omnicrm.core.store import failures
from omnicrm.core.store.schema import json_text, record_json_column

Row = tuple[Any, ...]
# From a row (a dict, or values in a known order) and the encoded constants to a driver row.
Encoder = Callable[[Any, Row], Row]


class TableWriter:
    """Encodes row dicts of one table for the driver, and writes them in bulk.

    ``columns`` names the columns written (default: all), in the order of the rows'
    values; the others take their defaults (a serial key, say).
    """

    def __init__(
        self, table: Table, dialect: Dialect, columns: Sequence[str] | None = None
    ) -> None:
        self.table = table
        self.dialect = dialect
        chosen = [table.c[name] for name in columns] if columns else list(table.columns)
        self.names = [column.name for column in chosen]
        # The processors Core binds these columns with (None: the value as is).
        self._process = [_processor(column, dialect) for column in chosen]
        self._encoders: dict[tuple[frozenset[str], tuple[str, ...] | None], Encoder] = {}
        self._builders: dict[Any, Callable[[Sequence[Any], Row], Iterator[Row]]] = {}

        quote = dialect.identifier_preparer.quote
        marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}
        if dialect.paramstyle not in marks:
            raise NotImplementedError(f"no bulk writes for paramstyle {dialect.paramstyle!r}")
        mark = marks[dialect.paramstyle]
        # COPY is psycopg 3's API; other drivers insert with executemany.
        self.copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        name = quote(table.name)
        columns = ", ".join(quote(n) for n in self.names)
        self.insert_sql = (
            f"INSERT INTO {name} ({columns}) VALUES ({', '.join([mark] * len(self.names))})"
        )
        self.copy_sql = f"COPY {name} ({columns}) FROM STDIN"
        key = [column.name for column in table.primary_key.columns]
        rest = [n for n in self.names if n not in key]
        # Rows can be updated only when they carry the whole primary key.
        self.update_sql: str | None = None
        self._update_order: Callable[[Row], Row] = tuple
        if set(key) <= set(self.names):
            self.update_sql = (
                f"UPDATE {name} SET {', '.join(f'{quote(n)} = {mark}' for n in rest)}"
                f" WHERE {' AND '.join(f'{quote(n)} = {mark}' for n in key)}"
            )
            # An UPDATE takes the row's values in SET order, then its key.
            order = [self.names.index(n) for n in [*rest, *key]]
            self._update_order = operator.itemgetter(*order)

    def versions(self, conn: Connection, connection: str, ids: Sequence[str]) -> dict[str, Any]:
        """The ``updated_at`` of ``connection``'s stored rows among ``ids``, by id; on
        PostgreSQL the rows stay locked until the transaction ends.

        The ids go as one JSON array the database unpacks: a thousand parameters bound
        one by one (and, on SQLite, a statement compiled afresh for their number) cost
        more than the lookup itself. Only for tables keyed by (connection, id).

        On SQLite a batch with no stored id between its least and its greatest (every
        batch of a first sync whose ids rise, as platforms' ids mostly do) is told by
        one seek of the primary key instead of a probe per id. SQLite orders text by
        its UTF-8 bytes, which is Python's order of ``str``: no stored id equal to one
        of ``ids`` can lie outside their ``min()`` and ``max()``.
        """
        if not ids:
            return {}
        quote = self.dialect.identifier_preparer.quote
        if self.dialect.name == "sqlite":
            any_between = (
                f"SELECT 1 FROM {quote(self.table.name)} WHERE {quote('connection')} = ?"
                f" AND {quote('id')} BETWEEN ? AND ? LIMIT 1"
            )
            if conn.exec_driver_sql(any_between, (connection, min(ids), max(ids))).first() is None:
                return {}
            unpacked = "IN (SELECT value FROM json_each(?))"
            marks, lock = "?", ""
        elif self.dialect.name == "postgresql":
            # ARRAY(...) is computed once; = ANY of it is the lookup by primary key.
            unpacked = "= ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(%s AS jsonb))))"
            marks, lock = "%s", " FOR UPDATE"
        else:
            raise NotImplementedError(f"no version lookup on {self.dialect.name}")
        sql = (
            f"SELECT {quote('id')}, {quote('updated_at')} FROM {quote(self.table.name)}"
            f" WHERE {quote('connection')} = {marks} AND {quote('id')} {unpacked}{lock}"
        )
        found = conn.exec_driver_sql(sql, (connection, orjson.dumps(list(ids)).decode()))
        updated_at = self.table.c.updated_at.type.dialect_impl(self.dialect)
        read = updated_at.result_processor(self.dialect, None)
        return {id_: read(at) if read else at for id_, at in found}

    def encode(
        self,
        rows: Sequence[Mapping[str, Any]] | Sequence[Row],
        same: Mapping[str, Any],
        names: Sequence[str] | None = None,
    ) -> list[Row]:
        """Driver rows of ``rows``: dicts by column name or, when ``names`` says which
        column each value is, tuples (no dict to build per row). ``same`` gives columns
        whose value is one for all rows (encoded once, not per row)."""
        if not rows:
            return []
        constant_names = sorted(same)
        key = (frozenset(constant_names), None if names is None else tuple(names))
        try:
            encoder = self._encoders.get(key)
            if encoder is None:
                encoder = self._encoders[key] = self._encoder(constant_names, names)
            constants = self._constants(constant_names, same)
            return list(map(encoder, rows, repeat(constants)))
        except Exception as exc:
            # As Core raises a value its type refuses: a StatementError naming the INSERT.
            raise self._wrap(exc, self.insert_sql) from exc

    def _encode_value(self, i: int, value: Any) -> Any:
        process = self._process[i]
        return value if process is None else process(value)

    def encode_records(
        self,
        records: Sequence[Any],
        fields: Mapping[str, str],
        loop: str,
        same: Mapping[str, Any],
    ) -> Iterator[Row]:
        """Driver rows read straight from ``records``' attributes, with no value tuple in
        between: ``fields`` gives each column's expression in the names of ``loop`` (a
        comprehension's ``for`` clauses over ``records``), as :mod:`rows` declares them.
        ``same`` as for :meth:`encode`.

        Each row is encoded as it is taken: :meth:`insert` hands them to the driver one
        by one, so a row is bound and freed before the next is built. A first sync
        writes millions; with a batch's rows all built first and bound after, the
        store's writes took an eighth longer (thousands of tuples alive at once, walked
        by the garbage collector and fetched back from memory). A value its column
        refuses is raised where its row is taken, as :meth:`encode` raises it.
        """
        constant_names = sorted(same)
        key = (frozenset(constant_names), tuple(fields.items()), loop)
        try:
            build = self._builders.get(key)
            if build is None:
                parts, namespace = self._parts(constant_names, fields)
                # Our own columns' fixed expressions (rows') and processors by index only.
                source = f"lambda records, c: (({', '.join(parts)},) {loop})"
                build = self._builders[key] = eval(source, namespace)
            constants = self._constants(constant_names, same)
        except Exception as exc:
            raise self._wrap(exc, self.insert_sql) from exc
        return self._refusing(build(records, constants))

    def _refusing(self, rows: Iterator[Row]) -> Iterator[Row]:
        """``rows``, with a value a column refuses raised as Core raises it."""
        try:
            yield from rows
        except Exception as exc:
            raise self._wrap(exc, self.insert_sql) from exc

    def _constants(self, names: list[str], same: Mapping[str, Any]) -> Row:
        return tuple(self._encode_value(self.names.index(name), same[name]) for name in names)

    def _encoder(self, same: list[str], names: Sequence[str] | None) -> Encoder:
        """A function from a row (and the encoded constants) to the driver's tuple.

        Generated, as SQLAlchemy and dataclasses generate theirs: one call per row, with
        no per-column loop; it holds no logic but which processor applies to which key.
        """
        if names is None:
            values = {name: f"d[{name!r}]" for name in self.names}
        else:
            values = {name: f"d[{i}]" for i, name in enumerate(names)}
        parts, namespace = self._parts(same, values)
        # The source names only our own columns (repr-quoted) and processors by index.
        encoder: Encoder = eval(f"lambda d, c: ({', '.join(parts)},)", namespace)
        return encoder

    def _parts(
        self, same: list[str], values: Mapping[str, str]
    ) -> tuple[list[str], dict[str, Any]]:
        """Each column's expression in a generated encoder: its constant ``c[i]``, or its
        value's expression through its processor ``p<i>``; and the processors by name."""
        namespace: dict[str, Any] = {}
        parts = []
        for i, (name, process) in enumerate(zip(self.names, self._process, strict=True)):
            if name in same:
                parts.append(f"c[{same.index(name)}]")
                continue
            value = values.get(name)
            if value is None:
                raise ValueError(f"{self.table.name}.{name}: no value given")
            if process is None:
                parts.append(value)
            else:
                namespace[f"p{i}"] = process
                parts.append(f"p{i}({value})")
        return parts, namespace

    def insert(self, conn: Connection, rows: Iterable[Row]) -> int:
        """Insert new rows (a list, or :meth:`encode_records`' rows as they are taken):
        COPY on PostgreSQL, one executemany elsewhere. Returns how many were inserted.

        A row that cannot be encoded ends the rows there: the driver finishes its
        statement on the rows before it, and the refusal is raised after, for the
        caller's transaction to undo. (Raised through a COPY, psycopg would send the
        error's text, the value's, to the server, which logs it.)
        """
        refused: list[Exception] = []
        taken = _until_refused(rows, refused)
        statement = self.copy_sql if self.copy else self.insert_sql
        with self._driver_errors(conn, statement) as driver, closing(driver.cursor()) as cursor:
            if self.copy:
                # No COPY for no rows (a batch of records all stored already): it is a
                # round trip all the same.
                first = next(taken, None)
                if first is not None:
                    with cursor.copy(self.copy_sql) as copy:
                        write = copy.write_row
                        write(first)
                        for row in taken:
                            write(row)
            else:
                cursor.executemany(self.insert_sql, taken)
            inserted: int = cursor.rowcount
        if refused:
            error = refused[0]
            if isinstance(error, SQLAlchemyError):
                raise error  # encode_records' own, already as Core raises it
            raise self._wrap(error, statement) from error
        return max(inserted, 0)

    def update(self, conn: Connection, rows: Iterable[Row]) -> None:
        """Overwrite stored rows by primary key, in one executemany."""
        if self.update_sql is None:
            raise TypeError(f"{self.table.name}: rows without the primary key cannot update")
        ordered = list(map(self._update_order, rows))
        if ordered:
            conn.exec_driver_sql(self.update_sql, ordered)

    @contextmanager
    def _driver_errors(self, conn: Connection, statement: str) -> Iterator[Any]:
        """The transaction's driver connection; its errors raised as Core would."""
        if not conn.in_transaction():
            # Core begins one on a statement (autobegin); the driver's own would be
            # unknown to ``conn``, whose commit() would then leave these rows uncommitted.
            conn.begin()
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        try:
            yield conn.connection.driver_connection
        except self.dialect.loaded_dbapi.Error as exc:
            invalidated = self.dialect.is_disconnect(exc, dbapi_conn, None)
            if invalidated:
                conn.invalidate(exc)
            raise self._wrap(exc, statement, invalidated) from exc

    def _wrap(self, exc: Exception, statement: str, invalidated: bool = False) -> Exception:
        failures.hide_values(exc)  # as the engine's own errors are (see failures)
        return DBAPIError.instance(
            statement,
            None,
            exc,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=self.dialect,
        )


def _until_refused(rows: Iterable[Row], refused: list[Exception]) -> Iterator[Row]:
    """``rows`` up to the first that raises; its error goes to ``refused``."""
    try:
        yield from rows
    except Exception as exc:
        refused.append(exc)


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What Core binds ``column`` with; for JSON, the text of the engine's serializer.

    Core hands JSON to psycopg wrapped for its own dumper, which serializes it again per
    value; as text (what the JSON bind processor makes on SQLite) it is the same document,
    which the server parses as json or jsonb.
    """
    impl = column.type.dialect_impl(dialect)
    if isinstance(impl, JSON):
        serialize: Callable[[Any], str] = getattr(dialect, "_json_serializer", None) or json.dumps
        if serialize is json_text:
            return record_json_column  # the same text, faster (rows here are records')

        def process(value: Any) -> str | None:
            return None if value is None else serialize(value)

        return process
    return impl.bind_processor(dialect)


@dataclass
class Writers:
    """The writers of one engine, and what it knows of its tables' planner statistics."""

    dialect: Dialect
    tables: dict[tuple[str, tuple[str, ...]], TableWriter] = field(default_factory=dict)
    have_stats: set[str] = field(default_factory=set)
    # (table, connection): statistics known to count the connection, or new rows of the
    # connection written since the table's statistics were looked at.
    connections_known: set[tuple[str, str]] = field(default_factory=set)
    connections_new: dict[tuple[str, str], int] = field(default_factory=dict)

    def __call__(self, table: Table, columns: Sequence[str] = ()) -> TableWriter:
        """The writer of ``table``'s ``columns`` (default: all of them)."""
        key = (table.name, tuple(columns))
        writer = self.tables.get(key)
        if writer is None:
            writer = self.tables[key] = TableWriter(table, self.dialect, columns or None)
        return writer

    def ensure_stats(
        self, conn: Connection, table: Table, connection: str | None = None, new: int = 0
    ) -> None:
        """ANALYZE a PostgreSQL table that has no planner statistics yet, once it has rows.

        Without statistics the planner cannot tell the primary key from the
        (connection, updated_at) index for a lookup by (connection, id), and may take the
        latter: then every foreign-key check of an order line, and the lookup of stored
        ids, scans all of the connection's rows, and a first sync slows down quadratically
        until autovacuum happens to analyze the table. Run in this transaction, ANALYZE
        counts the transaction's own new rows, and its lock does not hold writers up.
        It waits for ``_STATS_ROWS`` rows: statistics of a table of a handful of rows
        (each of another connection, say) would mislead the planner the same way.

        The same holds for a ``connection`` the statistics predate (a second shop's first
        sync, into a table analyzed when it held one connection's rows): they say it has
        next to no rows, and its lookups take the (connection, updated_at) index. So once
        this process has written ``_STATS_ROWS`` ``new`` rows of a connection the
        statistics' common values leave out, the table is analyzed again (once per
        connection and table in a process: a large write, next to which it costs little).
        """
        if self.dialect.name != "postgresql":
            return
        name = self.dialect.identifier_preparer.quote(table.name)
        if table.name not in self.have_stats:
            has_stats, rows = conn.execute(
                text(_STATS_SQL.format(table=name)), {"name": name, "enough": _STATS_ROWS}
            ).one()
            if not has_stats:
                if rows < _STATS_ROWS:
                    return  # look again after the next batch
                conn.exec_driver_sql(f"ANALYZE {name}")
            self.have_stats.add(table.name)
        if connection is None:
            return
        key = (table.name, connection)
        if key in self.connections_known:
            return
        written = self.connections_new.get(key, 0) + new
        if written < _STATS_ROWS:
            self.connections_new[key] = written
            return
        counted = conn.execute(
            text(_CONNECTION_STATS_SQL), {"name": name, "connection": connection}
        ).scalar()
        if not counted:
            conn.exec_driver_sql(f"ANALYZE {name}")
        self.connections_known.add(key)
        self.connections_new.pop(key, None)

    def restat_after(self, conn: Connection, table: Table, written: int) -> None:
        """ANALYZE a PostgreSQL table after a write of ``written`` new rows that at least
        doubles what its statistics counted (or that it had none of).

        The identity tables of a store fill in one refresh, in one transaction: its first
        one after an import writes a key per email, phone and member code, then looks
        every record's keys up in the table it just wrote. Planned on no statistics (or
        on those of a table a tenth as large), each lookup reads the shop's index range
        instead of the key's: quadratic, minutes at 100,000 records. ANALYZE in this
        transaction counts its own new rows; autovacuum would come only after the commit.
        A write that does not double the table leaves the statistics as they are (their
        proportions still hold), and below ``_STATS_ROWS`` rows nothing is done.
        ANALYZE's lock, held to the commit, blocks no reader or writer: only another
        ANALYZE of the table (a second shop's first refresh at the same time) waits.
        """
        if self.dialect.name != "postgresql" or written < _STATS_ROWS:
            return
        name = self.dialect.identifier_preparer.quote(table.name)
        counted = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
            {"name": name},
        ).scalar()
        # -1: never analyzed (PostgreSQL 14 on); 0: analyzed empty.
        if counted is None or counted < written:
            conn.exec_driver_sql(f"ANALYZE {name}")
            self.have_stats.add(table.name)


_STATS_ROWS = 1000
_STATS_SQL = """
    SELECT
        EXISTS (
            SELECT 1 FROM pg_stats s
            JOIN pg_namespace n ON n.nspname = s.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
            WHERE c.oid = to_regclass(:name)
        ),
        (SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT :enough) AS enough)
"""

# Whether the table's statistics name ``connection`` among its most common connections.
_CONNECTION_STATS_SQL = """
    SELECT EXISTS (
        SELECT 1 FROM pg_stats s
        JOIN pg_namespace n ON n.nspname = s.schemaname
        JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
        WHERE c.oid = to_regclass(:name) AND s.attname = 'connection'
        AND CAST(:connection AS text) = ANY(CAST(CAST(s.most_common_vals AS text) AS text[]))
    )
"""

_writers: weakref.WeakKeyDictionary[Engine, Writers] = weakref.WeakKeyDictionary()


def writers(engine: Engine) -> Writers:
    """The (cached) writers of ``engine``."""
    found = _writers.get(engine)
    if found is None:
        found = _writers[engine] = Writers(engine.dialect)
    return found
