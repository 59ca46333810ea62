"""A seeded Japanese EC-CUBE shop: members, orders and products (:mod:`.catalogue`)
shaped as the Web API's nodes.

The same seed and end give the same shop (``random.Random`` and Faker ``ja_JP``, both
seeded). Nodes hold what the GraphQL types name (``name01``, ``OrderItems``,
``OrderStatus {id name}`` ...), times as ``YYYY-MM-DDThh:mm:ss+09:00``; each node's
update time is also kept as a number (:attr:`Row.updated`) for the server's ordering.

What the shop holds that a plugin must get right: withdrawn members (status 3, their
email EC-CUBE's dummy ``...@dummy.dummy``), provisional ones (status 1), guests' orders
(no Customer), unfinished checkouts (status 7 決済処理中, 8 購入処理中), cancelled and
returned orders, delivery fee, charge (代引手数料), discount and point lines beside the
product lines, 10% and reduced 8% tax, points used and added, birth dates at local
midnight.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from omnicrm.plugins.ec_cube import masters

JST = zoneinfo.ZoneInfo("Asia/Tokyo")

PRODUCTS = (
    # name, class category (規格), price before tax, reduced tax (food)
    ("宇治抹茶 100g", None, 1800, True),
    ("静岡煎茶 やぶきた", "200g", 1200, True),
    ("玄米茶 ティーバッグ", "30包", 900, True),
    ("ほうじ茶ラテの素", None, 750, True),
    ("京都 黒豆茶", "15包", 1100, True),
    ("有田焼 湯呑み", "藍", 3200, False),
    ("有田焼 湯呑み", "朱", 3200, False),
    ("南部鉄器 急須", "0.6L", 8800, False),
    ("竹の茶さじ", None, 450, False),
    ("和三盆 干菓子", "12個入", 1500, True),
    ("本わらび餅", "6個入", 1300, True),
    ("どら焼き 詰め合わせ", "8個入", 2400, True),
    ("抹茶カステラ", None, 1900, True),
    ("季節の和菓子 セット", "春", 2800, True),
    ("季節の和菓子 セット", "秋", 2800, True),
    ("茶筅 百本立", None, 3600, False),
    ("ギフト箱", "大", 300, False),
    ("手ぬぐい 麻の葉", None, 1000, False),
)
PAYMENTS = (("クレジットカード", 0), ("代金引換", 330), ("銀行振込", 0), ("コンビニ払い", 220))
# Order statuses and how often the shop has them (7, 8: checkouts never finished).
STATUS_WEIGHTS = ((5, 55), (1, 8), (6, 8), (4, 6), (3, 5), (9, 3), (7, 5), (8, 10))
DUMMY_DOMAIN = "dummy.dummy"


def stamp(value: dt.datetime) -> str:
    """The API's date-time: whole seconds in JST with the offset."""
    return value.astimezone(JST).isoformat(timespec="seconds")


def master(table: dict[int, str], key: int) -> dict[str, Any]:
    return {"id": str(key), "name": table[key]}


@dataclass
class Row:
    """One node and its update time (seconds since the epoch), which the server orders by."""

    id: int
    node: dict[str, Any]
    updated: int
    status: str


@dataclass
class ShopData:
    """The shop: members and orders by id, generated up to ``end``."""

    end: dt.datetime
    customers: dict[int, Row] = field(default_factory=dict)
    orders: dict[int, Row] = field(default_factory=dict)
    products: dict[int, Row] = field(default_factory=dict)


def _customer(fake: Faker, rng: random.Random, cid: int, end: dt.datetime) -> Row:
    female = rng.random() < 0.62
    last = fake.last_name_pair()
    first = fake.first_name_female_pair() if female else fake.first_name_male_pair()
    created = end - dt.timedelta(seconds=rng.randrange(30, 3 * 365 * 86400))
    updated = min(end, created + dt.timedelta(seconds=rng.randrange(0, 400 * 86400)))
    status = rng.choices((2, 1, 3), (88, 5, 7))[0]
    email = f"{last[2].lower()}.{first[2].lower()}{cid}@example.jp"
    if status == masters.WITHDRAWN:
        email = (
            f"{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=60))}@{DUMMY_DOMAIN}"
        )
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 55 * 365))
    pref = rng.choices(
        range(1, 48), [6 if p in (13, 14, 27, 23, 11, 12) else 1 for p in range(1, 48)]
    )[0]
    node = {
        "id": str(cid),
        "name01": last[0],
        "name02": first[0],
        "kana01": last[1],
        "kana02": first[1],
        "company_name": None,
        "postal_code": fake.zipcode().replace("-", ""),
        "addr01": fake.city(),
        "addr02": f"{fake.town()}{fake.chome()}{fake.ban()}",
        "email": email,
        "phone_number": fake.phone_number().replace("-", ""),
        "birth": stamp(dt.datetime.combine(birth, dt.time(), JST)) if rng.random() < 0.8 else None,
        "first_buy_date": None,
        "last_buy_date": None,
        "buy_times": 0.0,
        "buy_total": 0.0,
        "note": None,
        "point": float(rng.randrange(0, 3000)) if status != masters.WITHDRAWN else 0.0,
        "create_date": stamp(created),
        "update_date": stamp(updated),
        "Status": master(masters.CUSTOMER_STATUSES, status),
        "Sex": master(masters.SEXES, 2 if female else rng.choices((1, 3, 4), (90, 3, 7))[0]),
        "Job": master(masters.JOBS, rng.randrange(1, 19)) if rng.random() < 0.6 else None,
        "Pref": master(masters.PREFECTURES, pref),
    }
    return Row(cid, node, int(updated.timestamp()), str(status))


