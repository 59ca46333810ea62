"""What the CSV imports (NPS answers, interactions) share: reading, checking, matching,
writing.

A file is read and every row checked before anything is written; problems are
collected as ``file:line:field: what`` and raised together as ``CsvImportError``, so a
bad file writes nothing. Rows name their person by profile id, email or phone; they are
matched to profiles with the identity resolver's normalisation (``profiles.email`` is
the normalised email, ``profiles.phone`` E.164). Rows are kept per (source, external
id), so importing a file again changes nothing it already holds (``import_rows``; one
row at a time, ``save_row``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, insert, select, update

from omnicrm.core.identity.normalize import normalize_email, normalize_phone
from omnicrm.core.store.schema import profiles
from omnicrm.errors import OmnicrmError

__all__ = [
    "IDENTITY_COLUMNS",
    "CsvImportError",
    "CsvProblem",
    "CsvRow",
    "CsvTable",
    "CsvTarget",
    "ImportResult",
    "ProfileMatcher",
    "Respondent",
    "RowChecker",
    "Unmatched",
    "import_rows",
    "parse_moment",
    "read_csv",
    "respondent",
    "save_row",
]

MAX_SHOWN = 20  # problems listed in the message; the exception keeps them all
_CHUNK = 500  # values per IN (...) lookup


@dataclass(frozen=True)
class CsvProblem:
    """One bad value: where (file, line, column) and what is wrong."""

    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f":{self.field}" if self.field else "")
        return f"{where}: {self.message}"


class CsvImportError(OmnicrmError):
    """A CSV file that was not imported (nothing was written); ``problems`` says why."""

    def __init__(self, problems: Sequence[CsvProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [str(p) for p in self.problems[:MAX_SHOWN]]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problem(s)")
        head = f"{len(self.problems)} problem(s); nothing was imported"
        return head + "\n" + "\n".join(shown)


@dataclass(frozen=True)
class CsvRow:
    """A data row: its first physical line and its values by column (empty -> None)."""

    line: int
    values: Mapping[str, str | None]


@dataclass(frozen=True)
class CsvTable:
    """A file's data rows, and the rows that could not be split into its columns."""

    file: str
    rows: list[CsvRow]
    problems: list[CsvProblem]


def read_csv(
    path: Path,
    *,
    required: Sequence[str],
    optional: Sequence[str],
    one_of: Sequence[str] = (),
    encoding: str = "utf-8-sig",
) -> CsvTable:
    """Read ``path`` whose first line is a header naming known columns.

    Header names are matched case-insensitively; an unknown or repeated column, a
    missing required one, or none of ``one_of`` raises at line 1, as does a file that
    cannot be decoded. A row with the wrong number of values is a problem kept in the
    table (reported with the rest once the values are checked). Values are stripped;
    empty ones are None. Blank lines are skipped.
    """
    name = str(path)
    try:
        with path.open(encoding=encoding, newline="") as handle:
            return _read(name, handle, required, optional, one_of)
    except FileNotFoundError:
        raise CsvImportError([CsvProblem(name, 0, None, "no such file")]) from None
    except UnicodeDecodeError as exc:
        # Excel in Japan writes Shift_JIS (cp932) unless told otherwise.
        raise CsvImportError(
            [
                CsvProblem(
                    name,
                    0,
                    None,
                    f"cannot be read as {encoding} ({exc.reason} at byte {exc.start}); "
                    "if it was saved by Excel try the encoding cp932",
                )
            ]
        ) from None
    except csv.Error as exc:
        raise CsvImportError(
            [CsvProblem(name, 0, None, f"not a readable CSV file: {exc}")]
        ) from None


def _read(
    name: str,
    handle: Iterable[str],
    required: Sequence[str],
    optional: Sequence[str],
    one_of: Sequence[str],
) -> CsvTable:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise CsvImportError([CsvProblem(name, 1, None, "empty file: expected a header line")])
    known = [*required, *optional]
    columns = [h.strip().lower() for h in header]
    problems = []
    for column in columns:
        if column not in known:
            problems.append(
                CsvProblem(
                    name, 1, column or "(empty)", f"unknown column; known: {', '.join(known)}"
                )
            )
    for column in sorted({c for c in columns if columns.count(c) > 1}):
        problems.append(CsvProblem(name, 1, column, "column appears more than once"))
    for column in required:
        if column not in columns:
            problems.append(CsvProblem(name, 1, column, "required column is missing"))
    if one_of and not any(c in columns for c in one_of):
        problems.append(
            CsvProblem(name, 1, None, f"needs at least one of the columns {', '.join(one_of)}")
        )
    if problems:
        raise CsvImportError(problems)
    rows = []
    last = reader.line_num
    for record in reader:
        line, last = last + 1, reader.line_num
        if not record or all(not v.strip() for v in record):
            continue
        if len(record) != len(columns):
            problems.append(
                CsvProblem(name, line, None, f"{len(record)} values, the header has {len(columns)}")
            )
            continue
        values = {c: (v.strip() or None) for c, v in zip(columns, record, strict=True)}
        rows.append(CsvRow(line, values))
    return CsvTable(name, rows, problems)


