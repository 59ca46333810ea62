"""Hints to the query planners that hold on both backends.

:func:`one_of` writes ``column IN values`` so that each backend gets ONE parameter.

SQLite keeps no statistics unless asked (the store never runs ANALYZE on it), so given
``shop = ? AND connection = ? AND id IN (...)`` it may pick an index that leads with the
shop, ``shop = ?`` alone, and read the whole shop for each lookup instead of using the
primary key. :func:`unindexed` keeps a term out of SQLite's index choice (its unary
``+``); PostgreSQL, which plans from statistics, gets the plain column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ARRAY, Dialect, Text, any_, bindparam, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class _Unindexed(ColumnElement[Any]):
    inherit_cache = True
    # The column is part of the cache key: two columns, two statements.
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


def unindexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column`` for a filter that must not choose the index (a shop term beside a
    key lookup: the rows are found by the key, the shop term only checks them)."""
    return _Unindexed(column)


@compiles(_Unindexed)
def _plain(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _unary_plus(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def one_of(dialect: str, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` as ONE parameter: on PostgreSQL ``= ANY(array)``, on SQLite
    ``IN (SELECT value FROM json_each(?))``, with the same index lookups as a list.

    Thousands of separate parameters cost more to bind and send than the lookup itself,
    and SQLAlchemy renders an expanded list afresh for every execution (a first refresh
    of a million records spent some 8 % of its time there; benchmarks/README.md).
    """
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if dialect == "sqlite":
        array = bindparam(None, list(values), type_=_JsonArray(column.type))
        return column.in_(select(func.json_each(array).table_valued("value").c.value))
    return column.in_(values)


class _JsonArray(TypeDecorator[list[Any]]):
    """A list bound as one JSON array text, each item as ``item`` binds it."""

    impl = Text
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        process = self.item.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            value = [process(item) for item in value]
        return orjson.dumps(value).decode()
