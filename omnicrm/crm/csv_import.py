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

import codecs
import csv
import datetime as dt
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, insert, select, update

from omnicrm.crm.identity.normalize import normalize_email, normalize_phone
from omnicrm.crm.schema import profiles
from omnicrm.errors import OmnicrmError

__all__ = [
    "ENCODINGS",
    "IDENTITY_COLUMNS",
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
    "parse_moment",
    "respondent",
    "save_row",
]

MAX_SHOWN = 20  # problems listed in the message
MAX_KEPT = 1_000  # problems (and unmatched rows) kept; the rest are counted
MAX_LINE = 1 << 20  # characters in one physical line
BATCH = 500  # rows written at a time; values per IN (...) lookup
_READ = 1 << 16  # bytes read at a time while detecting the encoding

# What --encoding takes; "auto" tells UTF-8 from Shift_JIS by the bytes.
ENCODINGS = {
    "auto": "auto",
    "utf-8": "utf-8-sig",
    "utf8": "utf-8-sig",
    "utf-8-sig": "utf-8-sig",
    "cp932": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "ms932": "cp932",
    "windows-31j": "cp932",
}
# C0 and C1 controls but tab, line feed and carriage return (a note may hold those).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_JAPANESE = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")
_NOT_OURS = "is neither UTF-8 nor Shift_JIS (cp932)"
# UTF-32 first: its little-endian mark starts like UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


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
    """A CSV file that was not imported (nothing was written); ``problems`` says why
    (the first ``MAX_KEPT``; ``total`` counts them all)."""

    def __init__(self, problems: Sequence[CsvProblem], total: int | None = None) -> None:
        self.problems = tuple(problems)
        self.total = max(total or 0, len(self.problems))
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [str(p) for p in self.problems[:MAX_SHOWN]]
        more = self.total - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problem(s)")
        head = f"{self.total} problem(s); nothing was imported"
        return head + "\n" + "\n".join(shown)


class Problems:
    """The problems of one file: the first ``MAX_KEPT`` kept, all of them counted."""

    def __init__(self) -> None:
        self.kept: list[CsvProblem] = []
        self.total = 0

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, problem: CsvProblem) -> None:
        self.total += 1
        if len(self.kept) < MAX_KEPT:
            self.kept.append(problem)

    def error(self) -> CsvImportError:
        """Every problem found, in line order."""
        return CsvImportError(sorted(self.kept, key=lambda p: p.line), self.total)

    def raise_if_any(self) -> None:
        if self:
            raise self.error()


@dataclass(frozen=True)
class CsvRow:
    """A data row: its first physical line and its values by column (empty -> None)."""

    line: int
    values: Mapping[str, str | None]


def _header_name(text: str) -> str:
    # Full-width letters and 'Event ID' read as event_id: spreadsheets write either.
    return unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_")


