"""Smaregi's members (会員), transactions (取引) and products (商品) as omnicrm records.

Smaregi sends every number and id as a string ("1200", "0"); amounts are yen and become
:class:`~decimal.Decimal`. Times carry their offset (``+09:00``).

Members: ``customerCode`` is the member (point-card) code. ``status`` is 0 in use,
1 suspended, 2 card lost, 3 withdrawn (退会), 4 merged (the codes as third-party
descriptions of the API list them; Smaregi's own reference is not public). A member
merged into another at the register (:data:`MERGED`) keeps its record and names the
survivor in ``mergedCustomerCode``: its customer carries the survivor's code as
``member_code``, so identity resolution's ``member_code`` rule makes the two one person,
and no point balance (the points moved to the survivor). A member who withdrew
(:data:`WITHDRAWN`) has ``withdrawn_at`` set: their ``leaveDate`` (a date in Japan, taken
as its start), else the record's ``updDateTime``; no point balance either (withdrawal
forfeits it), so joins no person and is never messaged. Suspended and card-lost
members are members still. Names written in half-width kana at an old register are
read as full-width (NFKC); the raw payload keeps what was typed.

Transactions: only ``transactionHeadDivision`` 1 (通常) is a sale; deposits, point
adjustments and the rest are not orders (points adjusted by hand show in the nightly
reconciliation against ``point``). ``cancelDivision`` 1 is a cancelled sale. Detail lines
of ``transactionDetailDivision`` 2 are returned goods: they are not lines of the order
(the product was bought on an earlier receipt), and the receipt's ``subtotal`` and
``total`` already have them subtracted; a receipt of returns only is ``returned``. The
sale time is ``terminalTranDateTime`` (the register's), not ``transactionDateTime`` (when
the server received it). The store's name is the location; store and terminal ids stay
in the raw payload. ``newPoint`` and ``spendPoint`` are the points earned and spent;
``point`` and ``totalPoint`` (the balance before and after) stay in the raw payload.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

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
    ProductVariant,
)
from omnicrm.errors import DataError

SALE = "1"
"""transactionHeadDivision of a sale (通常)."""
CANCELLED = "1"
"""cancelDivision of a cancelled transaction (取消)."""
RETURN = "2"
"""transactionDetailDivision of a returned item (返品)."""
WITHDRAWN = "3"
"""status of a member who left (退会)."""
MERGED = "4"
"""status of a member merged into another (統合)."""
MERGED_TAG = "会員統合済み"

_GENDERS = {"1": Gender.MALE, "2": Gender.FEMALE}
_JST = dt.timezone(dt.timedelta(hours=9), "JST")
_PREFECTURE = re.compile(r"^(北海道|東京都|京都府|大阪府|[^\s都道府県]{2,3}県)")


class _Reader:
    """Reads one record's fields, naming the record and the field in every error."""

    def __init__(self, kind: str, record: Any) -> None:
        if not isinstance(record, Mapping):
            raise DataError(f"Smaregi {kind}: not an object")
        self.record = record
        key = {"customer": "customerId", "product": "productId"}.get(kind, "transactionHeadId")
        self.where = f"Smaregi {kind} {str(record.get(key) or '(no id)')[:40]}"

    def fail(self, field: str, problem: str) -> DataError:
        return DataError(f"{self.where}: {field} {problem}")

    def text(self, field: str, source: Mapping[str, Any] | None = None) -> str | None:
        value = (self.record if source is None else source).get(field)
        if value is None:
            return None
        if not isinstance(value, str | int):
            raise self.fail(field, "is not text")
        text = str(value).strip()
        return text or None

    def required(self, field: str, source: Mapping[str, Any] | None = None) -> str:
        value = self.text(field, source)
        if value is None:
            raise self.fail(field, "is missing")
        return value

    def number(self, field: str, source: Mapping[str, Any] | None = None) -> Decimal:
        """A number sent as a string ("1200", "-300", "8.000"); missing is 0."""
        text = self.text(field, source)
        if text is None:
            return Decimal(0)
        try:
            value = Decimal(text.replace(",", ""))
        except InvalidOperation:
            raise self.fail(field, f"is not a number ({text[:20]!r})") from None
        if not value.is_finite():
            raise self.fail(field, "is not a finite number")
        return value

    def count(self, field: str, source: Mapping[str, Any] | None = None) -> int:
        value = self.number(field, source)
        if value != value.to_integral_value():
            raise self.fail(field, "is not a whole number")
        return int(value)

    def time(self, field: str, *, required: bool = True) -> dt.datetime | None:
        text = self.required(field) if required else self.text(field)
        if text is None:
            return None
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(field, "is not a date-time") from None
        if value.tzinfo is None:
            raise self.fail(field, "has no time zone")
        return value

    def date(self, field: str) -> dt.date | None:
        text = self.text(field)
        if text is None or text.startswith("0000"):
            return None
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            raise self.fail(field, "is not a date") from None


