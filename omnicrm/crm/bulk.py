"""Many rows' updates at once: what a refresh writes for a thousand changed profiles.

On SQLite an ``executemany`` of one UPDATE is already the fast way (no round trips: the
database is in the process). On PostgreSQL the same ``executemany`` is a thousand
statements, each parsed, planned and executed on its own (130 ms for 1,000 profiles in
benchmarks/segments.py). There the rows are instead copied (``COPY``, one stream) into a
temporary table and applied by ONE ``UPDATE ... FROM`` joining it on the key.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, MetaData, Table, bindparam, update
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.types import TypeEngine

# What to SET, given the staged row's values by field name: the default sets every
# column named by a field to that field's value.
Values = Callable[[Mapping[str, ColumnElement[Any]]], Mapping[str, Any]]

# A name of its own for each staging table, so two updates in one transaction (a
# temporary table lives until it is dropped) never meet.
_serial = itertools.count()


def update_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    column: str | None = None,
    values: Values | None = None,
    types: Mapping[str, TypeEngine[Any]] | None = None,
) -> None:
    """UPDATE the row of ``table`` whose ``column`` (default: ``key``) equals each row's
    ``key`` field, in the caller's transaction.

    Every row has the same fields. ``values`` gives the SET clause from the staged
    fields (for example ``lambda s: {"amount_spent": table.c.amount_spent + s["spent"]}``);
    without it each field other than the key sets the column of its name. A field that
    is not a column of ``table`` needs its type in ``types``.
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
        conn.execute(statement, [{f"_v_{n}": row[n] for n in fields} for row in rows])
        return
    temp = Table(
        f"_staged_{table.name}_{next(_serial)}",
        MetaData(),
        *(Column(name, type_of(name)) for name in fields),
        prefixes=["TEMPORARY"],
    )
    # Created, filled and dropped in the caller's transaction: on a failure the rollback
    # takes the table away with the rest.
    conn.execute(CreateTable(temp))
    # The columns' own bind processing (UTC datetimes, JSON ...), then COPY's text.
    processors = [temp.c[name].type.bind_processor(conn.dialect) or _same for name in fields]
    names = ", ".join(f'"{name}"' for name in fields)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f'COPY "{temp.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(
                    [process(row[n]) for process, n in zip(processors, fields, strict=True)]
                )
    finally:
        cursor.close()
    staged: dict[str, ColumnElement[Any]] = {name: temp.c[name] for name in fields}
    conn.execute(update(table).where(match == temp.c[key]).values(set_clause(staged)))
    conn.execute(DropTable(temp))


def _same(value: Any) -> Any:
    return value
