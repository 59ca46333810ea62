"""The shared POS seed (:mod:`omnicrm.plugins.pos.seed`) in Square's shapes.

* stores: Locations (渋谷店, 梅田店), currency JPY, time zone Asia/Tokyo;
* members: Customers (``reference_id`` the member code, the kana as ``nickname``: Square
  keeps no kana). A member merged into another at the register is gone, as Square's
  MergeCustomers leaves it; the survivor carries the points;
* sales: Orders from Square Point of Sale, COMPLETED, paid by card or cash. A member's
  card shown at the register sets the order's customer, or only the tender's (the
  customer was added at payment); a sale without a card has nobody. Returned items
  make it an exchange (``returns`` with ``net_amounts``; a return alone nets below
  zero). Offline sales keep the device's ``created_at`` and a late ``updated_at``;
  voided sales are CANCELED;
* products: the catalogue, an ITEM per product with one "Regular" ITEM_VARIATION whose id
  is what the sales' lines name (``catalog_object_id``), SKU its code; the store-only
  goods in a category of their own. 抹茶テリーヌ (``TRN-``) is archived, 八女 玉露 500g
  (``GYO-04``) sold out at every location;
* points: a Square Loyalty programme, an account per member with a balance, and
  ACCUMULATE_POINTS / CREATE_REWARD / REDEEM_REWARD events (points spent are a reward,
  a discount on the order).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import jaconv

from omnicrm.plugins.pos import seed as pos_seed

MERCHANT_ID = "MLJAPANDEMO01"
PROGRAM_ID = "6b0f2c5e-7b2a-4b54-9a1f-5a8f3a0c0d11"
REWARD_TIER_ID = "e1b39225-9da5-43d1-a5db-782cdd8ad94f"
SOURCE = "Square Point of Sale"


def square_id(kind: str, key: object, length: int = 26) -> str:
    """A stable id shaped like Square's (upper-case base32)."""
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    return base64.b32encode(digest).decode()[:length]


def uuid_like(kind: str, key: object) -> str:
    """A stable UUID-shaped id (loyalty objects use them)."""
    h = hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def stamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Square writes timestamps."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def yen(amount: int) -> dict[str, Any]:
    """A JPY Money object (yen have no minor unit)."""
    return {"amount": amount, "currency": "JPY"}


def _ascii_phone(text: str | None) -> str | None:
    # Square's dashboard keeps what was typed but in ASCII digits.
    return jaconv.z2h(text, digit=True, ascii=True) if text else None


