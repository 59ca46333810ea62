"""Shopify products: what the sandbox serves agrees with its orders, the plugin maps it
(availability, status, links), and syncs it incrementally into the store."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from omnicrm import Checkpoint, Product, ProductStatus, Stream
from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.crm.products import available_products
from omnicrm.errors import DataError
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.mapping import product_from_node
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.testing import stream_context
from omnicrm.webhooks import Delete, Upsert, WebhookInvalid, hmac_sha256

END = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(
        customers=40, seed=8, end=END, bucket_size=4000, restore_rate=40_000
    ) as server:
        yield server


def products(
    shop: ShopifySandbox, since: dt.datetime | None = None, **changes: Any
) -> list[Product]:
    settings = ShopifySettings(**{**shop.settings(), **changes})
    ctx = stream_context("shopify", settings, Stream.PRODUCTS, since=since)
    return [p for p in plugin.omnicrm_sync_products(ctx) if not isinstance(p, Checkpoint)]


def test_every_variant_an_order_line_names_is_a_product_variant(shop: ShopifySandbox) -> None:
    read = products(shop)
    variants = {v.id: (p, v) for p in read for v in p.variants}
    settings = ShopifySettings(**shop.settings())
    ctx = stream_context("shopify", settings, Stream.ORDERS, since=LONG_AGO)
    lines = [
        line
        for order in plugin.omnicrm_import_orders(ctx)
        if not isinstance(order, Checkpoint)
        for line in order.lines
    ]
    # A custom line (gift wrapping, a fee) names no variant.
    named = [line for line in lines if line.variant_id is not None]
    assert len(named) > len(lines) * 0.8
    for line in named:
        owner, found = variants[line.variant_id]
        assert (owner.id, found.sku) == (line.product_id, line.sku)


def test_products_carry_availability_status_links_and_prices(shop: ShopifySandbox) -> None:
    read = products(shop)
    assert read == sorted(read, key=lambda p: p.updated_at)
    statuses = {p.status for p in read}
    assert statuses == {ProductStatus.ACTIVE, ProductStatus.DRAFT, ProductStatus.ARCHIVED}
    sold_out = [v for p in read for v in p.variants if not v.available]
    assert sold_out and all(v.inventory == 0 for v in sold_out)
    for p in read:
        assert p.currency == "JPY" and p.handle and p.url
        assert p.url.endswith(f"/products/{p.handle}")
        assert all(v.price > 0 and v.sku for v in p.variants)
        assert p.raw["id"] == p.id


def test_a_product_with_more_variants_than_a_page_gets_all_of_them(shop: ShopifySandbox) -> None:
    whole = {p.id: p for p in products(shop)}
    paged = {p.id: p for p in products(shop, variants_page_size=1)}
    assert paged == whole
    assert max(len(p.variants) for p in paged.values()) > 1


def test_a_read_from_a_cursor_yields_what_changed_since(shop: ShopifySandbox) -> None:
    read = products(shop)
    since = dt.datetime.now(dt.UTC)
    changed = shop.update_product(read[0].id, available=False)
    again = products(shop, since=since - dt.timedelta(seconds=1))
    assert [p.id for p in again] == [changed["id"]]
    assert not any(v.available for v in again[0].variants)


def test_a_node_the_mapping_cannot_read_names_the_product_and_field() -> None:
    node = {
        "id": "gid://shopify/Product/1",
        "title": "宇治抹茶",
        "status": "ACTIVE",
        "updatedAt": "2026-03-01T00:00:00Z",
        "variants": {"nodes": [{"id": "gid://shopify/ProductVariant/2", "price": 1.5}]},
    }
    with pytest.raises(
        DataError, match=r"product gid://shopify/Product/1: field 'variants\[0\]\.price'"
    ):
        product_from_node(node, "tea.myshopify.com")
    node["variants"] = {"nodes": []}
    node["onlineStoreUrl"] = None
    node["handle"] = "uji"
    mapped = product_from_node(node, "tea.myshopify.com", currency="USD")
    assert (mapped.url, mapped.currency) == ("https://tea.myshopify.com/products/uji", "USD")


def test_sync_into_the_store_and_offer_only_what_can_be_bought(
    store: Store, shop: ShopifySandbox
) -> None:
    host = Host.load(use_entry_points=False, extra={"shopify": plugin})
    engine = SyncEngine(host, store, retry=RetryPolicy(attempts=3, base=0.01))
    connection = Connection(
        name="tokyo-tea",
        channel="shopify",
        settings=ShopifySettings(**shop.settings()),
        lookback=dt.timedelta(minutes=5),
        batch_size=5,
    )
    first = engine.sync(connection)
    assert first.status is RunStatus.COMPLETE, first.error
    stored = {p.id: p for p in store.products("tokyo-tea")}
    assert len(stored) == first.streams[Stream.PRODUCTS].written == len(products(shop))
    assert store.stream_state("tokyo-tea", Stream.PRODUCTS).cursor is not None
    with store.engine.connect() as conn:
        offered = available_products(conn, "default")
    skus = {v.sku for p in stored.values() for v in p.variants}
    buyable = {
        v.sku
        for p in stored.values()
        if p.status is ProductStatus.ACTIVE
        for v in p.variants
        if v.available
    }
    assert set(offered) == buyable and buyable < skus

    # A best seller sells out; an archived product is put back on sale.
    best = next(iter(offered.values()))
    archived = next(p for p in stored.values() if p.status is ProductStatus.ARCHIVED)
    shop.update_product(best.product_id, available=False)
    shop.update_product(archived.id, status="ACTIVE")
    second = engine.sync(connection)
    assert second.status is RunStatus.COMPLETE, second.error
    assert second.streams[Stream.PRODUCTS].written == 2
    with store.engine.connect() as conn:
        now_offered = available_products(conn, "default")
    assert best.key not in now_offered
    assert {v.sku for v in archived.variants if v.available} <= set(now_offered)
    assert now_offered[next(iter(now_offered))].price > Decimal(0)


def _event(shop: ShopifySandbox, topic: str, body: dict[str, Any]) -> Any:
    from omnicrm.plugins.shopify.webhooks import ShopifyWebhooks

    secret = "shpss_products"
    settings = ShopifySettings(**{**shop.settings(), "client_secret": secret})
    connection = Connection(name="tokyo-tea", channel="shopify", settings=settings)
    raw = json.dumps(body).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac_sha256(secret, raw)).decode(),
        "X-Shopify-Shop-Domain": settings.domain,
        "X-Shopify-Event-Id": f"event-{topic}",
    }
    receiver = ShopifyWebhooks()
    event = receiver.verify(headers, raw, [connection])
    return list(receiver.actions(event, connection))


def test_product_webhooks_fetch_the_product_or_delete_it(shop: ShopifySandbox) -> None:
    first = products(shop)[0]
    number = int(first.id.rsplit("/", 1)[1])
    shop.update_product(first.id, title="宇治抹茶 (限定)")
    (action,) = _event(shop, "products/update", {"id": number, "admin_graphql_api_id": first.id})
    assert isinstance(action, Upsert) and isinstance(action.record, Product)
    assert action.record.title == "宇治抹茶 (限定)"
    assert action.record.variants == first.variants
    shop.delete_product(first.id)
    (gone,) = _event(shop, "products/update", {"id": number, "admin_graphql_api_id": first.id})
    assert gone == Delete("products", [first.id])
    (deleted,) = _event(shop, "products/delete", {"id": number})
    assert deleted == Delete("products", [first.id])
    with pytest.raises(WebhookInvalid, match="products/delete payload"):
        _event(shop, "products/delete", {"id": number, "title": "extra"})
