"""Shop data written as EC-CUBE admin CSV exports: 会員CSV, 受注CSV and 商品CSV, in the
4.x or the 2.x header set, Shift_JIS (cp932) as the admin screen writes them.

Records are plain mappings shaped like the Web API's GraphQL types (``Customer``,
``Order`` with its ``OrderItems``, ``Product`` with its ``ProductClasses``; field names
as in the schema, nested masters as ``{"id": ..., "name": ...}``, dates as ISO strings
or datetimes), so an emulator can hand its seeded data over as the exports a shop
without the API would send. 2.x's ``mailmaga_flg`` is not in the schema: a customer
mapping may carry it (default 1).
:func:`seed_shop` makes a small deterministic Japanese shop (Faker ja_JP).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from omnicrm.plugins.ec_cube.csv import masters_csv as masters
from omnicrm.plugins.ec_cube.csv.columns import (
    CUSTOMERS_2_FLAGS,
    CUSTOMERS_4,
    ORDERS_2,
    ORDERS_4,
    PRODUCTS_2,
    PRODUCTS_4,
)

TOKYO = ZoneInfo("Asia/Tokyo")
Record = Mapping[str, Any]
Getter = Callable[[Record, Record, Record], Any]  # (order or customer, item, shipping)


def _get(record: Record | None, *path: str) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True)
class FieldPath:
    """A column's value: a field path into the order (or customer), its item or its
    shipping, named as the GraphQL schema names them (kept for a test to check)."""

    source: str  # "record", "item" or "shipping"
    path: tuple[str, ...]

    def __call__(self, record: Record, item: Record, shipping: Record) -> Any:
        start = {"record": record, "item": item, "shipping": shipping}[self.source]
        return _get(start, *self.path)


def _f(*path: str) -> Getter:
    return FieldPath("record", path)


def _item(*path: str) -> Getter:
    return FieldPath("item", path)


def _ship(*path: str) -> Getter:
    return FieldPath("shipping", path)


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _zip(part: int) -> Getter:
    def get(o: Record, _i: Record, _s: Record) -> str:
        digits = _digits(o.get("postal_code"))
        return digits[:3] if part == 1 else digits[3:]

    return get


def _tel(part: int) -> Getter:
    def get(o: Record, _i: Record, _s: Record) -> str:
        parts = str(o.get("phone_number") or "").split("-")
        return parts[part - 1] if len(parts) >= part else ""

    return get


_CUSTOMER: dict[str, Getter] = {
    "会員ID": _f("id"),
    "お名前(姓)": _f("name01"),
    "お名前(名)": _f("name02"),
    "お名前(セイ)": _f("kana01"),
    "お名前(メイ)": _f("kana02"),
    "お名前(フリガナ・姓)": _f("kana01"),
    "お名前(フリガナ・名)": _f("kana02"),
    "会社名": _f("company_name"),
    "郵便番号": _f("postal_code"),
    "郵便番号1": _zip(1),
    "郵便番号2": _zip(2),
    "都道府県(ID)": _f("Pref", "id"),
    "都道府県(名称)": _f("Pref", "name"),
    "都道府県": _f("Pref", "name"),
    "住所1": _f("addr01"),
    "住所2": _f("addr02"),
    "メールアドレス": _f("email"),
    "E-MAIL": _f("email"),
    "TEL": _f("phone_number"),
    "TEL1": _tel(1),
    "TEL2": _tel(2),
    "TEL3": _tel(3),
    "FAX1": lambda *_: "",
    "FAX2": lambda *_: "",
    "FAX3": lambda *_: "",
    "性別(ID)": _f("Sex", "id"),
    "性別(名称)": _f("Sex", "name"),
    "性別": _f("Sex", "name"),
    "職業(ID)": _f("Job", "id"),
    "職業(名称)": _f("Job", "name"),
    "職業": _f("Job", "name"),
    "誕生日": _f("birth"),
    "初回購入日": _f("first_buy_date"),
    "最終購入日": _f("last_buy_date"),
    "購入回数": _f("buy_times"),
    "ショップ用メモ欄": _f("note"),
    "備考": _f("note"),
    "会員ステータス(ID)": _f("Status", "id"),
    "会員ステータス(名称)": _f("Status", "name"),
    "登録日": _f("create_date"),
    "更新日": _f("update_date"),
    "ポイント": _f("point"),
    "ポイント残高": _f("point"),
    "メルマガ種別": lambda o, _i, _s: o.get("mailmaga_flg", 1),
    "削除フラグ": lambda o, _i, _s: 1 if _get(o, "Status", "id") in (3, "3") else 0,
}

_ORDER: dict[str, Getter] = {
    **{k: _CUSTOMER[k] for k in ("お名前(姓)", "お名前(名)", "お名前(セイ)", "お名前(メイ)")},
    **{k: _CUSTOMER[k] for k in ("会社名", "郵便番号", "郵便番号1", "郵便番号2", "住所1")},
    **{k: _CUSTOMER[k] for k in ("都道府県(ID)", "都道府県(名称)", "都道府県", "住所2")},
    **{k: _CUSTOMER[k] for k in ("メールアドレス", "TEL", "FAX1", "FAX2", "FAX3")},
    **{k: _CUSTOMER[k] for k in ("性別(ID)", "性別(名称)", "職業(ID)", "職業(名称)")},
    **{k: _CUSTOMER[k] for k in ("誕生日", "ショップ用メモ欄")},
    "注文ID": _f("id"),
    "注文番号": _f("order_no"),
    "会員ID": _f("Customer", "id"),
    "要望等": _f("message"),
    "お名前(フリガナ・姓)": _f("kana01"),
    "お名前(フリガナ名)": _f("kana02"),
    "電話番号1": _tel(1),
    "電話番号2": _tel(2),
    "電話番号3": _tel(3),
    "性別": _f("Sex", "id"),
    "生年月日": _f("birth"),
    "職種": _f("Job", "id"),
    "小計": _f("subtotal"),
    "値引き": _f("discount"),
    "送料": _f("delivery_fee_total"),
    "送料#2": lambda *_: "",  # the shipping's own fee: not in the API's Shipping type
    "手数料": _f("charge"),
    "使用ポイント": _f("use_point"),
    "加算ポイント": _f("add_point"),
    "税金": _f("tax"),
    "合計": _f("total"),
    "支払合計": _f("payment_total"),
    "お支払い合計": _f("payment_total"),
    "対応状況(ID)": _f("OrderStatus", "id"),
    "対応状況(名称)": _f("OrderStatus", "name"),
    "対応状況": _f("OrderStatus", "id"),
    "支払方法(ID)": _f("Payment", "id"),
    "支払方法(名称)": _f("payment_method"),
    "支払い方法": _f("payment_method"),
    "配送業者ID": _ship("Delivery", "id"),
    "SHOPメモ": _f("note"),
    "受注日": _f("order_date"),
    "注文日時": _f("order_date"),
    "入金日": _f("payment_date"),
    "更新日時": _f("update_date"),
    "発送完了日時": _ship("shipping_date"),
    "端末種別ID": lambda o, _i, _s: _get(o, "DeviceType", "id") or 10,
    "配送情報ID": _ship("id"),
    "注文詳細ID": _item("id"),
    "商品ID": _item("Product", "id"),
    "商品規格ID": _item("ProductClass", "id"),
    "商品名": _item("product_name"),
    "商品コード": _item("product_code"),
    "規格名1": _item("class_name1"),
    "規格名2": _item("class_name2"),
    "規格分類名1": _item("class_category_name1"),
    "規格分類名2": _item("class_category_name2"),
    "価格": _item("price"),
    "個数": _item("quantity"),
    "税率": _item("tax_rate"),
    "税率ルール(ID)": _item("tax_rule_id"),
    "明細区分(ID)": _item("OrderItemType", "id"),
    "明細区分(名称)": _item("OrderItemType", "name"),
    "出荷ID": _ship("id"),
    "配送先_お名前(姓)": _ship("name01"),
    "配送先_お名前(名)": _ship("name02"),
    "配送先_お名前(セイ)": _ship("kana01"),
    "配送先_お名前(メイ)": _ship("kana02"),
    "配送先_会社名": _ship("company_name"),
    "配送先_郵便番号": _ship("postal_code"),
    "配送先_都道府県(ID)": _ship("Pref", "id"),
    "配送先_都道府県(名称)": _ship("Pref", "name"),
    "配送先_住所1": _ship("addr01"),
    "配送先_住所2": _ship("addr02"),
    "配送先_TEL": _ship("phone_number"),
    "配送業者(ID)": _ship("Delivery", "id"),
    "配送業者(名称)": _ship("shipping_delivery_name"),
    "お届け時間ID": _ship("time_id"),
    "お届け時間(名称)": _ship("shipping_delivery_time"),
    "お届け希望日": _ship("shipping_delivery_date"),
    "発送日": _ship("shipping_date"),
    "出荷伝票番号": _ship("tracking_number"),
    "配達用メモ": _ship("note"),
    "出荷メール送信日": _ship("mail_send_date"),
}


def _joined(field: str, *path: str) -> Getter:
    """A list of the product's (images, tags) in one cell, comma-separated, as 4.x writes."""

    def get(p: Record, _c: Record, _s: Record) -> str:
        items = p.get(field) or []
        return ",".join(str(v) for i in items if (v := _get(i, *path)) is not None)

    return get