class CsvReader:
    """A CSV file whose first line is a header naming known columns, read as a stream.

    Opening it detects (or checks) the encoding and checks the header: an unknown or
    repeated column, a missing required one, or none of ``one_of`` raises
    ``CsvImportError`` at line 1, as does a file that cannot be read. ``rows`` then
    reads the data rows, as often as asked, each time from the start.
    """

    def __init__(
        self,
        path: Path,
        *,
        required: Sequence[str],
        optional: Sequence[str],
        one_of: Sequence[str] = (),
        encoding: str = "auto",
    ) -> None:
        self.path = path
        self.file = str(path)
        self.encoding = self._encoding(encoding)
        try:
            with self._open() as handle:
                header = next(csv.reader(self._lines(handle)), None)
        except UnicodeDecodeError as exc:
            raise CsvImportError([self._undecodable(1, exc)]) from None
        except csv.Error as exc:
            self._fail(1, None, f"not a readable CSV file: {exc}")
        if header is None:
            self._fail(1, None, "empty file: expected a header line")
        if any(_CONTROL.search(h) for h in header):
            # NULs between the letters: UTF-16 without its mark, or not text at all.
            self._fail(1, None, f"the header holds control characters: the file {_NOT_OURS}")
        known = [*required, *optional]
        self.columns = [_header_name(h) for h in header]
        problems = Problems()
        for column in self.columns:
            if column not in known:
                problems.add(
                    CsvProblem(
                        self.file,
                        1,
                        column or "(empty)",
                        f"unknown column; known: {', '.join(known)}",
                    )
                )
        for column in sorted({c for c in self.columns if self.columns.count(c) > 1}):
            problems.add(CsvProblem(self.file, 1, column, "column appears more than once"))
        for column in required:
            if column not in self.columns:
                problems.add(CsvProblem(self.file, 1, column, "required column is missing"))
        if one_of and not any(c in self.columns for c in one_of):
            problems.add(
                CsvProblem(
                    self.file, 1, None, f"needs at least one of the columns {', '.join(one_of)}"
                )
            )
        problems.raise_if_any()

    def rows(self, problems: Problems) -> Iterator[CsvRow]:
        """The data rows, in file order, values stripped (empty ones None); blank lines
        are skipped. A row with the wrong number of values or a control character is a
        problem added to ``problems``, not a row. A file that stops being CSV part way
        raises at once, with the problems found so far."""
        with self._open() as handle:
            reader = csv.reader(self._lines(handle))
            line = 1
            try:
                next(reader)  # the header, checked when opened
                last = reader.line_num
                for record in reader:
                    line, last = last + 1, reader.line_num
                    row = self._row(line, record, problems)
                    if row is not None:
                        yield row
            except csv.Error as exc:
                problems.add(
                    CsvProblem(self.file, reader.line_num, None, f"not a readable CSV file: {exc}")
                )
                raise problems.error() from None
            except UnicodeDecodeError as exc:
                problems.add(self._undecodable(reader.line_num + 1, exc))
                raise problems.error() from None

    def _row(self, line: int, record: list[str], problems: Problems) -> CsvRow | None:
        if not record or all(not v.strip() for v in record):
            return None
        if len(record) != len(self.columns):
            problems.add(
                CsvProblem(
                    self.file,
                    line,
                    None,
                    f"{len(record)} values, the header has {len(self.columns)}",
                )
            )
            return None
        values: dict[str, str | None] = {}
        good = True
        for column, value in zip(self.columns, record, strict=True):
            control = _CONTROL.search(value)
            if control is not None:
                problems.add(
                    CsvProblem(
                        self.file,
                        line,
                        column,
                        f"control character U+{ord(control.group()):04X} at character "
                        f"{control.start() + 1}: remove it",
                    )
                )
                good = False
            values[column] = value.strip() or None
        return CsvRow(line, values) if good else None

    # ---- reading

    def _open(self) -> IO[str]:
        try:
            return self.path.open(encoding=self.encoding, newline="")
        except FileNotFoundError:
            self._fail(0, None, "no such file")
        except OSError as exc:
            self._fail(0, None, f"cannot read: {exc.strerror or exc}")

    def _lines(self, handle: IO[str]) -> Iterator[str]:
        """The file's physical lines, none longer than MAX_LINE characters."""
        number = 0
        while line := handle.readline(MAX_LINE + 1):
            number += 1
            if len(line) > MAX_LINE and not line.endswith(("\n", "\r")):
                self._fail(number, None, f"a line longer than {MAX_LINE:,} characters")
            yield line

    def _fail(self, line: int, field: str | None, message: str) -> NoReturn:
        raise CsvImportError([CsvProblem(self.file, line, field, message)])

    def _undecodable(self, line: int, exc: UnicodeDecodeError) -> CsvProblem:
        return CsvProblem(
            self.file,
            line,
            None,
            f"cannot be read as {self.encoding} ({exc.reason}); save it as UTF-8 or let "
            "the encoding be detected",
        )

    def _encoding(self, asked: str) -> str:
        """The codec to read with: the one asked for, or the one the bytes are."""
        codec = ENCODINGS.get(asked.strip().lower())
        if codec is None:
            self._fail(
                0,
                None,
                f"encoding {asked!r} is not supported: save the file as UTF-8 or Shift_JIS (cp932)",
            )
        if codec != "auto":
            return codec
        first = next(self._chunks(), b"")[:4]
        for bom, name in _WIDE_BOMS:
            if first.startswith(bom):
                self._fail(1, None, f"the file {_NOT_OURS} (it starts with a {name} mark)")
        if self._decodes("utf-8") is None:
            return "utf-8-sig"
        failed = self._decodes("cp932")
        looks_euc = self._decodes("euc_jp", sample=True) is None
        if failed is None and not looks_euc:
            return "cp932"
        line = (failed or 1) if not looks_euc else self._first_non_ascii_line()
        what = "looks like EUC-JP" if looks_euc else _NOT_OURS
        self._fail(
            line, None, f"the file {what}: save it as UTF-8 (or Shift_JIS) and import it again"
        )

    def _chunks(self) -> Iterator[bytes]:
        try:
            with self.path.open("rb") as raw:
                while chunk := raw.read(_READ):
                    yield chunk
        except FileNotFoundError:
            self._fail(0, None, "no such file")
        except OSError as exc:
            self._fail(0, None, f"cannot read: {exc.strerror or exc}")

    def _decodes(self, codec: str, *, sample: bool = False) -> int | None:
        """None when the whole file decodes as ``codec``, else the line where it fails.

        With ``sample`` it must also read as Japanese text (kana or kanji), which is
        what tells an EUC-JP file from a Shift_JIS one: most bytes of one are valid in
        the other, but the wrong reading gives half-width kana and stray symbols."""
        decoder = codecs.getincrementaldecoder(codec)()
        line = 1
        japanese = False
        try:
            for chunk in self._chunks():
                text = decoder.decode(chunk)
                japanese = japanese or (sample and bool(_JAPANESE.search(text)))
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return line + exc.object[: exc.start].count(b"\n")
        return None if japanese or not sample else line

    def _first_non_ascii_line(self) -> int:
        line = 1
        for chunk in self._chunks():
            found = next((i for i, b in enumerate(chunk) if b > 0x7F), None)
            if found is not None:
                return line + chunk[:found].count(b"\n")
            line += chunk.count(b"\n")
        return line


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
    try:
        if offset == "Z":
            zone = dt.UTC
        elif offset:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
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
    return in_range(moment, text)


