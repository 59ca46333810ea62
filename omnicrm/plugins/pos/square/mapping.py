"""Square's customers, orders and catalogue items as omnicrm records.

Money: Square gives amounts as integers in the currency's smallest unit. JPY has none
(``{"amount": 1200, "currency": "JPY"}`` is 1,200 yen), USD two decimals; the exponent
comes from ISO 4217 (:func:`money`).

Orders:

* the customer is the order's ``customer_id``; a register sale often has none there,
  and then it is a tender's (Square copies the payment's customer to it), or the one a
  caller found on the payment. A sale with nobody attached keeps ``customer_id`` None:
  a store sale for the store's reports, in no profile.
* totals are the order's ``net_amounts`` (sale minus returns) where Square gives them.
  A return order (made at the register for goods brought back; its ``returns`` name the
  source order) nets below zero and becomes ``returned``; an exchange nets positive and
  stays a sale. A sale whose completed refunds reach its total is ``refunded``; a
  partial refund keeps it a sale (the refunds stay in ``raw``).
* states: COMPLETED is a sale handed over (``fulfilled``), OPEN and DRAFT are not paid
  (``pending``), CANCELED is ``cancelled``.

Catalogue: an ITEM with its ITEM_VARIATIONs (``item_data.variations``) is a product; a
variation's id is what an order line's ``catalog_object_id`` names. A deleted or
archived item is archived; a variation is available unless it is not ``sellable`` or
sold out at every location it has an override for (``location_overrides[].sold_out``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from omnicrm import (
    Address,
    Consent,
    ConsentState,
    Customer,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductStatus,
    ProductVariant,
)
from omnicrm.errors import DataError

# ISO 4217 currencies whose minor unit is not two decimals (the rest have two).
_EXPONENTS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
}

_STATES = {
    "COMPLETED": OrderStatus.FULFILLED,
    "OPEN": OrderStatus.PENDING,
    "DRAFT": OrderStatus.PENDING,
    "CANCELED": OrderStatus.CANCELLED,
}
_DONE_REFUNDS = ("APPROVED", "COMPLETED")
_BIRTHDAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def exponent(currency: str) -> int:
    """Decimal places of ``currency``'s smallest unit (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


class _Reader:
    """Typed access to one payload, naming the record and field (never a value) in errors."""

    def __init__(self, kind: str, payload: Any, record_id: str | None = None, path: str = ""):
        if not isinstance(payload, Mapping):
            raise DataError(f"Square {kind} {record_id or '(no id)'} {path}: not an object")
        self.kind, self.payload, self.record_id, self.path = kind, payload, record_id, path

    def fail(self, name: str, why: str) -> NoReturn:
        raise DataError(
            f"Square {self.kind} {self.record_id or '(no id)'}: field {self.path + name!r} {why}"
        )

    def child(self, name: str) -> _Reader | None:
        value = self.payload.get(name)
        if value is None:
            return None
        return _Reader(self.kind, value, self.record_id, f"{self.path}{name}.")

    def children(self, name: str) -> list[_Reader]:
        value = self.payload.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, "is not a list")
        return [
            _Reader(self.kind, v, self.record_id, f"{self.path}{name}[{n}].")
            for n, v in enumerate(value)
        ]

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(name, "is required")
            return None
        if not isinstance(value, str):
            self.fail(name, f"is not a string ({type(value).__name__})")
        return value.strip()

    def time(self, name: str, *, required: bool = False) -> dt.datetime | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, "is not an RFC 3339 timestamp")
        if stamp.tzinfo is None:
            self.fail(name, "has no UTC offset")
        return stamp.astimezone(dt.UTC)

    def money(self, name: str) -> tuple[Decimal, str] | None:
        """A Money field as an exact amount and its currency; None if absent."""
        child = self.child(name)
        if child is None:
            return None
        amount = child.payload.get("amount")
        if amount is None:
            return None
        if isinstance(amount, bool) or not isinstance(amount, int):
            child.fail("amount", "is not an integer")
        currency = child.text("currency") or "JPY"
        if not re.fullmatch(r"[A-Z]{3}", currency):
            child.fail("currency", "is not an ISO 4217 code")
        return money(amount, currency), currency


def money(amount: int, currency: str) -> Decimal:
    """Square's ``amount`` (smallest unit) of ``currency`` as an exact Decimal."""
    return Decimal(amount).scaleb(-exponent(currency))


def _amount(r: _Reader, name: str) -> Decimal:
    found = r.money(name)
    return found[0] if found else Decimal(0)


# -- customers