def _item(
    iid: int, name: str, kind: int, price: float, quantity: int, rate: int, **extra: Any
) -> dict[str, Any]:
    tax = float(int(price * rate / 100)) if price > 0 else 0.0
    return {
        "id": str(iid),
        "product_name": name,
        "product_code": extra.get("code"),
        "class_category_name1": extra.get("category"),
        "class_category_name2": None,
        "price": float(price),
        "quantity": float(quantity),
        "tax": tax,
        "tax_rate": float(rate),
        "OrderItemType": master(masters.ORDER_ITEM_TYPES, kind),
        "Product": extra.get("product"),
        "ProductClass": extra.get("variant"),
    }


def _order(
    fake: Faker,
    rng: random.Random,
    oid: int,
    end: dt.datetime,
    customers: list[Row],
    first_item: int,
    owners: list[int],
) -> Row:
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    created = end - dt.timedelta(seconds=rng.randrange(60, 365 * 86400))
    buyer = rng.choice(customers).node if customers and rng.random() < 0.8 else None
    if buyer is not None and buyer["Status"]["id"] == "3":
        buyer = None if rng.random() < 0.5 else buyer  # a withdrawn member's old orders stay
    items: list[dict[str, Any]] = []
    iid = first_item
    for _ in range(rng.choices((1, 2, 3, 4), (45, 30, 15, 10))[0]):
        index = rng.randrange(len(PRODUCTS))
        name, category, price, food = PRODUCTS[index]
        items.append(
            _item(
                iid,
                name,
                masters.PRODUCT,
                price,
                rng.choices((1, 2, 3), (75, 20, 5))[0],
                8 if food else 10,
                code=f"SKU-{index + 1:03d}",
                category=category,
                product={"id": str(owners[index])},
                variant={"id": str(index + 1), "code": f"SKU-{index + 1:03d}"},
            )
        )
        iid += 1
    subtotal = sum((i["price"] + i["tax"]) * i["quantity"] for i in items)
    fee = 0.0 if subtotal >= 5000 else 770.0
    items.append(_item(iid, "送料", 2, fee, 1, 10))
    iid += 1
    method, charge = rng.choice(PAYMENTS)
    if charge:
        items.append(_item(iid, "手数料", 3, charge, 1, 10))
        iid += 1
    discount = 0.0
    if rng.random() < 0.1:
        discount = 500.0
        items.append(_item(iid, "クーポン割引", 4, -discount, 1, 10))
        iid += 1
    use_point = 0.0
    if buyer is not None and rng.random() < 0.15:
        use_point = float(min(int(buyer["point"] or 0), rng.randrange(100, 1000)))
        if use_point:
            items.append(_item(iid, "ポイント", 6, -use_point, 1, 10))
            iid += 1
    tax = sum(i["tax"] * i["quantity"] for i in items)
    total = subtotal + fee + charge - discount - use_point
    placed = created if status != 8 else None  # a checkout never finished has no order date
    updated = min(end, created + dt.timedelta(seconds=rng.randrange(0, 20 * 86400)))
    person = buyer or {
        "name01": fake.last_name(),
        "name02": fake.first_name(),
        "kana01": fake.last_kana_name(),
        "kana02": fake.first_kana_name(),
        "email": f"guest{oid}@example.jp",
        "phone_number": fake.phone_number().replace("-", ""),
        "postal_code": fake.zipcode().replace("-", ""),
        "addr01": fake.city(),
        "addr02": fake.town(),
        "Pref": master(masters.PREFECTURES, rng.randrange(1, 48)),
    }
    node = {
        "id": str(oid),
        "order_no": str(oid),
        "name01": person["name01"],
        "name02": person["name02"],
        "kana01": person["kana01"],
        "kana02": person["kana02"],
        "company_name": None,
        "email": person["email"],
        "phone_number": person["phone_number"],
        "postal_code": person["postal_code"],
        "addr01": person["addr01"],
        "addr02": person["addr02"],
        "subtotal": subtotal,
        "discount": discount + use_point,
        "delivery_fee_total": fee,
        "charge": float(charge),
        "tax": tax,
        "total": total,
        "payment_total": total,
        "payment_method": method,
        "currency_code": "JPY",
        "create_date": stamp(created),
        "update_date": stamp(updated),
        "order_date": stamp(placed) if placed else None,
        "payment_date": stamp(updated) if status in (5, 6) else None,
        "add_point": float(int(subtotal // 100)) if status not in (3, 7, 8) else 0.0,
        "use_point": use_point,
        "Customer": {"id": buyer["id"]} if buyer is not None else None,
        "Pref": person["Pref"],
        "OrderStatus": master(masters.ORDER_STATUSES, status),
        "OrderItems": items,
        "Shippings": [{"id": str(oid), "shipping_date": stamp(updated) if status == 5 else None}],
    }
    return Row(oid, node, int(updated.timestamp()), str(status))


def generate(
    seed: int = 1,
    *,
    customers: int = 500,
    orders: int = 3000,
    products: int = 300,
    end: dt.datetime | None = None,
) -> ShopData:
    """A shop of ``customers`` members and ``orders`` orders over the year up to ``end``
    (default now, whole seconds), with a catalogue of ``products`` (at least those the
    orders buy)."""
    from omnicrm.plugins.ec_cube.sandbox.catalogue import generate_catalogue

    end = (end or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    shop = ShopData(end=end)
    shop.products, owners = generate_catalogue(seed, end, PRODUCTS, products)
    for n in range(customers):
        row = _customer(fake, rng, n + 1, end)
        shop.customers[row.id] = row
    members = list(shop.customers.values())
    item = 1
    for n in range(orders):
        row = _order(fake, rng, n + 1, end, members, item, owners)
        item += len(row.node["OrderItems"])
        shop.orders[row.id] = row
    return shop