class SquareData:
    """The seller's data, in Square's JSON, behind one lock (the server is threaded)."""

    def __init__(self, store: pos_seed.StoreData, *, loyalty: bool = True) -> None:
        self.lock = threading.RLock()
        self.seed = store
        self.locations: list[dict[str, Any]] = [self._location(s, store.end) for s in store.stores]
        self.location_ids = {
            s.id: loc["id"] for s, loc in zip(store.stores, self.locations, strict=True)
        }
        self.customers: dict[str, dict[str, Any]] = {}
        self.customer_of_member: dict[str, str] = {}
        for member in store.members:
            if member.status == "merged":
                continue  # Square's merge leaves only the merged profile
            customer = self._customer(member)
            self.customers[customer["id"]] = customer
            self.customer_of_member[member.code] = customer["id"]
        for member in store.members:
            # A merged member's sales follow it to the survivor (one person, not two).
            survivor = member
            while survivor.merged_into is not None:
                survivor = store.members_by_code[survivor.merged_into]
            if member is not survivor and survivor.code in self.customer_of_member:
                self.customer_of_member[member.code] = self.customer_of_member[survivor.code]
        self.loyalty = loyalty
        self.program = self._program(store.end) if loyalty else None
        self.accounts: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.rewards: dict[str, dict[str, Any]] = {}
        if loyalty:
            for member in store.members:
                customer_id = self.customer_of_member.get(member.code)
                if customer_id is not None and member.status != "merged":
                    self.accounts[customer_id] = self._account(member, customer_id)
        self.categories = {
            name: {
                "type": "CATEGORY",
                "id": square_id("category", name),
                "updated_at": stamp(store.end - dt.timedelta(days=900)),
                "version": 1,
                "is_deleted": False,
                "present_at_all_locations": True,
                "category_data": {"name": name},
            }
            for name in sorted({p.category for p in store.products})
        }
        self.items: dict[str, dict[str, Any]] = {}
        for product in store.products:
            item = self._item(product, store.end)
            self.items[item["id"]] = item
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        for sale in store.sales:
            self._render_sale(sale)

    # -- reads

    def sorted_orders(self) -> Iterator[dict[str, Any]]:
        """Every order (callers filter and sort)."""
        return iter(list(self.orders.values()))

    # -- rendering

    def _location(self, store: pos_seed.Store, end: dt.datetime) -> dict[str, Any]:
        return {
            "id": "L" + square_id("location", store.code, 12),
            "name": store.name,
            "address": {
                "address_line_1": store.address,
                "administrative_district_level_1": store.prefecture,
                "postal_code": store.zip,
                "country": "JP",
            },
            "timezone": "Asia/Tokyo",
            "capabilities": ["CREDIT_CARD_PROCESSING"],
            "status": "ACTIVE",
            "created_at": stamp(end - dt.timedelta(days=900)),
            "merchant_id": MERCHANT_ID,
            "country": "JP",
            "language_code": "ja-JP",
            "currency": "JPY",
            "phone_number": store.phone,
            "business_name": "OmniCRM デモ茶舗",
            "type": "PHYSICAL",
        }

    def _customer(self, member: pos_seed.Member) -> dict[str, Any]:
        customer: dict[str, Any] = {
            "id": square_id("customer", member.code),
            "created_at": stamp(member.joined),
            "updated_at": stamp(member.updated),
            "given_name": member.first_name,
            "family_name": member.last_name,
            "nickname": f"{member.last_kana} {member.first_kana}",
            "reference_id": member.code,
            "preferences": {"email_unsubscribed": False},
            "creation_source": "DIRECTORY",
            "version": 1,
        }
        phone = _ascii_phone(member.mobile or member.phone)
        if phone:
            customer["phone_number"] = phone
        if member.email:
            customer["email_address"] = member.email
        if member.birth_date:
            customer["birthday"] = member.birth_date.isoformat()
        if member.zip or member.address:
            customer["address"] = {
                "postal_code": member.zip,
                "administrative_district_level_1": member.prefecture,
                "address_line_1": member.address,
                "country": "JP",
            }
        return customer

    def _program(self, end: dt.datetime) -> dict[str, Any]:
        return {
            "id": PROGRAM_ID,
            "status": "ACTIVE",
            "reward_tiers": [
                {
                    "id": REWARD_TIER_ID,
                    "points": 100,
                    "name": "100ポイントで100円引き",
                    "created_at": stamp(end - dt.timedelta(days=800)),
                    "pricing_rule_reference": {
                        "object_id": square_id("rule", 1),
                        "catalog_version": 1,
                    },
                }
            ],
            "terminology": {"one": "ポイント", "other": "ポイント"},
            "location_ids": [loc["id"] for loc in self.locations],
            "created_at": stamp(end - dt.timedelta(days=800)),
            "updated_at": stamp(end - dt.timedelta(days=800)),
            "accrual_rules": [
                {
                    "accrual_type": "SPEND",
                    "points": 1,
                    "spend_data": {"amount_money": yen(100), "tax_mode": "AFTER_TAX"},
                }
            ],
        }

    def _account(self, member: pos_seed.Member, customer_id: str) -> dict[str, Any]:
        account: dict[str, Any] = {
            "id": uuid_like("account", member.code),
            "program_id": PROGRAM_ID,
            "balance": member.points,
            "lifetime_points": member.points,
            "customer_id": customer_id,
            "enrolled_at": stamp(member.joined),
            "created_at": stamp(member.joined),
            "updated_at": stamp(member.updated),
        }
        return account

    def _render_sale(self, sale: pos_seed.Sale) -> None:
        number = sale.number
        order_id = square_id("order", number, 27)
        location = self.location_ids[sale.store.id]
        customer_id = self.customer_of_member.get(sale.member.code) if sale.member else None
        # Where the register put the customer: on the order, or only on the payment.
        on_order = customer_id is not None and number % 5 != 0
        sold = [line for line in sale.lines if not line.returned]
        back = [line for line in sale.lines if line.returned]
        line_items = [self._line(order_id, n, line) for n, line in enumerate(sold)]
        gross = sum(line.amount for line in sold)
        returned = -sum(line.amount for line in back)
        spent = sale.points_spent
        total = gross - spent
        tax = _tax(sold, spent)
        updated = sale.cancelled_at or sale.received_at
        order: dict[str, Any] = {
            "id": order_id,
            "location_id": location,
            "reference_id": f"{sale.store.code}-{sale.terminal}-{number}",
            "source": {"name": SOURCE},
            "line_items": line_items,
            "created_at": stamp(sale.sold_at),
            "updated_at": stamp(updated),
            "state": "CANCELED" if sale.cancelled else "COMPLETED",
            "version": 1 if not sale.cancelled else 2,
            "total_money": yen(total),
            "total_tax_money": yen(tax),
            "total_discount_money": yen(sum(line.discount for line in sold) + spent),
            "total_tip_money": yen(0),
            "total_service_charge_money": yen(0),
            "net_amount_due_money": yen(0),
        }
        if not sale.cancelled:
            order["closed_at"] = stamp(sale.received_at)
        if on_order:
            order["customer_id"] = customer_id
        if back:
            back_tax = _tax(back, 0)
            order["returns"] = [
                {
                    "uid": square_id("return", number, 22),
                    "return_line_items": [
                        self._return_line(order_id, n, line) for n, line in enumerate(back)
                    ],
                    "return_amounts": {
                        "total_money": yen(returned),
                        "tax_money": yen(back_tax),
                        "discount_money": yen(0),
                        "tip_money": yen(0),
                        "service_charge_money": yen(0),
                    },
                }
            ]
            order["return_amounts"] = order["returns"][0]["return_amounts"]
            order["net_amounts"] = {
                "total_money": yen(total - returned),
                "tax_money": yen(tax - back_tax),
                "discount_money": yen(order["total_discount_money"]["amount"]),
                "tip_money": yen(0),
                "service_charge_money": yen(0),
            }
        if not sale.cancelled and total > 0:
            payment_id = square_id("payment", number, 28)
            cash = number % 3 == 0
            tender: dict[str, Any] = {
                "id": payment_id,
                "location_id": location,
                "transaction_id": order_id,
                "created_at": stamp(sale.sold_at),
                "amount_money": yen(total),
                "type": "CASH" if cash else "CARD",
                "payment_id": payment_id,
            }
            if customer_id:
                tender["customer_id"] = customer_id
            order["tenders"] = [tender]
            payment: dict[str, Any] = {
                "id": payment_id,
                "created_at": stamp(sale.sold_at),
                "updated_at": stamp(sale.received_at),
                "amount_money": yen(total),
                "total_money": yen(total),
                "approved_money": yen(total),
                "status": "COMPLETED",
                "source_type": "CASH" if cash else "CARD",
                "location_id": location,
                "order_id": order_id,
                "is_offline_payment": sale.offline,
            }
            if customer_id:
                payment["customer_id"] = customer_id
            self.payments[payment_id] = payment
        self.orders[order_id] = order
        if self.loyalty and customer_id is not None and not sale.cancelled:
            self._loyalty_events(sale, order_id, location, customer_id)

    def _item(self, product: pos_seed.Product, end: dt.datetime) -> dict[str, Any]:
        item_id = square_id("item", product.code)
        updated = stamp(end - dt.timedelta(days=1 + product.id % 83, seconds=product.id))
        variation: dict[str, Any] = {
            "type": "ITEM_VARIATION",
            "id": square_id("variation", product.code),
            "updated_at": updated,
            "version": 1,
            "is_deleted": False,
            "present_at_all_locations": True,
            "item_variation_data": {
                "item_id": item_id,
                "name": "Regular",
                "sku": product.code,
                "ordinal": 0,
                "pricing_type": "FIXED_PRICING",
                "price_money": yen(product.price),
                "track_inventory": True,
                "sellable": True,
                "stockable": True,
            },
        }
        if product.code == "GYO-04":
            variation["item_variation_data"]["location_overrides"] = [
                {"location_id": loc["id"], "track_inventory": True, "sold_out": True}
                for loc in self.locations
            ]
        return {
            "type": "ITEM",
            "id": item_id,
            "updated_at": updated,
            "version": 1,
            "is_deleted": False,
            "present_at_all_locations": True,
            "item_data": {
                "name": product.name,
                "is_taxable": True,
                "categories": [{"id": self.categories[product.category]["id"], "ordinal": 0}],
                "reporting_category": {"id": self.categories[product.category]["id"]},
                "variations": [variation],
                "product_type": "REGULAR",
                "is_archived": product.code.startswith("TRN-"),
            },
        }

    def update_item(self, code: str, moment: dt.datetime, **item_data: Any) -> dict[str, Any]:
        """Edit the item of product ``code`` at ``moment`` (``item_data`` fields, e.g.
        ``is_archived``); its ``updated_at`` and ``version`` move on."""
        with self.lock:
            item = self.items[square_id("item", code)]
            item["item_data"].update(item_data)
            item["updated_at"] = stamp(moment)
            item["version"] += 1
            return item

    def _line(self, order_id: str, n: int, line: pos_seed.Line) -> dict[str, Any]:
        amount = line.amount
        return {
            "uid": f"{order_id[:20]}-{n}",
            "name": line.product.name,
            "quantity": str(line.quantity),
            "catalog_object_id": square_id("variation", line.product.code),
            "variation_name": "Regular",
            "item_type": "ITEM",
            "base_price_money": yen(line.unit_price),
            "variation_total_price_money": yen(line.unit_price * line.quantity),
            "gross_sales_money": yen(line.unit_price * line.quantity),
            "total_discount_money": yen(line.discount),
            "total_tax_money": yen(amount * line.product.tax_rate // (100 + line.product.tax_rate)),
            "total_money": yen(amount),
        }

    def _return_line(self, order_id: str, n: int, line: pos_seed.Line) -> dict[str, Any]:
        value = line.unit_price * line.quantity
        return {
            "uid": f"{order_id[:18]}-r{n}",
            "name": line.product.name,
            "quantity": str(line.quantity),
            "catalog_object_id": square_id("variation", line.product.code),
            "variation_name": "Regular",
            "item_type": "ITEM",
            "base_price_money": yen(line.unit_price),
            "variation_total_price_money": yen(value),
            "gross_return_money": yen(value),
            "total_discount_money": yen(0),
            "total_tax_money": yen(value * line.product.tax_rate // (100 + line.product.tax_rate)),
            "total_money": yen(value),
        }

    def _loyalty_events(
        self, sale: pos_seed.Sale, order_id: str, location: str, customer_id: str
    ) -> None:
        account = self.accounts.get(customer_id)
        if account is None:
            return
        number = sale.number
        if sale.points_spent:
            reward_id = uuid_like("reward", number)
            self.rewards[reward_id] = {
                "id": reward_id,
                "status": "REDEEMED",
                "loyalty_account_id": account["id"],
                "reward_tier_id": REWARD_TIER_ID,
                "points": sale.points_spent,
                "order_id": order_id,
                "created_at": stamp(sale.sold_at),
                "updated_at": stamp(sale.sold_at),
                "redeemed_at": stamp(sale.sold_at),
            }
            base = {
                "loyalty_account_id": account["id"],
                "location_id": location,
                "source": "SQUARE",
            }
            self.events.append(
                {
                    **base,
                    "id": uuid_like("event-create", number),
                    "type": "CREATE_REWARD",
                    "created_at": stamp(sale.sold_at),
                    "create_reward": {
                        "loyalty_program_id": PROGRAM_ID,
                        "reward_id": reward_id,
                        "points": -sale.points_spent,
                    },
                }
            )
            self.events.append(
                {
                    **base,
                    "id": uuid_like("event-redeem", number),
                    "type": "REDEEM_REWARD",
                    "created_at": stamp(sale.sold_at),
                    "redeem_reward": {
                        "loyalty_program_id": PROGRAM_ID,
                        "reward_id": reward_id,
                        "order_id": order_id,
                    },
                }
            )
        if sale.points_earned:
            self.events.append(
                {
                    "id": uuid_like("event-accumulate", number),
                    "type": "ACCUMULATE_POINTS",
                    "created_at": stamp(sale.received_at),
                    "accumulate_points": {
                        "loyalty_program_id": PROGRAM_ID,
                        "points": sale.points_earned,
                        "order_id": order_id,
                    },
                    "loyalty_account_id": account["id"],
                    "location_id": location,
                    "source": "SQUARE",
                }
            )


def _tax(lines: list[pos_seed.Line], spent: int) -> int:
    by_rate: dict[int, int] = {}
    for line in lines:
        rate = line.product.tax_rate
        by_rate[rate] = by_rate.get(rate, 0) + abs(line.amount)
    if spent and by_rate:  # the reward's discount comes off the largest rate's share
        top = max(by_rate, key=lambda r: by_rate[r])
        by_rate[top] = max(0, by_rate[top] - spent)
    return sum(amount * rate // (100 + rate) for rate, amount in by_rate.items())


def money_of(value: Mapping[str, Any] | None) -> int:
    """The amount of a Money object (0 when absent)."""
    return int((value or {}).get("amount") or 0)
