"""EC-CUBE 4's customers (会員) and orders (受注) as omnicrm records.

Times arrive as ISO 8601 with the shop's offset (``2026-11-30T20:15:00+09:00``); one
without an offset is taken in the shop's zone. A birth date (``birth``, a DateTime at
local midnight) is a calendar date in Japan: it is read in the shop's zone, never
converted to UTC first (``1990-05-12T00:00:00+09:00`` is the 12th, not the 11th).

Customers: a withdrawn member (status 3, 退会) keeps the record but EC-CUBE replaced
the email with a dummy address (``...@dummy.dummy``): the record gets ``withdrawn_at``
(its update date, when the withdrawal was saved) and no email, so the dummy address
is never a match key and the member never becomes a new person. EC-CUBE 4 keeps no
mail-magazine consent in the core (a plugin adds it), so no consent is claimed.

Orders: only order items of type 1 (商品) become lines, priced tax included (``price``
+ ``tax`` per unit, as the subtotal sums them); delivery fees (送料), charges (手数料),
discounts (割引), tax (税) and point lines stay on the order's totals (``subtotal``,
``delivery_fee_total``, ``charge``, ``discount``, ``tax``, ``payment_total``). Points used
and added become ``points_redeemed`` and ``points_earned``. Unfinished checkouts (status
7, 8) are never asked for; one that comes anyway (a webhook) maps to None.

Products (商品): each product class (商品規格, ``ProductClass``) is a variant; its SKU is
the class's ``code`` (商品コード). ``price02`` (販売価格) is before tax, so the price is
taxed by the class's own tax rule (商品別税率, the reduced 8% of food) or else the
shop's rate (the connection's ``tax_rate``), rounded by the rule's 丸め規則 (四捨五入 by
default), as the storefront shows it. A class can be bought when it is ``visible`` and
in stock (``stock`` > 0, or ``stock_unlimited``); a product is on sale only when its
status is 公開 (非公開 is a draft, 廃止 archived). The class-less class EC-CUBE keeps
hidden once a product has classes (no code, no 規格) is left out. A product's update
time is the latest of its own and its classes' (a sale stamps only the class).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from omnicrm import Checkout, Customer, Order, Product
from omnicrm.errors import DataError
from omnicrm.plugins.ec_cube import masters

JST = zoneinfo.ZoneInfo("Asia/Tokyo")


class _Reader:
    """Reads one node's fields, naming the record and the field in every error."""

    def __init__(self, kind: str, node: Any, zone: dt.tzinfo) -> None:
        if not isinstance(node, Mapping):
            raise DataError(f"EC-CUBE {kind}: not an object")
        self.node = node
        self.zone = zone
        self.where = f"EC-CUBE {kind} {str(node.get('id') or '(no id)')[:40]}"

    def fail(self, field: str, problem: str) -> DataError:
        return DataError(f"{self.where}: {field} {problem}")

    def text(self, field: str, node: Mapping[str, Any] | None = None) -> str | None:
        value = (self.node if node is None else node).get(field)
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(field, "is not text")
        return str(value).strip() or None

    def required(self, field: str) -> str:
        value = self.text(field)
        if value is None:
            raise self.fail(field, "is missing")
        return value

    def time(self, field: str, node: Mapping[str, Any] | None = None) -> dt.datetime | None:
        raw = self.text(field, node)
        if raw is None:
            return None
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise self.fail(field, "is not an ISO 8601 date-time") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=self.zone)

    def required_time(self, field: str) -> dt.datetime:
        value = self.time(field)
        if value is None:
            raise self.fail(field, "is missing")
        return value

    def date(self, field: str) -> dt.date | None:
        value = self.time(field)
        # The calendar date where the shop is: never via UTC (it would move a day).
        return value.astimezone(self.zone).date() if value is not None else None

    def money(self, field: str, node: Mapping[str, Any] | None = None) -> Decimal:
        raw = (self.node if node is None else node).get(field)
        if raw is None:
            return Decimal(0)
        if isinstance(raw, bool):
            raise self.fail(field, "is not a number")
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise self.fail(field, "is not a number") from None
        if not value.is_finite():
            raise self.fail(field, "is not a finite number")
        return value

    def whole(self, field: str, node: Mapping[str, Any] | None = None) -> int:
        value = self.money(field, node)
        if value != value.to_integral_value():
            raise self.fail(field, "is not a whole number")
        return int(value)

    def master(self, field: str) -> str | None:
        """The id of a master object (``{id name}``) under ``field``."""
        value = self.node.get(field)
        if value is None:
            return None
        if not isinstance(value, Mapping) or value.get("id") is None:
            raise self.fail(field, "is not a master object with an id")
        return str(value["id"])


