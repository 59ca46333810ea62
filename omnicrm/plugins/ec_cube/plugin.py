"""The ``ec_cube`` plugin: registers the EC-CUBE channel types and routes their streams.

Each way of reaching a shop (the Web API, the admin CSV exports) lives in a module
exposing ``CHANNEL`` (a :class:`~omnicrm.ChannelType`) and the stream readers
``sync_customers(ctx)`` and ``import_orders(ctx)`` (and ``sync_products(ctx)`` where the
channel type lists the products stream); :class:`~omnicrm.ChannelModules` picks
the module by ``ctx.channel``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from pydantic import BaseModel

import omnicrm
from omnicrm import Checkout, Checkpoint, Customer, Order, Product, StreamContext

CHANNEL_MODULES: tuple[str, ...] = (
    "omnicrm.plugins.ec_cube.api.channel",
    "omnicrm.plugins.ec_cube.csv.channel",
)
"""The channel modules, one per channel type."""

CHANNELS = omnicrm.ChannelModules("ec_cube", CHANNEL_MODULES)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register each EC-CUBE channel type."""
    for channel in CHANNELS.types():
        register.channel_type(channel)


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[BaseModel]) -> Iterable[Customer | Checkpoint]:
    """Customers changed since ``ctx.since``, ascending by update time."""
    return cast("Iterable[Customer | Checkpoint]", CHANNELS.of(ctx).sync_customers(ctx))


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[BaseModel]) -> Iterable[Order | Checkpoint]:
    """Orders (with their lines) changed since ``ctx.since``, ascending."""
    return cast("Iterable[Order | Checkpoint]", CHANNELS.of(ctx).import_orders(ctx))


@omnicrm.hookimpl
def omnicrm_sync_products(ctx: StreamContext[BaseModel]) -> Iterable[Product | Checkpoint]:
    """Products (with their classes) changed since ``ctx.since``, ascending."""
    return cast("Iterable[Product | Checkpoint]", CHANNELS.of(ctx).sync_products(ctx))


@omnicrm.hookimpl
def omnicrm_sync_checkouts(ctx: StreamContext[BaseModel]) -> Iterable[Checkout | Checkpoint]:
    """Carts left in the shopping flow, changed since ``ctx.since``, ascending."""
    return cast("Iterable[Checkout | Checkpoint]", CHANNELS.of(ctx).sync_checkouts(ctx))


@omnicrm.hookimpl
def omnicrm_reconcile(ctx: StreamContext[BaseModel], stored: frozenset[str]) -> list[str]:
    """The stored ids of ``ctx.stream`` the shop deleted without a webhook reaching us."""
    return cast("list[str]", CHANNELS.of(ctx).reconcile(ctx, stored))
