"""Reading one EC-CUBE admin CSV export (会員CSV, 受注CSV or 商品CSV, 2.x or 4.x), checked
whole before any of it is written.

The kind of export is told by its header (an order export names the order: 注文ID or
注文番号; a product export names a product and no member), the version needs no
telling: each field is found under any of the headers either version writes
(:mod:`.columns`). The file is read once, row by row (:class:`omnicrm.csvfiles.CsvReader`:
the encoding detected, UTF-8 with or without a BOM or Shift_JIS); each row is checked
and kept, parsed, in a private temporary SQLite database, grouped by member, order or
product, so a file of any size is read in bounded memory and a record's rows need not
be next to each other. Any problem raises :class:`omnicrm.csvfiles.CsvImportError`
(``file:line:column: what``) once the whole file is read; only a file without problems
gives records.

Times are the shop's (its timezone), stored in UTC; birth dates are calendar dates as
written. A record's ``updated_at`` is its own update time (更新日, 2.x's 更新日時) or,
where the export has none (4.x's 受注CSV), the file's modification time: the same file
imported twice writes nothing the second time, and a newer export replaces.

Products (商品CSV, one row per product class 商品規格) become the records the products
stream writes, as the Web API half maps them: each class a variant, its SKU the 商品コード;
販売価格 (price02) is before tax, so it is taxed by the row's 税率 (the class's own rule,
where the export has the column and the class a rule) or else the shop's rate
(:class:`Pricing`), rounded by its 丸め規則. A class can be bought when it is shown
(商品規格表示フラグ, where exported), not deleted (2.x's 削除フラグ) and in stock (在庫数 > 0,
or 在庫(数)無制限フラグ 1, or no stock kept); a product is on sale only when its status is
公開 and not every row of it is deleted. The class-less class EC-CUBE keeps hidden (4.x)
or deleted (2.x) once a product has classes is left out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from omnicrm import (
    Address,
    Consent,
    ConsentState,
    Customer,
    Gender,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductStatus,
    Stream,
)
from omnicrm.csvfiles import (
    CsvImportError,
    CsvProblem,
    CsvReader,
    CsvRow,
    Problems,
    RowChecker,
    header_fields,
    money,
    parse_moment,
    whole,
)
from omnicrm.plugins.ec_cube import masters as api_masters
from omnicrm.plugins.ec_cube.api.mapping import taxed
from omnicrm.plugins.ec_cube.csv import masters_csv as masters
from omnicrm.plugins.ec_cube.csv.columns import (
    CUSTOMER_FIELDS,
    CUSTOMER_REQUIRED,
    LINE_REQUIRED,
    ORDER_FIELDS,
    ORDER_REQUIRED,
    PRODUCT_FIELDS,
    PRODUCT_REQUIRED,
    is_orders,
    is_products,
    is_version_2,
)

BATCH = 500  # records per batch written
SOURCE = "ec_cube"  # consents' source

_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?")
_DIGITS = re.compile(r"\d+")
# 2.x mailmaga_flg: 1 HTML, 2 text, 3 none; 4.x's mail magazine plugin: 1 yes, 0 no.
_MAILMAGA: Mapping[str, tuple[ConsentState, str | None]] = {
    "1": (ConsentState.OPTED_IN, "html"),
    "2": (ConsentState.OPTED_IN, "text"),
    "3": (ConsentState.OPTED_OUT, None),
    "0": (ConsentState.OPTED_OUT, None),
    "html": (ConsentState.OPTED_IN, "html"),
    "htmlメール": (ConsentState.OPTED_IN, "html"),
    "テキスト": (ConsentState.OPTED_IN, "text"),
    "テキストメール": (ConsentState.OPTED_IN, "text"),
    "希望する": (ConsentState.OPTED_IN, None),
    "受け取る": (ConsentState.OPTED_IN, None),
    "配信する": (ConsentState.OPTED_IN, None),
    "希望しない": (ConsentState.OPTED_OUT, None),
    "受け取らない": (ConsentState.OPTED_OUT, None),
    "配信しない": (ConsentState.OPTED_OUT, None),
    # A member who never chose: no consent, but recorded as such.
    "設定無し": (ConsentState.UNKNOWN, None),
    "設定なし": (ConsentState.UNKNOWN, None),
}
_FLAG = {"0": False, "1": True, "稼働中": False, "削除": True, "退会": True}
# EC-CUBE 4 replaces a withdrawing member's email with random letters at this domain.
DUMMY_DOMAIN = "@dummy.dummy"


class Kind(StrEnum):
    """What an export holds."""

    CUSTOMERS = "customers"  # 会員CSV (2.x: 顧客CSV)
    ORDERS = "orders"  # 受注CSV
    PRODUCTS = "products"  # 商品CSV


_STREAMS = {
    Kind.CUSTOMERS: Stream.CUSTOMERS,
    Kind.ORDERS: Stream.ORDERS,
    Kind.PRODUCTS: Stream.PRODUCTS,
}
_FIELDS: Mapping[Kind, Mapping[str, tuple[str, ...]]] = {
    Kind.CUSTOMERS: CUSTOMER_FIELDS,
    Kind.ORDERS: ORDER_FIELDS,
    Kind.PRODUCTS: PRODUCT_FIELDS,
}


@dataclass(frozen=True)
class Pricing:
    """How a product export's prices and links read: the shop's tax rate in percent
    (税率設定, for classes without their own rule), its 丸め規則 (1 四捨五入, 2 切り捨て,
    3 切り上げ) and its base URL (links to product pages and images; None: no links)."""

    tax_rate: Decimal = Decimal(10)
    rounding: int = api_masters.ROUND_HALF_UP
    url: str | None = None


def birth_date(text: str) -> dt.date:
    """The calendar date as written ('1985-04-02', '1985/4/2 00:00:00'): a birthday is
    no moment, so no timezone moves it."""
    found = _DATE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if not found:
        raise ValueError(f"not a date: {text!r} (write e.g. 1985-04-02)")
    try:
        day = dt.date(*(int(part) for part in found.groups()))
    except ValueError as exc:
        raise ValueError(f"not a date: {text!r} ({exc})") from None
    if day.year < 1900:
        raise ValueError(f"{text!r} is out of range (from 1900)")
    return day


def mailmaga(text: str) -> tuple[ConsentState, str | None]:
    """Email marketing consent from a mailmaga_flg (or its name) and its kind."""
    value = unicodedata.normalize("NFKC", text).strip().lower()
    if value not in _MAILMAGA:
        raise ValueError(f"not a mail magazine setting: {text!r} (1 HTML, 2 text, 3 none)")
    return _MAILMAGA[value]


def flag(text: str) -> bool:
    """A 0/1 flag (del_flg)."""
    value = unicodedata.normalize("NFKC", text).strip()
    if value not in _FLAG:
        raise ValueError(f"not a flag: {text!r} (0 or 1)")
    return _FLAG[value]


def digits_joined(*parts: str | None) -> str | None:
    """Parts of a number (2.x's TEL1-TEL3) in half-width digits, joined by '-'."""
    kept = [unicodedata.normalize("NFKC", p).strip() for p in parts if p]
    return "-".join(kept) or None


def postal_code(text: str | None) -> str | None:
    """A postal code in half-width digits, '1500001' as '150-0001'."""
    if not text:
        return None
    value = unicodedata.normalize("NFKC", text).strip()
    numbers = "".join(_DIGITS.findall(value))
    return f"{numbers[:3]}-{numbers[3:]}" if len(numbers) == 7 else value


@dataclass(frozen=True)
class Export:
    """A checked export: its records, written in batches of ``(stream, records)``."""

    path: Path
    kind: Kind
    rows: int
    records: int
    skipped: int  # orders left out: unfinished checkouts (決済処理中, 購入処理中)
    _db: sqlite3.Connection
    _file_time: dt.datetime
    _pricing: Pricing = Pricing()
    _version_2: bool = False  # a 2.x product export: its links are 2.x's

    def batches(self) -> Iterator[tuple[Stream, list[Customer] | list[Order] | list[Product]]]:
        """The file's customers, orders or products, ``BATCH`` at a time."""
        stream = _STREAMS[self.kind]
        batch: list[Any] = []
        rows: list[dict[str, Any]] = []
        current: str | None = None
        for key, data in self._db.execute("SELECT key, data FROM rows ORDER BY key, line"):
            if key != current and rows:
                batch.append(self._record(rows))
                rows = []
                if len(batch) == BATCH:
                    yield stream, batch
                    batch = []
            current = key
            rows.append(json.loads(data))
        if rows:
            batch.append(self._record(rows))
        if batch:
            yield stream, batch

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, rows: list[dict[str, Any]]) -> Customer | Order | Product:
        if self.kind is Kind.CUSTOMERS:
            return self._customer(rows[-1])  # a member listed twice: the later row
        if self.kind is Kind.PRODUCTS:
            return self._product(rows)
        return self._order(rows)

    def _taxed(self, price: str, rate: Decimal) -> Decimal:
        return taxed(Decimal(price), rate, self._pricing.rounding, Decimal(0))

    def _link(self, path: str) -> str | None:
        base = self._pricing.url
        return None if base is None else f"{base.rstrip('/')}/{path}"

    def _product(self, rows: list[dict[str, Any]]) -> Product:
        head = rows[0]
        several = len(rows) > 1
        variants: dict[str, dict[str, Any]] = {}
        for row in rows:
            options = [o for o in (row["category1"], row["category2"]) if o]
            shown = row["visible"]
            if several and not options:
                hidden = shown is False or (shown is None and (row["deleted"] or not row["code"]))
                if hidden:
                    continue  # the class-less class EC-CUBE keeps once a product has classes
            rate = self._pricing.tax_rate if row["tax_rate"] is None else Decimal(row["tax_rate"])
            unlimited, stock = row["unlimited"], row["stock"]
            variants[row["variant"]] = {  # a class listed twice: the later row
                "id": row["variant"],
                "sku": row["code"],
                "title": " / ".join(options) or None,
                "price": self._taxed(row["price02"], rate),
                "compare_at_price": None
                if row["price01"] is None
                else self._taxed(row["price01"], rate),
                "available": shown is not False
                and not row["deleted"]
                and (unlimited or (stock is not None and stock > 0)),
                "inventory": None if unlimited or stock is None else max(stock, 0),
            }
        ident = head["key"]
        status = api_masters.product_status(head["status_id"])
        if all(row["deleted"] for row in rows):
            status = ProductStatus.ARCHIVED  # 2.x deletes what 4.x discontinues (廃止)
        image = head["image"]
        if self._version_2:
            url = self._link(f"products/detail.php?product_id={ident}")
            image_url = self._link(f"upload/save_image/{image}") if image else None
        else:
            url = self._link(f"products/detail/{ident}")
            image_url = self._link(f"html/upload/save_image/{image}") if image else None
        return Product(
            id=ident,
            title=head["name"],
            url=url,
            image_url=image_url,
            tags=head["tags"],
            status=status,
            currency="JPY",
            variants=list(variants.values()),
            updated_at=self._file_time,
            raw={
                "file": self.path.name,
                "rows": [{"line": r["line"], **r["raw"]} for r in rows],
            },
        )

    def _moment(self, value: str | None) -> dt.datetime | None:
        return None if value is None else dt.datetime.fromisoformat(value)

    def _customer(self, v: Mapping[str, Any]) -> Customer:
        updated = self._moment(v["updated"]) or self._file_time
        # The dummy address alone tells a withdrawn member whose status was not exported.
        dummy = (v["email"] or "").lower().endswith(DUMMY_DOMAIN)
        withdrawn = v["status_id"] == masters.WITHDRAWN or bool(v["deleted"]) or dummy
        consents = []
        if v["mailmaga"] is not None or withdrawn:
            state, level = (ConsentState.OPTED_OUT, None) if withdrawn else v["mailmaga"]
            consents.append(
                Consent(
                    medium=Medium.EMAIL,
                    state=ConsentState(state),
                    updated_at=updated,
                    source=SOURCE,
                    opt_in_level=level,
                )
            )
        address = None
        if any(v[k] for k in ("postal_code", "pref", "addr01", "addr02")):
            address = Address(
                postal_code=v["postal_code"],
                prefecture=v["pref"],
                line1=v["addr01"],
                line2=v["addr02"],
            )
        return Customer(
            id=v["id"],
            family_name=v["family_name"],
            given_name=v["given_name"],
            family_name_kana=v["family_kana"],
            given_name_kana=v["given_kana"],
            # A withdrawn member's address is EC-CUBE's dummy: no key to match people by.
            email=None if withdrawn else v["email"],
            phone=v["phone"],
            birth_date=None if v["birth"] is None else dt.date.fromisoformat(v["birth"]),
            gender=Gender(v["gender"]) if v["gender"] else Gender.UNKNOWN,
            address=address,
            company=v["company"],
            consents=consents,
            points=v["points"],
            withdrawn_at=updated if withdrawn else None,
            created_at=self._moment(v["created"]),
            updated_at=updated,
            raw={"file": self.path.name, "line": v["line"], "row": v["raw"]},
        )

    def _order(self, rows: list[dict[str, Any]]) -> Order:
        head = rows[0]
        lines: list[OrderLine] = []
        line_total = Decimal(0)
        points_item = Decimal(0)
        for row in rows:
            if row["item_type"] == masters.PRODUCT:
                price, quantity = Decimal(row["unit_price"]), int(row["quantity"])
                line_total += price * quantity
                lines.append(
                    OrderLine(
                        sku=row["product_code"],
                        product_id=row["product_id"],
                        variant_id=row["product_class_id"],
                        product_name=row["product_name"] or row["product_code"] or "",
                        quantity=quantity,
                        unit_price=price,
                    )
                )
            elif row["item_type"] == 6 and row["unit_price"] is not None:
                # 4.x's point item: the points spent, as a negative price (1 point, 1 yen).
                points_item += -Decimal(row["unit_price"]) * int(row["quantity"] or 1)

        def amount(field: str, default: Decimal = Decimal(0)) -> Decimal:
            value = head[field]
            return default if value is None else abs(Decimal(value))

        subtotal = amount("subtotal", line_total)
        discount = amount("discount")
        shipping = amount("delivery_fee")
        charge = amount("charge")
        computed = subtotal - discount + shipping + charge
        total = amount("payment_total", amount("total", computed))
        status = masters.order_status(head["status_id"])
        updated = self._moment(head["updated"]) or self._file_time
        redeemed = head["use_point"]
        if redeemed is None and any(row["item_type"] is not None for row in rows):
            redeemed = int(points_item)  # the items are all there: no point item, none spent
        return Order(
            id=head["key"],
            name=head["order_no"] or head["key"],
            customer_id=head["customer_id"],
            channel="web",
            status=status,
            placed_at=dt.datetime.fromisoformat(head["order_date"]),
            cancelled_at=updated if status is OrderStatus.CANCELLED else None,
            updated_at=updated,
            currency="JPY",
            subtotal=subtotal,
            discount_total=discount,
            shipping_total=shipping,
            tax_total=amount("tax"),
            total=total,
            points_earned=head["add_point"],
            points_redeemed=redeemed,
            lines=lines,
            raw={
                "file": self.path.name,
                "rows": [{"line": r["line"], **r["raw"]} for r in rows],
            },
        )


