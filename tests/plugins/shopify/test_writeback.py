"""The Shopify plugin's coupons and recommendation metafields, against the sandbox over
loopback HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from omnicrm import (
    CouponSpec,
    DiscountKind,
    Owner,
    RecommendedItem,
    WriteContext,
    WriteTarget,
)
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.client import ShopifyClient
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.writeback import CODES_PER_CALL, METAFIELDS_PER_CALL

SPEC = CouponSpec(
    title="omnicrm winter",
    kind=DiscountKind.FIXED_AMOUNT,
    value=Decimal(500),
    currency="JPY",
    starts_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    ends_at=dt.datetime(2027, 1, 31, 15, tzinfo=dt.UTC),
    minimum_subtotal=Decimal(3000),
    prefix="WIN",
)


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=30, seed=5, bucket_size=4000, restore_rate=40_000) as server:
        server.writes.creation_seconds = 0.05
        yield server


def ctx(shop: ShopifySandbox) -> WriteContext[ShopifySettings]:
    return WriteContext(
        "tokyo-tea", "shopify", ShopifySettings(**shop.settings()), logging.getLogger("test")
    )


def test_the_channel_offers_both_capabilities() -> None:
    assert plugin.CHANNEL.coupons is not None and plugin.CHANNEL.recommendations is not None


def test_codes_go_up_in_batches_under_one_discount(shop: ShopifySandbox) -> None:
    codes = [f"WIN-{i:06d}" for i in range(2 * CODES_PER_CALL + 11)]
    assert plugin.CHANNEL.coupons is not None
    made = plugin.CHANNEL.coupons.create(ctx(shop), SPEC, codes)
    assert sorted(made.created) == codes and not made.refused
    assert shop.stats.operations["DiscountCreate"] == 1
    assert shop.stats.operations["DiscountCodesAdd"] == 3  # 210 after the first, 100 a call
    held = {shop.writes.by_code(c)["id"] for c in codes}  # type: ignore[index]
    assert held == {made.discount_id}
    discount = shop.writes.discounts[int(made.discount_id.rsplit("/", 1)[1])]
    assert (discount.amount, discount.minimum, discount.usage_limit) == (
        Decimal(500),
        Decimal(3000),
        1,
    )


def test_a_taken_code_is_refused_and_a_repeat_adopts_what_it_made(shop: ShopifySandbox) -> None:
    coupons = plugin.CHANNEL.coupons
    assert coupons is not None
    other = dataclasses.replace(SPEC, title="the shop's own")
    mine = coupons.create(ctx(shop), other, ["WIN-TAKEN1", "WIN-TAKEN2"])
    assert not mine.refused
    # The first code and one later code are another discount's.
    made = coupons.create(ctx(shop), SPEC, ["WIN-TAKEN1", "WIN-A", "WIN-TAKEN2", "WIN-B"])
    assert set(made.refused) == {"WIN-TAKEN1", "WIN-TAKEN2"}
    assert "unique" in made.refused["WIN-TAKEN2"]
    assert sorted(made.created) == ["WIN-A", "WIN-B"] and made.discount_id != mine.discount_id
    # A crash lost the answer: the same call again finds the codes it already made.
    again = coupons.create(ctx(shop), SPEC, ["WIN-A", "WIN-B", "WIN-C"])
    assert again.discount_id == made.discount_id
    assert sorted(again.created) == ["WIN-A", "WIN-B", "WIN-C"] and not again.refused


def _item(product: str, score: float) -> RecommendedItem:
    return RecommendedItem(product, "handle-" + product.rsplit("/", 1)[1], score, "一緒に購入")


def test_metafields_are_written_25_at_a_time_and_a_refused_owner_is_left_out(
    shop: ShopifySandbox,
) -> None:
    writer = plugin.CHANNEL.recommendations
    assert writer is not None
    products = [p["id"] for p in _products(shop)]
    customers = _customers(shop)
    targets = [
        WriteTarget(Owner.CUSTOMER, c, (_item(products[0], 0.9), _item(products[1], 0.5)))
        for c in customers
    ]
    targets.insert(3, WriteTarget(Owner.PRODUCT, "gid://shopify/Product/1", ()))
    targets.append(WriteTarget(Owner.PRODUCT, products[0], (_item(products[2], 1.0),)))
    refused = writer.write(ctx(shop), targets)
    assert set(refused) == {"gid://shopify/Product/1"}
    # 32 targets: 25 then 7, and the first batch again without the refused owner.
    assert shop.stats.operations["MetafieldsSet"] == 3
    assert METAFIELDS_PER_CALL == 25
    stored = shop.metafield(customers[0], "omnicrm", "recommendations")
    assert stored is not None and stored["type"] == "json"
    assert json.loads(stored["value"])[0] == {
        "product_id": products[0],
        "handle": "handle-" + products[0].rsplit("/", 1)[1],
        "score": 0.9,
        "reason": "一緒に購入",
    }
    also = shop.metafield(products[0], "omnicrm", "also_bought")
    assert also is not None and also["type"] == "list.product_reference"
    assert json.loads(also["value"]) == [products[2]]


def _products(shop: ShopifySandbox) -> list[dict[str, Any]]:
    with ShopifyClient(ShopifySettings(**shop.settings())) as client:
        data = client.execute("Products", {"first": 3, "variants": 1, "query": None}).data
    nodes: list[dict[str, Any]] = data["products"]["nodes"]
    return nodes


def _customers(shop: ShopifySandbox) -> list[str]:
    with ShopifyClient(ShopifySettings(**shop.settings())) as client:
        data = client.execute("Customers", {"first": 30, "query": None}).data
    return [node["id"] for node in data["customers"]["nodes"]]
