"""Smaregi products: the sandbox serves the products its sales name, the channel reads
them incrementally, and the mapping says what can be sold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from omnicrm import Checkpoint, Product, ProductStatus, Stream
from omnicrm.errors import DataError
from omnicrm.plugins.pos.smaregi import channel
from omnicrm.plugins.pos.smaregi.mapping import product_from_record
from omnicrm.plugins.pos.smaregi.sandbox.server import SmaregiSandbox
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings
from omnicrm.testing import stream_context


def read(settings: SmaregiSettings, since: dt.datetime | None = None) -> list[Product]:
    ctx = stream_context("smaregi", settings, Stream.PRODUCTS, since=since)
    return [p for p in channel.sync_products(ctx) if not isinstance(p, Checkpoint)]


def test_every_product_a_sale_names_is_served_with_its_code_and_price(
    sandbox: SmaregiSandbox, settings: SmaregiSettings
) -> None:
    products = {p.id: p for p in read(settings)}
    assert list(products.values()) == sorted(products.values(), key=lambda p: p.updated_at)
    for sale in sandbox.data.sales[:300]:
        for line in sale.lines:
            product = products[str(line.product.id)]
            (variant,) = product.variants
            assert variant.sku == line.product.code
            assert variant.price == Decimal(line.product.price)
    teas = [p for p in products.values() if p.product_type == "茶葉"]
    assert teas and all(p.currency == "JPY" for p in teas)


def test_retired_and_unsellable_products_are_not_available(settings: SmaregiSettings) -> None:
    products = read(settings)
    retired = [p for p in products if p.variants[0].sku and p.variants[0].sku.startswith("TRN-")]
    assert retired and all(p.status is ProductStatus.ARCHIVED for p in retired)
    assert all(not p.variants[0].available for p in retired)
    (wrap,) = [p for p in products if p.variants[0].sku == "WRAP"]
    assert wrap.status is ProductStatus.ACTIVE and not wrap.variants[0].available
    on_sale = [p for p in products if p.variants[0].available]
    assert len(on_sale) == len(products) - len(retired) - 1


def test_a_read_from_a_cursor_yields_what_changed_since(
    sandbox: SmaregiSandbox, settings: SmaregiSettings
) -> None:
    products = read(settings)
    since = max(p.updated_at for p in products) + dt.timedelta(seconds=1)
    assert read(settings, since) == []
    sandbox.update_product(products[0].id, displayFlag="0")
    (changed,) = read(settings, since)
    assert changed.id == products[0].id and changed.status is ProductStatus.ARCHIVED


def test_a_record_the_mapping_cannot_read_names_the_product_and_field() -> None:
    record = {
        "productId": "8001",
        "productName": "宇治抹茶",
        "price": "1,2x0",
        "updDateTime": "2026-11-01T10:00:00+09:00",
    }
    with pytest.raises(DataError, match="Smaregi product 8001: price is not a number"):
        product_from_record(record, {})
    record["price"] = "1200"
    record["updDateTime"] = "2026-11-01T10:00:00"
    with pytest.raises(DataError, match="Smaregi product 8001: updDateTime has no time zone"):
        product_from_record(record, {})
