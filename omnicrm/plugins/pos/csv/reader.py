"""Reading one export into orders and customers, checked whole before any is written.

The file is read once, row by row (:class:`omnicrm.csvfiles.CsvReader`: the encoding
detected, columns found by header name). Each row is checked and kept, parsed, in a
private temporary SQLite database on disk, grouped by receipt, so a file of any size is
read in bounded memory and a receipt's rows need not be next to each other. Any problem
raises :class:`omnicrm.csvfiles.CsvImportError` (``file:line:column: what``) once the
whole file is read; only a file without problems gives records.

A receipt is an order (channel ``pos``): its rows are its lines. A cancelled receipt
is ``cancelled``; a return receipt (区分 返品), or one whose every line is returned, is
``returned``; any other is ``fulfilled`` (paid and handed over at the register). A
returned line (a negative quantity, or Smaregi's 取引明細区分 2) has a negative unit
price, so it takes from the receipt's subtotal. Amounts are yen as the register charged
them (tax included). Times are the register's (its timezone), stored in UTC. Rows naming
a member give a customer (the last receipt's values win) and the order's customer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from omnicrm import Customer, Order, OrderLine, OrderStatus, Stream
from omnicrm.csvfiles import (
    CsvProblem,
    CsvReader,
    CsvRow,
    Problems,
    RowChecker,
    money,
    parse_moment,
    plain,
    whole,
)
from omnicrm.plugins.pos.csv.formats import FIELDS, LAYOUTS, Format, column_names

BATCH = 500  # receipts (or customers) per batch written

_SALE = {"売上", "販売", "通常", "会計", "sale", "1"}
_RETURN = {"返品", "return", "returned"}
_CANCEL = {"取消", "取り消し", "取消済", "キャンセル", "cancel", "cancelled", "void"}
_SPACE = re.compile(r"\s+")


def kind(text: str) -> str:
    """'sale', 'return' or 'cancel' from the words registers write."""
    value = plain(text).lower()
    for name, words in (("sale", _SALE), ("return", _RETURN), ("cancel", _CANCEL)):
        if value in words:
            return name
    raise ValueError(f"not a kind of receipt: {text!r} (売上, 返品 or 取消)")


def _split(name: str | None) -> tuple[str | None, str | None]:
    """(family, given) of a name written family name first, 山田 太郎 or 山田　太郎."""
    if not name:
        return None, None
    parts = _SPACE.split(unicodedata.normalize("NFKC", name).strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else None


@dataclass(frozen=True)
class Export:
    """A checked export: its records, written in batches of ``(stream, records)``."""

    path: Path
    format: Format
    receipts: int
    rows: int
    members: int
    _db: sqlite3.Connection
    _store: str | None
    _moment: dt.datetime

    def batches(self) -> Iterator[tuple[Stream, list[Customer] | list[Order]]]:
        """The customers, then the orders, ``BATCH`` at a time."""
        people: list[Customer] = []
        for (data,) in self._db.execute("SELECT data FROM members ORDER BY id"):
            people.append(self._customer(json.loads(data)))
            if len(people) == BATCH:
                yield Stream.CUSTOMERS, people
                people = []
        if people:
            yield Stream.CUSTOMERS, people
        orders: list[Order] = []
        rows: list[dict[str, Any]] = []
        current: str | None = None
        query = "SELECT receipt, data FROM lines ORDER BY receipt, line"
        for receipt, data in self._db.execute(query):
            if receipt != current and rows:
                orders.append(self._order(rows))
                rows = []
                if len(orders) == BATCH:
                    yield Stream.ORDERS, orders
                    orders = []
            current = receipt
            rows.append(json.loads(data))
        if rows:
            orders.append(self._order(rows))
        if orders:
            yield Stream.ORDERS, orders

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _customer(self, values: Mapping[str, Any]) -> Customer:
        family, given = _split(values.get("name"))
        family_kana, given_kana = _split(values.get("name_kana"))
        return Customer(
            id=values["member"],
            family_name=family,
            given_name=given,
            family_name_kana=family_kana,
            given_name_kana=given_kana,
            member_code=values.get("member_code"),
            phone=values.get("phone"),
            email=values.get("email"),
            updated_at=self._moment,
            raw={"file": self.path.name, "line": values["line"], "row": values["raw"]},
        )

    def _order(self, rows: list[dict[str, Any]]) -> Order:
        head = rows[0]
        placed = dt.datetime.fromisoformat(head["at"])
        lines = []
        subtotal = line_discounts = Decimal(0)
        returned = 0
        for row in rows:
            price, quantity = Decimal(row["unit_price"]), int(row["quantity"])
            discount = Decimal(row.get("discount") or 0)
            if quantity < 0 or row.get("returned") or head["kind"] == "return":
                # A returned line takes from the receipt: its price counts against it.
                price, quantity, discount = -abs(price), abs(quantity), -abs(discount)
                returned += 1
            subtotal += price * quantity
            line_discounts += discount
            lines.append(
                OrderLine(
                    sku=row.get("sku"),
                    product_id=row.get("product_id"),
                    product_name=row.get("product_name") or row.get("sku") or "",
                    quantity=quantity,
                    unit_price=price,
                    discount=discount,
                )
            )
        off = sum(Decimal(head.get(k) or 0) for k in ("receipt_discount", "point_discount"))
        discount_total = line_discounts + off
        total = (
            Decimal(head["total"]) if head.get("total") is not None else subtotal - discount_total
        )
        if head["kind"] == "cancel":
            status = OrderStatus.CANCELLED
        elif head["kind"] == "return" or returned == len(rows):
            status = OrderStatus.RETURNED
        else:
            status = OrderStatus.FULFILLED
        return Order(
            id=head["receipt"],
            name=head["receipt"],
            customer_id=head.get("member"),
            channel="pos",
            location=head.get("store") or self._store,
            status=status,
            placed_at=placed,
            cancelled_at=placed if status is OrderStatus.CANCELLED else None,
            updated_at=self._moment,
            currency="JPY",
            subtotal=subtotal,
            discount_total=discount_total,
            tax_total=Decimal(head.get("tax") or 0),
            total=total,
            points_earned=head.get("points_earned"),
            points_redeemed=head.get("points_redeemed"),
            lines=lines,
            raw={
                "file": self.path.name,
                "format": self.format.value,
                "rows": [{"line": r["line"], **r["raw"]} for r in rows],
            },
        )


def read_export(
    path: Path,
    format: Format,
    *,
    timezone: ZoneInfo,
    columns: Mapping[str, str] | None = None,
    store_name: str | None = None,
    encoding: str = "auto",
) -> Export:
    """Read and check the export at ``path``; raises CsvImportError naming every problem
    (file, line, column) when it has any. Close the result when done."""
    layout = LAYOUTS[format]
    header = _header(path, encoding)
    names = column_names(layout, header, columns or {})
    reader = CsvReader(
        path, required=(), optional=tuple(FIELDS), encoding=encoding, names=names, extra=True
    )
    problems = Problems()
    for group in layout.required:
        if not any(field in reader.columns for field in group):
            wanted = " or ".join(layout.headers.get(f, (f,))[0] for f in group)
            problems.add(CsvProblem(reader.file, 1, wanted, "required column is missing"))
    problems.raise_if_any()
    db = sqlite3.connect("")  # a private temporary database on disk, gone when closed
    try:
        return _read(reader, problems, db, format, timezone, store_name)
    except BaseException:
        db.close()
        raise


def _header(path: Path, encoding: str) -> list[str]:
    """The file's header as written (its encoding detected and checked)."""
    return CsvReader(path, required=(), optional=(), encoding=encoding, extra=True).header


