"""The sandbox shop's catalogue: products (商品) and their classes (商品規格) as the Web
API's ``Product`` nodes.

The first products are the ones the shop's orders buy (:data:`~.data.PRODUCTS`, one
class per row, rows of one name one product); the rest fill a catalogue of a few hundred,
as a tea and sweets shop has. What a plugin must get right: sold-out classes (stock 0),
classes sold without stock (``stock_unlimited``), hidden classes (``visible`` false, as
EC-CUBE keeps the class-less default class of a product that gained classes), products
not shown (status 2 非公開) and discontinued ones (status 3 廃止), ``price02`` before tax
with a product's own tax rule (the reduced 8% of food) or the shop's 10%.

Its own seeded RNG: the members and orders of a seed stay what they were.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from omnicrm.plugins.ec_cube.masters import PRODUCT_STATUSES, ROUNDING_TYPES
from omnicrm.plugins.ec_cube.sandbox.data import Row, stamp

# name stem, class categories to choose from, price range before tax, food (8%)
_KINDS = (
    ("煎茶", ("100g", "200g", "500g"), (800, 3000), True),
    ("玉露", ("50g", "100g"), (1500, 6000), True),
    ("ほうじ茶", ("100g", "ティーバッグ 20包"), (600, 1800), True),
    ("抹茶", ("20g", "40g", "100g"), (1000, 5000), True),
    ("和紅茶", ("50g", "ティーバッグ 15包"), (900, 2400), True),
    ("羊羹", ("1本", "3本入"), (800, 3600), True),
    ("最中", ("6個入", "12個入"), (900, 2800), True),
    ("煎餅", ("10枚入", "24枚入"), (600, 2200), True),
    ("湯呑み", ("白", "藍", "茶"), (1200, 6000), False),
    ("急須", ("小", "大"), (2800, 15000), False),
    ("茶托", ("5客組",), (1800, 5000), False),
    ("風呂敷", ("中", "大"), (1500, 4800), False),
)
_PLACES = (
    "宇治", "静岡", "八女", "狭山", "知覧", "嬉野", "川根", "伊勢", "京都", "加賀",
    "金沢", "松江", "鹿児島", "奈良", "有田", "美濃", "信楽", "萩",
)  # fmt: skip
_QUALITIES = ("特上", "上", "極", "深蒸し", "手摘み", "有機", "季節限定", "定番")
_TAGS = ("新商品", "おすすめ", "限定品", "ギフト", "送料無料")


def _tax_rule(rid: int, food: bool, when: str) -> dict[str, Any] | None:
    """A product's own tax rule (the reduced rate of food); None: the shop's rule."""
    if not food:
        return None
    return {
        "id": str(rid),
        "tax_rate": 8.0,
        "tax_adjust": 0.0,
        "apply_date": when,
        "RoundingType": {"id": "1", "name": ROUNDING_TYPES[1]},
    }


def _class(
    cid: int,
    code: str | None,
    category: str | None,
    price: int,
    food: bool,
    when: str,
    *,
    stock: int | None,
    visible: bool = True,
) -> dict[str, Any]:
    return {
        "id": str(cid),
        "code": code,
        "stock": float(stock) if stock is not None else None,
        "stock_unlimited": stock is None,
        "price01": float(round(price * 1.2, -1)) if price >= 1000 else None,
        "price02": float(price),
        "visible": visible,
        "currency_code": "JPY",
        "create_date": when,
        "update_date": when,
        "ClassCategory1": {"id": str(cid), "name": category} if category else None,
        "ClassCategory2": None,
        "TaxRule": _tax_rule(cid, food, when),
    }


def _product(
    pid: int,
    name: str,
    classes: list[dict[str, Any]],
    status: int,
    created: dt.datetime,
    updated: dt.datetime,
    tags: list[str],
) -> Row:
    node = {
        "id": str(pid),
        "name": name,
        "description_list": None,
        "create_date": stamp(created),
        "update_date": stamp(updated),
        "Status": {"id": str(status), "name": PRODUCT_STATUSES[status]},
        "ProductClasses": classes,
        "ProductImage": [{"id": str(pid), "file_name": f"{pid:04d}_main.jpg", "sort_no": 1}],
        "ProductTag": [
            {"id": f"{pid}-{n}", "Tag": {"id": str(_TAGS.index(t) + 1), "name": t}}
            for n, t in enumerate(tags)
        ],
    }
    return Row(pid, node, int(updated.timestamp()), str(status))


def _stock(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.12:
        return 0  # sold out
    if roll < 0.40:
        return None  # sold without stock (stock_unlimited)
    return rng.randrange(1, 200)


def generate_catalogue(
    seed: int,
    end: dt.datetime,
    sold: tuple[tuple[str, str | None, int, bool], ...],
    size: int,
) -> tuple[dict[int, Row], list[int]]:
    """``size`` products (at least those of ``sold``) updated up to ``end``, and the
    product id of each row of ``sold`` (the classes the orders buy, ids 1, 2, ...)."""
    rng = random.Random(seed * 7919 + 17)
    rows: dict[int, Row] = {}
    owner: list[int] = []
    grouped: dict[str, list[int]] = {}
    for index, (name, _, _, _) in enumerate(sold):
        grouped.setdefault(name, []).append(index)
    cid = 1
    for pid, (name, indexes) in enumerate(grouped.items(), start=1):
        created = end - dt.timedelta(days=rng.randrange(400, 900))
        updated = end - dt.timedelta(seconds=rng.randrange(3600, 300 * 86400))
        when = stamp(created)
        classes = []
        for index in indexes:
            _, category, price, food = sold[index]
            # The seasonal spring set is sold out; the gift box is sold without stock.
            stock = 0 if category == "春" else None if name == "ギフト箱" else rng.randrange(5, 300)
            classes.append(_class(cid, f"SKU-{cid:03d}", category, price, food, when, stock=stock))
            owner.append(pid)
            cid += 1
        rows[pid] = _product(pid, name, classes, 1, created, updated, [])
    for pid in range(len(grouped) + 1, size + 1):
        stem, categories, (low, high), food = rng.choice(_KINDS)
        name = f"{rng.choice(_PLACES)} {rng.choice(_QUALITIES)}{stem}"
        created = end - dt.timedelta(seconds=rng.randrange(86400, 2 * 365 * 86400))
        updated = min(end, created + dt.timedelta(seconds=rng.randrange(0, 200 * 86400)))
        when = stamp(created)
        price = rng.randrange(low, high + 1, 10)
        classes = []
        chosen = rng.sample(categories, rng.randint(1, len(categories)))
        if len(chosen) > 1:
            # The class-less class EC-CUBE keeps, hidden, once a product has classes.
            classes.append(_class(cid, None, None, price, food, when, stock=0, visible=False))
            cid += 1
        for n, category in enumerate(chosen):
            visible = rng.random() > 0.05
            classes.append(
                _class(
                    cid,
                    f"SKU-{cid:03d}",
                    category if len(chosen) > 1 else None,
                    price + 200 * n,
                    food,
                    when,
                    stock=_stock(rng),
                    visible=visible,
                )
            )
            cid += 1
        status = rng.choices((1, 2, 3), (88, 7, 5))[0]
        tags = sorted(set(rng.sample(_TAGS, rng.choice((0, 0, 1, 2)))))
        rows[pid] = _product(pid, name, classes, status, created, updated, tags)
    return rows, owner
