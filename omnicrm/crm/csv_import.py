"""What the CSV imports (points, NPS answers, interactions) share: reading, checking,
matching, writing.

Every import reads its file through :class:`CsvReader`, which streams it: a file of
any size is read in bounded memory, once to check every row and again to write them,
in the caller's transaction, so a bad file writes nothing. The encoding is UTF-8 (with
or without a BOM) or Shift_JIS (cp932, what Excel and POS systems in Japan write),
detected; anything else (EUC-JP, UTF-16, binary) is refused by name rather than
imported as garbled text. A control character in a value (a NUL, an escape) is
refused where it stands. Problems are reported as ``file:line:field: what`` and raised
together as ``CsvImportError``. A file is imported into one shop. Rows name their person
by profile id, email or phone; they are matched to that shop's profiles only, with the
identity resolver's normalisation (``profiles.email`` is the normalised email,
``profiles.phone`` E.164): another shop holding the same email is never matched, and a
profile id of another shop is a problem of its row. Rows are kept per (shop, source,
external id), so importing a file again changes nothing it already holds
(``import_rows``; one row at a time, ``save_row``).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import BindParameter, Connection, Table, bindparam, insert, select, update

# The reading half is the core's (public as omnicrm.csvfiles, for plugins); re-exported
# here for the imports that have always found it here.
from omnicrm.core.csvfiles import (
    ENCODINGS,
    MAX_KEPT,
    MAX_LINE,
    MAX_SHOWN,
    CsvImportError,
    CsvProblem,
    CsvReader,
    CsvRow,
    Problems,
    RowChecker,
    in_range,
    parse_moment,
)
from omnicrm.crm.identity.normalize import normalize_email, normalize_phone
from omnicrm.crm.schema import profiles

__all__ = [
    "ENCODINGS",
    "IDENTITY_COLUMNS",
    "MAX_KEPT",
    "MAX_LINE",
    "MAX_SHOWN",
    "CsvImportError",
    "CsvProblem",
    "CsvReader",
    "CsvRow",
    "CsvTarget",
    "ImportResult",
    "Problems",
    "ProfileMatcher",
    "Respondent",
    "RowChecker",
    "SeenKeys",
    "Unmatched",
    "batches",
    "foreign_profiles",
    "import_rows",
    "in_range",
    "parse_moment",
    "respondent",
    "save_row",
]

BATCH = 500  # rows written at a time; values per IN (...) lookup


class SeenKeys:
    """Keys met in a file and the line each was first on, kept in a private temporary
    SQLite database on disk, so a file of any size is checked in bounded memory."""

    def __init__(self) -> None:
        # An empty name is a temporary on-disk database, removed when closed.
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER, content TEXT)")

    def __enter__(self) -> SeenKeys:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db.close()

    def first(self, key: str, line: int, content: str = "") -> tuple[int, str] | None:
        """(line, content) where ``key`` was first met; None (and it is recorded) when
        this is the first time."""
        found = self._db.execute("SELECT line, content FROM seen WHERE key = ?", (key,)).fetchone()
        if found is not None:
            return int(found[0]), str(found[1])
        self._db.execute("INSERT INTO seen VALUES (?, ?, ?)", (key, line, content))
        return None

    def first_line(self, key: str) -> int | None:
        """The line ``key`` was first met on."""
        found = self._db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        return None if found is None else int(found[0])


T = TypeVar("T")


def batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Respondent:
    """Who a row is about, as written: any of profile id, email, phone."""

    profile_id: int | None = None
    email: str | None = None  # normalised
    phone: str | None = None  # E.164


IDENTITY_COLUMNS = ("profile_id", "email", "phone")
MAX_PROFILE_ID = 2**31 - 1  # profiles.id is an INTEGER


def respondent(checker: RowChecker, row: CsvRow, region: str = "JP") -> Respondent:
    """The row's profile id / email / phone, normalised; problems for bad values."""

    def profile_id(text: str) -> int:
        value = unicodedata.normalize("NFKC", text)
        if not (value.isascii() and value.isdigit()) or int(value) > MAX_PROFILE_ID:
            raise ValueError(f"not a profile id (a whole number up to {MAX_PROFILE_ID}): {text!r}")
        return int(value)

    def email(text: str) -> str:
        value = normalize_email(text)
        if value is None:
            raise ValueError(f"not an email address: {text!r}")
        return value

    def phone(text: str) -> str:
        value = normalize_phone(text, region)
        if value is None:
            raise ValueError(f"not a valid phone number: {text!r}")
        return value

    found = Respondent(
        checker.value(row, "profile_id", profile_id),
        checker.value(row, "email", email),
        checker.value(row, "phone", phone),
    )
    if not any(row.values.get(c) for c in IDENTITY_COLUMNS):
        checker.fail(row, None, "no respondent: give a profile_id, email or phone")
    return found


