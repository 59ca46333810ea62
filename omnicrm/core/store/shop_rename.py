"""Renaming a shop: every row the store holds of shop OLD, in every table that carries
a ``shop`` column, moves to NEW in one transaction.

The tables are found, not listed: every table of the store's metadata with a ``shop``
column (the CRM's and any added later), and every table of the database itself with
one, so a table whose module is not imported is not left behind under the old id.
"""

from __future__ import annotations

from sqlalchemy import Connection, TableClause, column, exists, inspect, select, table, text, update

from omnicrm.core.store.schema import metadata
from omnicrm.errors import OmnicrmError


class ShopRenameError(OmnicrmError):
    """A rename the store refuses: the old shop holds nothing, or the new one holds data."""


def shop_tables(conn: Connection) -> list[TableClause]:
    """Every table of the database with a ``shop`` column, by name."""
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    names = {t.name for t in metadata.sorted_tables if "shop" in t.c and t.name in present}
    for name in present - names:
        if any(c["name"] == "shop" for c in inspector.get_columns(name)):
            names.add(name)
    return [table(name, column("shop")) for name in sorted(names)]


def holding(conn: Connection, tables: list[TableClause], shop: str) -> list[str]:
    """The names of ``tables`` holding a row of ``shop``."""
    return [
        t.name for t in tables if conn.execute(select(exists().where(t.c.shop == shop))).scalar()
    ]


def rename_shop(conn: Connection, old: str, new: str) -> dict[str, int]:
    """Move every row of shop ``old`` to ``new`` within ``conn``'s transaction; the rows
    moved, by table. Raises ShopRenameError when ``old`` holds nothing or ``new`` holds
    anything (two customer bases are never joined by a rename)."""
    if old == new:
        raise ShopRenameError(f"shop {old!r} is already called {new!r}")
    tables = shop_tables(conn)
    if conn.dialect.name == "postgresql":
        # Writers wait until the rename commits (readers do not): a sync committing a
        # row of the old shop halfway through would leave it behind. SQLite takes its
        # one write lock at the first UPDATE and holds it to the commit.
        names = ", ".join(conn.dialect.identifier_preparer.quote(t.name) for t in tables)
        conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    taken = holding(conn, tables, new)
    if taken:
        raise ShopRenameError(
            f"shop {new!r} already holds data ({', '.join(taken)}): a rename never joins"
            " two shops' customers"
        )
    moved = {
        t.name: conn.execute(update(t).where(t.c.shop == old).values(shop=new)).rowcount
        for t in tables
    }
    if not any(moved.values()):
        raise ShopRenameError(f"the store holds no shop {old!r}")
    return {name: count for name, count in moved.items() if count}
