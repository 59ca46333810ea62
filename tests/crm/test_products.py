"""available_products: the shop's catalogue as a recommendation may offer it, with the
shop's exclusions and only what can be bought, on both backends; and the setting that
excludes, read from omnicrm.toml per shop."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from omnicrm import Product, ProductStatus, ProductVariant, Stream
from omnicrm.app.config import load_config
from omnicrm.core.store import Store
from omnicrm.crm.products import ProductSettings, available_products, variant_keys
from omnicrm.errors import ConfigError
from tests.synthetic_plugin import SyntheticSettings

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def variant(vid: str, sku: str | None, price: int, **fields: Any) -> ProductVariant:
    return ProductVariant(id=vid, sku=sku, price=Decimal(price), **fields)


def product(pid: str, title: str, *variants: ProductVariant, **fields: Any) -> Product:
    return Product(
        id=pid,
        title=title,
        updated_at=T0,
        url=f"https://tea.example.jp/products/{pid.lower()}",
        variants=list(variants),
        raw={"id": pid},
        **fields,
    )


@pytest.fixture
def catalogue(store_url: str) -> Store:
    store = Store.open(store_url, shops={"web": "tea", "pos": "tea", "other": "sweets"})
    store.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            product(
                "P1",
                "宇治抹茶",
                variant("V1", "MAT-01", 1200, title="50g"),
                variant("V2", "MAT-02", 2200, title="100g", available=False, inventory=0),
                tags=["日本茶"],
                handle="uji-matcha",
            ),
            product(
                "P2", "抹茶テリーヌ", variant("V3", "TRN-01", 1800), status=ProductStatus.ARCHIVED
            ),
            product("P3", "水出し緑茶", variant("V4", "MZD-01", 900), status=ProductStatus.DRAFT),
            product("P4", "桐箱入り 煎茶ギフト", variant("V5", "GFT-01", 4500), tags=["ギフト"]),
            product("P5", "一杯の無料サンプル", variant("V6", None, 0, title="Default Title")),
            product("P6", "茶筅", variant("V7", "CHS-01", 2800), product_type="茶器"),
        ],
    )
    # The store's register sells MAT-02 (sold out online) and a paper bag.
    store.write_batch(
        "pos",
        Stream.PRODUCTS,
        [
            Product(
                id="8002",
                title="宇治抹茶 100g",
                updated_at=T0,
                variants=[variant("8002", "MAT-02", 2200)],
            ),
            Product(
                id="9001", title="紙袋(小)", updated_at=T0, variants=[variant("9001", "BAG-S", 20)]
            ),
        ],
    )
    store.write_batch(
        "other", Stream.PRODUCTS, [product("P9", "どら焼き", variant("X", "DOR-01", 300))]
    )
    return store


def test_only_what_can_be_bought_in_the_shop_is_offered(catalogue: Store) -> None:
    with catalogue.engine.connect() as conn:
        found = available_products(conn, "tea")
    assert sorted(found) == ["BAG-S", "CHS-01", "GFT-01", "MAT-01", "MAT-02", "P5"]
    matcha = found["MAT-01"]
    assert (matcha.name, matcha.price, matcha.currency) == ("宇治抹茶 50g", Decimal(1200), "JPY")
    assert matcha.url == "https://tea.example.jp/products/p1" and matcha.available
    # Sold out online, sold in the store: offered, with the web shop's page as its link.
    assert found["MAT-02"].available and found["MAT-02"].connection == "pos"
    assert found["MAT-02"].url == "https://tea.example.jp/products/p1"
    # A product without a SKU is keyed by its id; Shopify's "Default Title" is not shown.
    assert found["P5"].name == "一杯の無料サンプル" and found["P5"].sku is None
    catalogue.close()


def test_unavailable_products_are_listed_on_request_and_other_shops_never(
    catalogue: Store,
) -> None:
    with catalogue.engine.connect() as conn:
        found = available_products(conn, "tea", include_unavailable=True)
        sweets = available_products(conn, "sweets")
    assert not found["TRN-01"].available and not found["MZD-01"].available
    assert found["MAT-02"].available  # still: the store can sell it
    assert list(sweets) == ["DOR-01"]
    catalogue.close()


def test_the_shops_exclusions_hold_even_for_unavailable_listings(catalogue: Store) -> None:
    settings = ProductSettings(
        exclude=["bag-*", "p5", "uji-matcha"], exclude_tags=["ギフト"], exclude_types=["茶器"]
    )
    with catalogue.engine.connect() as conn:
        found = available_products(conn, "tea", settings, include_unavailable=True)
    # uji-matcha is P1's handle: both of its SKUs go, the store's MAT-02 stays.
    assert sorted(found) == ["MAT-02", "MZD-01", "TRN-01"]
    assert found["MAT-02"].connection == "pos"
    catalogue.close()


def test_order_lines_without_a_sku_find_their_product_key(catalogue: Store) -> None:
    with catalogue.engine.connect() as conn:
        keys = variant_keys(conn, "tea")
    assert keys[("web", "V1")] == "MAT-01"
    assert keys[("web", "V6")] == "P5"
    assert ("other", "X") not in keys
    catalogue.close()


def test_the_exclusions_are_read_per_shop_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        '[products]\nexclude = ["BAG-*"]\n\n'
        '[shops.tea]\n[shops.tea.products]\nexclude_tags = ["ギフト"]\n\n'
        "[shops.sweets]\n",
        encoding="utf-8",
    )
    config = load_config(path, {"synthetic": SyntheticSettings})
    tea, sweets = config.shop("tea").products, config.shop("sweets").products
    assert tea.exclude == ["BAG-*"] and tea.exclude_tags == ["ギフト"]
    assert sweets.exclude == ["BAG-*"] and sweets.exclude_tags == []


def test_a_bad_exclusion_setting_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "omnicrm.toml"
    path.write_text('[shops.tea]\n\n[shops.tea.products]\nexclude = "BAG-*"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, {"synthetic": SyntheticSettings})
    error = raised.value
    assert error.key == "shops.tea.products.exclude" and error.line == 4