@dataclass(frozen=True)
class Unmatched:
    """A row whose person is not (or not uniquely) a known profile."""

    line: int
    external_id: str
    reason: str


class ProfileMatcher:
    """Finds the profile of each respondent among ``shop``'s: by profile id, else a
    normalised email, else an E.164 phone; a key that several profiles share matches
    none of them."""

    def __init__(self, conn: Connection, respondents: Iterable[Respondent], *, shop: str) -> None:
        people = list(respondents)
        ids = sorted({r.profile_id for r in people if r.profile_id is not None})
        self._ids = set(_lookup(conn, shop, profiles.c.id, profiles.c.id, ids))
        emails = sorted({r.email for r in people if r.email})
        phones = sorted({r.phone for r in people if r.phone})
        self._emails = _group(_lookup_pairs(conn, shop, profiles.c.email, emails))
        self._phones = _group(_lookup_pairs(conn, shop, profiles.c.phone, phones))

    def match(self, who: Respondent) -> tuple[int | None, str | None]:
        """(profile id, None) or (None, why not)."""
        reasons = []
        if who.profile_id is not None:
            if who.profile_id in self._ids:
                return who.profile_id, None
            reasons.append(f"no profile {who.profile_id}")
        for label, key, table in (
            ("email", who.email, self._emails),
            ("phone", who.phone, self._phones),
        ):
            if key is None:
                continue
            owners = table.get(key, [])
            if len(owners) == 1:
                return owners[0], None
            if owners:
                shown = ", ".join(str(o) for o in owners[:5])
                reasons.append(f"{label} {key} is shared by profiles {shown}")
            else:
                reasons.append(f"no profile has {label} {key}")
        return None, "; ".join(reasons)


def _chunks(values: Sequence[T]) -> Iterator[dict[str, list[T]]]:
    """``values`` a batch at a time, as the parameters of a statement that reads them
    with ``IN (:values)`` (``_IN_VALUES``)."""
    for start in range(0, len(values), BATCH):
        yield {"values": list(values[start : start + BATCH])}


# One expanding parameter, its values given at execute time: a statement built with
# ``in_(a_list)`` is a reference cycle that keeps the list until the garbage collector
# runs, so a long import would hold every batch's keys in the meantime.
_IN_VALUES: BindParameter[Any] = bindparam("values", expanding=True)


def _lookup(conn: Connection, shop: str, key: Any, want: Any, values: Sequence[Any]) -> list[Any]:
    statement = select(want).where(profiles.c.shop == shop, key.in_(_IN_VALUES))
    found: list[Any] = []
    for chunk in _chunks(values):
        found += conn.execute(statement, chunk).scalars().all()
    return found


def _lookup_pairs(
    conn: Connection, shop: str, key: Any, values: Sequence[str]
) -> list[tuple[str, int]]:
    # (shop, email) and (shop, phone) are indexed: no other shop's profile is read.
    statement = (
        select(key, profiles.c.id)
        .where(profiles.c.shop == shop, key.in_(_IN_VALUES))
        .order_by(profiles.c.id)
    )
    found: list[tuple[str, int]] = []
    for chunk in _chunks(values):
        found += [(k, i) for k, i in conn.execute(statement, chunk)]
    return found


