"""The Shopify channel: registration and the three stream hooks.

This module is what the ``omnicrm`` entry point ``shopify`` names. The HTTP work is in
:mod:`~omnicrm.plugins.shopify.client`, bulk exports in :mod:`~omnicrm.plugins.shopify.bulk`,
field mapping in :mod:`~omnicrm.plugins.shopify.mapping`, webhooks in
:mod:`~omnicrm.plugins.shopify.webhooks`.

How a stream reads:

* **incrementally** (the usual run): ``updated_at:>='SINCE'`` with ``sortKey:
  UPDATED_AT``, page by page, so records come in the ascending order the engine needs.
  Reading stops at the first record changed after the run began (``ctx.until``): the
  engine's cursor never passes that point anyway, and a busy shop would otherwise keep
  one run paging for ever.
* products are always paged (a catalogue is small next to its orders), each with its
  variants; drafts and archived products included, as their status must reach the store.
* **by bulk operation** for every full read (the first sync, ``--full``), whatever the
  shop's size: paging a whole shop at a standard shop's 100 points/s takes half an hour
  where a bulk operation takes seconds (``bulk_threshold`` above 0 pages the full read
  of a shop that small), and whenever ``ctx.state`` names a bulk operation a previous
  run started (it is resumed, not started again). The last checkpoint of a bulk read
  clears that state.

Orders older than 60 days are visible only with the ``read_all_orders`` scope. Without
it a full import, or an incremental one reaching back further than 60 days, fails with
an :class:`~omnicrm.errors.AuthError` saying so: an order history silently cut at 60
days would make every RFM score and lifetime value wrong, and the cursor would then
move past the gap for good. ``recent_orders_only = true`` accepts the cut (with a
warning). Even with a recent cursor, changes to orders older than 60 days (a late
refund) stay invisible without the scope; the warning at each run says so.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, cast

from pydantic import BaseModel

import omnicrm
from omnicrm import (
    ChannelType,
    Checkout,
    Checkpoint,
    Customer,
    Order,
    Product,
    Stream,
    StreamContext,
)
from omnicrm.errors import AuthError, PluginError, SyncError, TransientError
from omnicrm.plugins.shopify.bulk import STATE_KEY, BulkExport
from omnicrm.plugins.shopify.client import ShopifyClient, search_since
from omnicrm.plugins.shopify.mapping import (
    customer_from_node,
    order_from_node,
    product_from_node,
)
from omnicrm.plugins.shopify.pages import pages, rest_of
from omnicrm.plugins.shopify.products import product_nodes, shop_currency
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.webhooks import ShopifyWebhooks
from omnicrm.plugins.shopify.writeback import ShopifyCoupons, ShopifyRecommendations

CHANNEL_NAME = "shopify"
HISTORY_WINDOW = dt.timedelta(days=60)
"""How far back Shopify shows orders to an app without ``read_all_orders``."""


def sandbox(
    *, client: int = 0, line_users: Mapping[int, str] | None = None
) -> AbstractContextManager[Mapping[str, Any]]:
    """Start the local Shopify emulator; its context yields a connection's settings.
    ``client`` > 0: another client business's store whose customers partly overlap.
    ``line_users`` (customer index -> LINE user id): customers a LINE-connect app linked
    to LINE (a customer metafield), which the settings read."""
    # Imported on use: the emulator (a server, seeded data) is heavy, and `omnicrm
    # plugins` or a sync of a real shop must load without it.
    module = importlib.import_module("omnicrm.plugins.shopify.sandbox")
    start: Callable[..., AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start(client=client, line_users=line_users)


def describe(settings: BaseModel) -> str:
    """Where a connection points: its shop's myshopify domain."""
    return cast(ShopifySettings, settings).domain


