"""Products and their variants in the store: round trip, upsert by updated_at, variants
replaced, deletion and erasure, on both backends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from omnicrm import Customer, Product, ProductStatus, ProductVariant, Stream
from omnicrm.core.store import Store, StreamState
from omnicrm.core.store.schema import product_variants, products, profile_changes
from omnicrm.errors import DataError

T0 = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)


def product(pid: str, minutes: int = 0, *variants: ProductVariant, **fields: Any) -> Product:
    values: dict[str, Any] = {
        "title": "宇治抹茶",
        "handle": "uji-matcha",
        "url": "https://tea.example.jp/products/uji-matcha",
        "tags": ["日本茶"],
        "product_type": "日本茶",
        "vendor": "自社焙煎",
        "updated_at": T0 + dt.timedelta(minutes=minutes),
        "created_at": T0,
        "raw": {"id": pid},
        "variants": list(variants)
        or [ProductVariant(id=f"{pid}-v1", sku=f"{pid}-01", title="50g", price=Decimal(1200))],
    }
    values.update(fields)
    return Product(id=pid, **values)


def test_products_round_trip_with_their_variants(store: Store) -> None:
    record = product(
        "P1",
        0,
        ProductVariant(
            id="V1",
            sku="MAT-01",
            title="50g",
            price=Decimal("1280.5"),
            compare_at_price=Decimal(1500),
            inventory=12,
            image_url="https://cdn.example.jp/mat-01.jpg",
        ),
        ProductVariant(id="V2", sku="MAT-02", title="100g", price=Decimal(2400), available=False),
        status=ProductStatus.ACTIVE,
    )
    record.connection = "web"
    assert store.write_batch("web", Stream.PRODUCTS, [record]) == 1
    (back,) = store.products("web")
    assert back == record
    assert store.count(Stream.PRODUCTS, "web") == 1
    with store.engine.connect() as conn:
        shops = set(conn.execute(select(product_variants.c.shop)).scalars())
        # A catalogue reaches no customer's profile.
        queued = conn.execute(select(func.count()).select_from(profile_changes)).scalar()
    assert shops == {"default"} and queued == 0


def test_a_later_version_replaces_the_variants_and_a_stale_one_is_skipped(store: Store) -> None:
    first = product(
        "P1",
        0,
        ProductVariant(id="V1", sku="A", price=Decimal(100)),
        ProductVariant(id="V2", sku="B", price=Decimal(200)),
    )
    store.write_batch("web", Stream.PRODUCTS, [first], StreamState(T0))
    later = product("P1", 5, ProductVariant(id="V2", sku="B", price=Decimal(250), available=False))
    assert store.write_batch("web", Stream.PRODUCTS, [later]) == 1
    assert store.write_batch("web", Stream.PRODUCTS, [first]) == 0  # older: skipped
    assert store.write_batch("web", Stream.PRODUCTS, [later]) == 0  # the same again
    (back,) = store.products("web")
    assert [(v.sku, v.price, v.available) for v in back.variants] == [("B", Decimal(250), False)]
    assert store.stream_state("web", Stream.PRODUCTS).cursor == T0


def test_products_are_kept_per_connection_and_shop() -> None:
    store = Store.open("sqlite://", shops={"web": "tea", "pos": "tea", "other": "sweets"})
    try:
        for connection in ("web", "pos", "other"):
            store.write_batch(connection, Stream.PRODUCTS, [product("P1")])
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(products.c.connection, products.c.shop).order_by(products.c.connection)
            ).all()
        assert [tuple(r) for r in rows] == [("other", "sweets"), ("pos", "tea"), ("web", "tea")]
    finally:
        store.close()


def test_deleted_products_take_their_variants_and_erasure_takes_all(store: Store) -> None:
    store.write_batch("web", Stream.PRODUCTS, [product("P1"), product("P2"), product("P3")])
    store.write_batch("web", Stream.CUSTOMERS, [Customer(id="C1", updated_at=T0)])
    assert store.delete_records("web", Stream.PRODUCTS, ["P1", "P9"]) == 1
    assert sorted(p.id for p in store.products("web")) == ["P2", "P3"]
    with store.engine.connect() as conn:
        left = set(conn.execute(select(product_variants.c.product_id)).scalars())
    assert left == {"P2", "P3"}
    store.erase_connection("web")
    assert list(store.products()) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(product_variants)).scalar() == 0


def test_a_batch_of_products_is_whole_or_not_there(store: Store) -> None:
    good = product("P1")
    bad = Product.model_construct(**{**product("P2").__dict__, "title": None})
    with pytest.raises(DataError, match="refused a products record"):
        store.write_batch("web", Stream.PRODUCTS, [good, bad])
    assert list(store.products("web")) == []
