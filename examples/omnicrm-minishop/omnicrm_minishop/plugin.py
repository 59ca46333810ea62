"""The omnicrm plugin: registers the ``minishop`` channel type and implements its streams.

This module is what the ``omnicrm`` entry point names, so omnicrm scans it for
``@omnicrm.hookimpl`` functions. Keep it to hooks and the settings model; the HTTP work
lives in :mod:`omnicrm_minishop.client`, the field mapping in :mod:`omnicrm_minishop.mapping`.

Why there is no :class:`~omnicrm.Checkpoint` here: MiniShop lists records in ascending
``(updated_at, id)`` and takes an inclusive ``updated_since``, so the cursor the engine
derives from the records is all a resumed run needs. A platform with bulk exports or
server-side cursors would yield ``Checkpoint(state={...})`` to resume those instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

import omnicrm
from omnicrm import ChannelType, Customer, Order, StreamContext
from omnicrm.errors import PluginError
from omnicrm_minishop.client import MiniShopClient
from omnicrm_minishop.sandbox import sandbox

CHANNEL_NAME = "minishop"


class MiniShopSettings(BaseModel):
    """Settings of one MiniShop connection (the ``[connections.NAME.settings]`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        description="The shop's MiniShop address, e.g. https://example.minishop.jp"
    )
    api_key: SecretStr = Field(min_length=1, description="MiniShop admin > API > API key.")
    page_size: int = Field(default=100, ge=1, le=250, description="Records per request.")
    timeout: float = Field(default=30.0, gt=0, le=300, description="Seconds to wait per request.")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def describe(settings: BaseModel) -> str:
    """Where a connection points: its shop's host (and port, when not the usual one)."""
    url = cast(MiniShopSettings, settings).base_url
    host = url.host or ""
    return host if url.port == _DEFAULT_PORTS.get(url.scheme) else f"{host}:{url.port}"


CHANNEL = ChannelType(
    name=CHANNEL_NAME,
    settings=MiniShopSettings,
    title="MiniShop",
    sandbox=sandbox,
    describe=describe,
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the ``minishop`` channel type."""
    register.channel_type(CHANNEL)


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer]:
    """Customers changed since ``ctx.since``, ascending by ``updated_at``."""
    return _read(ctx, MiniShopClient.customers)


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order]:
    """Orders (with their lines) changed since ``ctx.since``, ascending by ``updated_at``."""
    return _read(ctx, MiniShopClient.orders)


_R = TypeVar("_R", Customer, Order)


def _read(
    ctx: StreamContext[BaseModel],
    fetch: Callable[[MiniShopClient, dt.datetime | None], Iterator[_R]],
) -> Iterator[_R]:
    settings = ctx.settings  # typed BaseModel by the hookspec; the engine validated ours
    if not isinstance(settings, MiniShopSettings):
        raise PluginError(f"minishop got settings of type {type(settings).__name__}")
    since = None if ctx.full or ctx.since is None else _floor_ms(_aware(ctx.since))
    until = _aware(ctx.until)
    client = MiniShopClient(
        str(settings.base_url),
        settings.api_key.get_secret_value(),
        page_size=settings.page_size,
        timeout=settings.timeout,
        # Short waits are cheaper here, mid-run, than a retry of the whole run.
        on_rate_limit=ctx.wait_for_rate_limit,
        logger=ctx.logger,
    )
    count = 0
    with client:
        # MiniShop lists by (updated_at, id), which is the ascending order omnicrm needs
        # (the engine checks it); a platform without that order would have to sort here.
        for record in fetch(client, since):
            if record.updated_at >= until:
                # Changed after this run began: the next run starts from here. Stopping
                # also keeps a busy shop from feeding one run for ever.
                break
            count += 1
            yield record
    start = since.isoformat() if since else "the beginning"
    ctx.logger.info("minishop: read %d %s since %s", count, ctx.stream, start)


def _aware(value: dt.datetime) -> dt.datetime:
    # The engine passes UTC; nothing in StreamContext's type promises an offset, though.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _floor_ms(value: dt.datetime) -> dt.datetime:
    # MiniShop keeps milliseconds: a finer `since` could fall between a record's true
    # change time and the one MiniShop shows, and skip it.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
