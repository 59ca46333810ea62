"""Reading Shopify's products: pages of products with their variants, the rest of a
product's variants when it has more than a page, and one product by id (a webhook's)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from omnicrm import Product
from omnicrm.errors import DataError, PluginError
from omnicrm.plugins.shopify.client import ShopifyClient
from omnicrm.plugins.shopify.mapping import product_from_node
from omnicrm.plugins.shopify.pages import connection_page, pages, rest_of
from omnicrm.plugins.shopify.settings import ShopifySettings


def shop_currency(client: ShopifyClient) -> str:
    """The shop's currency: Shopify's product prices carry none."""
    shop = client.execute("AccessScopes").data.get("shop") or {}
    currency = shop.get("currencyCode") if isinstance(shop, Mapping) else None
    if not isinstance(currency, str):
        raise DataError("Shopify's shop has no currencyCode")
    return currency


def product_nodes(client: ShopifyClient, search: str, settings: ShopifySettings) -> Iterator[Any]:
    def variables() -> dict[str, Any]:
        base: dict[str, Any] = {"query": search or None}
        base["variants"] = client.fit(
            "Products", {**base, "first": 1}, "variants", desired=settings.variants_page_size
        )
        return {**base, "first": client.fit("Products", base, desired=settings.page_size)}

    for node in pages(client, "Products", "products", variables):
        variants = node.get("variants") if isinstance(node, Mapping) else None
        info = variants.get("pageInfo") if isinstance(variants, Mapping) else None
        if not isinstance(variants, Mapping):
            yield node
            continue
        found = list(variants.get("nodes") or [])
        if isinstance(info, Mapping) and info.get("hasNextPage"):
            rest = _more_variants(client, str(node.get("id")), info.get("endCursor"))
            if rest is None:
                continue  # deleted while we read it
            found.extend(rest)
        yield {**node, "variants": {"nodes": found}}


def _more_variants(client: ShopifyClient, product_id: str, after: Any) -> list[Any] | None:
    """The variants of ``product_id`` after the cursor ``after``; None if it is gone."""
    return rest_of(client, "ProductVariants", "product", "variants", product_id, after, desired=250)


def fetch_product(settings: BaseModel, product_id: str) -> Product | None:
    """The product ``product_id`` (a GID) with all of its variants; None if it is gone."""
    if not isinstance(settings, ShopifySettings):
        raise PluginError(f"shopify got settings of type {type(settings).__name__}")
    with ShopifyClient(settings) as client:
        base = {"id": product_id}
        variants = client.fit("Product", base, "variants", desired=settings.variants_page_size)
        node = client.execute("Product", {**base, "variants": variants}).data.get("product")
        if node is None:
            return None
        if not isinstance(node, Mapping):
            raise DataError(f"Shopify's product {product_id} is not an object")
        found, cursor = connection_page(node, "variants")
        if cursor is not None:
            rest = _more_variants(client, product_id, cursor)
            if rest is None:
                return None
            found = [*found, *rest]
        return product_from_node(
            {**node, "variants": {"nodes": found}},
            settings.domain,
            currency=shop_currency(client),
        )
