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
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from omnicrm.core._public import public

if TYPE_CHECKING:
    from omnicrm.core.webhooks import WebhookReceiver

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class Stream(StrEnum):
    """The record streams a channel can offer; each has its own hook and cursor."""

    CUSTOMERS = "customers"
    ORDERS = "orders"


SandboxFactory = Callable[..., AbstractContextManager[Mapping[str, Any]]]
"""Starts a local emulator of the platform; the context yields settings that reach it.

Called without arguments. A factory that also takes a keyword ``client`` (an int)
starts, for ``client`` 1, 2, ..., the store of another client business whose customers
partly overlap client 0's: ``omnicrm demo`` runs such sandboxes as separate shops."""


@dataclass(frozen=True)
class ChannelType:
    """A kind of channel (a platform) a plugin can sync from.

    ``settings`` validates one connection's ``[connections.NAME.settings]`` table; mark
    secrets as ``pydantic.SecretStr`` so they are never printed. ``sandbox``, when given,
    runs a local emulator for the demo and for tests. ``webhooks``, when given, receives
    the platform's webhooks (``omnicrm webhooks serve``). ``describe``, when given, is a
    short label of where a connection points (its settings in, e.g. the shop's domain).
    """

    name: str
    settings: type[BaseModel]
    streams: tuple[Stream, ...] = (Stream.CUSTOMERS, Stream.ORDERS)
    title: str = ""
    sandbox: SandboxFactory | None = None
    webhooks: WebhookReceiver | None = None
    describe: Callable[[BaseModel], str] | None = None


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


public(Stream, ChannelType, Connection, Checkpoint, StreamContext)
