"""Reading CSV files people bring: encoding detection, a checked header, streamed rows,
and problems reported as ``file:line:column: what``.

A file is UTF-8 (with or without a BOM) or Shift_JIS (cp932, what Excel and POS systems
in Japan write), detected; anything else (EUC-JP, UTF-16, binary) is refused by name
rather than read as garbled text. A control character in a value (a NUL, an escape) is
refused where it stands. :class:`CsvReader` streams the file: one of any size is read in
bounded memory, as often as asked. Problems are collected (:class:`Problems`) and raised
together as :class:`CsvImportError`, so the caller can check a whole file before writing
any of it. Public as :mod:`omnicrm.csvfiles`, for plugins that import files.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, NoReturn, TypeVar
from zoneinfo import ZoneInfo

from omnicrm.core._public import public
from omnicrm.errors import OmnicrmError

T = TypeVar("T")

MAX_SHOWN = 20  # problems listed in the message
MAX_KEPT = 1_000  # problems (and unmatched rows) kept; the rest are counted
MAX_LINE = 1 << 20  # characters in one physical line
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


def header_name(text: str) -> str:
    """A header as columns are matched: NFKC, trimmed, lower case, spaces as ``_``.

    Full-width letters and 'Event ID' read as event_id, and full-width brackets as
    ASCII ones (顧客名(カナ)): spreadsheets write either."""
    return unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_")


def header_fields(
    candidates: Mapping[str, Sequence[str]],
    header: Sequence[str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """How the columns of ``header`` (as a file writes it) read, for
    :class:`CsvReader`'s ``names``: header name -> field.

    ``candidates`` lists, per field, the headers that may hold it (the first present
    wins): exports name a field differently by version and operators reorder and drop
    columns. ``overrides`` (header -> field, a user's own names) come first. A column
    of no field reads as ``-`` and its name, so it passes for no field by its own name
    (an English header "total" in a Japanese export)."""
    present = {header_name(h) for h in header}
    names = {header_name(h): field for h, field in (overrides or {}).items()}
    taken = set(names.values())
    for field, headers in candidates.items():
        if field in taken:
            continue
        for candidate in headers:
            name = header_name(candidate)
            if name in present and name not in names:
                names[name] = field
                break
    return {name: names.get(name, f"-{name}") for name in present}


class CsvReader:
    """A CSV file whose first line is a header naming known columns, read as a stream.

    Opening it detects (or checks) the encoding and checks the header: an unknown or
    repeated column, a missing required one, or none of ``one_of`` raises
    ``CsvImportError`` at line 1, as does a file that cannot be read. ``rows`` then
    reads the data rows, as often as asked, each time from the start.

    ``names`` maps headers (as :func:`header_name` reads them) to the fields they hold,
    for files whose headers are not the field names (a POS export's Japanese ones); a
    header it leaves out is its own field. With ``extra``, a column that is no known
    field is read past rather than refused (an export carries many the import does not
    use); :attr:`headers` keeps each field's header as the file writes it, :attr:`header`
    the whole header line. With ``first_wins`` (and ``extra``), a field whose header
    appears more than once is read from its first column, the others read past: some
    exports repeat a header (EC-CUBE 2 writes 住所1 for the buyer, then again for the
    delivery address).
    """

    def __init__(
        self,
        path: Path,
        *,
        required: Sequence[str],
        optional: Sequence[str],
        one_of: Sequence[str] = (),
        encoding: str = "auto",
        names: Mapping[str, str] | None = None,
        extra: bool = False,
        first_wins: bool = False,
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
        names = names or {}
        self.columns = [names.get(header_name(h), header_name(h)) for h in header]
        if first_wins:
            # A later column of a field already read is read past, under a name no
            # field has (`-` and its position).
            seen: set[str] = set()
            for n, column in enumerate(self.columns):
                if column in seen:
                    self.columns[n] = f"-{n + 1}:{column}"
                seen.add(column)
        self.header = [h.strip() for h in header]  # as the file writes it
        self.headers = dict(zip(self.columns, self.header, strict=True))
        problems = Problems()
        for column in self.columns:
            if column not in known and not extra:
                problems.add(
                    CsvProblem(
                        self.file,
                        1,
                        column or "(empty)",
                        f"unknown column; known: {', '.join(known)}",
                    )
                )
        self._known = set(known)
        self._extra = extra
        repeated = {c for c in self.columns if self.columns.count(c) > 1}
        for column in sorted(c for c in repeated if c in self._known or not extra):
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
            # A short row names the first column it does not reach, as the file writes it.
            short = len(record) < len(self.columns)
            problems.add(
                CsvProblem(
                    self.file,
                    line,
                    self.header[len(record)] if short else None,
                    f"{len(record)} values, the header has {len(self.columns)}",
                )
            )
            return None
        values: dict[str, str | None] = {}
        good = True
        for column, value in zip(self.columns, record, strict=True):
            if self._extra and column not in self._known:
                continue  # a column the caller does not read
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


# --------------------------------------------------------------------------- values

_MOMENT = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"  # PostgreSQL writes +09 alone
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
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
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


# --------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def plain(text: str) -> str:
    """NFKC, without thousands separators, yen marks and spaces: '¥1,200' -> '1200'."""
    value = unicodedata.normalize("NFKC", text).strip()
    for mark in (",", "¥", "\\", "円", " "):
        value = value.replace(mark, "")
    if value.startswith(("▲", "△")):  # the accountant's minus
        value = "-" + value[1:]
    return value


def money(text: str) -> Decimal:
    """An amount in yen: '1,200', '¥1200', '▲300', '-300', '1200.5'."""
    value = plain(text)
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"not an amount in yen: {text!r}")
    amount = Decimal(value)  # finite: the pattern holds digits only
    if -amount.as_tuple().exponent > 4 or abs(amount) >= 10**14:  # type: ignore[operator]
        raise ValueError(f"not an amount the store keeps (4 decimals, 14 digits): {text!r}")
    return amount


def whole(text: str) -> int:
    """A whole number: '3', '-1', '1,000'."""
    value = plain(text)
    if not re.fullmatch(r"[+-]?\d+(\.0*)?", value):
        raise ValueError(f"not a whole number: {text!r}")
    number = int(Decimal(value))
    if abs(number) > 2**31 - 1:
        raise ValueError(f"out of range: {text!r}")
    return number


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


public(
    CsvProblem, CsvImportError, Problems, CsvRow, CsvReader, RowChecker, module="omnicrm.csvfiles"
)
public(header_name, header_fields, parse_moment, plain, money, whole, module="omnicrm.csvfiles")
