"""Square's catalogue: the sandbox's items are what its sales' lines name, the reader
yields them in update order from any point, and the mapping says what can be sold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from omnicrm import Checkpoint, Product, ProductStatus, Stream
from omnicrm.errors import DataError
from omnicrm.plugins.pos.square import channel
from omnicrm.plugins.pos.square.mapping import product_from_square
from omnicrm.plugins.pos.square.sandbox import SquareSandbox
from omnicrm.plugins.pos.square.settings import SquareSettings
from omnicrm.testing import stream_context


def read(settings: SquareSettings, since: dt.datetime | None = None) -> list[Product]:
    ctx = stream_context("square", settings, Stream.PRODUCTS, since=since)
    return [p for p in channel.sync_products(ctx) if not isinstance(p, Checkpoint)]


def test_every_line_of_a_sale_names_a_variation_of_the_catalogue(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    products = read(settings)
    assert [p.updated_at for p in products] == sorted(p.updated_at for p in products)
    variations = {v.id: (p, v) for p in products for v in p.variants}
    lines = [line for order in sandbox.data.orders.values() for line in order.get("line_items", [])]
    assert lines
    for line in lines:
        product, variant = variations[line["catalog_object_id"]]
        assert variant.price == Decimal(line["base_price_money"]["amount"])
        assert product.title == line["name"]
    assert {p.product_type for p in products} >= {"茶葉", "雑貨"}


def test_archived_and_sold_out_items_cannot_be_bought(settings: SquareSettings) -> None:
    products = {p.variants[0].sku: p for p in read(settings)}
    retired = [p for sku, p in products.items() if sku and sku.startswith("TRN-")]
    assert retired and all(p.status is ProductStatus.ARCHIVED for p in retired)
    assert not any(v.available for p in retired for v in p.variants)
    assert not products["GYO-04"].variants[0].available
    assert products["GYO-04"].status is ProductStatus.ACTIVE
    assert products["MAT-01"].variants[0].available


def test_a_read_from_a_cursor_yields_what_changed_since(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    products = read(settings)
    latest = products[-1].updated_at
    assert [p.id for p in read(settings, latest)] == [
        p.id for p in products if p.updated_at >= latest
    ]
    moment = latest + dt.timedelta(minutes=3)
    sandbox.data.update_item("MAT-01", moment, is_archived=True)
    (changed,) = read(settings, latest + dt.timedelta(seconds=1))
    assert changed.updated_at == moment and changed.status is ProductStatus.ARCHIVED
    sandbox.data.update_item("MAT-01", moment + dt.timedelta(seconds=1), is_archived=False)


def test_an_item_the_mapping_cannot_read_names_the_item_and_field() -> None:
    item = {
        "type": "ITEM",
        "id": "ITEM1",
        "updated_at": "2026-11-01T01:00:00.000Z",
        "item_data": {
            "name": "宇治抹茶",
            "variations": [
                {
                    "type": "ITEM_VARIATION",
                    "id": "VAR1",
                    "item_variation_data": {"price_money": {"amount": "1200", "currency": "JPY"}},
                }
            ],
        },
    }
    with pytest.raises(
        DataError,
        match=r"catalog item ITEM1: field 'item_data\.variations\[0\]\.item_variation_data"
        r"\.price_money\.amount' is not an integer",
    ):
        product_from_square(item)