def _first(field: str, *path: str) -> Getter:
    def get(p: Record, _c: Record, _s: Record) -> Any:
        items = p.get(field) or []
        return _get(items[0], *path) if items else None

    return get


def _deleted(p: Record, c: Record, _s: Record) -> int:
    # 2.x has no 廃止 and no hidden class: it deletes (del_flg) what 4.x discontinues
    # or hides.
    return 1 if _get(p, "Status", "id") in (3, "3") or c.get("visible") is False else 0


def _shown(p: Record, _c: Record, _s: Record) -> int:
    # 2.x's 表示ステータス: 1 公開, 2 非公開 (a discontinued product is deleted besides).
    return 1 if _get(p, "Status", "id") in (1, "1") else 2


_EMPTY: Getter = lambda *_: ""  # noqa: E731 - a column the shop leaves empty

_PRODUCT: dict[str, Getter] = {
    "商品ID": _f("id"),
    "公開ステータス(ID)": _f("Status", "id"),
    "公開ステータス(名称)": _f("Status", "name"),
    "商品名": _f("name"),
    "ショップ用メモ欄": _f("note"),
    "商品説明(一覧)": _f("description_list"),
    "商品説明(詳細)": _f("description_detail"),
    "検索ワード": _f("search_word"),
    "フリーエリア": _f("free_area"),
    "商品規格ID": _item("id"),
    "販売種別(ID)": lambda _p, c, _s: _get(c, "SaleType", "id") or 1,
    "販売種別(名称)": lambda _p, c, _s: _get(c, "SaleType", "name") or "販売種別A",
    "規格分類1(ID)": _item("ClassCategory1", "id"),
    "規格分類1(名称)": _item("ClassCategory1", "name"),
    "規格分類2(ID)": _item("ClassCategory2", "id"),
    "規格分類2(名称)": _item("ClassCategory2", "name"),
    "発送日目安(ID)": _item("DeliveryDuration", "id"),
    "発送日目安(名称)": _item("DeliveryDuration", "name"),
    "商品コード": _item("code"),
    "在庫数": _item("stock"),
    "在庫数無制限フラグ": _item("stock_unlimited"),
    "販売制限数": _item("sale_limit"),
    "通常価格": _item("price01"),
    "販売価格": _item("price02"),
    "送料": _item("delivery_fee"),
    "商品画像": _joined("ProductImage", "file_name"),
    "商品カテゴリ(ID)": _joined("ProductCategories", "Category", "id"),
    "商品カテゴリ(名称)": _joined("ProductCategories", "Category", "name"),
    "タグ(ID)": _joined("ProductTag", "Tag", "id"),
    "タグ(名称)": _joined("ProductTag", "Tag", "name"),
    "税率": _item("TaxRule", "tax_rate"),
    "商品規格表示フラグ": _item("visible"),
}