def foreign_profiles(conn: Connection, shop: str, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` are profiles of a shop other than ``shop``."""
    wanted = sorted(set(ids))
    statement = select(profiles.c.id).where(profiles.c.id.in_(_IN_VALUES), profiles.c.shop != shop)
    found: set[int] = set()
    for chunk in _chunks(wanted):
        found.update(conn.execute(statement, chunk).scalars())
    return found


def _group(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, profile_id in pairs:
        out.setdefault(key, []).append(profile_id)
    return out


@dataclass(frozen=True)
class ImportResult:
    """What an import did: rows read, written (new / changed), unchanged, unmatched (the
    first ``MAX_KEPT`` of them listed, ``more_unmatched`` counting the rest)."""

    file: str
    source: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    unmatched: tuple[Unmatched, ...] = ()
    more_unmatched: int = 0


# --------------------------------------------------------------------------- writing

# A row's columns other than its id and person, bad values reported to the checker.
RowValues = Callable[[RowChecker, CsvRow], dict[str, Any]]


@dataclass(frozen=True)
class _Parsed:
    line: int
    external_id: str | None  # None only for a row with a problem
    who: Respondent
    values: dict[str, Any]


@dataclass(frozen=True)
class CsvTarget:
    """What an import reads and where it writes.

    ``table`` is keyed by (shop, source, external_id) and has a ``profile_id``; ``id_column``
    holds the external id (required, unique in the file, at most 255 characters). A
    row whose person matches no profile is stored with profile_id NULL when
    ``keep_unmatched`` (or keeps the profile an earlier import matched), else skipped.
    """

    table: Table
    id_column: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    keep_unmatched: bool


def import_rows(
    conn: Connection,
    path: Path,
    target: CsvTarget,
    values: RowValues,
    *,
    shop: str,
    source: str,
    encoding: str,
    region: str,
    inserted_with: Mapping[str, Any] | None = None,
) -> ImportResult:
    """Check every row of ``path``, then write them to ``target.table``, in ``shop``.

    Persons are matched to ``shop``'s profiles only; a row naming a profile id of
    another shop is a problem (file:line:profile_id), like any bad value.

    ``values`` turns a row into the table's other columns, reporting bad values to the
    checker. Any problem raises ``CsvImportError`` and nothing is written. Rows whose
    person matches no profile are listed in the result. New rows are inserted with
    ``inserted_with`` too, changed ones updated, the same ones left alone. The file is
    streamed: read once to check it, then again to write it a batch at a time, in the
    caller's transaction (roll it back on an error).
    """
    if not source:
        raise ValueError("source: must not be empty")
    reader = CsvReader(
        path,
        required=target.required,
        optional=target.optional,
        one_of=IDENTITY_COLUMNS,
        encoding=encoding,
    )

    def parsed(problems: Problems, seen: SeenKeys | None) -> Iterator[_Parsed]:
        check = RowChecker(reader.file, problems)
        for row in reader.rows(problems):
            # In this order, so that a row's problems are listed id, person, then the rest.
            external_id = check.text(row, target.id_column, 255, required=True)
            if seen is not None and external_id is not None:
                first = seen.first(external_id, row.line)
                if first is not None:
                    check.fail(row, target.id_column, f"{external_id!r} repeats line {first[0]}")
            yield _Parsed(row.line, external_id, respondent(check, row, region), values(check, row))

    checked = Problems()
    rows = 0
    with SeenKeys() as seen:
        for batch in batches(parsed(checked, seen)):
            rows += len(batch)
            _check_shop(conn, shop, reader.file, batch, checked)
    checked.raise_if_any()

    writer = _Writer(conn, target, shop, source, inserted_with)
    again = Problems()  # none, unless the file changed since it was checked
    for batch in batches(parsed(again, None)):
        again.raise_if_any()
        writer.write(batch)
    again.raise_if_any()
    return ImportResult(
        str(path),
        source,
        rows,
        writer.inserted,
        writer.updated,
        writer.unchanged,
        tuple(writer.unmatched),
        writer.more_unmatched,
    )


def _check_shop(
    conn: Connection, shop: str, file: str, batch: Sequence[_Parsed], problems: Problems
) -> None:
    """A problem for each row naming a profile id of another shop: an import never
    reaches into another shop's customers (an unknown id is only unmatched)."""
    named = [(p.line, p.who.profile_id) for p in batch if p.who.profile_id is not None]
    if not named:
        return
    foreign = foreign_profiles(conn, shop, (profile_id for _, profile_id in named))
    for line, profile_id in named:
        if profile_id in foreign:
            why = f"profile {profile_id} is not a profile of shop {shop!r}"
            problems.add(CsvProblem(file, line, "profile_id", why))


class _Writer:
    """Writes checked rows a batch at a time, counting what it did."""

    def __init__(
        self,
        conn: Connection,
        target: CsvTarget,
        shop: str,
        source: str,
        inserted_with: Mapping[str, Any] | None,
    ) -> None:
        self.conn = conn
        self.target = target
        self.shop = shop
        self.source = source
        self.inserted_with = inserted_with or {}
        self.inserted = self.updated = self.unchanged = self.more_unmatched = 0
        self.unmatched: list[Unmatched] = []

    def write(self, batch: Sequence[_Parsed]) -> None:
        conn, target = self.conn, self.target
        matcher = ProfileMatcher(conn, (p.who for p in batch), shop=self.shop)
        ids = [str(p.external_id) for p in batch]
        existing = _existing(conn, target.table, self.shop, self.source, ids)
        inserted: list[dict[str, Any]] = []
        for p in batch:
            assert p.external_id is not None
            profile_id, why = matcher.match(p.who)
            before = existing.get(p.external_id)
            if profile_id is None:
                if (
                    target.keep_unmatched
                    and before is not None
                    and before["profile_id"] is not None
                ):
                    # Matched before (e.g. when the profile still had that email): keep it.
                    profile_id = before["profile_id"]
                else:
                    self._unmatched(Unmatched(p.line, p.external_id, why or "no respondent"))
                    if not target.keep_unmatched:
                        continue
            row_values = {"profile_id": profile_id, **p.values}
            if before is None:
                inserted.append(
                    {
                        "shop": self.shop,
                        "source": self.source,
                        "external_id": p.external_id,
                        **self.inserted_with,
                        **row_values,
                    }
                )
            elif any(before[k] != v for k, v in row_values.items()):
                conn.execute(
                    update(target.table).where(target.table.c.id == before["id"]).values(row_values)
                )
                self.updated += 1
            else:
                self.unchanged += 1
        if inserted:
            conn.execute(insert(target.table), inserted)
            self.inserted += len(inserted)

    def _unmatched(self, miss: Unmatched) -> None:
        if len(self.unmatched) < MAX_KEPT:
            self.unmatched.append(miss)
        else:
            self.more_unmatched += 1


def _existing(
    conn: Connection, target: Table, shop: str, source: str, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows of ``target`` ``shop`` already holds for these ids of ``source``, by
    external id."""
    statement = select(target).where(
        target.c.shop == shop,
        target.c.source == source,
        target.c.external_id.in_(_IN_VALUES),
    )
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(external_ids):
        for row in conn.execute(statement, chunk):
            found[row.external_id] = dict(row._mapping)
    return found


def save_row(
    conn: Connection,
    target: Table,
    source: str,
    external_id: str,
    values: Mapping[str, Any],
    *,
    shop: str,
    inserted_with: Mapping[str, Any] | None = None,
) -> int:
    """Set ``shop``'s row of (source, external_id) in ``target`` to ``values``, inserting
    it (with ``inserted_with`` too) if there is none; returns its id."""
    existing = conn.execute(
        select(target.c.id).where(
            target.c.shop == shop,
            target.c.source == source,
            target.c.external_id == external_id,
        )
    ).scalar_one_or_none()
    if existing is not None:
        conn.execute(update(target).where(target.c.id == existing).values(values))
        return int(existing)
    new_id = conn.execute(
        insert(target)
        .values(
            shop=shop,
            source=source,
            external_id=external_id,
            **(inserted_with or {}),
            **values,
        )
        .returning(target.c.id)
    ).scalar_one()
    return int(new_id)
