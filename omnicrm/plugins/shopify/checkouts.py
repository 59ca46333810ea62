"""Shopify's abandoned checkouts (carts customers filled and left): the ``checkouts``
stream.

``abandonedCheckouts`` sorts by id or creation only, so the stream asks for those
updated since the cursor (``updated_at:>=``), reads every page, and yields them by
``updatedAt`` itself: what changes in one run's window is a few carts per customer
leaving one, never the catalogue's size. A checkout's buyer is only its customer's id;
no address is asked for. Completed ones come too (``completedAt``): a cart recovered
is no longer abandoned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from omnicrm import Checkout, Checkpoint, OrderLine, StreamContext
from omnicrm.errors import PluginError
from omnicrm.plugins.shopify.client import ShopifyClient, search_since
from omnicrm.plugins.shopify.mapping import _amount, _money, _Reader
from omnicrm.plugins.shopify.pages import pages
from omnicrm.plugins.shopify.settings import ShopifySettings

_LINES = 50
"""Line items asked for per checkout (their quantities sum to ``item_count``)."""


def checkout_from_node(node: Mapping[str, Any]) -> Checkout:
    """Map a GraphQL ``AbandonedCheckout`` node to a Checkout."""
    r = _Reader("abandoned checkout", node)
    record_id = r.gid("id", required=True)
    assert record_id is not None
    r.record_id = record_id
    owner = r.child("customer")
    total = _money(r, "totalPriceSet")
    found = r.child("lineItems")
    lines = [_cart_line(n, record_id) for n in found.nodes("nodes")] if found else []
    return r.build(
        Checkout,
        id=record_id,
        customer_id=owner.gid("id", required=True) if owner is not None else None,
        created_at=r.timestamp("createdAt", required=True),
        updated_at=r.timestamp("updatedAt", required=True),
        completed_at=r.timestamp("completedAt"),
        currency=(total[1] if total is not None else None) or "JPY",
        total=total[0] if total is not None else 0,
        item_count=sum(line.quantity for line in lines),
        recovery_url=r.text("abandonedCheckoutUrl"),
        lines=lines,
        raw=dict(r.payload),
    )


def _cart_line(node: Mapping[str, Any], record_id: str) -> OrderLine:
    """One ``AbandonedCheckoutLineItem``. It has no ``name``: the title and the variant's
    title make one as an order line's (``"煎茶 - 100g"``); a variant's placeholder title
    ("Default Title") is left out."""
    r = _Reader("line item", node, record_id)
    title, variant_title = r.text("title"), r.text("variantTitle")
    product_r, variant_r = r.child("product"), r.child("variant")
    if variant_title and variant_title != "Default Title":
        name = f"{title} - {variant_title}" if title else variant_title
    else:
        name = title or r.text("sku") or ""
    return r.build(
        OrderLine,
        sku=r.text("sku"),
        product_id=product_r.gid("id") if product_r else None,
        variant_id=variant_r.gid("id") if variant_r else None,
        product_name=name,
        quantity=r.count("quantity"),
        unit_price=_amount(r, "originalUnitPriceSet"),
    )


def sync_checkouts(ctx: StreamContext[BaseModel]) -> Iterator[Checkout | Checkpoint]:
    """Abandoned checkouts changed since ``ctx.since`` and up to ``ctx.until``,
    ascending by ``updatedAt``."""
    settings = ctx.settings
    if not isinstance(settings, ShopifySettings):
        raise PluginError(f"shopify got settings of type {type(settings).__name__}")
    search = search_since(ctx.since)
    with ShopifyClient(
        settings, on_rate_limit=ctx.wait_for_rate_limit, sleep=ctx.sleep, logger=ctx.logger
    ) as client:

        def variables() -> dict[str, Any]:
            base: dict[str, Any] = {"query": search or None, "lines": _LINES}
            return {**base, "first": client.fit("AbandonedCheckouts", base, desired=100)}

        found = {
            c.id: c
            for c in map(
                checkout_from_node,
                pages(client, "AbandonedCheckouts", "abandonedCheckouts", variables),
            )
        }
    # One changed after the run began is read by the next run, as other streams do.
    ready = [c for c in found.values() if c.updated_at <= ctx.until]
    ready.sort(key=lambda c: (c.updated_at, c.id))
    ctx.logger.info("shopify: %d abandoned checkouts changed since %s", len(ready), ctx.since)
    yield from ready