_PRODUCT_2: dict[str, Getter] = {
    **{k: _EMPTY for k in PRODUCTS_2},
    **{k: _PRODUCT[k] for k in ("商品ID", "商品規格ID", "商品名", "商品コード", "在庫数")},
    **{k: _PRODUCT[k] for k in ("販売制限数", "通常価格", "販売価格", "送料")},
    "親規格分類ID": _item("ClassCategory2", "id"),
    "規格分類ID": _item("ClassCategory1", "id"),
    "親規格分類名": _item("ClassCategory2", "name"),
    "規格分類名": _item("ClassCategory1", "name"),
    "表示ステータス(公開・非公開)": _shown,
    "検索ワード(コメント3)": _f("search_word"),
    "備考欄(SHOP専用)": _f("note"),
    "一覧-メインコメント": _f("description_list"),
    "一覧-メイン画像": _first("ProductImage", "file_name"),
    "詳細-メインコメント": _f("description_detail"),
    "詳細-メイン画像": _first("ProductImage", "file_name"),
    "発送日目安ID": _item("DeliveryDuration", "id"),
    "削除フラグ": _deleted,
    "商品種別ID": _PRODUCT["販売種別(ID)"],
    "在庫無制限フラグ": _item("stock_unlimited"),
    "カテゴリID": _PRODUCT["商品カテゴリ(ID)"],
    "カテゴリ名": _PRODUCT["商品カテゴリ(名称)"],
}

