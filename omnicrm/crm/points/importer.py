"""POS point events from CSV, written as ledger entries: all of a file or nothing.

Columns (a header row names them, in any order): connection, customer_id, event_id,
kind, points, occurred_at, and optionally order_id and note. A file is imported into one
shop: a connection of another shop in it is a problem of its row. Each event is keyed
(shop, connection, ``event:<event_id>``): importing the same file again writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from omnicrm.core.settings import known_timezone
from omnicrm.core.store.schema import connection_shops
from omnicrm.crm.csv_import import (
    MAX_SHOWN,
    CsvImportError,
    CsvProblem,
    CsvReader,
    CsvRow,
    Problems,
    SeenKeys,
    batches,
    in_range,
)
from omnicrm.crm.points._common import (
    MAX_ID,
    EntryKind,
    PointsError,
    insert_rows,
    max_entry_id,
    plus_months,
    refresh_since,
)
from omnicrm.crm.points.settings import PointsSettings
from omnicrm.crm.schema import points_entries

REQUIRED = ("connection", "customer_id", "event_id", "kind", "points", "occurred_at")
OPTIONAL = ("order_id", "note")
KINDS = (EntryKind.EARN, EntryKind.REDEEM, EntryKind.EXPIRE, EntryKind.ADJUST)
MAX_POINTS = 100_000_000  # in one event: far beyond any purchase, well within the column
_NUMBER = re.compile(r"[+-]?(\d+|\d{1,3}(,\d{3})+)")


class PointsImportError(PointsError):
    """A file had rows that cannot be imported; ``problems`` lists each as
    'file:line:field: why' (the first thousand; ``total`` counts them all). Nothing
    was written."""

    def __init__(self, path: Path, problems: list[str], total: int | None = None) -> None:
        self.path = path
        self.problems = problems
        self.total = max(total or 0, len(problems))
        shown = problems[:MAX_SHOWN]
        more = self.total - len(shown)
        lines = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        super().__init__(f"{path}: {self.total} problem(s), nothing imported:\n{lines}")

    @classmethod
    def of(cls, path: Path, error: CsvImportError) -> PointsImportError:
        return cls(path, [str(p) for p in error.problems], error.total)


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
    shop: str,
    timezone: str = "Asia/Tokyo",
    encoding: str = "auto",
    configured: Mapping[str, str] | None = None,
) -> ImportResult:
    """Import the point events in the CSV at ``path`` into ``shop``'s ledger.

    Each row's connection must be one of ``shop``'s: the shop the store has recorded for
    it, else the one ``configured`` (connection -> shop, from the config) names; a
    connection known to neither is taken as ``shop``'s (a POS that only sends files).

    ``points`` is a whole number (full-width digits and thousands separators are
    fine) of at most MAX_POINTS; earn must not be negative, redeem and expire take
    points away whichever sign they are written with, adjust keeps its sign.
    ``occurred_at`` is ISO 8601 (or 'YYYY/MM/DD HH:MM[:SS]'); without an offset it is
    in ``timezone`` (an IANA name; ValueError for an unknown one). Imported earns
    expire by ``settings`` (default settings when None). UTF-8 (with or without BOM)
    or Shift_JIS (cp932), detected. Raises PointsImportError listing every problem if
    any row is bad or contradicts an event already imported. The file is streamed (in
    bounded memory) and written in the caller's transaction: roll it back on an error.
    """
    settings = settings or PointsSettings()
    zone = time_zone(timezone)
    try:
        return _Import(conn, path, zone, settings, encoding, shop, configured or {}).run()
    except CsvImportError as exc:
        raise PointsImportError.of(path, exc) from None


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name``; ValueError naming it when there is none."""
    return zoneinfo.ZoneInfo(known_timezone(name))


