"""Shopify abandoned checkouts: the sandbox serves them, the plugin maps and reads them
incrementally, and synced into the store they become the profile's
``abandoned_checkout_date``, usable in a segment and cleared by an order or completion."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from omnicrm import Checkout, Checkpoint, Stream
from omnicrm.app.config import Connection
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import checkouts as checkouts_table
from omnicrm.crm.refresh import refresh
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.crm.segments import members
from omnicrm.errors import DataError
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.checkouts import checkout_from_node
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.data import customer_number, gid
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.testing import stream_context
from tests.support.syncing import abandoned_at, engine_for

END = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
SEGMENT = "abandoned_checkout_date > -3d"


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(
        customers=60, seed=8, end=END, bucket_size=4000, restore_rate=40_000
    ) as server:
        yield server


def checkouts(shop: ShopifySandbox, since: dt.datetime | None = None) -> list[Checkout]:
    settings = ShopifySettings(**shop.settings())
    ctx = stream_context("shopify", settings, Stream.CHECKOUTS, since=since)
    return [c for c in plugin.omnicrm_sync_checkouts(ctx) if not isinstance(c, Checkpoint)]


def node(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "gid://shopify/AbandonedCheckout/7",
        "createdAt": "2026-12-01T01:00:00Z",
        "updatedAt": "2026-12-01T01:20:00Z",
        "completedAt": None,
        "abandonedCheckoutUrl": "https://tea.myshopify.com/checkouts/abc/recover",
        "customer": {"id": "gid://shopify/Customer/42"},
        "totalPriceSet": {"shopMoney": {"amount": "3240.0", "currencyCode": "JPY"}},
        "lineItems": {
            "pageInfo": {"hasNextPage": False},
            "nodes": [
                cart_line(2, "煎茶 やぶきた", "100g", "SEN-100", 1200),
                cart_line(1, "急須", "Default Title", None, 840),
            ],
        },
    }
    return {**base, **changes}


def cart_line(
    quantity: int, title: str | None, variant_title: str | None, sku: str | None, price: int
) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "title": title,
        "variantTitle": variant_title,
        "sku": sku,
        "product": {"id": "gid://shopify/Product/5"},
        "variant": {"id": f"gid://shopify/ProductVariant/{price}"},
        "originalUnitPriceSet": {"shopMoney": {"amount": f"{price}.0", "currencyCode": "JPY"}},
    }


def test_a_node_becomes_a_checkout() -> None:
    checkout = checkout_from_node(node())
    assert checkout.id == "gid://shopify/AbandonedCheckout/7"
    assert checkout.customer_id == "gid://shopify/Customer/42"
    assert (checkout.total, checkout.currency, checkout.item_count) == (Decimal(3240), "JPY", 3)
    assert checkout.created_at == dt.datetime(2026, 12, 1, 1, tzinfo=dt.UTC)
    assert checkout.completed_at is None
    assert checkout.recovery_url == "https://tea.myshopify.com/checkouts/abc/recover"
    # The line item has no name: title and variant title make one, as an order's line.
    assert [(ln.product_name, ln.quantity, ln.unit_price, ln.sku) for ln in checkout.lines] == [
        ("煎茶 やぶきた - 100g", 2, Decimal(1200), "SEN-100"),
        ("急須", 1, Decimal(840), None),
    ]
    assert checkout.lines[0].variant_id == "gid://shopify/ProductVariant/1200"
    assert checkout.lines[0].product_id == "gid://shopify/Product/5"
    guest = checkout_from_node(node(customer=None, completedAt="2026-12-01T02:00:00Z"))
    assert guest.customer_id is None and guest.completed_at is not None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"createdAt": None}, "createdAt"),
        ({"updatedAt": "yesterday"}, "updatedAt"),
        ({"customer": {"id": "42"}}, "customer"),
    ],
)
def test_a_bad_node_names_the_checkout_and_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(
        DataError, match=rf"AbandonedCheckout/7.*{named}|{named}.*AbandonedCheckout/7"
    ):
        checkout_from_node(node(**changes))


def test_the_sandbox_serves_every_checkout_and_a_read_from_a_cursor_the_rest(
    shop: ShopifySandbox,
) -> None:
    found = checkouts(shop)
    assert len(found) == len(shop.data.checkouts) >= 3
    stamps = [c.updated_at for c in found]
    assert stamps == sorted(stamps)
    assert any(c.completed_at is not None for c in found)
    assert any(c.completed_at is None for c in found)
    # Each cart's lines name the catalogue's products and add up to its item count.
    titles = {v.title for v in shop.data.variants}
    for c in found:
        assert c.lines and sum(ln.quantity for ln in c.lines) == c.item_count
        assert all(ln.product_name.split(" - ")[0] in titles for ln in c.lines)
        assert all(ln.unit_price > 0 and ln.variant_id and ln.sku for ln in c.lines)
    since = found[len(found) // 2].updated_at
    later = checkouts(shop, since)
    assert {c.id for c in later} == {c.id for c in found if c.updated_at >= since}


def _in_segment(store: Store, customer: str) -> bool:
    with store.engine.connect() as conn:
        pid = conn.execute(
            select(profile_members.c.profile_id).where(profile_members.c.record_id == customer)
        ).scalar_one()
        found = members(conn, SEGMENT, dt.datetime.now(dt.UTC), limit=10_000, shop="default")
    return pid in {m.id for m in found}


def test_a_cart_left_is_a_segment_until_completed_or_an_order_follows(
    store: Store, shop: ShopifySandbox
) -> None:
    engine = engine_for(store, "shopify", plugin)
    connection = Connection(
        name="tokyo-tea",
        channel="shopify",
        settings=ShopifySettings(**shop.settings()),
        lookback=dt.timedelta(seconds=0),
    )

    def sync_and_refresh() -> None:
        time.sleep(1.1)  # the changes' second is past: the run's window holds them
        run = engine.sync(connection)
        assert run.status is RunStatus.COMPLETE, run.error
        refresh(store)

    sync_and_refresh()
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(checkouts_table)).scalar_one()
    assert stored == len(shop.data.checkouts)
    with store.engine.connect() as conn:
        kept = dict(conn.execute(select(checkouts_table.c.id, checkouts_table.c.lines)).all())
    for c in checkouts(shop):
        assert [
            (ln["product_name"], ln["quantity"], Decimal(ln["unit_price"])) for ln in kept[c.id]
        ] == [(ln.product_name, ln.quantity, ln.unit_price) for ln in c.lines]
    # Two customers without a cart fill one and leave it now.
    left = {shop.data.checkouts.customer_of(c.id) for c in checkouts(shop)}
    first, second = [c for c in range(60) if c not in left][:2]
    gids = [gid("Customer", customer_number(c)) for c in (first, second)]
    carts = [shop.data.checkouts.abandon(c) for c in (first, second)]
    sync_and_refresh()
    for customer in gids:
        assert abandoned_at(store, customer) is not None
        assert _in_segment(store, customer)

    # One completes the checkout; the other buys in a new order: both leave the segment.
    shop.data.checkouts.complete(carts[0])
    shop.create_order(gids[1])
    sync_and_refresh()
    for customer in gids:
        assert abandoned_at(store, customer) is None
        assert not _in_segment(store, customer)

    # Every member of the segment left a cart in the last three days, and no one else.
    now = dt.datetime.now(dt.UTC)
    with store.engine.connect() as conn:
        inside = {m.id for m in members(conn, SEGMENT, now, limit=10_000, shop="default")}
        rows = conn.execute(select(profiles.c.id, profiles.c.abandoned_checkout_at))
        stamps = {pid: at for pid, at in rows}
    # "> -3d" is after the shop's calendar day three days ago: today and the two before.
    tokyo = ZoneInfo("Asia/Tokyo")
    cut = now.astimezone(tokyo).date() - dt.timedelta(days=3)
    recent = {
        pid for pid, at in stamps.items() if at is not None and at.astimezone(tokyo).date() > cut
    }
    assert inside == recent