def read_export(
    path: Path,
    *,
    timezone: ZoneInfo,
    columns: Mapping[str, str] | None = None,
    encoding: str = "auto",
    pricing: Pricing | None = None,
) -> Export:
    """Read and check the export at ``path``; raises CsvImportError naming every problem
    (file, line, column) when it has any. ``pricing`` reads a product export's prices
    and links (default: 10%, 四捨五入, no links). Close the result when done."""
    header = CsvReader(path, required=(), optional=(), encoding=encoding, extra=True).header
    if is_orders(header):
        kind = Kind.ORDERS
    elif is_products(header):
        kind = Kind.PRODUCTS
    else:
        kind = Kind.CUSTOMERS
    fields = _FIELDS[kind]
    # A user's column names for another kind of export are no concern of this one.
    own = {h: f for h, f in (columns or {}).items() if f in fields}
    names = header_fields(fields, header, own)
    reader = CsvReader(
        path,
        required=(),
        optional=tuple(fields),
        encoding=encoding,
        names=names,
        extra=True,
        first_wins=True,
    )
    problems = Problems()
    required = {
        Kind.ORDERS: ORDER_REQUIRED,
        Kind.CUSTOMERS: CUSTOMER_REQUIRED,
        Kind.PRODUCTS: PRODUCT_REQUIRED,
    }[kind]
    if kind is Kind.ORDERS and "product_name" in reader.columns:
        required = (*required, *LINE_REQUIRED)
    for group in required:
        if not any(field in reader.columns for field in group):
            wanted = " or ".join(h for f in group for h in fields[f])
            problems.add(CsvProblem(reader.file, 1, wanted, "required column is missing"))
    problems.raise_if_any()
    try:
        stat = path.stat()
    except OSError as exc:
        raise CsvImportError([CsvProblem(str(path), 0, None, f"cannot read: {exc}")]) from None
    file_time = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(microsecond=0)
    db = sqlite3.connect("")  # a private temporary database on disk, gone when closed
    try:
        db.execute("CREATE TABLE rows (key TEXT, line INTEGER, data TEXT)")
        check = _Checker(reader, problems, timezone)
        parse = {
            Kind.CUSTOMERS: check.customer,
            Kind.ORDERS: check.order,
            Kind.PRODUCTS: check.product,
        }[kind]
        rows = 0
        for row in reader.rows(problems):
            parsed = parse(row)
            if parsed is None:
                continue
            rows += 1
            if parsed.get("unfinished"):
                continue
            db.execute(
                "INSERT INTO rows VALUES (?, ?, ?)",
                (parsed["key"], row.line, json.dumps(parsed, ensure_ascii=False)),
            )
        problems.raise_if_any()
        records = db.execute("SELECT count(DISTINCT key) FROM rows").fetchone()[0]
        skipped = check.unfinished_orders()
        return Export(
            path,
            kind,
            rows,
            records,
            skipped,
            db,
            file_time,
            pricing or Pricing(),
            kind is Kind.PRODUCTS and is_version_2(header),
        )
    except BaseException:
        db.close()
        raise