CHANNEL = ChannelType(
    name=CHANNEL_NAME,
    settings=ShopifySettings,
    streams=(Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS, Stream.CHECKOUTS),
    title="Shopify",
    sandbox=sandbox,
    webhooks=ShopifyWebhooks(),
    describe=describe,
    coupons=ShopifyCoupons(),
    recommendations=ShopifyRecommendations(),
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the ``shopify`` channel type."""
    register.channel_type(CHANNEL)


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Customers changed since ``ctx.since``, ascending by ``updatedAt``."""
    return cast("Iterator[Customer | Checkpoint]", _read(ctx, Stream.CUSTOMERS))


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Orders, each with all of its lines, changed since ``ctx.since``, ascending."""
    return cast("Iterator[Order | Checkpoint]", _read(ctx, Stream.ORDERS))


@omnicrm.hookimpl
def omnicrm_sync_products(ctx: StreamContext[BaseModel]) -> Iterator[Product | Checkpoint]:
    """Products, each with all of its variants, changed since ``ctx.since``, ascending."""
    return cast("Iterator[Product | Checkpoint]", _read(ctx, Stream.PRODUCTS))


@omnicrm.hookimpl
def omnicrm_sync_checkouts(ctx: StreamContext[BaseModel]) -> Iterator[Checkout | Checkpoint]:
    """Abandoned checkouts changed since ``ctx.since``, ascending (see .checkouts)."""
    from omnicrm.plugins.shopify.checkouts import sync_checkouts

    return sync_checkouts(ctx)


Record = Customer | Order | Product


def _read(ctx: StreamContext[BaseModel], stream: Stream) -> Iterator[Record | Checkpoint]:
    settings = ctx.settings
    if not isinstance(settings, ShopifySettings):
        raise PluginError(f"shopify got settings of type {type(settings).__name__}")
    with ShopifyClient(
        settings,
        on_rate_limit=ctx.wait_for_rate_limit,
        sleep=ctx.sleep,
        logger=ctx.logger,
    ) as client:
        if stream is Stream.ORDERS:
            _check_order_history(client, ctx, settings)
        resume = ctx.state.get(STATE_KEY)
        if stream is Stream.PRODUCTS:
            yield from _paged(client, ctx, stream, settings)
        elif isinstance(resume, str) or (ctx.full and _is_large(client, stream, settings)):
            yield from _bulk(
                client, ctx, stream, settings, resume if isinstance(resume, str) else None
            )
        else:
            yield from _paged(client, ctx, stream, settings)
        ctx.logger.info(
            "shopify: %s of %s read in %d requests", stream, settings.domain, client.requests
        )


# -- read_all_orders


def _check_order_history(
    client: ShopifyClient, ctx: StreamContext[BaseModel], settings: ShopifySettings
) -> None:
    data = client.execute("AccessScopes").data
    installation = data.get("currentAppInstallation") or {}
    handles = {
        s.get("handle") for s in installation.get("accessScopes") or [] if isinstance(s, Mapping)
    }
    if "read_all_orders" in handles:
        return
    horizon = ctx.until - HISTORY_WINDOW
    if ctx.since is not None and ctx.since >= horizon:
        ctx.logger.info(
            "shopify: %s has no read_all_orders scope: changes to orders older than 60 "
            "days (a late refund) are not visible to omnicrm",
            settings.domain,
        )
        return
    asked = (
        "a full import of its orders"
        if ctx.since is None
        else f"orders changed since {ctx.since:%Y-%m-%d}"
    )
    message = (
        f"the Shopify app on {settings.domain} needs the read_all_orders scope for {asked}: "
        "without it Shopify shows only the last 60 days of orders, and older ones would "
        "be missing without a trace. Grant read_all_orders in the app's settings "
        "(Shopify admin > Settings > Apps and sales channels > Develop apps > "
        "Configuration), or set recent_orders_only = true in the connection's settings "
        "to import the last 60 days only"
    )
    if not settings.recent_orders_only:
        raise AuthError(message)
    ctx.logger.warning(
        "shopify: %s has no read_all_orders scope; recent_orders_only is set, so only "
        "orders of the last 60 days are imported",
        settings.domain,
    )


# -- bulk


def _is_large(client: ShopifyClient, stream: Stream, settings: ShopifySettings) -> bool:
    """More records than ``bulk_threshold``: a bulk operation beats paging them."""
    if settings.bulk_threshold == 0:
        return True
    if stream is Stream.CUSTOMERS:
        data = client.execute("CustomersCount", {"query": None}).data
        count = data.get("customersCount")
    else:
        limit = settings.bulk_threshold + 1
        data = client.execute("OrdersCount", {"query": None, "limit": limit}).data
        count = data.get("ordersCount")
    if not isinstance(count, Mapping) or not isinstance(count.get("count"), int):
        raise SyncError(f"Shopify's {stream} count has no number")
    return bool(count["count"] > settings.bulk_threshold)


def _bulk(
    client: ShopifyClient,
    ctx: StreamContext[BaseModel],
    stream: Stream,
    settings: ShopifySettings,
    resume: str | None,
) -> Iterator[Customer | Order | Checkpoint]:
    export = BulkExport(
        client,
        stream.value,
        search_since(ctx.since),
        line=settings.line_metafield,
        resume_id=resume,
        since=ctx.since,
        sleep=ctx.sleep,
        logger=ctx.logger,
        timeout=settings.bulk_timeout,
    )
    last: dt.datetime | None = None
    count = 0
    for item in export:
        if isinstance(item, Checkpoint):
            yield item
            continue
        if stream is Stream.ORDERS:
            item.setdefault("lineItems", {"nodes": []})
            record: Customer | Order = order_from_node(item)
        else:
            record = customer_from_node(item)
        last = record.updated_at
        count += 1
        yield record
    ctx.logger.info("shopify: %d %s read by bulk operation", count, stream)
    # The export is done: the next run must not resume it.
    yield Checkpoint(cursor=last, state={})


# -- pages


def _paged(
    client: ShopifyClient,
    ctx: StreamContext[BaseModel],
    stream: Stream,
    settings: ShopifySettings,
) -> Iterator[Record]:
    search = search_since(ctx.since)
    make: Callable[[Any], Record]
    if stream is Stream.CUSTOMERS:
        nodes, make = _customer_nodes(client, search, settings), customer_from_node
    elif stream is Stream.ORDERS:
        nodes, make = _order_nodes(client, search, settings), order_from_node
    else:
        currency = shop_currency(client)
        nodes = product_nodes(client, search, settings)

        def make(node: Any) -> Record:
            return product_from_node(node, settings.domain, currency=currency)

    # Versions already yielded at the current updatedAt: in an ascending listing a
    # repeat can only be a tie with the last one, so memory stays bounded by the ties.
    seen: set[str] = set()
    last: dt.datetime | None = None
    count = 0
    for node in nodes:
        record = make(node)
        if record.updated_at == last and record.id in seen:
            continue  # the same version twice (a page boundary shifted under us)
        if record.updated_at > ctx.until:
            ctx.logger.info(
                "shopify: stopping at %s %s, changed after this run began; the next run "
                "reads on from there",
                stream,
                record.id,
            )
            break
        if last is not None and record.updated_at < last:
            # Shopify's index went back in time under us: read again from the last commit.
            raise TransientError(
                f"Shopify returned {stream} out of updatedAt order ({record.id} at "
                f"{record.updated_at.isoformat()} after {last.isoformat()})"
            )
        if record.updated_at != last:
            seen.clear()
            last = record.updated_at
        seen.add(record.id)
        count += 1
        yield record
    since = ctx.since.isoformat() if ctx.since else "the beginning"
    ctx.logger.info("shopify: %d %s changed since %s", count, stream, since)


def _customer_nodes(client: ShopifyClient, search: str, settings: ShopifySettings) -> Iterator[Any]:
    # With a LINE-connect app's metafield named, the document that reads it too.
    line = settings.line_metafield
    operation = "Customers" if line is None else "CustomersLine"
    base: dict[str, Any] = {"query": search or None}
    if line is not None:
        base |= {"lineNamespace": line[0], "lineKey": line[1]}

    def variables() -> dict[str, Any]:
        # Refitted every page: the first page teaches the client what a customer costs.
        return {**base, "first": client.fit(operation, base, desired=settings.page_size)}

    return pages(client, operation, "customers", variables)


def _order_nodes(client: ShopifyClient, search: str, settings: ShopifySettings) -> Iterator[Any]:
    def variables() -> dict[str, Any]:
        base: dict[str, Any] = {"query": search or None}
        lines = client.fit(
            "Orders", {**base, "first": 1}, "lines", desired=settings.lines_page_size
        )
        base["lines"] = lines
        return {**base, "first": client.fit("Orders", base, desired=settings.orders_page_size)}

    for node in pages(client, "Orders", "orders", variables):
        items = node.get("lineItems") if isinstance(node, Mapping) else None
        info = items.get("pageInfo") if isinstance(items, Mapping) else None
        if not isinstance(items, Mapping):
            yield node
            continue
        lines = list(items.get("nodes") or [])
        if isinstance(info, Mapping) and info.get("hasNextPage"):
            rest = _more_lines(client, str(node.get("id")), info.get("endCursor"))
            if rest is None:
                continue  # deleted while we read it; its deletion is not ours to record
            lines.extend(rest)
        # Kept as a bulk read keeps it: all the lines, without paging details.
        yield {**node, "lineItems": {"nodes": lines}}


def _more_lines(client: ShopifyClient, order_id: str, after: Any) -> list[Any] | None:
    """The line items of ``order_id`` after the cursor ``after``; None if it is gone."""
    # Most orders that spill over have a few lines more; the full page's cost must be
    # available up front (the unused part is refunded), so ask for a modest one.
    return rest_of(client, "OrderLineItems", "order", "lineItems", order_id, after, desired=50)