# 2.x numbers orders by their id alone.
_ORDER_2: dict[str, Getter] = {"注文番号": _f("id")}


def _text(value: Any, tz: ZoneInfo) -> str:
    """A value as EC-CUBE writes it: dates 'Y-m-d H:i:s' in shop time, whole floats
    without '.0', None as nothing."""
    if value is None:
        return ""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is None else value.astimezone(tz)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _keys(header: Sequence[str]) -> list[str]:
    """The getter's key of each column: a repeated header's later ones are 'name#n'."""
    seen: dict[str, int] = {}
    keys = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def _write(
    path: Path, header: Sequence[str], rows: Iterable[list[str]], version: int, encoding: str
) -> Path:
    # 4.x writes with PHP's fputcsv (quotes where needed, LF); 2.x quotes every field
    # and ends lines with CRLF. Characters cp932 lacks become '?', as mb_convert_encoding
    # leaves them.
    with path.open("w", encoding=encoding, errors="replace", newline="") as handle:
        writer = csv.writer(
            handle,
            quoting=csv.QUOTE_ALL if version == 2 else csv.QUOTE_MINIMAL,
            lineterminator="\r\n" if version == 2 else "\n",
        )
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _check(header: Sequence[str], getters: Mapping[str, Getter]) -> list[Getter]:
    keys = _keys(header)
    unknown = [k for k in keys if k not in getters]
    if unknown:
        raise ValueError(f"no such column in an EC-CUBE export: {', '.join(unknown)}")
    return [getters[k] for k in keys]


def write_customers(
    path: Path,
    customers: Iterable[Record],
    *,
    version: int = 4,
    header: Sequence[str] | None = None,
    encoding: str = "cp932",
    tz: ZoneInfo = TOKYO,
) -> Path:
    """Write ``customers`` as a 会員CSV: 4.x's header set, or 2.x's with mailmaga_flg and
    del_flg; ``header`` picks and orders the columns (as an operator's settings do)."""
    columns = list(header or (CUSTOMERS_4 if version == 4 else CUSTOMERS_2_FLAGS))
    getters = _check(columns, _CUSTOMER)
    rows = ([_text(g(c, {}, {}), tz) for g in getters] for c in customers)
    return _write(path, columns, rows, version, encoding)


def write_orders(
    path: Path,
    orders: Iterable[Record],
    *,
    version: int = 4,
    header: Sequence[str] | None = None,
    encoding: str = "cp932",
    tz: ZoneInfo = TOKYO,
) -> Path:
    """Write ``orders`` as a 受注CSV: 4.x's one row per order item (each with its
    shipping), or 2.x's one row per order; ``header`` picks and orders the columns."""
    columns = list(header or (ORDERS_4 if version == 4 else ORDERS_2))
    getters = _check(columns, _ORDER if version == 4 else {**_ORDER, **_ORDER_2})

    def rows() -> Iterable[list[str]]:
        for order in orders:
            shippings = order.get("Shippings") or [{}]
            if version == 2:
                yield [_text(g(order, {}, shippings[0]), tz) for g in getters]
                continue
            for item in order.get("OrderItems") or []:
                shipping = item.get("Shipping") or {}
                yield [_text(g(order, item, shipping), tz) for g in getters]

    return _write(path, columns, rows(), version, encoding)