def _validated(reader: _Reader, model: type[Any], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise DataError(f"{reader.where}: {problems}") from None


def customer_from_node(node: Any, zone: dt.tzinfo = JST) -> Customer:
    """One ``Customer`` node as an omnicrm customer."""
    r = _Reader("customer", node, zone)
    status = r.master("Status")
    withdrawn = masters.is_withdrawn(status)
    updated = r.required_time("update_date")
    pref_id = r.master("Pref")
    pref = masters.prefecture(pref_id) if pref_id is not None else None
    postal, addr01, addr02 = r.text("postal_code"), r.text("addr01"), r.text("addr02")
    address = (
        {"postal_code": postal, "prefecture": pref, "city": addr01, "line1": addr02}
        if any((postal, pref, addr01, addr02))
        else None
    )
    tags = []
    if status is not None and not withdrawn and status != "2":
        tags.append(masters.customer_status(status) or f"会員種別{status}")
    job = masters.job(r.master("Job"))
    if job:
        tags.append(f"職業:{job}")
    point = r.node.get("point")
    values: dict[str, Any] = {
        "id": r.required("id"),
        "family_name": r.text("name01"),
        "given_name": r.text("name02"),
        "family_name_kana": r.text("kana01"),
        "given_name_kana": r.text("kana02"),
        # A withdrawn member's address is EC-CUBE's dummy: never a key.
        "email": None if withdrawn else r.text("email"),
        "phone": r.text("phone_number"),
        "birth_date": r.date("birth"),
        "gender": masters.gender(r.master("Sex")),
        "address": address,
        "company": r.text("company_name"),
        "tags": tags,
        "points": r.whole("point") if point is not None else None,
        "withdrawn_at": updated if withdrawn else None,
        "created_at": r.time("create_date"),
        "updated_at": updated,
        "raw": dict(r.node),
    }
    return _validated(r, Customer, values)  # type: ignore[no-any-return]


def _product_lines(r: _Reader) -> list[dict[str, Any]]:
    """The node's ``OrderItems`` that are products, as order lines: 送料, 手数料, 割引,
    税 and ポイント lines are in the order's totals."""
    items = r.node.get("OrderItems") or []
    if not isinstance(items, list):
        raise r.fail("OrderItems", "is not a list")
    lines = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise r.fail(f"OrderItems[{n}]", "is not an object")
        kind = item.get("OrderItemType")
        if not masters.is_product_line(kind.get("id") if isinstance(kind, Mapping) else None):
            continue
        product = item.get("Product")
        variant = item.get("ProductClass")
        name = r.text("product_name", item) or "(no name)"
        options = [
            v
            for v in (r.text("class_category_name1", item), r.text("class_category_name2", item))
            if v
        ]
        lines.append(
            {
                "sku": (variant.get("code") if isinstance(variant, Mapping) else None)
                or r.text("product_code", item),
                "product_id": str(product["id"]) if isinstance(product, Mapping) else None,
                "variant_id": str(variant["id"]) if isinstance(variant, Mapping) else None,
                "product_name": f"{name} ({' / '.join(options)})" if options else name,
                "quantity": r.whole("quantity", item),
                "unit_price": r.money("price", item) + r.money("tax", item),
            }
        )
    return lines


def order_from_node(node: Any, zone: dt.tzinfo = JST) -> Order | None:
    """One ``Order`` node as an omnicrm order; None for an unfinished checkout."""
    r = _Reader("order", node, zone)
    status_id = r.master("OrderStatus")
    if status_id is None:
        raise r.fail("OrderStatus", "is missing")
    if int(status_id) in masters.UNFINISHED:
        return None
    try:
        status = masters.order_status(status_id)
    except KeyError:
        raise r.fail(
            "OrderStatus", f"has an id EC-CUBE does not define ({status_id[:10]})"
        ) from None
    updated = r.required_time("update_date")
    customer = r.node.get("Customer")
    customer_id = None
    if isinstance(customer, Mapping) and customer.get("id") is not None:
        customer_id = str(customer["id"])
    lines = _product_lines(r)
    placed = r.time("order_date") or r.required_time("create_date")
    values: dict[str, Any] = {
        "id": r.required("id"),
        "name": r.text("order_no"),
        "customer_id": customer_id,
        "channel": "web",
        "status": status,
        "placed_at": placed,
        "cancelled_at": updated if status_id == "3" else None,
        "updated_at": updated,
        "currency": r.text("currency_code") or "JPY",
        "subtotal": r.money("subtotal"),
        "discount_total": r.money("discount"),
        "shipping_total": r.money("delivery_fee_total"),
        "tax_total": r.money("tax"),
        "total": r.money("payment_total"),
        "points_earned": r.whole("add_point"),
        "points_redeemed": r.whole("use_point"),
        "lines": lines,
        "raw": dict(r.node),
    }
    return _validated(r, Order, values)  # type: ignore[no-any-return]


_ROUNDING = {1: ROUND_HALF_UP, 2: ROUND_FLOOR, 3: ROUND_CEILING}


def taxed(price: Decimal, rate: Decimal, rounding: int | None, adjust: Decimal) -> Decimal:
    """A price before tax with its tax added, the tax rounded to the yen as EC-CUBE
    rounds it (``rounding`` a 丸め規則 id; 四捨五入 when None or unknown)."""
    tax = (price * rate / 100).quantize(Decimal(1), _ROUNDING.get(rounding or 1, ROUND_HALF_UP))
    total = price + tax + adjust
    # 1800.0 from the API's Float is 1800: whole yen stay whole.
    return total.quantize(Decimal(1)) if total == total.to_integral_value() else total


def _named(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"].strip() or None
    return None


def _variant(
    r: _Reader, n: int, item: Any, tax_rate: Decimal, several: bool
) -> dict[str, Any] | None:
    field = f"ProductClasses[{n}]"
    if not isinstance(item, Mapping):
        raise r.fail(field, "is not an object")
    options = [
        v for v in (_named(item.get("ClassCategory1")), _named(item.get("ClassCategory2"))) if v
    ]
    code = r.text("code", item)
    visible = item.get("visible")
    if not isinstance(visible, bool):
        raise r.fail(f"{field}.visible", "is not true or false")
    if several and not visible and not options and code is None:
        return None  # the hidden class-less class of a product with classes
    if item.get("price02") is None:
        raise r.fail(f"{field}.price02", "is missing")
    rule = item.get("TaxRule")
    rate, rounding, adjust = tax_rate, None, Decimal(0)
    if isinstance(rule, Mapping):
        rate = r.money("tax_rate", rule)
        adjust = r.money("tax_adjust", rule)
        kind = rule.get("RoundingType")
        rounding = (
            int(kind["id"]) if isinstance(kind, Mapping) and str(kind.get("id")).isdigit() else None
        )
    unlimited = item.get("stock_unlimited") is True
    stock = None if unlimited or item.get("stock") is None else r.whole("stock", item)
    regular = item.get("price01")
    ident = r.text("id", item)
    if ident is None:
        raise r.fail(f"{field}.id", "is missing")
    return {
        "id": ident,
        "sku": code,
        "title": " / ".join(options) or None,
        "price": taxed(r.money("price02", item), rate, rounding, adjust),
        "compare_at_price": taxed(r.money("price01", item), rate, rounding, adjust)
        if regular is not None
        else None,
        "available": visible and (unlimited or (stock is not None and stock > 0)),
        "inventory": None if stock is None else max(stock, 0),
    }


def product_from_node(
    node: Any, zone: dt.tzinfo = JST, *, base: str, tax_rate: Decimal = Decimal(10)
) -> Product:
    """One ``Product`` node as an omnicrm product with a variant per product class;
    ``base`` is the shop's URL (links to ``/products/detail/ID`` and uploaded images)."""
    r = _Reader("product", node, zone)
    ident = r.required("id")
    classes = r.node.get("ProductClasses") or []
    if not isinstance(classes, list):
        raise r.fail("ProductClasses", "is not a list")
    several = len(classes) > 1
    variants = [v for n, c in enumerate(classes) if (v := _variant(r, n, c, tax_rate, several))]
    # A sale stamps the class it took stock from, not the product: the later of the two.
    changed = [t for c in classes if isinstance(c, Mapping) and (t := r.time("update_date", c))]
    images = r.node.get("ProductImage") or []
    named = (
        [i for i in images if isinstance(i, Mapping) and r.text("file_name", i)]
        if isinstance(images, list)
        else []
    )
    first = min(named, key=lambda i: i.get("sort_no") or 0) if named else None
    tags = r.node.get("ProductTag") or []
    currency = next(
        (
            c.get("currency_code")
            for c in classes
            if isinstance(c, Mapping) and c.get("currency_code")
        ),
        None,
    )
    values: dict[str, Any] = {
        "id": ident,
        "title": r.required("name"),
        "url": f"{base}/products/detail/{ident}",
        "image_url": f"{base}/html/upload/save_image/{first['file_name']}" if first else None,
        "tags": [t for t in (_named(t.get("Tag")) for t in tags if isinstance(t, Mapping)) if t]
        if isinstance(tags, list)
        else [],
        "status": masters.product_status(r.master("Status")),
        "currency": currency or "JPY",
        "variants": variants,
        "created_at": r.time("create_date"),
        "updated_at": max([r.required_time("update_date"), *changed]),
        "raw": dict(r.node),
    }
    return _validated(r, Product, values)  # type: ignore[no-any-return]


def checkout_from_node(node: Any, zone: dt.tzinfo = JST) -> Checkout:
    """One unfinished order (status 7 決済処理中, 8 購入処理中: a cart the customer took
    into the shopping flow and left) as an abandoned checkout. Once completed, the same
    order becomes a sale in the orders stream, which clears the abandonment."""
    r = _Reader("checkout", node, zone)
    status = r.master("OrderStatus")
    if status is None or not status.isdigit() or int(status) not in masters.UNFINISHED:
        raise r.fail("OrderStatus", "is not an unfinished checkout (7, 8)")
    customer = r.node.get("Customer")
    lines = _product_lines(r)
    values: dict[str, Any] = {
        "id": r.required("id"),
        "customer_id": str(customer["id"])
        if isinstance(customer, Mapping) and customer.get("id") is not None
        else None,
        "created_at": r.required_time("create_date"),
        "updated_at": r.required_time("update_date"),
        "currency": r.text("currency_code") or "JPY",
        "total": r.money("payment_total"),
        "item_count": sum(line["quantity"] for line in lines),
        "lines": lines,
        "raw": dict(r.node),
    }
    return _validated(r, Checkout, values)  # type: ignore[no-any-return]
