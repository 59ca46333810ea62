"""The ``pos`` plugin: registers the POS channel types and routes their stream calls.

Each POS platform lives in a subpackage whose ``channel`` module exposes ``CHANNEL`` (a
:class:`~omnicrm.ChannelType`) and the stream readers (``sync_customers(ctx)``,
``import_orders(ctx)``, ``sync_products(ctx)``); :class:`~omnicrm.ChannelModules` picks the
module by ``ctx.channel``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from pydantic import BaseModel

import omnicrm
from omnicrm import Checkpoint, Customer, Order, Product, StreamContext

CHANNEL_MODULES: tuple[str, ...] = (
    "omnicrm.plugins.pos.smaregi.channel",
    "omnicrm.plugins.pos.square.channel",
    "omnicrm.plugins.pos.csv.channel",
)
"""The channel modules of the POS platforms, one per channel type."""

CHANNELS = omnicrm.ChannelModules("pos", CHANNEL_MODULES)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register each POS platform's channel type."""
    for channel in CHANNELS.types():
        register.channel_type(channel)


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[BaseModel]) -> Iterable[Customer | Checkpoint]:
    """Store members changed since ``ctx.since``, ascending by update time."""
    return cast("Iterable[Customer | Checkpoint]", CHANNELS.of(ctx).sync_customers(ctx))


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[BaseModel]) -> Iterable[Order | Checkpoint]:
    """Store sales (with their lines) changed since ``ctx.since``, ascending."""
    return cast("Iterable[Order | Checkpoint]", CHANNELS.of(ctx).import_orders(ctx))


@omnicrm.hookimpl
def omnicrm_sync_products(ctx: StreamContext[BaseModel]) -> Iterable[Product | Checkpoint]:
    """Register products changed since ``ctx.since``, ascending (only channels that list
    the products stream are asked)."""
    return cast("Iterable[Product | Checkpoint]", CHANNELS.of(ctx).sync_products(ctx))