def _name(value: str | None) -> str | None:
    """NFKC: half-width kana and full-width letters as they are usually written."""
    return unicodedata.normalize("NFKC", value) if value else None


def _address(post_code: str | None, text: str | None) -> Address | None:
    if not post_code and not text:
        return None
    prefecture = line1 = None
    if text:
        text = unicodedata.normalize("NFKC", text)
        match = _PREFECTURE.match(text)
        prefecture = match.group(1) if match else None
        line1 = text[match.end() :].strip() if match else text
    postal = unicodedata.normalize("NFKC", post_code) if post_code else None
    return Address(postal_code=postal, prefecture=prefecture, line1=line1 or None)


def store_names(stores: Any) -> dict[str, str]:
    """storeId -> storeName from GET /stores."""
    names: dict[str, str] = {}
    for store in stores:
        read = _Reader("store", store)
        names[read.required("storeId")] = read.required("storeName")
    return names


def customer_from_record(record: Any) -> Customer:
    """A member as a :class:`Customer`."""
    read = _Reader("customer", record)
    status = read.text("status")
    merged = status == MERGED
    updated = read.time("updDateTime")
    withdrawn_at = None
    if status == WITHDRAWN:
        left = read.date("leaveDate")
        withdrawn_at = dt.datetime.combine(left, dt.time(), _JST) if left else updated
    code = read.text("customerCode")
    if merged:
        code = read.text("mergedCustomerCode") or code
    email = read.text("mailAddress") or read.text("mailAddress2") or read.text("mailAddress3")
    consents = []
    flag = read.text("mailReceiveFlag")
    if email and flag in ("0", "1"):
        state = ConsentState.OPTED_IN if flag == "1" else ConsentState.OPTED_OUT
        consents.append(Consent(medium=Medium.EMAIL, state=state, source="pos"))
    try:
        return Customer(
            id=read.required("customerId"),
            family_name=_name(read.text("lastName")),
            given_name=_name(read.text("firstName")),
            family_name_kana=_name(read.text("lastKana")),
            given_name_kana=_name(read.text("firstKana")),
            email=email,
            phone=read.text("mobileNumber") or read.text("phoneNumber"),
            birth_date=read.date("birthDate"),
            gender=_GENDERS.get(read.text("sex") or "", Gender.UNKNOWN),
            address=_address(read.text("postCode"), read.text("address")),
            company=read.text("companyName"),
            member_code=code,
            tags=[MERGED_TAG] if merged else [],
            consents=consents,
            points=None if merged or withdrawn_at else read.count("point"),
            withdrawn_at=withdrawn_at,
            created_at=read.time("insDateTime", required=False),
            updated_at=updated,
            raw=dict(record),
        )
    except ValidationError as exc:
        raise DataError(f"{read.where}: {_problems(exc)}") from None


