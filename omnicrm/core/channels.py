"""Channel types: what a channel plugin registers, and what its streams receive and yield.

A channel plugin registers a :class:`ChannelType` (its name, its pydantic settings model,
the streams it offers) and implements the stream hooks. A :class:`Connection` is one
configured shop of a channel type (a ``[connections.NAME]`` table of ``omnicrm.toml``).
The engine calls a stream with a :class:`StreamContext` and reads records in ascending
cursor (``updated_at``) order, interleaved with optional :class:`Checkpoint` objects
carrying plugin state to resume from.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from omnicrm.core._public import public
from omnicrm.errors import PluginError

if TYPE_CHECKING:
    from omnicrm.core.webhooks import WebhookReceiver
    from omnicrm.core.writeback import CouponIssuer, RecommendationWriter

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class Stream(StrEnum):
    """The record streams a channel can offer; each has its own hook and cursor."""

    CUSTOMERS = "customers"
    ORDERS = "orders"
    PRODUCTS = "products"
    CHECKOUTS = "checkouts"


SandboxFactory = Callable[..., AbstractContextManager[Mapping[str, Any]]]
"""Starts a local emulator of the platform; the context yields settings that reach it.

Called without arguments. A factory that also takes a keyword ``client`` (an int)
starts, for ``client`` 1, 2, ..., the store of another client business whose customers
partly overlap client 0's: ``omnicrm demo`` runs such sandboxes as separate shops. A
dispatcher's sandbox (a local server of the medium) that takes a keyword ``keep_in`` (a
directory) keeps what it receives there, for the demo's user to read."""


@dataclass(frozen=True)
class ChannelType:
    """A kind of channel (a platform) a plugin can sync from.

    ``settings`` validates one connection's ``[connections.NAME.settings]`` table; mark
    secrets as ``pydantic.SecretStr`` so they are never printed. ``sandbox``, when given,
    runs a local emulator for the demo and for tests. ``webhooks``, when given, receives
    the platform's webhooks (``omnicrm webhooks serve``). ``describe``, when given, is a
    short label of where a connection points (its settings in, e.g. the shop's domain).
    ``coupons`` and ``recommendations``, when given, write back to the platform: a
    campaign's coupon codes as its discount codes, and recommendations where its
    storefront can show them (see :mod:`omnicrm.core.writeback`).
    """

    name: str
    settings: type[BaseModel]
    streams: tuple[Stream, ...] = (Stream.CUSTOMERS, Stream.ORDERS)
    title: str = ""
    sandbox: SandboxFactory | None = None
    webhooks: WebhookReceiver | None = None
    describe: Callable[[BaseModel], str] | None = None
    reconciles: tuple[Stream, ...] = ()
    coupons: CouponIssuer | None = None
    recommendations: RecommendationWriter | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A point a stream can resume from.

    ``cursor``: every record with a lower ``updated_at`` has been yielded (the engine also
    derives this itself from the ascending records, so a plugin needs it only to move the
    cursor past a quiet stretch). ``state``: JSON-serialisable plugin state handed back in
    the next run's :attr:`StreamContext.state` (a bulk operation id, a page token).
    """

    cursor: dt.datetime | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StreamContext(Generic[SettingsT]):
    """What a stream hook is called with for one run of one stream of one connection.

    Read records with ``updated_at >= since`` (inclusive; ``None`` means from the
    beginning) in ascending ``updated_at`` order. ``since`` already includes the
    connection's lookback window; re-yielding a record the store holds is harmless.
    ``until`` is when the run started: the cursor never moves past it, so records changed
    after it are read again next run. ``full`` is true exactly when ``since`` is None:
    everything is read from the beginning (a first sync, or ``omnicrm sync --full``
    before its first commit), the moment to prefer a platform's bulk export.
    ``sleep`` is how waiting is done (tests pass a fake clock).
    """

    connection: str
    channel: str
    stream: Stream
    settings: SettingsT
    since: dt.datetime | None
    until: dt.datetime
    state: Mapping[str, Any]
    full: bool
    logger: logging.Logger
    rate_limit_wait: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def wait_for_rate_limit(self, seconds: float) -> None:
        """Sleep to respect the platform's rate limit, counting the time on the run."""
        if seconds <= 0:
            return
        self.sleep(seconds)
        self.rate_limit_wait += seconds


# The shop of a store or config that names none: a single-shop installation.
DEFAULT_SHOP = "default"


@dataclass(frozen=True)
class Connection:
    """One connection: a channel type, its validated settings, how and when to sync it,
    and the shop (client business) whose customers it brings."""

    name: str
    channel: str
    settings: BaseModel
    enabled: bool = True
    every: dt.timedelta | None = None
    cron: str | None = None
    lookback: dt.timedelta = dt.timedelta(minutes=10)
    batch_size: int = 1000
    shop: str = DEFAULT_SHOP

    @property
    def schedule(self) -> str:
        """The schedule in words, e.g. 'every 15m' or 'cron */5 * * * *'."""
        if self.cron:
            return f"cron {self.cron}"
        if self.every:
            return f"every {format_duration(self.every)}"
        return "manual"


def format_duration(value: dt.timedelta) -> str:
    """A duration in the largest whole unit, as the config writes it: '15m', '1d', '90s'."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class ChannelModules:
    """A plugin's channel types, one module each, and the module a stream call is for.

    Each module exposes ``CHANNEL`` (a :class:`ChannelType`) and its stream readers
    (``sync_customers(ctx)``, ``import_orders(ctx)``, ...). The host calls a stream hook
    only on the plugin that registered the connection's channel type, so a plugin with
    several types routes each call by ``ctx.channel``: ``modules.of(ctx).import_orders(ctx)``.
    The modules are imported on first use, so loading the plugin stays cheap.
    """

    def __init__(self, plugin: str, modules: Sequence[str]) -> None:
        self.plugin = plugin
        self.names = tuple(modules)
        self._by_type: dict[str, Any] | None = None

    def _modules(self) -> dict[str, Any]:
        if self._by_type is None:
            found = [importlib.import_module(name) for name in self.names]
            self._by_type = {module.CHANNEL.name: module for module in found}
        return self._by_type

    def types(self) -> list[ChannelType]:
        """The channel types, to register."""
        return [module.CHANNEL for module in self._modules().values()]

    def of(self, ctx: StreamContext[Any]) -> Any:
        """The module of ``ctx``'s channel type; a :class:`PluginError` if it has none."""
        try:
            return self._modules()[ctx.channel]
        except KeyError:
            raise PluginError(f"{self.plugin} has no channel type {ctx.channel!r}") from None


public(Stream, ChannelType, ChannelModules, Connection, Checkpoint, StreamContext)