def _read(
    reader: CsvReader,
    problems: Problems,
    db: sqlite3.Connection,
    format: Format,
    timezone: ZoneInfo,
    store_name: str | None,
) -> Export:
    db.execute("CREATE TABLE lines (receipt TEXT, line INTEGER, data TEXT)")
    db.execute("CREATE TABLE members (id TEXT PRIMARY KEY, at TEXT, data TEXT)")
    check = _Checker(reader, problems)
    rows = 0
    for row in reader.rows(problems):
        parsed = check.row(row, timezone, format)
        if parsed is None:
            continue
        rows += 1
        db.execute(
            "INSERT INTO lines VALUES (?, ?, ?)",
            (parsed["receipt"], row.line, json.dumps(parsed, ensure_ascii=False)),
        )
        if parsed.get("member"):
            person = {
                k: parsed.get(k)
                for k in ("member", "member_code", "name", "name_kana", "phone", "email")
            }
            person |= {"line": row.line, "raw": parsed["raw"]}
            db.execute(
                "INSERT INTO members VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " at = excluded.at, data = excluded.data WHERE excluded.at >= members.at",
                (parsed["member"], parsed["at"], json.dumps(person, ensure_ascii=False)),
            )
    problems.raise_if_any()
    receipts = db.execute("SELECT count(DISTINCT receipt) FROM lines").fetchone()[0]
    members = db.execute("SELECT count(*) FROM members").fetchone()[0]
    return Export(
        reader.path,
        format,
        receipts,
        rows,
        members,
        db,
        store_name,
        dt.datetime.now(dt.UTC),
    )


