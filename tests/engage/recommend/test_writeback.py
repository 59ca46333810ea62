"""The recommendation write-back: a shop synced from the Shopify sandbox (over loopback),
its recommendations stored in metafields, and only what changed written again."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from omnicrm.app.config import Config, SchedulerSection, Shop
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.core.writeback import Owner
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.recommend import shop_catalogue, shop_history
from omnicrm.engage.recommend.writeback import targets, write_back, writing_connections
from omnicrm.engage.schema import writeback_state
from omnicrm.engage.settings import DEFAULT_WEIGHTS, RecommendSettings
from omnicrm.plugins.recommenders import plugin as recommenders
from omnicrm.plugins.shopify import plugin as shopify
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings

SHOP = "default"


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with ShopifySandbox(
        customers=60, seed=11, end=end, bucket_size=4000, restore_rate=40_000
    ) as server:
        yield server


@pytest.fixture
def host() -> Host:
    loaded = Host.load(
        extra={"shopify": shopify, "recommenders": recommenders}, use_entry_points=False
    )
    assert not loaded.failures, loaded.failures
    return loaded


def synced(store: Store, host: Host, platform: Connection) -> None:
    engine = SyncEngine(host, store, retry=RetryPolicy(attempts=2, base=0.01))
    run = engine.sync(platform)
    assert run.status is RunStatus.COMPLETE, run.error
    refresh(store, CrmSettings())


def test_recommendations_land_in_metafields_and_only_changes_are_rewritten(
    store: Store, host: Host, shop: ShopifySandbox
) -> None:
    platform = Connection(
        name="tokyo-tea", channel="shopify", settings=ShopifySettings(**shop.settings())
    )
    assert writing_connections(host, [platform], shop=SHOP) == [platform]
    synced(store, host, platform)
    # A product deleted on Shopify since the sync: one with an "also bought" list of its
    # own, named in as few others' as can be. Its write is refused, and those naming it.
    with store.engine.connect() as conn:
        planned = targets(
            conn,
            host,
            shop_history(store.engine, SHOP),
            shop_catalogue(conn, SHOP),
            shop=SHOP,
            connection="tokyo-tea",
            limit=5,
        )
    lists = {t.owner_id: t.items for t in planned if t.owner is Owner.PRODUCT and t.items}
    assert len(lists) > 5
    named = Counter(i.product_id for items in lists.values() for i in items)
    gone = min(lists, key=lambda product: (named[product], product))
    shop.delete_product(gone)
    naming = {p for p, items in lists.items() if gone in {i.product_id for i in items}}
    now = dt.datetime.now(dt.UTC)

    first = write_back(store, host, platform, limit=5, now=now)
    assert set(first.refused) == {gone} | naming
    assert "Owner does not exist" in first.refused[gone]
    assert all(gone in first.refused[p] for p in naming)
    written = first.written["customer"] + first.written["product"]
    assert first.written["customer"] > 30
    assert first.written["product"] == len(lists) - 1 - len(naming)
    assert shop.stats.operations["MetafieldsSet"] >= math.ceil(written / 25)

    with store.engine.connect() as conn:
        state = conn.execute(select(writeback_state.c.owner, writeback_state.c.owner_id)).all()
    assert len(state) == written
    customer = next(owner_id for owner, owner_id in state if owner == "customer")
    stored = shop.metafield(customer, "omnicrm", "recommendations")
    assert stored is not None and stored["type"] == "json"
    items = json.loads(stored["value"])
    assert 1 <= len(items) <= 5
    assert all(i["product_id"].startswith("gid://shopify/Product/") for i in items)
    assert all(i["handle"] and i["reason"] and i["score"] > 0 for i in items)
    product = next(owner_id for owner, owner_id in state if owner == "product")
    also = shop.metafield(product, "omnicrm", "also_bought")
    assert also is not None and also["type"] == "list.product_reference"
    assert product not in json.loads(also["value"])

    # Nothing changed: nothing is written (the refused product is tried again).
    calls = shop.stats.operations["MetafieldsSet"]
    second = write_back(store, host, platform, limit=5, now=now)
    assert second.written == {"customer": 0, "product": 0}
    assert second.refused == first.refused
    # Only the refused ones went again: one call, which Shopify refused whole.
    assert shop.stats.operations["MetafieldsSet"] == calls + 1

    # A customer buys more: their recommendations (and some products') change.
    buyer = customer
    for _ in range(3):
        shop.create_order(buyer)
    synced(store, host, platform)
    third = write_back(store, host, platform, limit=5, now=now)
    assert 0 < third.written["customer"] + third.written["product"] < written


def test_the_write_back_merges_with_the_shops_weights(
    store_url: str, host: Host, shop: ShopifySandbox
) -> None:
    platform = Connection(
        name="tokyo-tea", channel="shopify", settings=ShopifySettings(**shop.settings())
    )

    def runtime(weights: dict[str, float]) -> Runtime:
        tuned = Shop(id=SHOP, name="東京茶舗", recommend=RecommendSettings(weights=weights))
        config = Config(None, store_url, SchedulerSection(), {platform.name: platform})
        return Runtime(host, dataclasses.replace(config, shops={SHOP: tuned}))

    only_reorder = runtime({"also-bought": 0, "segment-popular": 0})
    try:
        synced(only_reorder.store, host, platform)
        [first] = only_reorder.write_back()
        with only_reorder.store.engine.connect() as conn:
            state = conn.execute(select(writeback_state.c.owner, writeback_state.c.owner_id)).all()
    finally:
        only_reorder.close()
    # Also-bought, the only one answering for a product, was left out: no product lists.
    assert first.written["product"] == 0 and first.written["customer"] > 0
    reasons = [
        item["reason"]
        for owner, owner_id in state
        if owner == "customer"
        for item in json.loads(shop.metafield(owner_id, "omnicrm", "recommendations")["value"])
    ]
    assert reasons and all("日ごとに購入" in reason for reason in reasons)  # reorder's only

    every = runtime(dict(DEFAULT_WEIGHTS))
    try:
        [second] = every.write_back()
    finally:
        every.close()
    assert second.written["product"] > 5 and second.written["customer"] > 0