class _Checker:
    """Turns a row into its parsed values, adding a problem (named by the column's
    header as the file writes it) for each bad one."""

    def __init__(self, reader: CsvReader, problems: Problems, timezone: ZoneInfo) -> None:
        self.reader = reader
        self.check = RowChecker(reader.file, problems)
        self.problems = problems
        self.timezone = timezone
        self._unfinished: set[str] = set()

    def unfinished_orders(self) -> int:
        return len(self._unfinished)

    def _value(
        self, row: CsvRow, field: str, convert: Callable[[str], Any], *, required: bool = False
    ) -> Any:
        text = row.values.get(field)
        header = self.reader.headers.get(field, field)
        if text is None:
            if required:
                self.check.fail(row, header, "a value is required")
            return None
        try:
            return convert(text)
        except ValueError as exc:
            self.check.fail(row, header, str(exc))
            return None

    def _text(self, row: CsvRow, field: str, limit: int = 255) -> str | None:
        def check(value: str) -> str:
            if len(value) > limit:
                raise ValueError(f"longer than {limit} characters ({len(value)})")
            return value

        return self._value(row, field, check)  # type: ignore[no-any-return]

    def _moment(self, row: CsvRow, field: str, *, required: bool = False) -> str | None:
        at = self._value(row, field, lambda t: parse_moment(t, self.timezone), required=required)
        return None if at is None else str(at.isoformat())

    def _raw(self, row: CsvRow) -> dict[str, str]:
        return {self.reader.headers[k]: x for k, x in row.values.items() if x}

    def _id(self, row: CsvRow, field: str, *, required: bool = False) -> str | None:
        value = self._text(row, field)
        if value is None:
            if required:
                self.check.fail(row, self.reader.headers.get(field, field), "a value is required")
            return None
        value = unicodedata.normalize("NFKC", value)
        if any(ch in value for ch in "\r\n\t"):
            self.check.fail(row, self.reader.headers[field], "an id cannot hold line breaks")
            return None
        return None if value.strip("0") == "" else value  # 2.x writes 0 for a guest

    def customer(self, row: CsvRow) -> dict[str, Any] | None:
        before = self.problems.total
        out: dict[str, Any] = {"line": row.line, "raw": self._raw(row)}
        out["key"] = out["id"] = self._id(row, "id", required=True)
        for field in ("family_name", "given_name", "family_kana", "given_kana", "company"):
            out[field] = self._text(row, field)
        out["addr01"] = self._text(row, "addr01")
        out["addr02"] = self._text(row, "addr02")
        out["email"] = self._text(row, "email", 320)
        phone = self._text(row, "phone", 64)
        parts = [self._text(row, f, 64) for f in ("tel01", "tel02", "tel03")]
        out["phone"] = digits_joined(phone) if phone else digits_joined(*parts)
        code = self._text(row, "postal_code", 16)
        zips = [self._text(row, f, 16) for f in ("zip01", "zip02")]
        out["postal_code"] = postal_code(code or "".join(z for z in zips if z) or None)
        pref = self._value(row, "pref_id", masters.prefecture)
        out["pref"] = pref or self._value(row, "pref", masters.prefecture)
        sex = self._value(row, "sex_id", masters.gender)
        sex = sex or self._value(row, "sex", masters.gender)
        out["gender"] = None if sex is None else sex.value
        birth = self._value(row, "birth", birth_date)
        out["birth"] = None if birth is None else birth.isoformat()
        points = self._value(row, "points", whole)
        if points is not None and points < 0:
            self.check.fail(row, self.reader.headers["points"], "a negative point balance")
        out["points"] = points
        status = self._value(row, "status_id", masters.customer_status)
        out["status_id"] = status or self._value(row, "status", masters.customer_status)
        out["mailmaga"] = self._value(row, "mailmaga", mailmaga)
        out["deleted"] = self._value(row, "deleted", flag)
        out["created"] = self._moment(row, "created")
        out["updated"] = self._moment(row, "updated")
        return None if self.problems.total > before else out

    def order(self, row: CsvRow) -> dict[str, Any] | None:
        before = self.problems.total
        v = row.values
        out: dict[str, Any] = {"line": row.line, "raw": self._raw(row)}
        # 4.x and 3.x key an order by 注文ID (注文番号 is its display number); 2.x's
        # 注文番号 is its id.
        id_field = "order_id" if "order_id" in self.reader.columns else "order_no"
        out["key"] = self._id(row, id_field, required=True)
        out["order_no"] = self._text(row, "order_no", 64)
        status = self._value(row, "status_id", masters.order_status_id)
        if status is None and v.get("status_id") is None:
            status = self._value(row, "status", masters.order_status_id)
        if status is None and v.get("status_id") is None and v.get("status") is None:
            field = "status_id" if "status_id" in self.reader.columns else "status"
            self.check.fail(row, self.reader.headers[field], "a value is required")
        out["status_id"] = status
        if status in masters.UNFINISHED:
            # A checkout never completed: no sale, whatever else the row says.
            if out["key"] is not None:
                self._unfinished.add(out["key"])
            return None if self.problems.total > before else {"unfinished": True}
        out["customer_id"] = self._id(row, "customer_id")
        for field in (
            "subtotal",
            "discount",
            "delivery_fee",
            "charge",
            "tax",
            "total",
            "payment_total",
        ):
            amount = self._value(row, field, money)
            out[field] = None if amount is None else str(amount)
        for field in ("use_point", "add_point"):
            points = self._value(row, field, whole)
            out[field] = None if points is None else abs(points)
        out["order_date"] = self._moment(row, "order_date", required=True)
        out["updated"] = self._moment(row, "updated")
        self._moment(row, "payment_date")  # checked, kept in raw
        self._moment(row, "shipped")
        out.update(self._item(row))
        return None if self.problems.total > before else out

    def _item(self, row: CsvRow) -> dict[str, Any]:
        """The row's order item: its type (1 a product) and, for a product, the line."""
        v = row.values
        out: dict[str, Any] = {}
        for field in ("product_code", "product_id", "product_class_id"):
            value = self._text(row, field)
            out[field] = None if value is None else unicodedata.normalize("NFKC", value)
        name = self._text(row, "product_name", 1000)
        options = [self._text(row, f"class_category{n}", 255) for n in (1, 2)]
        chosen = [option for option in options if option]
        # As the Web API half names a line: the product, then its 規格 in brackets.
        out["product_name"] = f"{name} ({' / '.join(chosen)})" if name and chosen else name
        item_type = self._value(row, "item_type_id", masters.order_item_type)
        if item_type is None and v.get("item_type_id") is None:
            item_type = self._value(row, "item_type", masters.order_item_type)
        typed = any(c in self.reader.columns for c in ("item_type_id", "item_type"))
        if item_type is None and not typed and "product_name" in self.reader.columns:
            # No 明細区分 column: a product line names its product.
            product = out["product_id"] or out["product_code"]
            item_type = masters.PRODUCT if product else None
        out["item_type"] = item_type
        out["unit_price"] = None
        out["quantity"] = None
        if item_type is None or "product_name" not in self.reader.columns:
            return out  # 2.x: one row per order, no lines
        required = item_type == masters.PRODUCT
        price = self._value(row, "price", money, required=required)
        quantity = self._value(row, "quantity", whole, required=required)
        rate = self._value(row, "tax_rate", money)
        if required and quantity is not None and quantity < 0:
            self.check.fail(row, self.reader.headers["quantity"], "a negative quantity")
        if price is not None and rate and item_type == masters.PRODUCT:
            # 4.x writes the price without tax and the rate; the line's price is what
            # the customer paid, tax included, rounded as EC-CUBE rounds by default.
            # (A point item is never taxed: its price is the points spent.)
            tax = (price * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            price += tax
        out["unit_price"] = None if price is None else str(price)
        out["quantity"] = quantity
        return out

    def product(self, row: CsvRow) -> dict[str, Any] | None:
        """One product class's row: the product it belongs to, and the class."""
        before = self.problems.total
        out: dict[str, Any] = {"line": row.line, "raw": self._raw(row)}
        out["key"] = self._id(row, "product_id", required=True)
        class_id = self._id(row, "class_id")
        code = self._text(row, "code")
        out["code"] = None if code is None else unicodedata.normalize("NFKC", code).strip()
        out["variant"] = class_id or out["code"]
        if out["variant"] is None:
            field = "class_id" if "class_id" in self.reader.columns else "code"
            self.check.fail(row, self.reader.headers[field], "a value is required")
        out["name"] = self._value(row, "name", _name, required=True)
        status = self._value(row, "status_id", masters.product_status_id)
        if status is None and row.values.get("status_id") is None:
            status = self._value(row, "status", masters.product_status_id)
        out["status_id"] = status
        for n in (1, 2):
            out[f"category{n}"] = self._text(row, f"category{n}")
        stock = self._value(row, "stock", whole)
        if stock is not None and stock < 0:
            self.check.fail(row, self.reader.headers["stock"], "a negative stock")
        unlimited = self._value(row, "unlimited", flag)
        out["stock"] = stock
        # EC-CUBE keeps no stock for a class sold without limit: a blank 在庫数 is one.
        out["unlimited"] = stock is None if unlimited is None else unlimited
        for field in ("price02", "price01"):
            amount = self._value(row, field, money, required=field == "price02")
            if amount is not None and amount < 0:
                self.check.fail(row, self.reader.headers[field], "a negative price")
            out[field] = None if amount is None else str(amount)
        rate = self._value(row, "tax_rate", money)
        if rate is not None and not 0 <= rate <= 100:
            self.check.fail(row, self.reader.headers["tax_rate"], "not a rate in percent (0-100)")
        out["tax_rate"] = None if rate is None else str(rate)
        out["visible"] = self._value(row, "visible", flag)
        out["deleted"] = bool(self._value(row, "deleted", flag))
        # 4.x lists a product's images and tags in one cell, comma-separated.
        images = _listed(self._text(row, "image", 4000))
        out["image"] = images[0] if images else None
        out["tags"] = [t for t in _listed(self._text(row, "tags", 4000)) if len(t) <= 255]
        return None if self.problems.total > before else out


def _name(text: str) -> str:
    value = text.strip()
    if len(value) > 255:
        raise ValueError(f"longer than 255 characters ({len(value)})")
    if not value:
        raise ValueError("a value is required")
    return value


def _listed(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
