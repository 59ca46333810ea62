"""The one table of streams: each stream kind, its record type and the hook that reads it."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from omnicrm import Customer, Order, Product, Stream
from omnicrm.core import hookspecs
from omnicrm.core.streams import STREAM_KINDS, stream_kind, stream_of
from omnicrm.errors import PluginError


def test_every_stream_has_a_kind_and_every_kind_an_existing_stream_hook() -> None:
    assert set(STREAM_KINDS) == set(Stream)
    for stream, kind in STREAM_KINDS.items():
        assert kind.stream is stream
        spec = getattr(hookspecs, kind.hook)
        assert spec.omnicrm_spec["firstresult"], f"{kind.hook} must be firstresult"
        assert list(inspect.signature(spec).parameters) == ["ctx"], kind.hook


def test_the_kinds_of_today() -> None:
    assert stream_kind("customers").record is Customer
    assert stream_kind(Stream.ORDERS).record is Order
    assert stream_kind(Stream.ORDERS).hook == "omnicrm_import_orders"
    assert stream_kind("products").record is Product
    assert stream_kind(Stream.PRODUCTS).hook == "omnicrm_sync_products"


def test_a_record_names_its_stream() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    product = Product(id="P1", title="宇治抹茶", updated_at=at)
    assert stream_of(product) is Stream.PRODUCTS
    assert stream_of(Customer(id="C1", updated_at=at)) is Stream.CUSTOMERS


def test_an_unknown_stream_is_named() -> None:
    with pytest.raises(
        PluginError,
        match=r"stream .coupons. \(known: customers, orders, products, checkouts\)",
    ):
        stream_kind("coupons")