def order_from_transaction(record: Any, stores: Mapping[str, str]) -> Order | None:
    """A sale as an :class:`Order`; None for a transaction that is not a sale."""
    read = _Reader("transaction", record)
    if read.required("transactionHeadDivision") != SALE:
        return None
    details = record.get("details") or []
    if not isinstance(details, list):
        raise read.fail("details", "is not a list")
    lines: list[OrderLine] = []
    returned = kept = 0
    discounts = read.number("subtotalDiscountPrice")
    for n, detail in enumerate(details):
        if not isinstance(detail, Mapping):
            raise read.fail(f"details[{n}]", "is not an object")
        if read.text("transactionDetailDivision", detail) == RETURN:
            returned += 1
            continue
        kept += 1
        discount = read.number("unitDiscountSum", detail)
        discounts += discount
        unit = read.number("salesPrice", detail) if detail.get("salesPrice") else None
        lines.append(
            OrderLine(
                sku=read.text("productCode", detail),
                product_id=read.text("productId", detail),
                product_name=read.text("productName", detail) or "(no name)",
                quantity=read.count("quantity", detail),
                unit_price=unit if unit is not None else read.number("price", detail),
                discount=discount,
            )
        )
    updated = read.time("updDateTime")
    assert updated is not None
    status = OrderStatus.PAID
    cancelled_at = None
    if read.text("cancelDivision") == CANCELLED:
        status, cancelled_at = OrderStatus.CANCELLED, updated
    elif returned and not kept:
        status = OrderStatus.RETURNED
    store = read.text("storeId")
    customer = read.text("customerId")
    terminal, receipt = read.text("terminalId"), read.text("terminalTranId")
    try:
        return Order(
            id=read.required("transactionHeadId"),
            name=f"{terminal}-{receipt}" if terminal and receipt else None,
            customer_id=customer if customer and customer != "0" else None,
            channel="pos",
            location=stores.get(store, f"店舗 {store}") if store else None,
            status=status,
            placed_at=read.time("terminalTranDateTime", required=False)
            or read.time("transactionDateTime"),
            cancelled_at=cancelled_at,
            updated_at=updated,
            currency="JPY",
            subtotal=read.number("subtotal"),
            discount_total=discounts,
            tax_total=read.number("taxInclude") + read.number("taxExclude"),
            total=read.number("total"),
            points_earned=read.count("newPoint") if customer else None,
            points_redeemed=read.count("spendPoint") if customer else None,
            lines=lines,
            raw=dict(record),
        )
    except ValidationError as exc:
        raise DataError(f"{read.where}: {_problems(exc)}") from None


ON_SALE = "0"
"""salesDivision of a product the register sells (売上対象)."""
SHOWN = "1"
"""displayFlag of a product shown at the register (表示する)."""


def product_from_record(record: Any, categories: Mapping[str, str]) -> Product:
    """A register product as a :class:`Product` with one variant (its code is the SKU).

    A product hidden from the register (``displayFlag`` 0) is archived: no longer sold;
    one it keeps out of sales (``salesDivision`` 1) cannot be bought. ``categories``
    names the categories by id (the product type). The price is the register's,
    tax as the product's ``taxDivision`` says (kept in the raw payload).
    """
    read = _Reader("product", record)
    product_id = read.required("productId")
    shown = read.text("displayFlag") != "0"
    category = read.text("categoryId")
    tags = [t.strip() for t in (read.text("tag") or "").split(",") if t.strip()]
    try:
        return Product(
            id=product_id,
            title=_name(read.required("productName")) or product_id,
            url=read.text("url"),
            product_type=categories.get(category) if category else None,
            tags=tags,
            status=ProductStatus.ACTIVE if shown else ProductStatus.ARCHIVED,
            currency="JPY",
            variants=[
                ProductVariant(
                    id=product_id,
                    sku=read.text("productCode"),
                    title=_name(read.text("size") or read.text("color")),
                    price=read.number("price"),
                    available=shown and read.text("salesDivision") in (None, ON_SALE),
                )
            ],
            created_at=read.time("insDateTime", required=False),
            updated_at=read.time("updDateTime"),
            raw=dict(record),
        )
    except ValidationError as exc:
        raise DataError(f"{read.where}: {_problems(exc)}") from None


def category_names(categories: Any) -> dict[str, str]:
    """Category names by id, from a page of GET /categories."""
    if not isinstance(categories, list):
        raise DataError("Smaregi categories: not a list")
    names: dict[str, str] = {}
    for category in categories:
        if isinstance(category, Mapping) and category.get("categoryId") is not None:
            names[str(category["categoryId"])] = str(category.get("categoryName") or "")
    return names


def _problems(exc: ValidationError) -> str:
    """Which fields are wrong and how, never their values (personal data)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)[:5]
    )
