"""EC-CUBE products through the Web API: the mapping (tax-included prices, availability,
status), the sandbox's catalogue agreeing with its orders, and an incremental sync into
the store after which only what can be bought is offered."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from omnicrm import Checkpoint, Product, ProductStatus, Stream
from omnicrm.app.config import Connection
from omnicrm.core.store import RunStatus, Store
from omnicrm.crm.products import available_products
from omnicrm.errors import DataError
from omnicrm.plugins.ec_cube import plugin
from omnicrm.plugins.ec_cube.api import channel
from omnicrm.plugins.ec_cube.api.mapping import product_from_node, taxed
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.sandbox.data import ShopData
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox
from omnicrm.testing import stream_context
from tests.support.syncing import engine_for

BASE = "https://shop.example.jp"


def product_class(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "11",
        "code": "MATCHA-100",
        "stock": 5.0,
        "stock_unlimited": False,
        "price01": None,
        "price02": 1800.0,
        "visible": True,
        "currency_code": "JPY",
        "ClassCategory1": {"id": "1", "name": "100g"},
        "ClassCategory2": None,
        "TaxRule": None,
    }
    return {**node, **changes}


def product(*classes: dict[str, Any], **changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "7",
        "name": "宇治抹茶",
        "create_date": "2026-01-05T10:00:00+09:00",
        "update_date": "2026-11-30T20:15:00+09:00",
        "Status": {"id": "1", "name": "公開"},
        "ProductImage": [
            {"file_name": "b.jpg", "sort_no": 2},
            {"file_name": "a.jpg", "sort_no": 1},
        ],
        "ProductTag": [{"Tag": {"name": "おすすめ"}}],
        "ProductClasses": list(classes) or [product_class()],
    }
    return {**node, **changes}


def test_a_product_with_its_class() -> None:
    mapped = product_from_node(product(), base=BASE)
    assert (mapped.id, mapped.title, mapped.status) == ("7", "宇治抹茶", ProductStatus.ACTIVE)
    assert mapped.url == f"{BASE}/products/detail/7"
    assert mapped.image_url == f"{BASE}/html/upload/save_image/a.jpg"  # sort_no 1 first
    assert mapped.tags == ["おすすめ"]
    assert mapped.updated_at == dt.datetime(2026, 11, 30, 11, 15, tzinfo=dt.UTC)
    (variant,) = mapped.variants
    assert (variant.id, variant.sku, variant.title) == ("11", "MATCHA-100", "100g")
    # price02 is before tax: the shop's 10% is added.
    assert (variant.price, variant.available, variant.inventory) == (Decimal(1980), True, 5)


def test_prices_are_taxed_by_the_classs_own_rule_and_rounding() -> None:
    reduced = {"tax_rate": 8.0, "tax_adjust": 0.0, "RoundingType": {"id": "2"}}
    mapped = product_from_node(
        product(product_class(price02=1234.0, price01=1500.0, TaxRule=reduced)), base=BASE
    )
    (variant,) = mapped.variants
    assert variant.price == Decimal(1332)  # 1234 + floor(98.72)
    assert variant.compare_at_price == Decimal(1620)
    assert taxed(Decimal(1234), Decimal(8), 1, Decimal(0)) == Decimal(1333)  # 四捨五入
    assert taxed(Decimal(1234), Decimal(8), 3, Decimal(0)) == Decimal(1333)  # 切り上げ
    assert taxed(Decimal(1001), Decimal(10), None, Decimal(0)) == Decimal(1101)
    shop_rate = product_from_node(product(), base=BASE, tax_rate=Decimal(8))
    assert shop_rate.variants[0].price == Decimal(1944)


@pytest.mark.parametrize(
    ("changes", "available", "inventory"),
    [
        ({"stock": 0.0}, False, 0),
        ({"stock": None, "stock_unlimited": True}, True, None),
        ({"stock": 0.0, "stock_unlimited": True}, True, None),
        ({"visible": False}, False, 5),
    ],
)
def test_availability(changes: dict[str, Any], available: bool, inventory: int | None) -> None:
    (variant,) = product_from_node(product(product_class(**changes)), base=BASE).variants
    assert (variant.available, variant.inventory) == (available, inventory)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("1", ProductStatus.ACTIVE),
        ("2", ProductStatus.DRAFT),
        ("3", ProductStatus.ARCHIVED),
        ("9", ProductStatus.DRAFT),  # a status the shop added: never offered
    ],
)
def test_statuses(status: str, expected: ProductStatus) -> None:
    node = product(Status={"id": status, "name": "x"})
    assert product_from_node(node, base=BASE).status is expected


def test_the_hidden_classless_class_is_left_out() -> None:
    hidden = product_class(id="10", code=None, ClassCategory1=None, visible=False, stock=0.0)
    red = product_class(id="12", code="CUP-RED", ClassCategory1={"id": "2", "name": "朱"})
    mapped = product_from_node(product(hidden, product_class(), red), base=BASE)
    assert [v.id for v in mapped.variants] == ["11", "12"]
    # A product's only class is never left out, hidden or not.
    (alone,) = product_from_node(product(hidden), base=BASE).variants
    assert (alone.id, alone.available) == ("10", False)


@pytest.mark.parametrize(
    ("node", "named"),
    [
        (product(name=None), "EC-CUBE product 7: name is missing"),
        (product(update_date="yesterday"), "update_date is not an ISO 8601"),
        (product(product_class(price02=None)), "ProductClasses[0].price02 is missing"),
        (product(product_class(visible="yes")), "ProductClasses[0].visible"),
        (product(product_class(stock=1.5)), "EC-CUBE product 7: stock is not a whole"),
        (product(ProductClasses="x"), "ProductClasses is not a list"),
    ],
)
def test_bad_nodes_name_the_product_and_field(node: dict[str, Any], named: str) -> None:
    with pytest.raises(DataError, match=named.replace("[", r"\[").replace("]", r"\]")):
        product_from_node(node, base=BASE)


def _products(settings: EccubeSettings, since: dt.datetime | None = None) -> list[Product]:
    values: BaseModel = settings
    ctx = stream_context("ec_cube", values, Stream.PRODUCTS, since=since, connection="shop")
    return [p for p in channel.sync_products(ctx) if not isinstance(p, Checkpoint)]


def test_the_catalogue_holds_every_product_the_orders_buy(shop: ShopData) -> None:
    assert len(shop.products) >= 200
    classes = {
        c["id"]: (row.id, c["code"])
        for row in shop.products.values()
        for c in row.node["ProductClasses"]
    }
    for order in shop.orders.values():
        for item in order.node["OrderItems"]:
            if item["ProductClass"] is None:
                continue
            owner, code = classes[item["ProductClass"]["id"]]
            assert (str(owner), code) == (item["Product"]["id"], item["ProductClass"]["code"])


def test_a_full_read_is_every_product_in_every_status(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    found = _products(settings)
    assert {p.id for p in found} == {str(i) for i in sandbox.products.rows}
    assert {p.status for p in found} == set(ProductStatus)  # discontinued ones asked for
    stamps = [p.updated_at for p in found]
    assert stamps == sorted(stamps)
    variants = [v for p in found for v in p.variants]
    assert any(not v.available and v.inventory == 0 for v in variants)  # sold out
    assert any(v.available and v.inventory is None for v in variants)  # stock_unlimited
    assert '"3"' in next(q for q in sandbox.queries if "products(" in q)


def test_an_incremental_read_starts_at_since(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    found = _products(settings)
    since = found[len(found) // 2].updated_at
    later = _products(settings, since)
    assert {p.id for p in later} == {p.id for p in found if p.updated_at >= since}
    assert len(later) < len(found)


def test_a_class_sold_out_by_a_sale_is_read_though_its_product_is_not_stamped(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    found = _products(settings)
    since = found[-1].updated_at + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (since - dt.datetime.now(dt.UTC)).total_seconds()))
    assert _products(settings, since) == []
    old = next(p for p in found if p.id == "1")
    sandbox.sell(1, "1", 1_000)
    (later,) = _products(settings, since)
    assert later.id == "1" and later.updated_at >= since
    assert (later.variants[0].available, later.variants[0].inventory) == (False, 0)
    assert old.variants[0].available


def test_sync_into_the_store_and_offer_only_what_can_be_bought(
    store: Store, sandbox: EccubeSandbox, live_connection: Connection
) -> None:
    engine = engine_for(store, "ec_cube", plugin)
    connection = live_connection
    first = engine.sync(connection)
    assert first.status is RunStatus.COMPLETE, first.error
    stored = {p.id: p for p in store.products("shop")}
    assert len(stored) == len(sandbox.products.rows)
    with store.engine.connect() as conn:
        offered = available_products(conn, "default")
    buyable = {
        v.sku
        for p in stored.values()
        if p.status is ProductStatus.ACTIVE
        for v in p.variants
        if v.available and v.sku
    }
    every = {v.sku for p in stored.values() for v in p.variants if v.sku}
    assert set(offered) == buyable and buyable < every
    assert "SKU-014" not in offered  # the spring set: sold out
    assert offered["SKU-017"].price == Decimal(330)  # the gift box: 300 + 10%
    assert offered["SKU-001"].price == Decimal(1944)  # matcha: 1800 + 8% (food)
    assert offered["SKU-001"].url and offered["SKU-001"].url.endswith("/products/detail/1")

    # The matcha sells out (a sale stamps only its class); a discontinued product
    # comes back on sale (the admin saves the product).
    matcha = sandbox.products.rows[1]
    before = matcha.updated
    sandbox.sell(1, "1", int(matcha.node["ProductClasses"][0]["stock"]))
    assert matcha.updated == before
    back = next(i for i, r in sandbox.products.rows.items() if r.status == "3")
    sandbox.update("product", back, {"Status": {"id": "1", "name": "公開"}})
    time.sleep(1.1)  # reads end at the run's whole second: the updates' second is past
    second = engine.sync(connection)
    assert second.status is RunStatus.COMPLETE, second.error
    assert second.streams[Stream.PRODUCTS].written == 2
    with store.engine.connect() as conn:
        now_offered = available_products(conn, "default")
    assert "SKU-001" not in now_offered
    revived = store.products("shop")
    assert next(p for p in revived if p.id == str(back)).status is ProductStatus.ACTIVE