# --------------------------------------------------------------------------- values

_MOMENT = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)


def parse_moment(text: str, tz: ZoneInfo) -> dt.datetime:
    """A date or date-time: '2024-05-01', '2024/5/1 9:05', '2024-05-01T09:05:00+09:00'.

    Without an offset it is shop time ``tz``; a date alone is its midnight. Returns UTC;
    ValueError when it is none of these.
    """
    value = unicodedata.normalize("NFKC", text).strip()
    found = _MOMENT.fullmatch(value)
    hint = "write e.g. 2024-05-01 14:30 or 2024-05-01T14:30+09:00"
    if not found:
        raise ValueError(f"not a date or time: {text!r} ({hint})")
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    zone: dt.tzinfo = tz
    if offset == "Z":
        zone = dt.UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError as exc:
        raise ValueError(f"not a date or time: {text!r} ({exc})") from None
    return moment.astimezone(dt.UTC)


T = TypeVar("T")


class RowChecker:
    """Collects the problems of one file while its rows' values are converted."""

    def __init__(self, table: CsvTable) -> None:
        self.file = table.file
        self.problems: list[CsvProblem] = list(table.problems)

    def fail(self, row: CsvRow, field: str | None, message: str) -> None:
        self.problems.append(CsvProblem(self.file, row.line, field, message))

    def value(
        self, row: CsvRow, field: str, convert: Callable[[str], T], *, required: bool = False
    ) -> T | None:
        """``convert`` applied to the field's text; a ValueError becomes a problem."""
        text = row.values.get(field)
        if text is None:
            if required:
                self.fail(row, field, "a value is required")
            return None
        try:
            return convert(text)
        except ValueError as exc:
            self.fail(row, field, str(exc))
            return None

    def text(
        self, row: CsvRow, field: str, max_length: int, *, required: bool = False
    ) -> str | None:
        def check(value: str) -> str:
            if len(value) > max_length:
                raise ValueError(f"longer than {max_length} characters ({len(value)})")
            return value

        return self.value(row, field, check, required=required)

    def moment(
        self, row: CsvRow, field: str, tz: ZoneInfo, *, required: bool = False
    ) -> dt.datetime | None:
        """The field as ``parse_moment`` reads it (shop time ``tz`` without an offset)."""
        return self.value(row, field, lambda t: parse_moment(t, tz), required=required)

    def unique(self, rows: Iterable[CsvRow], field: str) -> None:
        """``field`` must not repeat within the file."""
        seen: dict[str, int] = {}
        for row in rows:
            key = row.values.get(field)
            if key is None:
                continue
            if key in seen:
                self.fail(row, field, f"{key!r} repeats line {seen[key]}")
            else:
                seen[key] = row.line

    def raise_if_any(self) -> None:
        """Raise every problem found, in line order."""
        if self.problems:
            raise CsvImportError(sorted(self.problems, key=lambda p: p.line))


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Respondent:
    """Who a row is about, as written: any of profile id, email, phone."""

    profile_id: int | None = None
    email: str | None = None  # normalised
    phone: str | None = None  # E.164


IDENTITY_COLUMNS = ("profile_id", "email", "phone")


def respondent(checker: RowChecker, row: CsvRow, region: str = "JP") -> Respondent:
    """The row's profile id / email / phone, normalised; problems for bad values."""

    def profile_id(text: str) -> int:
        value = unicodedata.normalize("NFKC", text)
        if not value.isdigit():
            raise ValueError(f"not a profile id (a whole number): {text!r}")
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
    """Finds the profile of each respondent: by profile id, else a normalised email,
    else an E.164 phone; a key that several profiles share matches none of them."""

    def __init__(self, conn: Connection, respondents: Iterable[Respondent]) -> None:
        people = list(respondents)
        ids = sorted({r.profile_id for r in people if r.profile_id is not None})
        self._ids = set(_lookup(conn, profiles.c.id, profiles.c.id, ids))
        self._emails = _group(
            _lookup_pairs(conn, profiles.c.email, sorted({r.email for r in people if r.email}))
        )
        self._phones = _group(
            _lookup_pairs(conn, profiles.c.phone, sorted({r.phone for r in people if r.phone}))
        )

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


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _lookup(conn: Connection, key: Any, want: Any, values: Sequence[Any]) -> list[Any]:
    found: list[Any] = []
    for chunk in _chunks(values):
        found += conn.execute(select(want).where(key.in_(chunk))).scalars().all()
    return found


