"""The shop's catalogue as recommendations see it: what may be offered, at what price,
with which link.

Channels sync their products (``products`` and ``product_variants``, see
:mod:`omnicrm.core.store.schema`); a shop's settings exclude some (``[products]``, or
``[shops.ID.products]`` for one shop). :func:`available_products` joins the two: the
one call a recommender makes to turn product keys into names, prices and links, and to
leave out what cannot or must not be offered.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from omnicrm.core.records import ProductStatus
from omnicrm.core.store.schema import product_variants, products

# Shopify's title of the one variant of a product without options: not worth showing.
_DEFAULT_TITLES = {"Default Title", "Default", "デフォルトタイトル"}


class ProductSettings(BaseModel):
    """What a shop never offers in a recommendation (``[products]`` or
    ``[shops.ID.products]``).

    ``exclude`` holds patterns (``*`` and ``?`` wildcards, case-insensitive) matched
    against a product's SKU, product id and handle: ``["GFT-*", "SAMPLE-01"]``.
    ``exclude_tags`` holds tags (case-insensitive) whose products are left out, e.g.
    ``["非推奨", "送料"]``; ``exclude_types`` likewise for product types.
    """

    model_config = ConfigDict(extra="forbid")

    exclude: list[str] = Field(
        default_factory=list,
        description="SKU, product id or handle patterns (* and ? wildcards) never offered.",
    )
    exclude_tags: list[str] = Field(
        default_factory=list, description="Tags whose products are never offered."
    )
    exclude_types: list[str] = Field(
        default_factory=list, description="Product types never offered."
    )

    def excludes(
        self, keys: tuple[str | None, ...], tags: list[str], product_type: str | None
    ) -> bool:
        """Whether a variant with these ``keys`` (SKU, product id, handle), ``tags`` and
        ``product_type`` is excluded."""
        for pattern in self.exclude:
            folded = pattern.casefold()
            if any(k is not None and fnmatch.fnmatchcase(k.casefold(), folded) for k in keys):
                return True
        if self.exclude_tags:
            banned = {t.casefold() for t in self.exclude_tags}
            if any(t.casefold() in banned for t in tags):
                return True
        if product_type is not None and self.exclude_types:
            return product_type.casefold() in {t.casefold() for t in self.exclude_types}
        return False


@dataclass(frozen=True)
class OfferableProduct:
    """One product as a recommendation shows it: a variant with a SKU, or a product
    without SKUs (its cheapest variant's price)."""

    key: str  # the SKU, else the product id
    product_id: str
    variant_id: str | None
    sku: str | None
    name: str
    price: Decimal
    currency: str
    url: str | None
    image_url: str | None
    available: bool
    connection: str


def available_products(
    conn: Connection,
    shop: str,
    settings: ProductSettings | None = None,
    *,
    include_unavailable: bool = False,
) -> dict[str, OfferableProduct]:
    """The products of ``shop`` a recommendation may offer, by product key.

    The key is what order lines are matched by: the variant's SKU, else the product's
    id (a product whose variants carry no SKU is one entry, at its cheapest offerable
    variant's price). Each entry has a display name ("宇治抹茶 100g"), price, currency,
    link and image. A SKU sold by several channels of the shop (the web shop and the
    store's POS) is one entry: available if any channel can sell it, with the link and
    image of the channel that has one.

    Left out: what ``settings`` excludes (patterns on SKU, product id or handle; tags;
    product types), and, unless ``include_unavailable``, what cannot be bought now (a
    draft or archived product, a variant sold out). With ``include_unavailable`` those
    are listed with ``available=False``; excluded ones never are.

    Runs in ``conn``'s transaction; reads only the catalogue tables (no personal data).
    """
    settings = settings or ProductSettings()
    query = (
        select(
            products.c.connection,
            products.c.id.label("product_id"),
            products.c.title.label("product_title"),
            products.c.handle,
            products.c.url,
            products.c.image_url.label("product_image"),
            products.c.product_type,
            products.c.tags,
            products.c.status,
            products.c.currency,
            product_variants.c.id.label("variant_id"),
            product_variants.c.sku,
            product_variants.c.title.label("variant_title"),
            product_variants.c.price,
            product_variants.c.available,
            product_variants.c.image_url.label("variant_image"),
            product_variants.c.position,
        )
        .join(
            product_variants,
            (product_variants.c.connection == products.c.connection)
            & (product_variants.c.product_id == products.c.id),
        )
        .where(products.c.shop == shop)
        .order_by(products.c.connection, products.c.id, product_variants.c.position)
    )
    rows = conn.execute(query).mappings().all()
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["connection"], row["product_id"])
        counts[key] = counts.get(key, 0) + 1
    found: dict[str, OfferableProduct] = {}
    for row in rows:
        tags = list(row["tags"] or [])
        if settings.excludes(
            (row["sku"], row["product_id"], row["handle"]), tags, row["product_type"]
        ):
            continue
        available = bool(row["available"]) and row["status"] == ProductStatus.ACTIVE.value
        several = counts[(row["connection"], row["product_id"])] > 1
        entry = _entry(row, available, several)
        held = found.get(entry.key)
        # Merged before the unavailable go: a channel that cannot sell it lends its link.
        found[entry.key] = entry if held is None else _merged(held, entry)
    if include_unavailable:
        return found
    return {key: entry for key, entry in found.items() if entry.available}


def variant_keys(conn: Connection, shop: str) -> dict[tuple[str, str], str]:
    """The product key (as :func:`available_products` keys it) of every variant of
    ``shop``, by (connection, variant id): for order lines that name a variant but carry
    no SKU (Square's, a Shopify line of a deleted SKU)."""
    query = (
        select(product_variants.c.connection, product_variants.c.id, product_variants.c.sku)
        .add_columns(product_variants.c.product_id)
        .where(product_variants.c.shop == shop)
    )
    return {
        (row.connection, row.id): row.sku if row.sku is not None else row.product_id
        for row in conn.execute(query)
    }


def _entry(row: Mapping[Any, Any], available: bool, several: bool) -> OfferableProduct:
    title = row["product_title"]
    variant = row["variant_title"]
    sku = row["sku"]
    name = title
    if sku is not None and variant and variant not in _DEFAULT_TITLES and several:
        name = f"{title} {variant}"
    return OfferableProduct(
        key=sku if sku is not None else row["product_id"],
        product_id=row["product_id"],
        variant_id=row["variant_id"] if sku is not None else None,
        sku=sku,
        name=name,
        price=row["price"],
        currency=row["currency"],
        url=row["url"],
        image_url=row["variant_image"] or row["product_image"],
        available=available,
        connection=row["connection"],
    )


def _merged(held: OfferableProduct, other: OfferableProduct) -> OfferableProduct:
    """One entry of two with the same key: the one that can be sold (the cheaper of
    two that can), completed with the link and image the other has."""
    first, second = held, other
    if (other.available, -other.price) > (held.available, -held.price):
        first, second = other, held
    return OfferableProduct(
        key=first.key,
        product_id=first.product_id,
        variant_id=first.variant_id,
        sku=first.sku,
        name=first.name,
        price=first.price,
        currency=first.currency,
        url=first.url or second.url,
        image_url=first.image_url or second.image_url,
        available=first.available or second.available,
        connection=first.connection,
    )
