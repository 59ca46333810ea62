"""MiniShop JSON -> omnicrm records.

The mapping is strict about what it cannot guess (a timestamp without an offset, a date
that does not exist, an amount that is not whole yen) and raises
:class:`~omnicrm.errors.DataError` naming the record and the field, so a shop owner can
find it in MiniShop's admin. It is lenient about what MiniShop writes loosely: an empty
string means "not given". Values are otherwise kept as given (a phone number typed with
full-width digits stays so: normalising is the identity resolver's job, not a channel's),
and the whole payload is kept in ``raw``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

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
)
from omnicrm.errors import DataError

SOURCE = "minishop"
_M = TypeVar("_M", bound=BaseModel)

_GENDERS = {"male": Gender.MALE, "female": Gender.FEMALE, None: Gender.UNKNOWN}
_STATUSES = {
    "new": OrderStatus.PENDING,
    "paid": OrderStatus.PAID,
    "shipped": OrderStatus.FULFILLED,
    "cancelled": OrderStatus.CANCELLED,
    "returned": OrderStatus.REFUNDED,
}


class _Fields:
    """Reads typed fields from one record's payload, naming the record in every error."""

    def __init__(self, kind: str, payload: Mapping[str, Any], prefix: str = "") -> None:
        self.kind = kind
        self.payload = payload
        self.prefix = prefix
        record_id = payload.get("id") if not prefix else None
        self.record_id = record_id if isinstance(record_id, str) and record_id else None

    def fail(self, field: str, why: str, value: Any) -> NoReturn:
        self._raise(f"field {self.prefix + field!r}: {why}", value)

    def _raise(self, what: str, value: Any) -> NoReturn:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataError(f"MiniShop {self.kind} {self.record_id or '(no id)'}: {what} (got {shown})")

    def child(self, prefix: str, payload: Any) -> _Fields:
        if not isinstance(payload, Mapping):
            self.fail(prefix.rstrip("."), "expected an object", payload)
        child = _Fields(self.kind, payload, prefix=f"{self.prefix}{prefix}")
        child.record_id = self.record_id
        return child

    def raw(self, field: str) -> Any:
        return self.payload.get(field)

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self.payload.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(field, "is required", value)
            return None
        if not isinstance(value, str):
            self.fail(field, "expected a string", value)
        return value

    def code(self, field: str, *, required: bool = False) -> str | None:
        """An identifier MiniShop sometimes sends as a JSON number (order_no, member_no)."""
        value = self.payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.text(field, required=required)

    def timestamp(self, field: str, *, required: bool = False) -> dt.datetime | None:
        value = self.text(field, required=required)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(field, "not an ISO 8601 timestamp", value)
        if parsed.tzinfo is None:
            # Guessing JST would be right today and silently wrong the day MiniShop
            # changes: refuse rather than shift every cursor by nine hours.
            self.fail(field, "timestamp has no UTC offset", value)
        return parsed

    def date(self, field: str) -> dt.date | None:
        value = self.text(field)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(field, "not a date (YYYY-MM-DD)", value)

    def yen(self, field: str, *, default: int | None = None) -> Decimal:
        value = self.payload.get(field, default)
        if value is None and default is not None:
            value = default
        # bool is an int in Python; a JSON true is never an amount.
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(field, "expected whole yen (an integer)", value)
        return Decimal(value)

    def count(self, field: str) -> int:
        value = self.payload.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(field, "expected a whole number >= 0", value)
        return value

    def flag(self, field: str) -> bool | None:
        value = self.payload.get(field)
        if value is None or isinstance(value, bool):
            return value
        self.fail(field, "expected true, false or null", value)

    def strings(self, field: str) -> list[str]:
        value = self.payload.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(field, "expected a list of strings", value)
        return [v for v in value if v.strip()]

    def build(self, model: type[_M], **fields: Any) -> _M:
        """Construct an omnicrm record, turning a validation failure into a DataError."""
        try:
            return model(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            target = f"{model.__name__}.{where}" if where else model.__name__
            part = f"{self.prefix.rstrip('.')} " if self.prefix else ""
            self._raise(
                f"{part}does not fit omnicrm's {target}: {first['msg']}", first.get("input")
            )


def customer_from_minishop(payload: Mapping[str, Any]) -> Customer:
    """Map one MiniShop customer object to a :class:`~omnicrm.Customer`."""
    f = _Fields("customer", payload)
    record_id = f.text("id", required=True)
    assert record_id is not None

    sex = f.raw("sex")
    if sex not in _GENDERS:
        f.fail("sex", "expected 'male', 'female' or null", sex)

    address = None
    parts = {
        "postal_code": f.text("zip"),
        "prefecture": f.text("pref"),
        # MiniShop, like most Japanese carts, splits an address into 市区町村+町域 (addr1)
        # and 番地・建物 (addr2); neither is a city on its own, so city stays unset.
        "line1": f.text("addr1"),
        "line2": f.text("addr2"),
    }
    if any(parts.values()):
        address = f.build(Address, **parts, country_code="JP")

    consents = []
    magazine = f.flag("mail_magazine")
    if magazine is not None:  # absent means MiniShop does not know: claim nothing
        state = ConsentState.OPTED_IN if magazine else ConsentState.OPTED_OUT
        consents.append(
            f.build(
                Consent,
                medium=Medium.EMAIL,
                state=state,
                updated_at=f.timestamp("mail_magazine_updated_at"),
                source=SOURCE,
            )
        )

    return f.build(
        Customer,
        id=record_id,
        family_name=f.text("last_name"),
        given_name=f.text("first_name"),
        family_name_kana=f.text("last_name_kana"),
        given_name_kana=f.text("first_name_kana"),
        email=f.text("email"),
        phone=f.text("tel"),
        birth_date=f.date("birthday"),
        gender=_GENDERS[sex],
        address=address,
        company=f.text("company_name"),
        member_code=f.code("member_no"),
        tags=f.strings("tags"),
        consents=consents,
        created_at=f.timestamp("created_at"),
        updated_at=f.timestamp("updated_at", required=True),
        raw=dict(payload),
    )


def _line(f: _Fields) -> OrderLine:
    return f.build(
        OrderLine,
        sku=f.code("product_code"),
        product_id=f.code("product_id"),
        product_name=f.text("product_name", required=True),
        quantity=f.count("quantity"),
        unit_price=f.yen("price"),
        discount=f.yen("discount", default=0),
    )


def order_from_minishop(payload: Mapping[str, Any]) -> Order:
    """Map one MiniShop order object, with its items, to an :class:`~omnicrm.Order`.

    MiniShop prices include consumption tax and its ``subtotal`` is after line discounts,
    so ``total == subtotal - discount_total + shipping_total`` and ``tax_total`` is the
    tax contained in ``total``, not added to it.
    """
    f = _Fields("order", payload)
    record_id = f.text("id", required=True)
    assert record_id is not None

    status = f.raw("status")
    if status not in _STATUSES:
        f.fail("status", f"expected one of {', '.join(_STATUSES)}", status)

    items = f.raw("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        f.fail("items", "expected a list", items)
    lines = [_line(f.child(f"items[{i}].", item)) for i, item in enumerate(items)]

    return f.build(
        Order,
        id=record_id,
        name=f.code("order_no"),
        customer_id=f.text("customer_id"),  # null for a guest checkout
        channel="web",
        status=_STATUSES[status],
        placed_at=f.timestamp("ordered_at", required=True),
        cancelled_at=f.timestamp("cancelled_at"),
        updated_at=f.timestamp("updated_at", required=True),
        currency=f.text("currency") or "JPY",
        subtotal=f.yen("subtotal"),
        discount_total=f.yen("discount", default=0),
        shipping_total=f.yen("delivery_fee", default=0),
        tax_total=f.yen("tax", default=0),
        total=f.yen("payment_total"),
        lines=lines,
        raw=dict(payload),
    )
