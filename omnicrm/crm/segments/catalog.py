"""Segment definitions: the ``segments`` table, built-ins included.

Every shop has its own rows: the built-ins are written into each shop, a user's
segment is defined in one shop, and a name is looked up within one shop only.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from omnicrm.crm.schema import segment_counts, segments
from omnicrm.crm.segments.builtin import BUILTIN_BY_NAME, BUILTIN_PREFIXES, BUILTIN_SEGMENTS
from omnicrm.crm.segments.language import SegmentError, parse

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,99}")
_BUILTIN_ORDER = {s.name: i for i, s in enumerate(BUILTIN_SEGMENTS)}


@dataclass(frozen=True)
class Segment:
    """A defined segment; ``title`` is the built-in's title, or the name."""

    name: str
    expression: str
    builtin: bool
    title: str
    description: str | None
    created_at: dt.datetime


def ensure_builtin(conn: Connection, now: dt.datetime | None = None, *, shop: str) -> None:
    """Bring ``shop``'s built-in rows of ``segments`` in line with the code: insert the
    missing, update the changed, delete those no longer built in (with their history)."""
    now = now or dt.datetime.now(dt.UTC)
    stored = {
        row.name: row
        for row in conn.execute(
            select(segments.c.name, segments.c.expression, segments.c.description).where(
                segments.c.shop == shop, segments.c.builtin.is_(True)
            )
        )
    }
    for segment in BUILTIN_SEGMENTS:
        row = stored.get(segment.name)
        if row is None:
            conn.execute(
                insert(segments).values(
                    shop=shop,
                    name=segment.name,
                    expression=segment.expression,
                    builtin=True,
                    description=segment.description,
                    created_at=now,
                )
            )
        elif (row.expression, row.description) != (segment.expression, segment.description):
            conn.execute(
                update(segments)
                .where(segments.c.shop == shop, segments.c.name == segment.name)
                .values(expression=segment.expression, description=segment.description)
            )
            if row.expression != segment.expression:  # old counts measured something else
                _delete_counts(conn, shop, segment.name)
    for name in set(stored) - set(BUILTIN_BY_NAME):
        _delete(conn, shop, name)


def define(
    conn: Connection,
    name: str,
    expression: str,
    *,
    shop: str,
    description: str | None = None,
    replace: bool = False,
    now: dt.datetime | None = None,
) -> Segment:
    """Define the user segment ``name`` in ``shop``; the expression is checked first.

    Raises SegmentSyntaxError for a bad expression and SegmentError for a bad or taken
    name. ``replace`` redefines an existing user segment (dropping its count history,
    which measured the old expression).
    """
    _check_name(name)
    parse(expression)
    _check_description(description)
    now = now or dt.datetime.now(dt.UTC)
    existing = _row(conn, shop, name)
    if existing is not None and not replace:
        raise SegmentError(f"segment {name!r} exists: remove it first, or replace it")
    if existing is not None:
        conn.execute(
            update(segments)
            .where(segments.c.shop == shop, segments.c.name == name)
            .values(expression=expression, description=description)
        )
        if existing.expression != expression:
            _delete_counts(conn, shop, name)
        return Segment(name, expression, False, name, description, existing.created_at)
    conn.execute(
        insert(segments).values(
            shop=shop,
            name=name,
            expression=expression,
            builtin=False,
            description=description,
            created_at=now,
        )
    )
    return Segment(name, expression, False, name, description, now)


def remove(conn: Connection, name: str, *, shop: str) -> None:
    """Remove ``shop``'s user segment ``name`` and its count history."""
    segment = get_segment(conn, name, shop=shop)
    if segment.builtin:
        raise SegmentError(f"{name!r} is a built-in segment and cannot be removed")
    _delete(conn, shop, name)


def get_segment(conn: Connection, name: str, *, shop: str) -> Segment:
    """``shop``'s segment ``name``; SegmentError (with a did-you-mean among that shop's
    names only) when there is none."""
    row = _row(conn, shop, name)
    if row is None:
        names = conn.execute(select(segments.c.name).where(segments.c.shop == shop)).scalars().all()
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SegmentError(f"no segment named {name!r}{hint}")
    return _segment(row)


def list_segments(conn: Connection, *, shop: str) -> list[Segment]:
    """Every segment of ``shop``: the built-ins in their order, then the user's by name."""
    found = [_segment(row) for row in conn.execute(select(segments).where(segments.c.shop == shop))]
    return sorted(found, key=lambda s: (not s.builtin, _BUILTIN_ORDER.get(s.name, 0), s.name))


def _check_name(name: str) -> None:
    if name in BUILTIN_BY_NAME:
        raise SegmentError(f"{name!r} is a built-in segment: choose another name")
    if name.startswith(BUILTIN_PREFIXES):
        prefixes = ", ".join(BUILTIN_PREFIXES)
        raise SegmentError(f"segment names starting {prefixes} are kept for built-ins: {name!r}")
    if not NAME_PATTERN.fullmatch(name):
        raise SegmentError(
            f"bad segment name {name!r}: lower-case letters, digits, '-', '_', '.' and ':', "
            "starting with a letter or digit, at most 100 characters"
        )


MAX_DESCRIPTION = 1000


def _check_description(description: str | None) -> None:
    """No control characters (PostgreSQL refuses a NUL; no terminal shows them), and a
    length a list can show."""
    if description is None:
        return
    if len(description) > MAX_DESCRIPTION:
        raise SegmentError(f"the description is longer than {MAX_DESCRIPTION} characters")
    bad = next(
        (ch for ch in description if unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n"),
        None,
    )
    if bad is not None:
        raise SegmentError(
            f"the description holds the control character U+{ord(bad):04X}: remove it"
        )


def _row(conn: Connection, shop: str, name: str) -> Row[Any] | None:
    return conn.execute(
        select(segments).where(segments.c.shop == shop, segments.c.name == name)
    ).one_or_none()


def _segment(row: Row[Any]) -> Segment:
    builtin = BUILTIN_BY_NAME.get(row.name) if row.builtin else None
    return Segment(
        row.name,
        row.expression,
        bool(row.builtin),
        builtin.title if builtin else row.name,
        row.description,
        row.created_at,
    )


def _delete_counts(conn: Connection, shop: str, name: str) -> None:
    conn.execute(
        delete(segment_counts).where(
            segment_counts.c.shop == shop, segment_counts.c.segment == name
        )
    )


def _delete(conn: Connection, shop: str, name: str) -> None:
    _delete_counts(conn, shop, name)
    conn.execute(delete(segments).where(segments.c.shop == shop, segments.c.name == name))
