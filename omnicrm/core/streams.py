"""What each stream kind carries and which hook reads it: the one table of streams.

The host (which hooks a channel type needs, which hook a run calls), the sync engine
(which record type a stream must yield) and the conformance kit all read
:data:`STREAM_KINDS`; none of them names a stream itself. Adding a stream kind is a
member of :class:`~omnicrm.Stream`, its record model, its hookspec and one row here,
plus a place in the store for its records (see docs/plugins.md, "Adding a stream kind").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omnicrm.core.channels import Stream
from omnicrm.core.records import Checkout, Customer, Order, Product, Record
from omnicrm.errors import PluginError


@dataclass(frozen=True)
class StreamKind:
    """A stream: the record type it yields and the hook (called with ``ctx``) that reads it."""

    stream: Stream
    record: type[Record]
    hook: str


STREAM_KINDS: Mapping[Stream, StreamKind] = {
    kind.stream: kind
    for kind in (
        StreamKind(Stream.CUSTOMERS, Customer, "omnicrm_sync_customers"),
        StreamKind(Stream.ORDERS, Order, "omnicrm_import_orders"),
        StreamKind(Stream.PRODUCTS, Product, "omnicrm_sync_products"),
        StreamKind(Stream.CHECKOUTS, Checkout, "omnicrm_sync_checkouts"),
    )
}


def stream_of(record: Record) -> Stream:
    """The stream whose records are of ``record``'s type (a webhook's upsert is written
    to it)."""
    for kind in STREAM_KINDS.values():
        if type(record) is kind.record:
            return kind.stream
    raise PluginError(f"no stream carries {type(record).__name__} records")


def stream_kind(stream: str) -> StreamKind:
    """The kind of ``stream``; a PluginError names the known ones if there is none."""
    try:
        return STREAM_KINDS[Stream(stream)]
    except (KeyError, ValueError):
        known = ", ".join(s.value for s in STREAM_KINDS)
        raise PluginError(f"unknown stream {stream!r} (known: {known})") from None
