"""POS point events from CSV, written as ledger entries: all of a file or nothing.

Columns (a header row names them, in any order): connection, customer_id, event_id,
kind, points, occurred_at, and optionally order_id and note. Each event is keyed
(connection, ``event:<event_id>``): importing the same file again writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, tuple_

from omnicrm.core.points._common import (
    MAX_ID,
    EntryKind,
    PointsError,
    insert_rows,
    max_entry_id,
    plus_months,
    refresh_since,
)
from omnicrm.core.points.settings import PointsSettings
from omnicrm.core.store.schema import points_entries

REQUIRED = ("connection", "customer_id", "event_id", "kind", "points", "occurred_at")
OPTIONAL = ("order_id", "note")
KINDS = (EntryKind.EARN, EntryKind.REDEEM, EntryKind.EXPIRE, EntryKind.ADJUST)
_MAX_SHOWN = 20
_NUMBER = re.compile(r"[+-]?(\d+|\d{1,3}(,\d{3})+)")


class PointsImportError(PointsError):
    """A file had rows that cannot be imported; ``problems`` lists each as
    'file:line:field: why'. Nothing was written."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = problems[:_MAX_SHOWN]
        more = len(problems) - len(shown)
        lines = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n{lines}")


@dataclass(frozen=True)
class ImportResult:
    rows: int  # events read from the file
    inserted: int  # new entries written
    skipped: int  # events the ledger already held


def import_point_events(
    conn: Connection,
    path: Path,
    settings: PointsSettings | None = None,
    *,
    timezone: str = "Asia/Tokyo",
) -> ImportResult:
    """Import the point events in the CSV at ``path``.

    ``points`` is a whole number (full-width digits and thousands separators are
    fine); earn must not be negative, redeem and expire take points away whichever sign
    they are written with, adjust keeps its sign. ``occurred_at`` is ISO 8601 (or
    'YYYY/MM/DD HH:MM[:SS]'); without an offset it is in ``timezone``. Imported earns
    expire by ``settings`` (default settings when None). UTF-8 (with or without BOM)
    or Shift_JIS (cp932). Raises PointsImportError listing every problem, having
    written nothing, if any row is bad or contradicts an event already imported.
    """
    settings = settings or PointsSettings()
    zone = zoneinfo.ZoneInfo(timezone)
    problems: list[str] = []
    rows = _read_rows(path, zone, settings, problems)

    # The same event twice in a file is fine if it says the same thing.
    by_key: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for line, row in rows:
        key = (row["source"], row["event_id"])
        if key in by_key:
            first_line, first = by_key[key]
            if _content(first) != _content(row):
                problems.append(
                    f"{path}:{line}:event_id: {row['event_id'][6:]!r} of {row['source']!r} "
                    f"is already on line {first_line}, with different contents"
                )
            continue
        by_key[key] = (line, row)

    known = _recorded(conn, list(by_key))
    fresh: list[dict[str, Any]] = []
    for key, (line, row) in by_key.items():
        stored = known.get(key)
        if stored is None:
            fresh.append(row)
        elif stored != _content(row):
            kind, points, customer = stored[0], stored[1], stored[3]
            problems.append(
                f"{path}:{line}:event_id: {row['event_id'][6:]!r} of {row['source']!r} was "
                f"imported before as {kind} {points:+d} for customer {customer!r}"
            )
    if problems:
        raise PointsImportError(path, problems)

    before = max_entry_id(conn)
    insert_rows(conn, fresh)
    refresh_since(conn, before)
    return ImportResult(len(rows), len(fresh), len(rows) - len(fresh))


def _content(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["kind"], row["points"], row["connection"], row["customer_id"], row["order_id"])


