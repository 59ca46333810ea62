"""Many rows' updates and inserts at once: what a refresh writes for a thousand changed
profiles.

On SQLite an ``executemany`` of one UPDATE is already the fast way (no round trips: the
database is in the process). On PostgreSQL the same ``executemany`` is a thousand
statements, each executed on its own. There the rows are instead sent as one array per
field and applied by ONE ``UPDATE ... FROM unnest(...)`` joining them on the key. A
thousand profiles' writes went from 130 ms to a few tens (benchmarks/README.md,
segments). New rows go through the store's bulk writer (``COPY`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Table,
    Update,
    bindparam,
    func,
    update,
)
from sqlalchemy.types import TypeEngine

from omnicrm.core.store import table_writers

# What to SET, given the staged row's values by field name: the default sets every
# column named by a field to that field's value.
Values = Callable[[Mapping[str, ColumnElement[Any]]], Mapping[str, Any]]


def update_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    column: str | None = None,
    values: Values | None = None,
    types: Mapping[str, TypeEngine[Any]] | None = None,
    where: ColumnElement[bool] | None = None,
) -> None:
    """UPDATE the row of ``table`` whose ``column`` (default: ``key``) equals each row's
    ``key`` field, in the caller's transaction.

    Every row has the same fields. ``values`` gives the SET clause from the staged
    fields (for example ``lambda s: {"amount_spent": table.c.amount_spent + s["spent"]}``);
    without it each field other than the key sets the column of its name. A field that
    is not a column of ``table`` needs its type in ``types``. ``where`` narrows the rows
    updated further (for example to one shop's).
    """
    if not rows:
        return
    fields = list(rows[0])
    if key not in fields:
        raise ValueError(f"the rows have no key field {key!r}")
    match = table.c[column or key]

    def type_of(name: str) -> TypeEngine[Any]:
        if types and name in types:
            return types[name]
        if name == key:
            return match.type
        if name not in table.c:
            raise ValueError(f"field {name!r} is not a column of {table.name}: give its type")
        return table.c[name].type

    def set_clause(staged: Mapping[str, ColumnElement[Any]]) -> Mapping[str, Any]:
        if values is not None:
            return values(staged)
        return {name: staged[name] for name in fields if name != key}

    if conn.dialect.name != "postgresql":
        # Parameter names of their own: a bound name equal to a column's is refused.
        params: dict[str, ColumnElement[Any]] = {
            name: bindparam(f"_v_{name}", type_=type_of(name)) for name in fields
        }
        statement = update(table).where(match == params[key]).values(set_clause(params))
        if where is not None:
            statement = statement.where(where)
        _executemany(conn, statement, fields, rows)
        return
    # The rows go as one array per field, each bound whole (a thousand rows are a few
    # parameters, not thousands), and unnest() turns them back into rows joined on the
    # key. The statement's text depends only on the fields, so it is compiled once and
    # prepared by the driver. The planner guesses unnest() at 100 rows and so looks each
    # key up in the table's index; a temporary table without statistics was guessed
    # large and joined by reading the whole table.
    arrays = [
        bindparam(f"_v_{name}", [row[name] for row in rows], type_=ARRAY(type_of(name)))
        for name in fields
    ]
    staged_rows = func.unnest(*arrays).table_valued(*fields, name="staged").render_derived()
    staged: dict[str, ColumnElement[Any]] = {name: staged_rows.c[name] for name in fields}
    statement = update(table).where(match == staged[key]).values(set_clause(staged))
    conn.execute(statement if where is None else statement.where(where))


def _executemany(
    conn: Connection,
    statement: Update,
    fields: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Execute ``statement`` once per row, its ``_v_<field>`` parameters from the row's
    fields, as one driver ``executemany``.

    Compiled once here, each row's values run through the processors Core binds them
    with: Core's own executemany built a parameter dict per row and processed it (the
    rebuild of 1,000,000 first-refresh profiles spent more there than in SQLite's
    updates; benchmarks/README.md, the first refresh). Needs positional parameters
    (SQLite's ``?``); other drivers go through Core.
    """
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup
    if order is None:
        conn.execute(statement, [{f"_v_{n}": row[n] for n in fields} for row in rows])
        return
    # A function from a row to the driver's tuple, generated as TableWriter's encoders
    # are (omnicrm.core.store.table_writers): no per-column loop. Each position is a
    # field of the row through its processor, or a constant of the statement (the
    # shop of a WHERE, say) processed once.
    parts: list[str] = []
    namespace: dict[str, Any] = {}
    constants: list[Any] = []
    for i, name in enumerate(order):
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name.startswith("_v_") and name[3:] in fields:
            value = f"d[{name[3:]!r}]"
            if process is not None:
                namespace[f"p{i}"] = process
                value = f"p{i}({value})"
            parts.append(value)
        else:
            constant = bind.effective_value
            constants.append(constant if process is None else process(constant))
            parts.append(f"c[{len(constants) - 1}]")
    encode = eval(f"lambda d, c: ({', '.join(parts)},)", namespace)
    driver_rows = list(map(encode, rows, repeat(tuple(constants))))
    conn.exec_driver_sql(str(compiled), driver_rows)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys, each a column of ``table``; the other
    columns take their defaults) in the caller's transaction, through the store's bulk
    writer: ``COPY`` on PostgreSQL, one
    driver executemany on SQLite, each row encoded by the columns' own processors
    without Core's per-row parameter work."""
    if not rows:
        return
    fields = list(rows[0])
    # The columns left out take their defaults, as in Core's INSERT.
    defaults = {
        column.name: column.default.arg  # type: ignore[attr-defined]
        for column in table.columns
        if column.name not in fields and column.default is not None and column.default.is_scalar
    }
    writers = table_writers.writers(conn.engine)
    writer = writers(table, [*fields, *defaults])
    writer.insert(conn, writer.encode(rows, defaults))
    # A table filled in this transaction (a first refresh's profile values) is planned
    # from statistics of when it was empty: its next DELETE by profile id read all of it.
    writers.restat_after(conn, table, len(rows))
