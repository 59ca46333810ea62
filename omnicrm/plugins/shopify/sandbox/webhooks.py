"""Webhook payloads in Shopify's REST shape, and their signed delivery.

The payloads have exactly the keys of Shopify's samples for the topic
(``../shared/reference/shopify/webhooks/2026-04``; a test compares them). Ids are JSON
numbers, as in Shopify's REST payloads (with full precision here; the samples lost
theirs in JavaScript), and ``admin_graphql_api_id`` carries the GID. Times are in the
shop's zone (+09:00); yen amounts are strings without decimals.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import uuid
from typing import Any

from .data import (
    EPOCH,
    LINE_BASE,
    LOCATION_BASE,
    REFUND_BASE,
    SHOP_ID,
    STRIDE,
    OrderCore,
    ShopData,
    customer_number,
    order_number,
)

JST = dt.timezone(dt.timedelta(hours=9))
TOPICS = (
    "customers/create",
    "customers/update",
    "customers/delete",
    "orders/create",
    "orders/updated",
    "orders/delete",
    "customers/redact",
    "shop/redact",
    "customers/data_request",
)
_APP_IDS = {"web": 580111, "pos": 129785, "shopify_draft_order": 1354745}


def local_time(sec: int | None) -> str | None:
    """Internal seconds as the shop's local time with offset, like REST payloads."""
    if sec is None:
        return None
    return dt.datetime.fromtimestamp(EPOCH + sec, JST).isoformat()


def _iso_to_local(value: str | None) -> str | None:
    if value is None:
        return None
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.astimezone(JST).isoformat()


def _yen(amount: int) -> str:
    return str(amount)


def _money_set(amount: int) -> dict[str, dict[str, str]]:
    money = {"amount": _yen(amount), "currency_code": "JPY"}
    return {"shop_money": money, "presentment_money": dict(money)}


def _number(value: str) -> int:
    return int(value.rsplit("/", 1)[1])