FIRST_YEAR, LAST_YEAR = 1900, 2999


def in_range(moment: dt.datetime, text: str) -> dt.datetime:
    """``moment`` in UTC, if it lies in the years the product takes (1900 to 2999)."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{text!r} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return moment.astimezone(dt.UTC)


class RowChecker:
    """Converts the values of a file's rows, adding a problem for each bad one."""

    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems

    def fail(self, row: CsvRow, field: str | None, message: str) -> None:
        self.problems.add(CsvProblem(self.file, row.line, field, message))

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


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), BATCH):
        yield values[start : start + BATCH]


def _lookup(conn: Connection, shop: str, key: Any, want: Any, values: Sequence[Any]) -> list[Any]:
    found: list[Any] = []
    for chunk in _chunks(values):
        found += (
            conn.execute(select(want).where(profiles.c.shop == shop, key.in_(chunk)))
            .scalars()
            .all()
        )
    return found


def _lookup_pairs(
    conn: Connection, shop: str, key: Any, values: Sequence[str]
) -> list[tuple[str, int]]:
    # (shop, email) and (shop, phone) are indexed: no other shop's profile is read.
    found: list[tuple[str, int]] = []
    for chunk in _chunks(values):
        found += [
            (k, i)
            for k, i in conn.execute(
                select(key, profiles.c.id)
                .where(profiles.c.shop == shop, key.in_(chunk))
                .order_by(profiles.c.id)
            )
        ]
    return found


def foreign_profiles(conn: Connection, shop: str, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` are profiles of a shop other than ``shop``."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn.execute(
                select(profiles.c.id).where(profiles.c.id.in_(chunk), profiles.c.shop != shop)
            ).scalars()
        )
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
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(external_ids):
        for row in conn.execute(
            select(target).where(
                target.c.shop == shop,
                target.c.source == source,
                target.c.external_id.in_(chunk),
            )
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
