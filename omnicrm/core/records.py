"""The records channels yield: customers, orders and products as a platform gave them.

Every record keeps the platform's own id as a string (a Shopify GID, never a JSON
number), tz-aware datetimes (stored in UTC), money as ``Decimal`` with an ISO 4217
currency, and the raw payload it was read from, so nothing is lost by the mapping.

Values are made storable here, once for every channel, so one odd value never stops a
sync and both stores keep the same thing: control characters are taken out of text (line
breaks and tabs become spaces), text is cut to its column's length, a match key (email,
phone, member code, SKU ...) that is too long or holds control characters is dropped
rather than cut (a cut key could join two people), a count outside the store's integer
range is dropped, and the raw payload loses NUL characters and non-finite numbers, which
PostgreSQL cannot hold. Each change is noted on the record (:attr:`normalised`, by field
name, never by value) and the sync engine records it as a warning on the run. Ids are
never changed: one the store cannot hold fails validation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from contextvars import ContextVar
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from omnicrm.core._public import public


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A datetime that must carry a timezone; normalised to UTC."""

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of the store's integer columns (PostgreSQL ``integer``)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACING = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]+")
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")  # what no store takes in JSON text

# The notes of the record being validated; each record collects its own.
_notes: ContextVar[list[str] | None] = ContextVar("omnicrm_record_notes", default=None)


def _note(info: ValidationInfo, change: str) -> None:
    notes = _notes.get()
    if notes is not None:
        notes.append(f"{info.field_name}: {change}")


def _text(limit: int | None) -> AfterValidator:
    """Text: control characters out (breaks and tabs as spaces), cut to ``limit``."""

    def clean(value: str, info: ValidationInfo) -> str:
        if _CONTROL.search(value):
            value = _SPACING.sub(" ", value)
            value = _SURROGATE.sub("\ufffd", _ANY_CONTROL.sub("", value)).strip()
            _note(info, "control characters removed")
        if limit is not None and len(value) > limit:
            value = value[:limit].rstrip()
            _note(info, f"cut to {limit} characters")
        return value

    return AfterValidator(clean)


def _key(limit: int) -> AfterValidator:
    """A match key: kept exactly, or dropped when no store could keep it exactly."""

    def check(value: str, info: ValidationInfo) -> str | None:
        if _CONTROL.search(value):
            _note(info, "dropped: it holds control characters")
            return None
        if len(value) > limit:
            _note(info, f"dropped: longer than {limit} characters")
            return None
        return value

    return AfterValidator(check)


def _int_or_none(value: int, info: ValidationInfo) -> int | None:
    if INT_MIN <= value <= INT_MAX:
        return value
    _note(info, "dropped: outside the store's integer range")
    return None


def _storable(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            changed[0] = True
            return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
        return value
    if isinstance(value, dict):
        return {_storable(k, changed): _storable(v, changed) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v, changed) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        changed[0] = True
        return None
    return value


# In JSON text (ASCII-escaped) a NUL is \u0000 and a surrogate \ud800-\udfff; a
# character outside the BMP is a surrogate pair there, so it takes the walk, harmlessly.
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|d[89a-f])")


def _plainly_storable(value: dict[str, Any]) -> bool:
    """Whether ``value`` surely holds no NUL, unpaired surrogate or non-finite number:
    one pass of the C JSON encoder instead of a walk in Python over every value (most
    payloads are clean, and the walk was a third of an order's mapping). Any doubt, a
    type JSON does not take included, answers False: the walk decides."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return _ESCAPED_UNSTORABLE.search(text) is None


def _raw(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    if _plainly_storable(value):
        return value
    changed = [False]
    cleaned: dict[str, Any] = _storable(value, changed)
    if changed[0]:
        _note(info, "NUL characters, unpaired surrogates or non-finite numbers removed")
        return cleaned
    return value


def _record_id(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("an id cannot hold control characters")
    return value


NonEmptyId = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_record_id)]
"""A platform's id as given: 1 to 255 characters, no control characters; never changed."""

Name = Annotated[str, _text(255)]
Count = Annotated[int, AfterValidator(_int_or_none)]
RawPayload = Annotated[dict[str, Any], AfterValidator(_raw)]

Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
"""An exact amount with at most 4 decimal places: what every store keeps exactly."""


class Medium(StrEnum):
    """A way to reach a customer, each with its own marketing consent."""

    EMAIL = "email"
    SMS = "sms"
    LINE = "line"
    POSTAL = "postal"


