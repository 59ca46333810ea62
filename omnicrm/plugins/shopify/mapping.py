"""Shopify payloads -> omnicrm records.

Two shapes reach this module: the Admin GraphQL API's nodes (what the sync reads, from
pages or from a bulk operation's JSONL) and the REST-shaped bodies of webhooks. Both map
to the same :class:`~omnicrm.Customer` and :class:`~omnicrm.Order`, with the payload kept
whole in ``raw``.

Ids are Shopify GIDs (``gid://shopify/Order/123``), never JSON numbers: a webhook's
``id`` may already have lost precision in whatever produced it, so ``admin_graphql_api_id``
is preferred wherever Shopify sends one. Money is read from ``shopMoney`` (the shop's own
currency) as :class:`~decimal.Decimal`, never through a float.

What cannot be read raises :class:`~omnicrm.errors.DataError` naming the record and the
field, so the shop owner can find it in Shopify's admin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

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

SOURCE = "shopify"

_M = TypeVar("_M", bound=BaseModel)

# ISO 3166-2:JP order: JP-01 is Hokkaido, JP-47 Okinawa. Shopify's English province
# names ("Tokyo") would never match the 東京都 that EC-CUBE or a POS writes, so a
# Japanese address's prefecture is taken from its code.
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県",
    "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県",
    "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県",
    "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県",
    "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県",
    "徳島県", "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県",
    "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip

# Marketing states (CustomerEmailMarketingState, CustomerSmsMarketingState; webhooks
# send the same words in lower case), each to what it means. Only SUBSCRIBED allows
# marketing. NOT_SUBSCRIBED is "never subscribed": the customer was never asked, which
# is not an opt-out (UNSUBSCRIBED is: subscribed once, then left).
_CONSENT_STATES = {
    "SUBSCRIBED": ConsentState.OPTED_IN,
    "NOT_SUBSCRIBED": ConsentState.UNKNOWN,  # never asked: no consent either way
    "UNSUBSCRIBED": ConsentState.OPTED_OUT,
    "INVALID": ConsentState.OPTED_OUT,  # the address bounced: never send to it
    "PENDING": ConsentState.PENDING,  # double opt-in not confirmed yet
    "REDACTED": ConsentState.UNKNOWN,  # erased on request: nothing left to tell
}

KANA_NAMESPACE = "custom"  # the metafields holding furigana (see queries.CUSTOMER_FIELDS)

# subtotal, discounts, shipping, tax, total: each a MoneyBag.
_GRAPHQL_TOTALS = (
    "subtotalPriceSet",
    "totalDiscountsSet",
    "totalShippingPriceSet",
    "totalTaxSet",
    "totalPriceSet",
)
_REST_TOTALS = (
    "subtotal_price_set",
    "total_discounts_set",
    "total_shipping_price_set",
    "total_tax_set",
    "total_price_set",
)

_CHANNELS = {"web": "web", "pos": "pos", "shopify_draft_order": "draft"}

# displayFinancialStatus -> status, before cancellation and fulfilment are considered.
_FINANCIAL = {
    "PAID": OrderStatus.PAID,
    "PARTIALLY_REFUNDED": OrderStatus.PAID,  # still a sale; the refunds are in raw
    "REFUNDED": OrderStatus.REFUNDED,
    "PENDING": OrderStatus.PENDING,
    "AUTHORIZED": OrderStatus.PENDING,
    "PARTIALLY_PAID": OrderStatus.PENDING,
    # No money was or can be taken: counting these as sales would inflate every RFM
    # score, and they are not waiting for anything either.
    "VOIDED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.CANCELLED,
}


class _Reader:
    """Typed access to one payload, naming the record and field in every error."""

    def __init__(self, kind: str, payload: Any, record_id: str | None = None, path: str = ""):
        # Parsed JSON is always a dict: the exact type check spares the slow ABC check.
        if type(payload) is not dict and not isinstance(payload, Mapping):
            where = f" {path.rstrip('.')}" if path else ""
            raise DataError(f"Shopify {kind} {record_id or '(no id)'}{where}: not an object")
        self.kind = kind
        self.payload: Mapping[str, Any] = payload
        self.record_id = record_id
        self.path = path

    def fail(self, name: str, why: str, value: Any = None) -> NoReturn:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataError(
            f"Shopify {self.kind} {self.record_id or '(no id)'}: field "
            f"{self.path + name!r} {why} (got {shown})"
        )

    def child(self, name: str) -> _Reader | None:
        value = self.payload.get(name)
        if value is None:
            return None
        if type(value) is not dict and not isinstance(value, Mapping):
            self.fail(name, "is not an object", value)
        return _Reader(self.kind, value, self.record_id, f"{self.path}{name}.")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(name, "is required", value)
            return None
        if not isinstance(value, str):
            self.fail(name, "is not a string", value)
        return value

    def gid(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is not None and not value.startswith("gid://shopify/"):
            self.fail(name, "is not a Shopify GID", value)
        return value

    def timestamp(self, name: str, *, required: bool = False) -> dt.datetime | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, "is not an ISO 8601 timestamp", value)
        if parsed.tzinfo is None:
            # Shopify always sends an offset; guessing one would shift cursors silently.
            self.fail(name, "has no UTC offset", value)
        return parsed

    def amount(self, name: str) -> Decimal | None:
        value = self.payload.get(name)
        if value is None:
            return None
        # Shopify's Decimal scalar is a string; an int is harmless, a float never is.
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(name, "is not a decimal amount", value)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            self.fail(name, "is not a decimal amount", value)
        if not amount.is_finite():
            self.fail(name, "is not a decimal amount", value)
        return amount

    def count(self, name: str) -> int:
        value = self.payload.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(name, "is not a whole number >= 0", value)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.payload.get(name)
        if value is None:
            return []
        if isinstance(value, str):  # REST sends tags as "a, b"
            return [t.strip() for t in value.split(",") if t.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, "is not a list of strings", value)
        return [v for v in value if v.strip()]

    def nodes(self, name: str) -> list[Any]:
        """A connection's nodes (``{"nodes": [...]}`` or ``{"edges": [{"node": ...}]}``)."""
        connection = self.payload.get(name)
        if connection is None:
            return []
        if isinstance(connection, list):
            return connection
        if not isinstance(connection, Mapping):
            self.fail(name, "is not a connection", connection)
        if isinstance(connection.get("nodes"), list):
            return list(connection["nodes"])
        edges = connection.get("edges")
        if isinstance(edges, list):
            return [e.get("node") if isinstance(e, Mapping) else e for e in edges]
        self.fail(name, "has neither nodes nor edges", connection)

    def build(self, model: type[_M], **fields: Any) -> _M:
        try:
            return model(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            self.fail(
                self.path.rstrip(".") or model.__name__,
                f"does not fit omnicrm's {model.__name__}.{where}: {first['msg']}",
                first.get("input"),
            )


def _money(r: _Reader, name: str) -> tuple[Decimal, str | None] | None:
    """``{shopMoney: {amount, currencyCode}}`` (GraphQL) or ``{shop_money: {...}}``."""
    # The common, well-formed GraphQL shape without building readers (a hot path:
    # five amounts an order, three a line); anything else takes the checked path below.
    raw = r.payload.get(name)
    if type(raw) is dict:
        shop_money = raw.get("shopMoney")
        if type(shop_money) is dict:
            value = shop_money.get("amount")
            if type(value) is str:
                try:
                    amount = Decimal(value)
                except InvalidOperation:
                    amount = None
                currency = shop_money.get("currencyCode")
                if amount is not None and amount.is_finite() and type(currency) is str:
                    return amount, currency
    bag = r.child(name)
    if bag is None:
        return None
    shop = bag.child("shopMoney") or bag.child("shop_money")
    if shop is None:
        bag.fail("shopMoney", "is missing")
    amount = shop.amount("amount")
    if amount is None:
        shop.fail("amount", "is required")
    currency = shop.text("currencyCode") or shop.text("currency_code")
    return amount, currency


def _amount(r: _Reader, name: str, default: Decimal | None = None) -> Decimal:
    money = _money(r, name)
    if money is None:
        if default is None:
            r.fail(name, "is required")
        return default
    return money[0]


def prefecture(province: str | None, code: str | None, country: str | None) -> str | None:
    """The prefecture as Japanese shops write it (東京都) when the address is in Japan."""
    if country in (None, "JP") and code:
        number = code.upper().removeprefix("JP-")
        if number.isdigit() and 1 <= int(number) <= len(PREFECTURES):
            return PREFECTURES[int(number) - 1]
    return province


def _address(r: _Reader | None, *, rest: bool = False) -> tuple[Address | None, str | None]:
    """The address and its company (omnicrm keeps the company on the customer)."""
    if r is None:
        return None, None
    country = r.text("country_code" if rest else "countryCodeV2")
    code = r.text("province_code" if rest else "provinceCode")
    parts = {
        "postal_code": r.text("zip"),
        "prefecture": prefecture(r.text("province"), code, country),
        "city": r.text("city"),
        "line1": r.text("address1"),
        "line2": r.text("address2"),
    }
    address = None
    if any(parts.values()):
        address = r.build(Address, **parts, country_code=country or "JP")
    return address, r.text("company")


def _consent(r: _Reader | None, medium: Medium, *, rest: bool = False) -> Consent | None:
    if r is None:  # no email (or no phone): nothing to consent to
        return None
    state_name = "state" if rest else "marketingState"
    state = r.text(state_name)
    if state is None:
        return None
    if state.upper() not in _CONSENT_STATES:
        r.fail(state_name, f"is not one of {', '.join(_CONSENT_STATES)}", state)
    level = r.text("opt_in_level" if rest else "marketingOptInLevel")
    return r.build(
        Consent,
        medium=medium,
        state=_CONSENT_STATES[state.upper()],
        updated_at=r.timestamp("consent_updated_at" if rest else "consentUpdatedAt"),
        source=SOURCE,
        opt_in_level=level.lower() if level else None,
    )


def _kana(r: _Reader, name: str, *, rest: bool) -> str | None:
    """A furigana reading from the customer's metafields (namespace ``custom``), where
    Japanese shops keep it: Shopify has no field of its own for it. GraphQL reads name
    it by alias; a webhook lists the metafields of the namespaces it subscribed to."""
    if not rest:
        found = r.child(name)
        return found.text("value") if found else None
    for meta in r.payload.get("metafields") or []:
        if (
            isinstance(meta, Mapping)
            and meta.get("namespace") == KANA_NAMESPACE
            and meta.get("key") == name
            and isinstance(meta.get("value"), str)
        ):
            return str(meta["value"]).strip() or None
    return None


def _customer(r: _Reader, record_id: str, *, rest: bool) -> Customer:
    address_reader = r.child("default_address" if rest else "defaultAddress")
    address, company = _address(address_reader, rest=rest)
    consents = [
        c
        for c in (
            _consent(
                r.child("email_marketing_consent" if rest else "emailMarketingConsent"),
                Medium.EMAIL,
                rest=rest,
            ),
            _consent(
                r.child("sms_marketing_consent" if rest else "smsMarketingConsent"),
                Medium.SMS,
                rest=rest,
            ),
        )
        if c is not None
    ]
    # Shopify's customer phone is the one used for SMS; many Japanese customers give a
    # phone only with their address, and identity resolution needs one to match on.
    phone = r.text("phone") or (address_reader.text("phone") if address_reader else None)
    created = "created_at" if rest else "createdAt"
    updated = "updated_at" if rest else "updatedAt"
    return r.build(
        Customer,
        id=record_id,
        family_name=r.text("last_name" if rest else "lastName"),
        given_name=r.text("first_name" if rest else "firstName"),
        family_name_kana=_kana(r, "family_name_kana" if rest else "familyNameKana", rest=rest),
        given_name_kana=_kana(r, "given_name_kana" if rest else "givenNameKana", rest=rest),
        email=r.text("email"),
        phone=phone,
        address=address,
        company=company,
        tags=r.strings("tags"),
        consents=consents,
        created_at=r.timestamp(created),
        updated_at=r.timestamp(updated, required=True),
        raw=dict(r.payload),
    )


def customer_from_node(node: Mapping[str, Any]) -> Customer:
    """Map a GraphQL ``Customer`` node (fragment ``CustomerFields``) to a Customer."""
    r = _Reader("customer", node)
    record_id = r.gid("id", required=True)
    assert record_id is not None
    r.record_id = record_id
    return _customer(r, record_id, rest=False)


def order_status(financial: str | None, fulfillment: str | None, cancelled: bool) -> OrderStatus:
    """omnicrm's status from Shopify's financial and fulfilment status (any case)."""
    if cancelled:
        return OrderStatus.CANCELLED
    status = _FINANCIAL.get((financial or "PENDING").upper(), OrderStatus.PENDING)
    fulfilled = (fulfillment or "").upper()
    if status is OrderStatus.PAID and fulfilled == "FULFILLED":
        return OrderStatus.FULFILLED
    if status is OrderStatus.PAID and fulfilled == "RESTOCKED":
        return OrderStatus.RETURNED  # the goods came back; no refund (yet)
    return status


def channel(source_name: str | None) -> str:
    """omnicrm's channel from ``sourceName``: web, pos, draft, or other (an app, the API)."""
    return _CHANNELS.get(source_name or "", "other")


def _line(r: _Reader, *, rest: bool) -> OrderLine:
    if rest:
        product = r.payload.get("product_id")
        variant = r.payload.get("variant_id")
        product_id = _rest_gid("Product", product, r, "product_id")
        variant_id = _rest_gid("ProductVariant", variant, r, "variant_id")
        unit = _amount(r, "price_set")
        discount = _amount(r, "total_discount_set", Decimal(0))
    else:
        product_r, variant_r = r.child("product"), r.child("variant")
        product_id = product_r.gid("id") if product_r else None
        variant_id = variant_r.gid("id") if variant_r else None
        unit = _amount(r, "originalUnitPriceSet")
        discount = _amount(r, "totalDiscountSet", Decimal(0))
    return r.build(
        OrderLine,
        sku=r.text("sku"),
        product_id=product_id,
        variant_id=variant_id,
        product_name=r.text("name", required=True),
        quantity=r.count("quantity"),
        unit_price=unit,
        discount=discount,
    )


def _rest_gid(kind: str, value: Any, r: _Reader, name: str) -> str | None:
    # REST webhooks give only a number here. Python parses JSON integers exactly, so a
    # body Shopify sent is safe; a float means something upstream already rounded it.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        r.fail(name, "is not an integer id", value)
    return f"gid://shopify/{kind}/{value}"


def _order(r: _Reader, record_id: str, lines: Sequence[Any], *, rest: bool) -> Order:
    line_records = [
        _line(_Reader("order", line, record_id, f"lineItems[{i}]."), rest=rest)
        for i, line in enumerate(lines)
    ]
    names = _REST_TOTALS if rest else _GRAPHQL_TOTALS
    total = _money(r, names[4])
    if total is None:
        r.fail(names[4], "is required")
    subtotal = _money(r, names[0])
    if subtotal is None:
        # Shopify leaves it null on some imported orders: fall back to the lines.
        subtotal_amount = sum(
            (ln.unit_price * ln.quantity - ln.discount for ln in line_records), Decimal(0)
        )
    else:
        subtotal_amount = subtotal[0]
    currency = total[1] or r.text("currency" if rest else "currencyCode") or "JPY"

    if rest:
        customer = r.child("customer")
        customer_id = customer.gid("admin_graphql_api_id") if customer else None
        financial, fulfillment = r.text("financial_status"), r.text("fulfillment_status")
        source, location = r.text("source_name"), None  # REST names only location_id
        stamps = ("processed_at", "created_at", "cancelled_at", "updated_at")
    else:
        customer = r.child("customer")
        customer_id = customer.gid("id") if customer else None
        financial = r.text("displayFinancialStatus")
        fulfillment = r.text("displayFulfillmentStatus")
        retail = r.child("retailLocation")
        source, location = r.text("sourceName"), retail.text("name") if retail else None
        stamps = ("processedAt", "createdAt", "cancelledAt", "updatedAt")

    cancelled_at = r.timestamp(stamps[2])
    placed_at = r.timestamp(stamps[0]) or r.timestamp(stamps[1], required=True)
    return r.build(
        Order,
        id=record_id,
        name=r.text("name"),
        customer_id=customer_id,
        channel=channel(source),
        location=location,
        status=order_status(financial, fulfillment, cancelled_at is not None),
        placed_at=placed_at,
        cancelled_at=cancelled_at,
        updated_at=r.timestamp(stamps[3], required=True),
        currency=currency,
        subtotal=subtotal_amount,
        discount_total=_amount(r, names[1], Decimal(0)),
        shipping_total=_amount(r, names[2], Decimal(0)),
        tax_total=_amount(r, names[3], Decimal(0)),
        total=total[0],
        discount_codes=_discount_codes(r, rest=rest),
        lines=line_records,
        raw=dict(r.payload),
    )


def _discount_codes(r: _Reader, *, rest: bool) -> list[str]:
    """The discount codes the order used: GraphQL's ``discountCodes`` (strings), REST's
    ``discount_codes`` (objects with a ``code``)."""
    if not rest:
        return r.strings("discountCodes")
    value = r.payload.get("discount_codes") or []
    if not isinstance(value, list):
        r.fail("discount_codes", "is not a list", value)
    codes = [item.get("code") for item in value if isinstance(item, Mapping)]
    return [c for c in codes if isinstance(c, str) and c.strip()]


def order_from_node(
    node: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None = None
) -> Order:
    """Map a GraphQL ``Order`` node (fragment ``OrderFields``) to an Order.

    ``lines`` are its ``LineItem`` nodes when they came apart from it (a bulk operation's
    JSONL, or pages of ``ORDER_LINE_ITEMS``); by default they are read from
    ``node["lineItems"]``, which must then hold all of them.
    """
    r = _Reader("order", node)
    record_id = r.gid("id", required=True)
    assert record_id is not None
    r.record_id = record_id
    return _order(r, record_id, r.nodes("lineItems") if lines is None else lines, rest=False)


# -- products

_PRODUCT_STATUSES = {
    "ACTIVE": ProductStatus.ACTIVE,
    "DRAFT": ProductStatus.DRAFT,
    "ARCHIVED": ProductStatus.ARCHIVED,
}


def _variant(r: _Reader) -> ProductVariant:
    record_id = r.gid("id", required=True)
    price = r.amount("price")
    if price is None:
        r.fail("price", "is required")
    available = r.payload.get("availableForSale")
    if not isinstance(available, bool):
        r.fail("availableForSale", "is not a boolean", available)
    inventory = r.payload.get("inventoryQuantity")
    if inventory is not None and (isinstance(inventory, bool) or not isinstance(inventory, int)):
        r.fail("inventoryQuantity", "is not a whole number", inventory)
    return r.build(
        ProductVariant,
        id=record_id,
        sku=r.text("sku"),
        title=r.text("title"),
        price=price,
        compare_at_price=r.amount("compareAtPrice"),
        available=available,
        # Negative when oversold: nothing is left, whatever the number says.
        inventory=None if inventory is None else max(inventory, 0),
    )


def product_from_node(
    node: Mapping[str, Any],
    domain: str,
    variants: Sequence[Mapping[str, Any]] | None = None,
    currency: str = "JPY",
) -> Product:
    """Map a GraphQL ``Product`` node (fragment ``ProductFields``) to a Product.

    ``variants`` are its ``ProductVariant`` nodes when they came apart from it (pages
    of ``PRODUCT_VARIANTS``); by default they are read from ``node["variants"]``. The
    link is the online store's page (``onlineStoreUrl``) when the product is published
    there, else ``https://DOMAIN/products/HANDLE``, where the shop's domain redirects
    to it once it is. Prices are in the shop's ``currency`` (Shopify's ``Money`` carries
    none).
    """
    r = _Reader("product", node)
    record_id = r.gid("id", required=True)
    assert record_id is not None
    r.record_id = record_id
    status = r.text("status") or "ACTIVE"
    if status not in _PRODUCT_STATUSES:
        r.fail("status", "is not a known product status", status)
    handle = r.text("handle")
    url = r.text("onlineStoreUrl") or (f"https://{domain}/products/{handle}" if handle else None)
    items = r.nodes("variants") if variants is None else variants
    return r.build(
        Product,
        id=record_id,
        title=r.text("title", required=True),
        handle=handle,
        url=url,
        product_type=r.text("productType"),
        vendor=r.text("vendor"),
        tags=r.strings("tags"),
        status=_PRODUCT_STATUSES[status],
        currency=currency,
        variants=[
            _variant(_Reader("product", v, record_id, f"variants[{i}]."))
            for i, v in enumerate(items)
        ],
        created_at=r.timestamp("createdAt"),
        updated_at=r.timestamp("updatedAt", required=True),
        raw=dict(r.payload),
    )


# -- webhooks (REST-shaped bodies)


def _webhook_id(r: _Reader, kind: str) -> str:
    gid = r.gid("admin_graphql_api_id")
    if gid is not None:
        return gid
    return _rest_gid(kind, r.payload.get("id"), r, "id") or r.fail("id", "is required")


def customer_from_webhook(body: Mapping[str, Any]) -> Customer:
    """Map a ``customers/create`` or ``customers/update`` webhook body to a Customer."""
    r = _Reader("customer", body)
    record_id = _webhook_id(r, "Customer")
    r.record_id = record_id
    return _customer(r, record_id, rest=True)


def order_from_webhook(body: Mapping[str, Any]) -> Order:
    """Map an ``orders/create``, ``updated``, ``paid`` or ``cancelled`` body to an Order."""
    r = _Reader("order", body)
    record_id = _webhook_id(r, "Order")
    r.record_id = record_id
    lines = body.get("line_items") or []
    if not isinstance(lines, list):
        r.fail("line_items", "is not a list", lines)
    return _order(r, record_id, lines, rest=True)


def deleted_customer_id(body: Mapping[str, Any]) -> str:
    """The GID of the customer a ``customers/delete`` webhook names."""
    return _webhook_id(_Reader("customer", body), "Customer")


def deleted_order_id(body: Mapping[str, Any]) -> str:
    """The GID of the order an ``orders/delete`` webhook names (it sends only ``id``)."""
    return _webhook_id(_Reader("order", body), "Order")


@dataclass(frozen=True)
class CustomerMerge:
    """``customers/merge``: ``deleted_id`` was merged into ``kept_id`` (if it succeeded)."""

    kept_id: str
    deleted_id: str
    status: str
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "completed"


def customer_merge_from_webhook(body: Mapping[str, Any]) -> CustomerMerge:
    """Read a ``customers/merge`` body."""
    r = _Reader("customer merge", body)
    kept = r.gid("admin_graphql_api_customer_kept_id", required=True)
    deleted = r.gid("admin_graphql_api_customer_deleted_id", required=True)
    assert kept is not None and deleted is not None
    errors = body.get("errors") or []
    messages = [str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors]
    return CustomerMerge(kept, deleted, r.text("status") or "unknown", messages)


@dataclass(frozen=True)
class PurchasingSummary:
    """``customers/purchasing_summary``: a customer's order count and spend changed."""

    customer_id: str
    number_of_orders: int
    amount_spent: Decimal
    currency: str | None
    last_order_id: str | None
    occurred_at: dt.datetime


def purchasing_summary_from_webhook(body: Mapping[str, Any]) -> PurchasingSummary:
    """Read a ``customers/purchasing_summary`` body (already GraphQL-shaped)."""
    r = _Reader("customer", body)
    customer_id = r.gid("customerId", required=True)
    assert customer_id is not None
    r.record_id = customer_id
    spent = r.child("amountSpent")
    if spent is None:
        r.fail("amountSpent", "is required")
    amount = spent.amount("amount")
    occurred = r.timestamp("occurredAt", required=True)
    assert occurred is not None
    return PurchasingSummary(
        customer_id=customer_id,
        number_of_orders=r.count("numberOfOrders"),
        amount_spent=amount if amount is not None else spent.fail("amount", "is required"),
        currency=spent.text("currencyCode"),
        last_order_id=r.gid("lastOrderId"),
        occurred_at=occurred,
    )


@dataclass(frozen=True)
class PrivacyRequest:
    """``customers/redact`` or ``customers/data_request``: whose data, which orders."""

    shop_domain: str
    customer_id: str
    email: str | None
    phone: str | None
    order_ids: list[str]
    data_request_id: str | None = None


def privacy_request_from_webhook(body: Mapping[str, Any]) -> PrivacyRequest:
    """Read a ``customers/redact`` or ``customers/data_request`` body.

    These mandatory compliance webhooks carry bare numeric ids; they are turned into
    GIDs so they match the records the sync stored.
    """
    r = _Reader("privacy request", body)
    customer = r.child("customer")
    if customer is None:
        r.fail("customer", "is required")
    customer_id = _rest_gid("Customer", customer.payload.get("id"), customer, "id")
    if customer_id is None:
        customer.fail("id", "is required")
    orders = body.get("orders_to_redact", body.get("orders_requested")) or []
    if not isinstance(orders, list):
        r.fail("orders_to_redact", "is not a list", orders)
    order_ids = [_rest_gid("Order", o, r, "orders") or "" for o in orders]
    request = r.child("data_request")
    request_id = request.payload.get("id") if request else None
    return PrivacyRequest(
        shop_domain=r.text("shop_domain", required=True) or "",
        customer_id=customer_id,
        email=customer.text("email"),
        phone=customer.text("phone"),
        order_ids=order_ids,
        data_request_id=None if request_id is None else str(request_id),
    )