class _Checker:
    """Turns a row into its parsed values, adding a problem (named by the column's
    header as the file writes it) for each bad one."""

    def __init__(self, reader: CsvReader, problems: Problems) -> None:
        self.reader = reader
        self.check = RowChecker(reader.file, problems)
        self.problems = problems

    def _value(self, row: CsvRow, field: str, convert: Any, *, required: bool = False) -> Any:
        text = row.values.get(field)
        if text is None:
            if required and field in self.reader.headers:
                self.check.fail(row, self.reader.headers[field], "a value is required")
            return None
        try:
            return convert(text)
        except ValueError as exc:
            self.check.fail(row, self.reader.headers[field], str(exc))
            return None

    def row(self, row: CsvRow, timezone: ZoneInfo, format: Format) -> dict[str, Any] | None:
        before = self.problems.total
        v = row.values
        if format is Format.SMAREGI:
            division = self._value(row, "transaction_kind", whole)
            if division is not None and division != 1:
                return None  # 入金, 出金, ポイント加算 ...: money moved, nothing sold
        out: dict[str, Any] = {
            "line": row.line,
            "raw": {self.reader.headers[k]: x for k, x in v.items() if x},
        }
        out["receipt"] = self._value(row, "receipt", _text(255), required=True)
        out["at"] = self._moment(row, timezone)
        receipt_kind = self._value(row, "kind", kind) or "sale"
        if self._value(row, "cancelled", whole) == 1:
            receipt_kind = "cancel"
        out["kind"] = receipt_kind
        out["returned"] = self._value(row, "line_kind", whole) == 2
        for field in (
            "store",
            "sku",
            "product_id",
            "product_name",
            "member_code",
            "name",
            "name_kana",
            "phone",
            "email",
        ):
            out[field] = self._value(row, field, _text(255))
        out["member_id"] = self._value(row, "member_id", _text(255))
        out["member"] = out["member_id"] or out["member_code"]
        if out["member"] is not None and out["member"].strip("0") == "":
            out["member"] = None  # Smaregi writes 0 (or nothing) for a sale to nobody
        out["product_name"] = self._value(row, "product_name", _text(None), required=True)
        for field in (
            "unit_price",
            "discount",
            "receipt_discount",
            "point_discount",
            "tax",
            "total",
        ):
            amount = self._value(row, field, money, required=field == "unit_price")
            out[field] = None if amount is None else str(amount)
        out["quantity"] = self._value(row, "quantity", whole, required=True)
        for field in ("points_earned", "points_redeemed"):
            points = self._value(row, field, whole)
            out[field] = None if points is None else abs(points)
        if self.problems.total > before:
            return None
        return out

    def _moment(self, row: CsvRow, timezone: ZoneInfo) -> str | None:
        v = row.values
        for field in ("terminal_datetime", "datetime"):
            if v.get(field):
                at = self._value(row, field, lambda t: parse_moment(t, timezone))
                return None if at is None else at.isoformat()
        if "date" in self.reader.columns:
            day = v.get("date")
            if day is None:
                self.check.fail(row, self.reader.headers["date"], "a value is required")
                return None
            if self._value(row, "date", lambda t: parse_moment(t, timezone)) is None:
                return None  # a bad date, named at its column
            if not v.get("time"):
                return parse_moment(day, timezone).isoformat()
            at = self._value(row, "time", lambda t: parse_moment(f"{day} {t}", timezone))
            return None if at is None else at.isoformat()
        field = "terminal_datetime" if "terminal_datetime" in self.reader.columns else "datetime"
        self.check.fail(row, self.reader.headers.get(field, field), "a value is required")
        return None


def _text(limit: int | None) -> Any:
    def check(value: str) -> str:
        if limit is not None and len(value) > limit:
            raise ValueError(f"longer than {limit} characters ({len(value)})")
        return value

    return check
