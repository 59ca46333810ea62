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

from omnicrm import Checkout, Checkpoint, StreamContext
from omnicrm.errors import PluginError
from omnicrm.plugins.shopify.client import ShopifyClient, search_since
from omnicrm.plugins.shopify.mapping import _money, _Reader
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
    lines = r.child("lineItems")
    quantities = (
        [_Reader("line item", n, record_id).count("quantity") for n in lines.nodes("nodes")]
        if lines
        else []
    )
    return r.build(
        Checkout,
        id=record_id,
        customer_id=owner.gid("id", required=True) if owner is not None else None,
        created_at=r.timestamp("createdAt", required=True),
        updated_at=r.timestamp("updatedAt", required=True),
        completed_at=r.timestamp("completedAt"),
        currency=(total[1] if total is not None else None) or "JPY",
        total=total[0] if total is not None else 0,
        item_count=sum(quantities),
        recovery_url=r.text("abandonedCheckoutUrl"),
        raw=dict(r.payload),
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
