"""A shop with a storefront for the on-site tests: a runtime over a real store, people
built into profiles, a catalogue, and the secrets that sign its requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from omnicrm.app.config import Config, Connection, SchedulerSection, Shop
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.records import Customer, Order, OrderLine, Product, ProductVariant
from omnicrm.core.store import Store
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.onsite.settings import OfferSettings, StorefrontSettings
from omnicrm.engage.settings import RecommendSettings

SHOP = "tokyo-tea"
KEY = "pk-tokyo-tea-0123"
TOKEN_SECRET = "storefront-token-secret"
PROXY_SECRET = "shopify-app-client-secret"
SHOPIFY_DOMAIN = "tokyo-tea.myshopify.com"
T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


class SiteSettings(BaseModel):
    """A connection's settings as a Shopify one has them: its domain."""

    domain: str = SHOPIFY_DOMAIN


def storefront(domains: list[str], **extra: Any) -> StorefrontSettings:
    return StorefrontSettings.model_validate(
        {
            "domains": domains,
            "public_key": KEY,
            "customer_connection": "web",
            "token_secret": TOKEN_SECRET,
            "shopify_connection": "shopify",
            "app_proxy_secret": PROXY_SECRET,
            **extra,
        }
    )


def popup(**extra: Any) -> OfferSettings:
    """The second-visit popup for prospects, in two variants."""
    return OfferSettings.model_validate(
        {
            "kind": "popup",
            "text": "2回目のご来店ありがとうございます",
            "coupon": "WELCOME10",
            "segment": "lifecycle_stage = 'prospect'",
            "min_visits": 2,
            "no_purchase_yet": True,
            "variants": [
                {"name": "A", "weight": 1},
                {"name": "B", "weight": 1, "coupon": "WELCOME15", "text": "今だけ15%OFF"},
            ],
            **extra,
        }
    )


def make_runtime(
    store_url: str,
    *,
    offers: dict[str, OfferSettings],
    domains: list[str],
    host: Host | None = None,
    recommend: RecommendSettings | None = None,
    **front: Any,
) -> Runtime:
    shop = Shop(
        id=SHOP,
        name="東京茶舗",
        storefront=storefront(domains, **front),
        offers=offers,
        recommend=recommend or RecommendSettings(),
    )
    # Channel "site": no installed plugin's, so none of them reads these settings.
    connections = {
        name: Connection(name, "site", SiteSettings(), shop=SHOP) for name in ("web", "shopify")
    }
    config = Config(None, store_url, SchedulerSection(), connections, shops={SHOP: shop})
    return Runtime(host or Host.load(use_entry_points=False), config)


def customer(cid: str, given: str) -> Customer:
    return Customer(
        id=cid,
        family_name="山田",
        given_name=given,
        email=f"{cid.lower()}@example.jp",
        updated_at=T0,
    )


def order(oid: str, cid: str, placed: dt.datetime, total: int, sku: str = "TEA-01") -> Order:
    return Order(
        id=oid,
        customer_id=cid,
        status="paid",  # type: ignore[arg-type]
        placed_at=placed,
        updated_at=placed,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name="煎茶", sku=sku, quantity=1, unit_price=Decimal(total))],
    )


def product(sku: str, title: str, price: int, *, available: bool = True) -> Product:
    return Product(
        id=f"P-{sku}",
        title=title,
        url=f"https://tokyo-tea.jp/products/{sku.lower()}",
        currency="JPY",
        variants=[
            ProductVariant(id=f"V-{sku}", sku=sku, price=Decimal(price), available=available)
        ],
        updated_at=T0,
    )


def seed(store: Store, now: dt.datetime) -> None:
    """C1 花子 and C3 美咲 have bought nothing (prospects); C2 太郎 bought twice. Baskets
    of six other buyers pair TEA-01 with TEA-02, three of them with CUP-01 too, which is
    sold out now."""
    store.write_batch(
        "web",
        Stream.CUSTOMERS,
        [customer("C1", "花子"), customer("C2", "太郎"), customer("C3", "美咲")],
    )
    store.write_batch("shopify", Stream.CUSTOMERS, [customer("gid://shopify/Customer/77", "陽菜")])
    buyers = [customer(f"B{i}", f"客{i}") for i in range(6)]
    store.write_batch("web", Stream.CUSTOMERS, buyers)
    placed = now - dt.timedelta(days=40)
    orders = [order("O-C2-1", "C2", placed, 3000), order("O-C2-2", "C2", placed, 3000, "TEA-02")]
    for i, b in enumerate(buyers):
        orders.append(order(f"O-B{i}-1", b.id, placed, 3000, "TEA-01"))
        orders.append(order(f"O-B{i}-2", b.id, placed + dt.timedelta(hours=1), 1500, "TEA-02"))
        if i < 3:
            orders.append(order(f"O-B{i}-3", b.id, placed + dt.timedelta(hours=2), 2500, "CUP-01"))
    store.write_batch("web", Stream.ORDERS, orders)
    store.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            product("TEA-01", "煎茶 100g", 3000),
            product("TEA-02", "ほうじ茶 100g", 1500),
            product("CUP-01", "湯呑み", 2500, available=False),
        ],
    )
    refresh(store, CrmSettings(shop=SHOP), now=now)