def _recorded(
    conn: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The contents of the events already in the ledger, by key."""
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    pe = points_entries
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        result = conn.execute(
            select(
                pe.c.source,
                pe.c.event_id,
                pe.c.kind,
                pe.c.points,
                pe.c.connection,
                pe.c.customer_id,
                pe.c.order_id,
            ).where(tuple_(pe.c.source, pe.c.event_id).in_(chunk))
        )
        for r in result:
            found[(r.source, r.event_id)] = (
                r.kind,
                r.points,
                r.connection,
                r.customer_id,
                r.order_id,
            )
    return found


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")  # what Japanese POS and Excel exports use
    except UnicodeDecodeError:
        raise PointsImportError(path, [f"{path}: neither UTF-8 nor Shift_JIS text"]) from None


def _read_rows(
    path: Path, zone: dt.tzinfo, settings: PointsSettings, problems: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = _decode(path)
    except OSError as exc:
        raise PointsImportError(path, [f"{path}: cannot read: {exc.strerror or exc}"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise PointsImportError(path, [f"{path}:1: empty file, expected a header row"]) from None
    except csv.Error as exc:
        raise PointsImportError(path, [f"{path}:1: not CSV: {exc}"]) from None
    names = [unicodedata.normalize("NFKC", h).strip().lower().replace(" ", "_") for h in header]
    for column, name in enumerate(names, start=1):
        if name not in REQUIRED and name not in OPTIONAL:
            problems.append(
                f"{path}:1:{name or f'column {column}'}: unknown column "
                f"(expected {', '.join(REQUIRED + OPTIONAL)})"
            )
        elif names.index(name) != column - 1:
            problems.append(f"{path}:1:{name}: column given twice")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        problems.append(f"{path}:1: missing column(s) {', '.join(missing)}")
    if problems:
        raise PointsImportError(path, problems)

    out: list[tuple[int, dict[str, Any]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue  # blank lines, as spreadsheets leave them
            if len(fields) != len(names):
                problems.append(f"{path}:{line}: {len(fields)} fields, the header has {len(names)}")
                continue
            row = _row(dict(zip(names, fields, strict=True)), f"{path}:{line}", zone, settings)
            if isinstance(row, list):
                problems.extend(row)
            else:
                out.append((line, row))
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: not CSV: {exc}")
    return out


def _row(
    raw: dict[str, str], where: str, zone: dt.tzinfo, settings: PointsSettings
) -> dict[str, Any] | list[str]:
    """One CSV row as an entry, or its problems."""
    bad: list[str] = []
    value = {k: v.strip() for k, v in raw.items()}

    def text(name: str, limit: int, required: bool = True) -> str | None:
        found = value.get(name) or None
        if found is None:
            if required:
                bad.append(f"{where}:{name}: missing")
        elif len(found) > limit:
            bad.append(f"{where}:{name}: longer than {limit} characters")
        return found

    connection = text("connection", 100)
    customer_id = text("customer_id", MAX_ID)
    event_id = text("event_id", MAX_ID)
    order_id = text("order_id", MAX_ID, required=False)
    note = value.get("note") or None

    kind: EntryKind | None = None
    kind_text = value.get("kind", "").lower()
    if kind_text in {k.value for k in KINDS}:
        kind = EntryKind(kind_text)
    else:
        bad.append(
            f"{where}:kind: {value.get('kind', '')!r} is not one of "
            f"{', '.join(k.value for k in KINDS)}"
        )

    points: int | None = None
    # NFKC turns full-width digits into ASCII; U+2212 is the minus sign spreadsheets use.
    number = unicodedata.normalize("NFKC", value.get("points", "")).replace("\u2212", "-")
    if _NUMBER.fullmatch(number):
        points = int(number.replace(",", ""))
    else:
        bad.append(f"{where}:points: {value.get('points', '')!r} is not a whole number")
    if points is not None and kind is EntryKind.EARN and points < 0:
        bad.append(f"{where}:points: an earn cannot be negative ({points})")
    if points is not None and kind in (EntryKind.REDEEM, EntryKind.EXPIRE):
        points = -abs(points)

    occurred_at = _when(value.get("occurred_at", ""), zone)
    if occurred_at is None:
        bad.append(
            f"{where}:occurred_at: {value.get('occurred_at', '')!r} is not a date and time "
            "(e.g. 2025-04-01T10:30:00+09:00 or 2025/04/01 10:30)"
        )
    if bad:
        return bad
    assert connection and customer_id and event_id and kind and points is not None
    assert occurred_at is not None
    expires_at = None
    if kind is EntryKind.EARN and settings.expiry_months is not None:
        expires_at = plus_months(occurred_at, settings.expiry_months)
    return {
        "source": connection,
        "event_id": f"event:{event_id}",
        "connection": connection,
        "customer_id": customer_id,
        "kind": kind.value,
        "points": points,
        "occurred_at": occurred_at,
        "expires_at": expires_at,
        "order_id": order_id,
        "note": note,
    }


def _when(text: str, zone: dt.tzinfo) -> dt.datetime | None:
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return None
    # 2025/04/01 10:30 is how Japanese POS exports write it.
    text = re.sub(r"^(\d{4})/(\d{1,2})/(\d{1,2})", _iso_date, text)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"