class ConsentState(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    PENDING = "pending"
    UNKNOWN = "unknown"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    RETURNED = "returned"  # goods came back (返品); refunded or not


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Fields holding records of their own, whose notes become this record's too.
    _nested: ClassVar[tuple[str, ...]] = ()
    _normalised: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _collect_notes(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        notes: list[str] = []
        token = _notes.set(notes)
        try:
            record = handler(data)
        finally:
            _notes.reset(token)
        for name in cls._nested:
            value = getattr(record, name)
            for n, part in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(part, _Record) and part.normalised:
                    where = f"{name}[{n}]" if isinstance(value, list) else name
                    notes.extend(f"{where}.{note}" for note in part.normalised)
        if notes:
            record._normalised = tuple(notes)
        return record

    def __eq__(self, other: object) -> bool:
        # The same values are the same record, however they came to be (the notes of a
        # normalised record are not part of it).
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    @property
    def normalised(self) -> tuple[str, ...]:
        """What validation changed to make this record storable, by field, never by value."""
        return self._normalised


class Consent(_Record):
    """Marketing consent for one medium: what, since when, and who recorded it."""

    medium: Medium
    state: ConsentState
    updated_at: UtcDatetime | None = None
    source: Annotated[str, _text(255)] | None = Field(
        default=None,
        description="Where consent was recorded: a touchpoint or channel, e.g. 'checkout', "
        "'pos', 'shopify'.",
    )
    opt_in_level: Annotated[str, _text(255)] | None = Field(
        default=None, description="Platform's opt-in level, e.g. 'single_opt_in'."
    )


class Address(_Record):
    """A postal address. ``prefecture`` is the name as written (e.g. '東京都')."""

    postal_code: Annotated[str, _key(16)] | None = None
    prefecture: Annotated[str, _text(32)] | None = None
    city: Name | None = None
    line1: Name | None = None
    line2: Name | None = None
    country_code: str = Field(default="JP", min_length=2, max_length=2)


class Customer(_Record):
    """A customer as one channel knows them."""

    _nested = ("address", "consents")

    id: NonEmptyId
    family_name: Name | None = None
    given_name: Name | None = None
    family_name_kana: Name | None = None
    given_name_kana: Name | None = None
    email: Annotated[str, _key(320)] | None = None
    phone: Annotated[str, _key(64)] | None = None
    birth_date: dt.date | None = None
    gender: Gender = Gender.UNKNOWN
    address: Address | None = None
    company: Name | None = None
    member_code: Annotated[str, _key(64)] | None = Field(
        default=None, description="A member or point-card code shared between store and EC."
    )
    tags: list[Name] = Field(default_factory=list)
    consents: list[Consent] = Field(default_factory=list)
    points: Count | None = Field(
        default=None,
        description="The point balance the platform itself reports (reconciled against "
        "the shared ledger); None where the platform keeps no points.",
    )
    withdrawn_at: UtcDatetime | None = Field(
        default=None,
        description="When the member left the platform (退会); a withdrawn record keeps "
        "its orders but joins no person and is never messaged.",
    )
    line_user_id: Annotated[str, Field(pattern=r"^U[0-9a-f]{32}$")] | None = Field(
        default=None,
        description="The customer's LINE user id as the platform keeps it (a Shopify "
        "LINE-connect app's metafield): linked to them for LINE messages, no consent.",
    )
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: RawPayload = Field(default_factory=dict, description="The platform's payload.")


class OrderLine(_Record):
    """One line of an order. ``unit_price`` is before ``discount`` (the line's total off)."""

    sku: Annotated[str, _key(255)] | None = None
    product_id: Annotated[str, _key(255)] | None = None
    variant_id: Annotated[str, _key(255)] | None = None
    product_name: Annotated[str, _text(None)]
    quantity: int = Field(ge=0, le=INT_MAX)
    unit_price: Money
    discount: Money = Decimal(0)


def _codes(value: Any) -> Any:
    # A row stored before the column existed holds NULL: no code used.
    return [] if value is None else value


DiscountCodes = Annotated[list[Annotated[str, _text(255)]], BeforeValidator(_codes)]
"""Discount codes: an order's list, NULL read as none."""


class Order(_Record):
    """An order with its lines, as one channel knows it."""

    _nested = ("lines",)

    id: NonEmptyId
    name: Annotated[str, _text(64)] | None = Field(
        default=None, description="The number a shop shows, e.g. '#1001'."
    )
    customer_id: NonEmptyId | None = None
    channel: Annotated[str, _text(32)] = Field(
        default="web", description="'web', 'pos', 'app', 'draft', ..."
    )
    location: Name | None = Field(default=None, description="Store or retail location.")
    status: OrderStatus = OrderStatus.PENDING
    placed_at: UtcDatetime
    cancelled_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    currency: str = Field(default="JPY", pattern=r"^[A-Z]{3}$")
    subtotal: Money
    discount_total: Money = Decimal(0)
    shipping_total: Money = Decimal(0)
    tax_total: Money = Decimal(0)
    total: Money
    points_earned: Count | None = Field(
        default=None, ge=0, description="Points the platform itself granted (a POS event)."
    )
    points_redeemed: Count | None = Field(
        default=None, ge=0, description="Points spent on this order, as the platform reports."
    )
    discount_codes: DiscountCodes = Field(
        default_factory=list,
        description="The discount (coupon) codes the order used, as the customer typed "
        "them: a campaign's coupon redemptions are read from here.",
    )
    lines: list[OrderLine] = Field(default_factory=list)
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: RawPayload = Field(default_factory=dict, description="The platform's payload.")


class ProductStatus(StrEnum):
    """Whether a product is on sale: only an active one is ever offered to a customer."""

    ACTIVE = "active"
    DRAFT = "draft"  # not published yet
    ARCHIVED = "archived"  # no longer sold


Url = Annotated[str, _key(2048)]
"""A link: kept exactly, or dropped when longer than 2,048 characters (a cut one is wrong)."""


class ProductVariant(_Record):
    """One sellable variant of a product (a size, a colour): what an order line buys.

    ``available`` is whether it can be bought now (in stock, or sold without stock);
    ``inventory`` the quantity the platform reports, None where it tracks none.
    """

    id: NonEmptyId
    sku: Annotated[str, _key(255)] | None = None
    title: Name | None = Field(default=None, description="The variant's own title, e.g. '100g'.")
    price: Money
    compare_at_price: Money | None = None
    available: bool = True
    inventory: Count | None = None
    image_url: Url | None = None


class Product(_Record):
    """A product with its variants, as one channel sells it.

    ``url`` is where a customer sees it (the shop's product page); ``status`` says whether
    it is on sale; ``currency`` applies to every variant's price. A product with no
    variant of its own (a POS item with one price) carries one variant all the same,
    so that every price, SKU and availability lives in one place.
    """

    _nested = ("variants",)

    id: NonEmptyId
    title: Name
    handle: Annotated[str, _key(255)] | None = Field(
        default=None, description="The URL slug a storefront knows the product by."
    )
    url: Url | None = None
    image_url: Url | None = None
    product_type: Name | None = None
    vendor: Name | None = None
    tags: list[Name] = Field(default_factory=list)
    status: ProductStatus = ProductStatus.ACTIVE
    currency: str = Field(default="JPY", pattern=r"^[A-Z]{3}$")
    variants: list[ProductVariant] = Field(default_factory=list)
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: RawPayload = Field(default_factory=dict, description="The platform's payload.")


class Checkout(_Record):
    """A checkout a customer began and left (an abandoned cart), as the platform keeps it.

    ``completed_at`` is set once the buyer completed it (then it is no longer abandoned);
    ``recovery_url`` is the link that takes the buyer back to it; ``lines`` are what was
    in the cart (a recovery message names them). A channel asks for ids, times, amounts
    and the cart's products only (no address: the customer record holds the person), so
    ``raw`` holds no more than that.
    """

    _nested = ("lines",)

    id: NonEmptyId
    customer_id: NonEmptyId | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    currency: str = Field(default="JPY", pattern=r"^[A-Z]{3}$")
    total: Money = Decimal(0)
    item_count: Count = Field(default=0, ge=0)
    recovery_url: Url | None = None
    lines: list[OrderLine] = Field(
        default_factory=list,
        description="The cart's lines; a channel may give only the first of a long cart.",
    )
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: RawPayload = Field(default_factory=dict, description="The platform's payload.")


Record = Customer | Order | Product | Checkout  # what a stream yields: a new kind adds its model

public(
    Medium,
    ConsentState,
    Gender,
    OrderStatus,
    ProductStatus,
    Consent,
    Address,
    Customer,
    OrderLine,
    Order,
    ProductVariant,
    Product,
    Checkout,
)