def customer_from_square(payload: Mapping[str, Any], *, points: int | None = None) -> Customer:
    """Map a Square ``Customer`` to a Customer; ``points`` is its loyalty balance."""
    r = _Reader("customer", payload)
    record_id = r.text("id", required=True)
    r.record_id = record_id
    updated = r.time("updated_at", required=True)
    consents = []
    prefs = r.child("preferences")
    if prefs is not None and prefs.payload.get("email_unsubscribed") is True:
        # Only an unsubscription is a statement; not having unsubscribed is no opt-in.
        consents.append(Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_OUT, source="square"))
    return Customer(
        id=record_id,
        family_name=r.text("family_name"),
        given_name=r.text("given_name"),
        email=r.text("email_address"),
        phone=r.text("phone_number"),
        birth_date=_birthday(r),
        address=_address(r.child("address")),
        company=r.text("company_name"),
        member_code=r.text("reference_id"),
        consents=consents,
        points=points,
        created_at=r.time("created_at"),
        updated_at=updated,
        raw=dict(payload),
    )


def _birthday(r: _Reader) -> dt.date | None:
    value = r.text("birthday")
    if value is None:
        return None
    match = _BIRTHDAY.match(value)
    if match is None:
        r.fail("birthday", "is not YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups())
    if year == 0:  # Square's way of saying the year is unknown
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        r.fail("birthday", "is not a calendar date")


def _address(r: _Reader | None) -> Address | None:
    if r is None:
        return None
    line2 = " ".join(filter(None, (r.text("address_line_2"), r.text("address_line_3")))) or None
    fields = {
        "postal_code": r.text("postal_code"),
        "prefecture": r.text("administrative_district_level_1"),
        "city": " ".join(filter(None, (r.text("locality"), r.text("sublocality")))) or None,
        "line1": r.text("address_line_1"),
        "line2": line2,
    }
    if not any(fields.values()):
        return None
    country = r.text("country")
    return Address(**fields, country_code=country if country and len(country) == 2 else "JP")


# -- orders


def sale_customer(payload: Mapping[str, Any]) -> str | None:
    """Whom a sale belongs to: the order's customer, else a tender's, else None."""
    r = _Reader("order", payload, payload.get("id") if isinstance(payload, Mapping) else None)
    found = r.text("customer_id")
    if found:
        return found
    for tender in r.children("tenders"):
        found = tender.text("customer_id")
        if found:
            return found
    return None


def order_from_square(
    payload: Mapping[str, Any],
    *,
    locations: Mapping[str, str] | None = None,
    customer_id: str | None = None,
    points_earned: int | None = None,
    points_redeemed: int | None = None,
) -> Order:
    """Map a Square ``Order`` to an Order.

    ``locations`` maps location ids to store names; ``customer_id`` is the customer a
    caller found elsewhere (the payment) when neither the order nor its tenders have one;
    the points are Square Loyalty's events for the order.
    """
    r = _Reader("order", payload)
    record_id = r.text("id", required=True)
    r.record_id = record_id
    updated = r.time("updated_at", required=True)
    placed = r.time("created_at", required=True)
    assert updated is not None and placed is not None
    location_id = r.text("location_id")
    total_of = r.money("total_money")
    currency = total_of[1] if total_of else "JPY"
    net = r.child("net_amounts")
    has_returns = bool(r.children("returns"))
    totals = net if (net is not None and has_returns) else None
    total = _amount(totals, "total_money") if totals else (total_of[0] if total_of else Decimal(0))
    tax = _amount(totals, "tax_money") if totals else _amount(r, "total_tax_money")
    discount = _amount(totals, "discount_money") if totals else _amount(r, "total_discount_money")
    lines = [_line(item) for item in r.children("line_items")]
    returned = [_line(item, returned=True) for item in _return_items(r)]
    subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    subtotal -= sum((line.unit_price * line.quantity for line in returned), Decimal(0))
    state = (r.text("state") or "OPEN").upper()
    status = _STATES.get(state)
    if status is None:
        r.fail("state", "is not OPEN, COMPLETED, CANCELED or DRAFT")
    if status is not OrderStatus.CANCELLED:
        if has_returns and total < 0:
            status = OrderStatus.RETURNED
        elif total > 0 and _refunded(r, currency) >= total:
            status = OrderStatus.REFUNDED
    return Order(
        id=record_id,
        name=(r.text("ticket_name") or r.text("reference_id") or None),
        customer_id=sale_customer(payload) or customer_id,
        channel="pos",
        location=(locations or {}).get(location_id, location_id) if location_id else None,
        status=status,
        placed_at=placed,
        cancelled_at=updated if status is OrderStatus.CANCELLED else None,
        updated_at=updated,
        currency=currency,
        subtotal=subtotal,
        discount_total=discount,
        tax_total=tax,
        total=total,
        points_earned=points_earned,
        points_redeemed=points_redeemed,
        lines=lines + returned,
        raw=dict(payload),
    )


def _return_items(r: _Reader) -> list[_Reader]:
    return [item for ret in r.children("returns") for item in ret.children("return_line_items")]


def _refunded(r: _Reader, currency: str) -> Decimal:
    done = Decimal(0)
    for refund in r.children("refunds"):
        if (refund.text("status") or "").upper() in _DONE_REFUNDS:
            done += _amount(refund, "amount_money")
    return done


def _line(r: _Reader, *, returned: bool = False) -> OrderLine:
    quantity_text = r.text("quantity", required=True)
    assert quantity_text is not None
    try:
        quantity = Decimal(quantity_text)
    except InvalidOperation:
        r.fail("quantity", "is not a number")
    gross = _amount(r, "gross_return_money" if returned else "gross_sales_money")
    base = r.money("base_price_money")
    if quantity == quantity.to_integral_value() and quantity >= 0:
        count = int(quantity)
        unit = base[0] if base else (gross / count if count else Decimal(0))
    else:
        # Sold by weight or measure (0.35 kg): one line at the price of what was sold.
        count, unit = 1, gross
    name = r.text("name") or ("返品" if returned else "カスタム金額")  # Square's custom amount
    variation = r.text("variation_name")
    if variation and variation.lower() != "regular":
        name = f"{name} ({variation})"
    catalog = r.text("catalog_object_id")
    return OrderLine(
        variant_id=catalog,
        product_name=name,
        quantity=count,
        unit_price=unit,
        discount=_amount(r, "total_discount_money"),
    )


def points_of_events(
    events: Sequence[Mapping[str, Any]], reward_points: Mapping[str, int]
) -> tuple[int | None, int | None]:
    """(earned, redeemed) points of one order's Square Loyalty events; None where none.

    Earned: ACCUMULATE_POINTS and ACCUMULATE_PROMOTION_POINTS naming the order.
    Redeemed: the points of the rewards REDEEM_REWARD redeemed on it (``reward_points``,
    reward id to the points the reward cost; the event itself does not say).
    """
    earned: int | None = None
    redeemed: int | None = None
    for event in events:
        kind = event.get("type")
        if kind in ("ACCUMULATE_POINTS", "ACCUMULATE_PROMOTION_POINTS"):
            detail = event.get(kind.lower()) or {}
            earned = (earned or 0) + int(detail.get("points") or 0)
        elif kind == "REDEEM_REWARD":
            reward = (event.get("redeem_reward") or {}).get("reward_id")
            redeemed = (redeemed or 0) + abs(int(reward_points.get(str(reward), 0)))
    return earned, redeemed


# -- catalogue


def _sold_out(r: _Reader) -> bool:
    """Sold out wherever it is stocked: every location override that says either way
    says sold out (no override: Square's sold-out flag is off)."""
    flags = [o.payload.get("sold_out") for o in r.children("location_overrides")]
    said = [f for f in flags if isinstance(f, bool)]
    return bool(said) and all(said)


def product_from_square(
    payload: Mapping[str, Any], categories: Mapping[str, str] | None = None
) -> Product:
    """A catalogue ITEM (with its variations) as a :class:`Product`; ``categories`` names
    the CATEGORY objects by id (the product type)."""
    r = _Reader(
        "catalog item", payload, payload.get("id") if isinstance(payload, Mapping) else None
    )
    record_id = r.text("id", required=True)
    if r.text("type") != "ITEM":
        r.fail("type", "is not ITEM")
    item = r.child("item_data")
    if item is None:
        r.fail("item_data", "is required")
    gone = payload.get("is_deleted") is True or item.payload.get("is_archived") is True
    variants: list[ProductVariant] = []
    currency: str | None = None
    for v in item.children("variations"):
        data = v.child("item_variation_data")
        if data is None:
            v.fail("item_variation_data", "is required")
        price = data.money("price_money")
        if price is not None:
            currency = currency or price[1]
        sellable = data.payload.get("sellable")
        variants.append(
            ProductVariant(
                id=v.text("id", required=True),
                sku=data.text("sku"),
                title=data.text("name"),
                # A variable price is rung up at the register: no price to show.
                price=price[0] if price is not None else Decimal(0),
                available=not gone
                and price is not None
                and sellable is not False
                and v.payload.get("is_deleted") is not True
                and not _sold_out(data),
            )
        )
    names = categories or {}
    category = item.text("category_id")
    for entry in item.children("categories"):
        category = category or entry.text("id")
    images = item.payload.get("ecom_image_uris")
    updated = r.time("updated_at", required=True)
    assert updated is not None and record_id is not None
    return Product(
        id=record_id,
        title=item.text("name") or record_id,
        url=item.text("ecom_uri"),
        image_url=images[0]
        if isinstance(images, list) and images and isinstance(images[0], str)
        else None,
        product_type=names.get(category) if category else None,
        status=ProductStatus.ARCHIVED if gone else ProductStatus.ACTIVE,
        currency=currency or "JPY",
        variants=variants,
        updated_at=updated,
        raw=dict(payload),
    )