def _lookup_pairs(conn: Connection, key: Any, values: Sequence[str]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for chunk in _chunks(values):
        found += [
            (k, i)
            for k, i in conn.execute(
                select(key, profiles.c.id).where(key.in_(chunk)).order_by(profiles.c.id)
            )
        ]
    return found


def _group(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, profile_id in pairs:
        out.setdefault(key, []).append(profile_id)
    return out


@dataclass(frozen=True)
class ImportResult:
    """What an import did: rows read, written (new / changed), unchanged, unmatched."""

    file: str
    source: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    unmatched: tuple[Unmatched, ...] = ()


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

    ``table`` is keyed by (source, external_id) and has a ``profile_id``; ``id_column``
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
    source: str,
    encoding: str,
    region: str,
    inserted_with: Mapping[str, Any] | None = None,
) -> ImportResult:
    """Check every row of ``path``, then write them to ``target.table``.

    ``values`` turns a row into the table's other columns, reporting bad values to the
    checker. Any problem raises ``CsvImportError`` and nothing is written. Rows whose
    person matches no profile are listed in the result. New rows are inserted with
    ``inserted_with`` too, changed ones updated, the same ones left alone. Runs in the
    caller's transaction.
    """
    if not source:
        raise ValueError("source: must not be empty")
    table = read_csv(
        path,
        required=target.required,
        optional=target.optional,
        one_of=IDENTITY_COLUMNS,
        encoding=encoding,
    )
    check = RowChecker(table)
    check.unique(table.rows, target.id_column)
    parsed = [
        # In this order, so that a row's problems are listed id, person, then the rest.
        _Parsed(
            row.line,
            check.text(row, target.id_column, 255, required=True),
            respondent(check, row, region),
            values(check, row),
        )
        for row in table.rows
    ]
    check.raise_if_any()

    matcher = ProfileMatcher(conn, (p.who for p in parsed))
    existing = _existing(conn, target.table, source, [str(p.external_id) for p in parsed])
    inserted: list[dict[str, Any]] = []
    updated = unchanged = 0
    unmatched = []
    for p in parsed:
        assert p.external_id is not None
        profile_id, why = matcher.match(p.who)
        before = existing.get(p.external_id)
        if profile_id is None:
            if target.keep_unmatched and before is not None and before["profile_id"] is not None:
                # Matched before (e.g. when the profile still had that email): keep it.
                profile_id = before["profile_id"]
            else:
                unmatched.append(Unmatched(p.line, p.external_id, why or "no respondent"))
                if not target.keep_unmatched:
                    continue
        row_values = {"profile_id": profile_id, **p.values}
        if before is None:
            inserted.append(
                {
                    "source": source,
                    "external_id": p.external_id,
                    **(inserted_with or {}),
                    **row_values,
                }
            )
        elif any(before[k] != v for k, v in row_values.items()):
            conn.execute(
                update(target.table).where(target.table.c.id == before["id"]).values(row_values)
            )
            updated += 1
        else:
            unchanged += 1
    if inserted:
        conn.execute(insert(target.table), inserted)
    return ImportResult(
        str(path), source, len(parsed), len(inserted), updated, unchanged, tuple(unmatched)
    )


def _existing(
    conn: Connection, target: Table, source: str, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows of ``target`` already held for these ids of ``source``, by external id."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(external_ids):
        for row in conn.execute(
            select(target).where(target.c.source == source, target.c.external_id.in_(chunk))
        ):
            found[row.external_id] = dict(row._mapping)
    return found


def save_row(
    conn: Connection,
    target: Table,
    source: str,
    external_id: str,
    values: Mapping[str, Any],
    *,
    inserted_with: Mapping[str, Any] | None = None,
) -> int:
    """Set the row of (source, external_id) in ``target`` to ``values``, inserting it (with
    ``inserted_with`` too) if there is none; returns its id."""
    existing = conn.execute(
        select(target.c.id).where(target.c.source == source, target.c.external_id == external_id)
    ).scalar_one_or_none()
    if existing is not None:
        conn.execute(update(target).where(target.c.id == existing).values(values))
        return int(existing)
    new_id = conn.execute(
        insert(target)
        .values(source=source, external_id=external_id, **(inserted_with or {}), **values)
        .returning(target.c.id)
    ).scalar_one()
    return int(new_id)