def write_products(
    path: Path,
    products: Iterable[Record],
    *,
    version: int = 4,
    header: Sequence[str] | None = None,
    encoding: str = "cp932",
    tz: ZoneInfo = TOKYO,
) -> Path:
    """Write ``products`` as a 商品CSV, one row per product class: 4.x's default header
    set (no 税率, no 商品規格表示フラグ: pass :data:`~.columns.PRODUCTS_4_ALL` for every
    column) or 2.x's; ``header`` picks and orders the columns."""
    columns = list(header or (PRODUCTS_4 if version == 4 else PRODUCTS_2))
    getters = _check(columns, _PRODUCT if version == 4 else _PRODUCT_2)

    def rows() -> Iterable[list[str]]:
        for product in products:
            for product_class in product.get("ProductClasses") or []:
                yield [_text(g(product, product_class, {}), tz) for g in getters]

    return _write(path, columns, rows(), version, encoding)


# --------------------------------------------------------------------------- a seeded shop

_PRODUCTS = (
    ("静岡煎茶 深蒸し 100g", "TEA-001", 1200, 8),
    ("宇治抹茶 30g", "TEA-002", 1800, 8),
    ("ほうじ茶 ティーバッグ 20袋", "TEA-003", 650, 8),
    ("有田焼 湯呑み", "CUP-001", 3200, 10),
    ("南部鉄器 急須", "POT-001", 9800, 10),
)


def _master(table: Mapping[int, str], key: int) -> dict[str, Any]:
    return {"id": str(key), "name": table[key]}


def _item_row(
    item_id: int, kind: int, name: str, price: int, quantity: int, rate: int, **more: Any
) -> dict[str, Any]:
    return {
        "id": str(item_id),
        "product_name": name,
        "price": float(price),
        "quantity": float(quantity),
        "tax_rate": float(rate),
        "OrderItemType": _master(masters.ORDER_ITEM_TYPES, kind),
        **more,
    }


