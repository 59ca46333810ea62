"""The records channels yield: customers and orders as a platform gave them.

Every record keeps the platform's own id as a string (a Shopify GID, never a JSON
number), tz-aware datetimes (stored in UTC), money as ``Decimal`` with an ISO 4217
currency, and the raw payload it was read from, so nothing is lost by the mapping.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A datetime that must carry a timezone; normalised to UTC."""

NonEmptyId = Annotated[str, Field(min_length=1, max_length=255)]

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


class Consent(_Record):
    """Marketing consent for one medium: what, since when, and who recorded it."""

    medium: Medium
    state: ConsentState
    updated_at: UtcDatetime | None = None
    source: str | None = Field(
        default=None,
        description="Where consent was recorded: a touchpoint or channel, e.g. 'checkout', "
        "'pos', 'shopify'.",
    )
    opt_in_level: str | None = Field(
        default=None, description="Platform's opt-in level, e.g. 'single_opt_in'."
    )


class Address(_Record):
    """A postal address. ``prefecture`` is the name as written (e.g. '東京都')."""

    postal_code: str | None = None
    prefecture: str | None = None
    city: str | None = None
    line1: str | None = None
    line2: str | None = None
    country_code: str = Field(default="JP", min_length=2, max_length=2)


class Customer(_Record):
    """A customer as one channel knows them."""

    id: NonEmptyId
    family_name: str | None = None
    given_name: str | None = None
    family_name_kana: str | None = None
    given_name_kana: str | None = None
    email: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = None
    gender: Gender = Gender.UNKNOWN
    address: Address | None = None
    company: str | None = None
    member_code: str | None = Field(
        default=None, description="A member or point-card code shared between store and EC."
    )
    tags: list[str] = Field(default_factory=list)
    consents: list[Consent] = Field(default_factory=list)
    points: int | None = Field(
        default=None,
        description="The point balance the platform itself reports (reconciled against "
        "the shared ledger); None where the platform keeps no points.",
    )
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: dict[str, Any] = Field(default_factory=dict, description="The platform's payload.")


class OrderLine(_Record):
    """One line of an order. ``unit_price`` is before ``discount`` (the line's total off)."""

    sku: str | None = None
    product_id: str | None = None
    variant_id: str | None = None
    product_name: str
    quantity: int = Field(ge=0)
    unit_price: Money
    discount: Money = Decimal(0)


class Order(_Record):
    """An order with its lines, as one channel knows it."""

    id: NonEmptyId
    name: str | None = Field(default=None, description="The number a shop shows, e.g. '#1001'.")
    customer_id: str | None = None
    channel: str = Field(default="web", description="'web', 'pos', 'app', 'draft', ...")
    location: str | None = Field(default=None, description="Store or retail location.")
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
    points_earned: int | None = Field(
        default=None, ge=0, description="Points the platform itself granted (a POS event)."
    )
    points_redeemed: int | None = Field(
        default=None, ge=0, description="Points spent on this order, as the platform reports."
    )
    lines: list[OrderLine] = Field(default_factory=list)
    connection: str | None = Field(
        default=None, description="The connection it came from; set by the engine."
    )
    raw: dict[str, Any] = Field(default_factory=dict, description="The platform's payload.")


Record = Customer | Order
