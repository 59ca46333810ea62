"""SQL shared by the scoring and the counts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Integer,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)

from omnicrm.crm.schema import crm_state, profiles


def among(conn: Connection, profile_ids: Collection[int]) -> ColumnElement[bool]:
    """``profiles.id`` is one of ``profile_ids``, as ONE bound parameter: an array on
    PostgreSQL, a JSON array read by json_each on SQLite. A thousand ids in an IN list
    would cost a thousand parameters to render and parse on every statement."""
    ids = sorted({int(i) for i in profile_ids})
    if conn.dialect.name == "postgresql":
        return profiles.c.id == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    listed = func.json_each(bindparam(None, json.dumps(ids))).table_valued("value")
    return profiles.c.id.in_(select(listed.c.value))


def of_shop(shop: str) -> ColumnElement[bool]:
    """``profiles`` of ``shop``: leads every query's WHERE, so the (shop, id) index keeps
    one shop's counts and scores off the other shops' rows."""
    return profiles.c.shop == shop


def get_state(conn: Connection, key: str, *, shop: str) -> dict[str, Any] | None:
    """The crm_state value of ``shop`` under ``key``, if any."""
    value = conn.execute(
        select(crm_state.c.value).where(crm_state.c.shop == shop, crm_state.c.key == key)
    ).scalar()
    return value if isinstance(value, dict) else None


def get_states(conn: Connection, keys: Collection[str], *, shop: str) -> dict[str, dict[str, Any]]:
    """The crm_state values of ``shop`` under ``keys`` that exist, in one query: a
    refresh reads several, and each query is a round trip."""
    rows = conn.execute(
        select(crm_state.c.key, crm_state.c.value).where(
            crm_state.c.shop == shop, crm_state.c.key.in_(list(keys))
        )
    )
    return {key: value for key, value in rows if isinstance(value, dict)}


def put_state(
    conn: Connection, key: str, value: dict[str, Any], now: dt.datetime, *, shop: str
) -> None:
    """Set the crm_state value of ``shop`` under ``key``."""
    done = conn.execute(
        update(crm_state)
        .where(crm_state.c.shop == shop, crm_state.c.key == key)
        .values(value=value, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(insert(crm_state).values(shop=shop, key=key, value=value, updated_at=now))