def seed_shop(
    customers: int = 12, orders: int = 30, seed: int = 16
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A small Japanese tea shop, the same for the same arguments: customers (one in
    six withdrawn, with EC-CUBE's dummy address) and orders (some by guests; every
    status, unfinished checkouts among them), as GraphQL-shaped mappings."""
    from faker import Faker  # only when seeding: the import path stays light

    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    pick = random.Random(seed)
    start = dt.datetime(2025, 4, 1, 9, 0, tzinfo=TOKYO)
    people: list[dict[str, Any]] = []
    for n in range(1, customers + 1):
        created = start + dt.timedelta(days=n * 3, hours=pick.randrange(12))
        pref = pick.randrange(1, 48)
        withdrawn = n % 6 == 0
        people.append(
            {
                "id": str(n),
                "name01": fake.last_name(),
                "name02": fake.first_name(),
                "kana01": fake.last_kana_name(),
                "kana02": fake.first_kana_name(),
                "company_name": fake.company() if n % 5 == 0 else None,
                "postal_code": fake.zipcode().replace("-", ""),
                "addr01": fake.city() + fake.town(),
                "addr02": fake.chome() + fake.ban() + fake.gou(),
                "email": "".join(fake.random_letters(60)) + "@dummy.dummy"
                if withdrawn
                else f"member{n}@example.jp",
                "phone_number": fake.phone_number(),
                # Midnight in Tokyo: the day before in UTC, which a birthday must not become.
                "birth": dt.datetime(
                    pick.randrange(1950, 2005),
                    pick.randrange(1, 13),
                    pick.randrange(1, 29),
                    tzinfo=TOKYO,
                ).isoformat(),
                "point": float(pick.randrange(0, 2000)),
                "note": None,
                "create_date": created.isoformat(),
                "update_date": (created + dt.timedelta(days=30)).isoformat(),
                "Status": _master(masters.CUSTOMER_STATUSES, 3 if withdrawn else 2),
                "Sex": _master(masters.SEXES, pick.choice((1, 2, 2, 4))),
                "Job": _master(masters.JOBS, pick.randrange(1, 19)),
                "Pref": _master(masters.PREFECTURES, pref),
                "mailmaga_flg": pick.choice((1, 2, 3)),
            }
        )
    statuses = (5, 5, 5, 6, 1, 4, 3, 8, 7, 9)
    sold: list[dict[str, Any]] = []
    item_id = 0
    for n in range(1, orders + 1):
        buyer = people[pick.randrange(len(people))] if n % 7 else None  # some guests
        ordered = start + dt.timedelta(days=n * 2, hours=pick.randrange(10), minutes=n)
        status = statuses[n % len(statuses)]
        items: list[dict[str, Any]] = []
        subtotal = tax = 0
        shipping = {
            "id": str(n),
            "name01": (buyer or {}).get("name01") or fake.last_name(),
            "name02": (buyer or {}).get("name02") or fake.first_name(),
            "postal_code": fake.zipcode().replace("-", ""),
            "addr01": fake.city(),
            "addr02": fake.town(),
            "shipping_delivery_name": "ヤマト運輸",
            "shipping_date": (ordered + dt.timedelta(days=2)).isoformat() if status == 5 else None,
        }
        for name, code, price, rate in pick.sample(_PRODUCTS, pick.randrange(1, 4)):
            quantity = pick.randrange(1, 4)
            unit_tax = int((Decimal(price * rate) / 100).quantize(Decimal(1), ROUND_HALF_UP))
            subtotal += (price + unit_tax) * quantity
            tax += unit_tax * quantity
            item_id += 1
            items.append(
                _item_row(
                    item_id,
                    masters.PRODUCT,
                    name,
                    price,
                    quantity,
                    rate,
                    product_code=code,
                    tax=float(unit_tax),
                    Product={"id": code[-3:].lstrip("0")},
                    ProductClass={"id": str(_PRODUCTS.index((name, code, price, rate)) + 1)},
                    Shipping=shipping,
                )
            )
        delivery = 0 if subtotal >= 5000 else 800
        item_id += 1
        items.append(_item_row(item_id, 2, "送料", delivery, 1, 10, Shipping=shipping))
        use_point = 0
        if buyer and n % 4 == 0:
            use_point = 100
            item_id += 1
            items.append(_item_row(item_id, 6, "ポイント", -use_point, 1, 0))
        total = subtotal + delivery - use_point
        sold.append(
            {
                "id": str(n),
                "order_no": f"{n:06d}",
                "name01": shipping["name01"],
                "name02": shipping["name02"],
                "kana01": (buyer or {}).get("kana01"),
                "kana02": (buyer or {}).get("kana02"),
                "email": (buyer or {}).get("email") or f"guest{n}@example.jp",
                "phone_number": (buyer or {}).get("phone_number"),
                "postal_code": shipping["postal_code"],
                "addr01": shipping["addr01"],
                "addr02": shipping["addr02"],
                "subtotal": float(subtotal),
                "discount": float(use_point),
                "delivery_fee_total": float(delivery),
                "charge": 0.0,
                "tax": float(tax),
                "total": float(total),
                "payment_total": float(total),
                "use_point": float(use_point),
                "add_point": float(subtotal // 100),
                "payment_method": "クレジットカード",
                "create_date": ordered.isoformat(),
                "update_date": (ordered + dt.timedelta(days=3)).isoformat(),
                "order_date": None if status == 8 else ordered.isoformat(),
                "payment_date": ordered.isoformat() if status in (5, 6) else None,
                "OrderStatus": _master(masters.ORDER_STATUSES, status),
                "Customer": {"id": buyer["id"]} if buyer else None,
                "Pref": (buyer or {}).get("Pref"),
                "OrderItems": items,
                "Shippings": [shipping],
            }
        )
    return people, sold
