"""The Square channel type (``square``) and its three stream readers.

The ``pos`` plugin registers :data:`CHANNEL` and hands it the stream calls of square
connections. How the streams read Square is in :mod:`~omnicrm.plugins.pos.square.reader`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, cast

from pydantic import BaseModel

from omnicrm import ChannelType, Checkpoint, Customer, Order, Product, Stream, StreamContext
from omnicrm.errors import PluginError
from omnicrm.plugins.pos.square.client import SquareClient
from omnicrm.plugins.pos.square.reader import SquareReader
from omnicrm.plugins.pos.square.settings import SquareSettings
from omnicrm.plugins.pos.square.webhooks import SquareWebhooks

CHANNEL_NAME = "square"


def sandbox(*, client: int = 0) -> AbstractContextManager[Mapping[str, Any]]:
    """Start the local Square emulator; its context yields a connection's settings."""
    # Imported on use: the emulator (a server, seeded data) is heavy, and a sync of a
    # real seller must load without it.
    module = importlib.import_module("omnicrm.plugins.pos.square.sandbox")
    start: Callable[..., AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start(client=client)


def describe(settings: BaseModel) -> str:
    """Where a connection points: the API origin and, if chosen, its locations."""
    square = cast(SquareSettings, settings)
    where = ", ".join(square.location_ids) if square.location_ids else "all locations"
    return f"{square.api_url} ({where})"


CHANNEL = ChannelType(
    name=CHANNEL_NAME,
    settings=SquareSettings,
    streams=(Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS),
    title="Square",
    sandbox=sandbox,
    webhooks=SquareWebhooks(),
    describe=describe,
)


def _reader(ctx: StreamContext[BaseModel]) -> tuple[SquareClient, SquareReader]:
    settings = ctx.settings
    if not isinstance(settings, SquareSettings):
        raise PluginError(f"square got settings of type {type(settings).__name__}")
    client = SquareClient(
        settings, sleep=ctx.sleep, on_rate_limit=ctx.wait_for_rate_limit, logger=ctx.logger
    )
    return client, SquareReader(client, settings, ctx.logger)


def sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Square customers updated since ``ctx.since``, ascending by ``updated_at``."""
    client, reader = _reader(ctx)
    until = ctx.until - dt.timedelta(seconds=reader.settings.search_lag)
    if ctx.since is not None and until < ctx.since:
        return  # the last run was moments ago: nothing has surely arrived since
    with client:
        count = 0
        for customer in reader.customers(ctx.since, until):
            count += 1
            yield customer
        ctx.logger.info("square: %d customers read in %d requests", count, client.requests)


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Square orders (register sales, returns) updated since ``ctx.since``, ascending."""
    client, reader = _reader(ctx)
    with client:
        count = anonymous = 0
        for order in reader.orders(ctx.since, ctx.until):
            count += 1
            anonymous += order.customer_id is None
            yield order
        ctx.logger.info(
            "square: %d orders read (%d with no customer: store sales only) in %d requests",
            count,
            anonymous,
            client.requests,
        )


def sync_products(ctx: StreamContext[BaseModel]) -> Iterator[Product | Checkpoint]:
    """Square catalogue items (with their variations) changed since ``ctx.since``,
    ascending by ``updated_at``."""
    client, reader = _reader(ctx)
    with client:
        found = reader.products(ctx.since)
        ctx.logger.info(
            "square: %d catalogue items read in %d requests", len(found), client.requests
        )
        yield from found