class _Import:
    """One file's import: check every row (pass one), then compare each event with the
    ledger and write the new ones, a batch at a time (pass two)."""

    def __init__(
        self,
        conn: Connection,
        path: Path,
        zone: dt.tzinfo,
        settings: PointsSettings,
        encoding: str,
        shop: str,
        configured: Mapping[str, str],
    ) -> None:
        self.conn = conn
        self.path = path
        self.zone = zone
        self.settings = settings
        self.shop = shop
        self.configured = configured
        self.shop_of: dict[str, str | None] = {}  # connection -> its shop, None: unknown
        self.reader = CsvReader(path, required=REQUIRED, optional=OPTIONAL, encoding=encoding)

    def entries(self, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
        for row in self.reader.rows(problems):
            entry = _row(row, self.reader.file, self.zone, self.settings, problems)
            if entry is not None:
                entry["shop"] = self.shop
                yield row.line, entry

    def check_shops(self, batch: list[tuple[int, dict[str, Any]]], problems: Problems) -> None:
        """A problem for each row whose connection belongs to another shop."""
        names = sorted({e["connection"] for _, e in batch} - self.shop_of.keys())
        if names:
            found = self.conn.execute(
                select(connection_shops.c.connection, connection_shops.c.shop).where(
                    connection_shops.c.connection.in_(names)
                )
            )
            stored = {name: shop for name, shop in found}
            for name in names:
                self.shop_of[name] = stored.get(name, self.configured.get(name))
        for line, entry in batch:
            owner = self.shop_of[entry["connection"]]
            if owner is not None and owner != self.shop:
                problems.add(
                    CsvProblem(
                        self.reader.file,
                        line,
                        "connection",
                        f"{entry['connection']!r} is a connection of another shop, "
                        f"not of {self.shop!r}",
                    )
                )

    def run(self) -> ImportResult:
        problems = Problems()
        rows = 0
        with SeenKeys() as seen:
            # The same event twice in a file is fine if it says the same thing.
            for batch in batches(self.entries(problems)):
                self.check_shops(batch, problems)
                for line, entry in batch:
                    rows += 1
                    first = seen.first(_key(entry), line, repr(_content(entry)))
                    if first is not None and first[1] != repr(_content(entry)):
                        self.problem(
                            problems,
                            line,
                            f"{entry['event_id'][6:]!r} of {entry['source']!r} is already on "
                            f"line {first[0]}, with different contents",
                        )
            problems.raise_if_any()

            before = max_entry_id(self.conn)
            inserted = 0
            fresh = (
                (line, entry)
                for line, entry in self.entries(problems)
                if seen.first_line(_key(entry)) == line
            )
            for batch in batches(fresh):
                known = _recorded(self.conn, self.shop, [_pair(e) for _, e in batch])
                new = []
                for line, entry in batch:
                    stored = known.get(_pair(entry))
                    if stored is None:
                        new.append(entry)
                    elif stored != _content(entry):
                        kind, points, customer = stored[0], stored[1], stored[3]
                        self.problem(
                            problems,
                            line,
                            f"{entry['event_id'][6:]!r} of {entry['source']!r} was imported "
                            f"before as {kind} {points:+d} for customer {customer!r}",
                        )
                if not problems:
                    insert_rows(self.conn, new)
                    inserted += len(new)
            problems.raise_if_any()
        refresh_since(self.conn, before, shop=self.shop)
        return ImportResult(rows, inserted, rows - inserted)

    def problem(self, problems: Problems, line: int, message: str) -> None:
        problems.add(CsvProblem(self.reader.file, line, "event_id", message))


def _key(entry: dict[str, Any]) -> str:
    return f"{len(entry['source'])}:{entry['source']}{entry['event_id']}"


def _pair(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["source"], entry["event_id"]


def _content(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["kind"], row["points"], row["connection"], row["customer_id"], row["order_id"])


def _recorded(
    conn: Connection, shop: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The contents of the events already in ``shop``'s ledger, by key."""
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    pe = points_entries
    by_source: dict[str, list[str]] = {}
    for source, event_id in keys:
        by_source.setdefault(source, []).append(event_id)
    for source, event_ids in sorted(by_source.items()):
        for start in range(0, len(event_ids), 500):
            # shop = and source = before the IN list: SQLite probes the ledger's key
            # (shop, source, event_id) per event; with a row-value IN it scans the ledger.
            result = conn.execute(
                select(
                    pe.c.source,
                    pe.c.event_id,
                    pe.c.kind,
                    pe.c.points,
                    pe.c.connection,
                    pe.c.customer_id,
                    pe.c.order_id,
                ).where(
                    pe.c.shop == shop,
                    pe.c.source == source,
                    pe.c.event_id.in_(event_ids[start : start + 500]),
                )
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


def _row(
    row: CsvRow, file: str, zone: dt.tzinfo, settings: PointsSettings, problems: Problems
) -> dict[str, Any] | None:
    """One CSV row as an entry, or None having added its problems."""
    count = problems.total
    value = row.values

    def bad(name: str, message: str) -> None:
        problems.add(CsvProblem(file, row.line, name, message))

    def text(name: str, limit: int, required: bool = True) -> str | None:
        found = value.get(name)
        if found is None:
            if required:
                bad(name, "missing")
        elif len(found) > limit:
            bad(name, f"longer than {limit} characters")
        return found

    connection = text("connection", 100)
    customer_id = text("customer_id", MAX_ID)
    event_id = text("event_id", MAX_ID)
    order_id = text("order_id", MAX_ID, required=False)
    note = value.get("note")

    kind: EntryKind | None = None
    kind_text = (value.get("kind") or "").lower()
    if kind_text in {k.value for k in KINDS}:
        kind = EntryKind(kind_text)
    else:
        bad(
            "kind", f"{value.get('kind') or ''!r} is not one of {', '.join(k.value for k in KINDS)}"
        )

    points: int | None = None
    # NFKC turns full-width digits into ASCII; U+2212 is the minus sign spreadsheets use.
    written = value.get("points") or ""
    number = unicodedata.normalize("NFKC", written).replace("\u2212", "-")
    if _NUMBER.fullmatch(number):
        points = int(number.replace(",", ""))
        if abs(points) > MAX_POINTS:
            bad("points", f"{written!r} is more than {MAX_POINTS:,} points in one event")
            points = None
    else:
        bad("points", f"{written!r} is not a whole number")
    if points is not None and kind is EntryKind.EARN and points < 0:
        bad("points", f"an earn cannot be negative ({points})")
    if points is not None and kind in (EntryKind.REDEEM, EntryKind.EXPIRE):
        points = -abs(points)

    written_at = value.get("occurred_at") or ""
    try:
        occurred_at = _when(written_at, zone)
    except ValueError as exc:
        bad("occurred_at", str(exc))
        occurred_at = None
    if occurred_at is None and problems.total == count:
        bad(
            "occurred_at",
            f"{written_at!r} is not a date and time "
            "(e.g. 2025-04-01T10:30:00+09:00 or 2025/04/01 10:30)",
        )
    if problems.total != count:
        return None
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
    """The moment ``text`` names (in ``zone`` without an offset); None when it names
    none, ValueError when it is out of range."""
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
    return in_range(value, text)


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"