def sign(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 of the HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _address(address: dict[str, Any] | None, *, customer: int | None = None) -> Any:
    if address is None:
        return None
    name = f"{address['lastName']} {address['firstName']}"
    out: dict[str, Any] = {
        "first_name": address["firstName"],
        "address1": address["address1"],
        "phone": address["phone"],
        "city": address["city"],
        "zip": address["zip"],
        "province": address["province"],
        "country": "Japan",
        "last_name": address["lastName"],
        "address2": address["address2"],
        "company": address["company"],
        "latitude": None,
        "longitude": None,
        "name": name,
        "country_code": "JP",
        "province_code": address["provinceCode"],
    }
    if customer is None:
        return out
    return {
        "id": _number(address["id"]),
        "customer_id": customer,
        "first_name": address["firstName"],
        "last_name": address["lastName"],
        "company": address["company"],
        "address1": address["address1"],
        "address2": address["address2"],
        "city": address["city"],
        "province": address["province"],
        "country": "Japan",
        "zip": address["zip"],
        "phone": address["phone"],
        "name": name,
        "province_code": address["provinceCode"],
        "country_code": "JP",
        "country_name": "Japan",
        "default": True,
    }


def customer_payload(record: dict[str, Any], *, nested: bool = False) -> dict[str, Any]:
    """customers/create and customers/update (``nested``: inside an order payload)."""
    number = _number(record["id"])
    default = _address(record["defaultAddress"], customer=number)
    body: dict[str, Any] = {
        "id": number,
        "created_at": _iso_to_local(record["createdAt"]),
        "updated_at": _iso_to_local(record["updatedAt"]),
        "first_name": record["firstName"],
        "last_name": record["lastName"],
        "state": record["state"].lower(),
        "note": record["note"],
        "verified_email": record["email"] is not None,
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": record["email"],
        "phone": record["phone"],
        "currency": "JPY",
    }
    if not nested:
        body["addresses"] = [default] if default else []
    body["tax_exemptions"] = []
    body["admin_graphql_api_id"] = record["id"]
    body["default_address"] = default
    return body


def order_payload(data: ShopData, rank: int, shop: str) -> dict[str, Any]:
    """orders/create and orders/updated."""
    record = data.order(rank)
    core: OrderCore = data.order_core(rank)
    ev = core.events
    rng = random.Random(f"rest:{data.seed}:{rank}")
    number = order_number(rank)
    owner = core.owner if core.owner not in data.deleted_customers else None
    customer = None if owner is None else data.customer(owner)
    if customer is not None:
        email, phone = customer["email"], customer["phone"]
        address = _address(customer["defaultAddress"])
    else:
        email = f"guest.{rng.randrange(10**6, 10**7)}@example.jp"
        phone, address = None, None
    refunded = sum(amount for _, amount in core.refunds)
    current_total = core.total - refunded if ev.financial != "VOIDED" else 0
    token = f"{rng.getrandbits(128):032x}"
    financial = ev.financial.lower()
    gateways = {"web": ["shopify_payments"], "pos": ["cash"], "shopify_draft_order": ["manual"]}
    if ev.financial == "PENDING":
        gateways["web"] = ["コンビニ決済"]
    line_items = []
    for i, (ln, gql) in enumerate(zip(core.lines, record["_lines"], strict=True)):
        v = ln.variant
        line_items.append(
            {
                "id": LINE_BASE + rank * 16 + i,
                "admin_graphql_api_id": gql["id"],
                "attributed_staffs": [],
                "current_quantity": ln.quantity,
                "fulfillable_quantity": 0 if ev.fulfilled_at else ln.quantity,
                "fulfillment_service": "manual",
                "fulfillment_status": "fulfilled" if ev.fulfilled_at else None,
                "gift_card": False,
                "grams": v.grams if v else 0,
                "name": gql["name"],
                "price": _yen(ln.price),
                "price_set": _money_set(ln.price),
                "product_exists": v is not None,
                "product_id": v.product_id if v else None,
                "properties": [],
                "quantity": ln.quantity,
                "requires_shipping": ev.source != "pos",
                "sales_line_item_group_id": None,
                "sku": v.sku if v else None,
                "taxable": True,
                "title": ln.title,
                "total_discount": _yen(ln.unit_discount * ln.quantity),
                "total_discount_set": _money_set(ln.unit_discount * ln.quantity),
                "variant_id": v.variant_id if v else None,
                "variant_inventory_management": "shopify" if v else None,
                "variant_title": v.variant_title if v else None,
                "vendor": "OmniCRM デモ商店",
                "tax_lines": [],
                "duties": [],
                "discount_allocations": [],
            }
        )
    line_total = sum(ln.price * ln.quantity for ln in core.lines)
    shipping_lines: list[dict[str, Any]] = []
    if ev.source != "pos":
        shipping_lines.append(
            {
                "id": 4_300_000_000_000 + rank,
                "carrier_identifier": None,
                "code": "standard",
                "current_discounted_price_set": _money_set(core.shipping),
                "discounted_price": _yen(core.shipping),
                "discounted_price_set": _money_set(core.shipping),
                "is_removed": False,
                "phone": None,
                "price": _yen(core.shipping),
                "price_set": _money_set(core.shipping),
                "requested_fulfillment_service_id": None,
                "source": "shopify",
                "title": "通常配送",
                "tax_lines": [],
                "discount_allocations": [],
            }
        )
    refunds = [
        {
            "id": REFUND_BASE + rank * 4 + i,
            "admin_graphql_api_id": f"gid://shopify/Refund/{REFUND_BASE + rank * 4 + i}",
            "created_at": local_time(at),
            "note": None,
            "order_id": number,
            "processed_at": local_time(at),
            "restock": False,
            "user_id": None,
            "order_adjustments": [],
            "transactions": [
                {
                    "amount": _yen(amount),
                    "currency": "JPY",
                    "kind": "refund",
                    "status": "success",
                    "gateway": gateways[ev.source][0],
                }
            ],
            "refund_line_items": [],
            "duties": [],
        }
        for i, (at, amount) in enumerate(core.refunds)
    ]
    location = None if core.store is None else LOCATION_BASE + core.store * STRIDE
    consent = (customer or {}).get("emailMarketingConsent") or {}
    return {
        "id": number,
        "admin_graphql_api_id": record["id"],
        "app_id": _APP_IDS[ev.source],
        "browser_ip": None,
        "buyer_accepts_marketing": consent.get("marketingState") == "SUBSCRIBED",
        "cancel_reason": "customer" if ev.cancelled_at is not None else None,
        "cancelled_at": local_time(ev.cancelled_at),
        "cart_token": None,
        "checkout_token": None,
        "client_details": None,
        "closed_at": local_time(ev.fulfilled_at) if ev.financial == "PAID" else None,
        "confirmation_number": "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=9)),
        "confirmed": True,
        "contact_email": email,
        "created_at": local_time(ev.created),
        "currency": "JPY",
        "current_shipping_price_set": _money_set(core.shipping),
        "current_subtotal_price": _yen(max(0, core.subtotal - refunded)),
        "current_subtotal_price_set": _money_set(max(0, core.subtotal - refunded)),
        "current_total_additional_fees_set": None,
        "current_total_discounts": _yen(core.discounts),
        "current_total_discounts_set": _money_set(core.discounts),
        "current_total_duties_set": None,
        "current_total_price": _yen(current_total),
        "current_total_price_set": _money_set(current_total),
        "current_total_tax": _yen(current_total * 10 // 110),
        "current_total_tax_set": _money_set(current_total * 10 // 110),
        "customer_locale": "ja",
        "device_id": None,
        # The code as the order used it; the sandbox takes no discount off the totals.
        "discount_codes": [
            {"code": code, "amount": "0", "type": "fixed_amount"}
            for code in record.get("discountCodes") or []
        ],
        "duties_included": False,
        "email": email,
        "estimated_taxes": False,
        "financial_status": financial,
        "fulfillment_status": "fulfilled" if ev.fulfilled_at else None,
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": location,
        "merchant_business_entity_id": base64.b64encode(str(SHOP_ID).encode()).decode(),
        "merchant_of_record_app_id": None,
        "name": record["name"],
        "note": None,
        "note_attributes": [],
        "number": rank + 1,
        "order_number": 1001 + rank,
        "order_status_url": f"https://{shop}/{SHOP_ID}/orders/{token}/authenticate?key={token[:16]}",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": gateways[ev.source],
        "phone": phone,
        "po_number": None,
        "presentment_currency": "JPY",
        "processed_at": local_time(ev.created),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": ev.source,
        "source_url": None,
        "subtotal_price": _yen(core.subtotal),
        "subtotal_price_set": _money_set(core.subtotal),
        "tags": "",
        "tax_exempt": False,
        "tax_lines": [
            {
                "price": _yen(core.tax),
                "rate": 0.1,
                "title": "消費税",
                "price_set": _money_set(core.tax),
                "channel_liable": False,
            }
        ],
        "taxes_included": True,
        "test": False,
        "token": token,
        "total_cash_rounding_payment_adjustment_set": _money_set(0),
        "total_cash_rounding_refund_adjustment_set": _money_set(0),
        "total_discounts": _yen(core.discounts),
        "total_discounts_set": _money_set(core.discounts),
        "total_line_items_price": _yen(line_total),
        "total_line_items_price_set": _money_set(line_total),
        "total_outstanding": _yen(core.total if ev.financial == "PENDING" else 0),
        "total_price": _yen(core.total),
        "total_price_set": _money_set(core.total),
        "total_shipping_price_set": _money_set(core.shipping),
        "total_tax": _yen(core.tax),
        "total_tax_set": _money_set(core.tax),
        "total_tip_received": "0",
        "total_weight": sum(
            (ln.variant.grams if ln.variant else 0) * ln.quantity for ln in core.lines
        ),
        "updated_at": _iso_to_local(record["updatedAt"]),
        "user_id": None,
        "billing_address": address,
        "customer": None if customer is None else customer_payload(customer, nested=True),
        "discount_applications": [],
        "fulfillments": [],
        "line_items": line_items,
        "payment_terms": None,
        "refunds": refunds,
        "shipping_address": address if ev.source != "pos" else None,
        "shipping_lines": shipping_lines,
        "returns": [],
        "line_item_groups": [],
    }


def compliance_payload(
    data: ShopData, topic: str, shop: str, c: int | None = None
) -> dict[str, Any]:
    """customers/redact, customers/data_request (for customer ``c``) and shop/redact."""
    body: dict[str, Any] = {"shop_id": SHOP_ID, "shop_domain": shop}
    if topic == "shop/redact":
        return body
    assert c is not None
    record = data.customer(c)
    person = {"id": customer_number(c), "email": record["email"], "phone": record["phone"]}
    orders = [order_number(r) for r in data.customer_orders(c)]
    body["customer"] = person
    if topic == "customers/redact":
        body["orders_to_redact"] = orders
    else:
        body["orders_requested"] = orders
        body["data_request"] = {"id": random.Random(f"dr:{c}").randrange(1000, 10**6)}
    return body


def headers(topic: str, body: bytes, *, secret: str, shop: str, api_version: str,
            event_id: str | None = None) -> dict[str, str]:  # fmt: skip
    """The headers Shopify sends with a webhook."""
    now = dt.datetime.now(dt.UTC)
    return {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
    }


def encode(payload: Any) -> bytes:
    """The raw body that is sent (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
