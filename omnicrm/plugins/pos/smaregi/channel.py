"""The Smaregi channel type and its three stream readers.

How the streams read:

* **members**: GET /customers sorted by ``updDateTime``, ``upd_date_time-from`` the
  cursor (none on a full read) and ``-to`` the run's start, page by page.
* **sales**: GET /transactions with their details, sorted by ``updDateTime``, walking
  ``upd_date_time`` windows of at most 31 days (Smaregi refuses wider ones) from the
  cursor, or from ``history_start`` (default five years back) on a full read, up to the
  run's start. A cancel moves a sale's ``updDateTime``, so it is read again.
* **products**: GET /products sorted by ``updDateTime``, ``upd_date_time-from`` the
  cursor and ``-to`` the run's start, page by page; category names from GET /categories.
* **late uploads**: an offline register uploads its sales hours or days later, stamped
  with its own times, behind a cursor that has passed them. Each incremental read starts
  ``late_upload_days`` earlier; what it finds there that it already yielded (the ids and
  ``updDateTime`` of the last ``late_upload_days``, kept in the checkpoint's state) is
  skipped, and what is new is yielded with the read's start as its ``updated_at`` (the
  engine's cursor only moves forward; the raw payload keeps Smaregi's stamp).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, cast

from pydantic import BaseModel

from omnicrm import ChannelType, Checkpoint, Customer, Order, Product, Stream, StreamContext
from omnicrm.plugins.pos.smaregi.client import SmaregiClient
from omnicrm.plugins.pos.smaregi.mapping import (
    category_names,
    customer_from_record,
    order_from_transaction,
    product_from_record,
    store_names,
)
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings
from omnicrm.plugins.pos.smaregi.webhooks import SmaregiWebhooks

CHANNEL_NAME = "smaregi"
WINDOW = dt.timedelta(days=31) - dt.timedelta(seconds=1)
"""The widest range Smaregi accepts, both ends inclusive at whole seconds."""
HISTORY = dt.timedelta(days=5 * 366)
JST = dt.timezone(dt.timedelta(hours=9))


def sandbox() -> AbstractContextManager[Mapping[str, Any]]:
    """Start the local Smaregi emulator; its context yields a connection's settings."""
    # Imported on use: the emulator and its seeded data are heavy.
    module = importlib.import_module("omnicrm.plugins.pos.smaregi.sandbox")
    start: Callable[[], AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start()


def describe(settings: BaseModel) -> str:
    """Where a connection points: the contract id."""
    return f"Smaregi contract {cast(SmaregiSettings, settings).contract_id}"


CHANNEL = ChannelType(
    name=CHANNEL_NAME,
    settings=SmaregiSettings,
    streams=(Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS),
    title="スマレジ (Smaregi)",
    sandbox=sandbox,
    webhooks=SmaregiWebhooks(),
    describe=describe,
)


def stamp(value: dt.datetime) -> str:
    """A time as Smaregi's queries take it (whole seconds, JST)."""
    return value.astimezone(JST).replace(microsecond=0).isoformat()


def _client(ctx: StreamContext[BaseModel]) -> SmaregiClient:
    return SmaregiClient(
        cast(SmaregiSettings, ctx.settings),
        sleep=ctx.sleep,
        on_rate_limit=ctx.wait_for_rate_limit,
    )


def sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Members changed since ``ctx.since``, ascending by update time."""
    settings = cast(SmaregiSettings, ctx.settings)
    params = {"sort": "updDateTime,customerId", "upd_date_time-to": stamp(ctx.until)}
    if ctx.since is not None:
        params["upd_date_time-from"] = stamp(ctx.since)
    with _client(ctx) as api:
        for page in api.pages("/customers", params, settings.page_size):
            for record in page:
                yield customer_from_record(record)


def sync_products(ctx: StreamContext[BaseModel]) -> Iterator[Product | Checkpoint]:
    """Register products changed since ``ctx.since``, ascending by update time."""
    settings = cast(SmaregiSettings, ctx.settings)
    params = {"sort": "updDateTime,productId", "upd_date_time-to": stamp(ctx.until)}
    if ctx.since is not None:
        params["upd_date_time-from"] = stamp(ctx.since)
    with _client(ctx) as api:
        categories: dict[str, str] = {}
        for page in api.pages("/categories", {}, settings.page_size):
            categories.update(category_names(page))
        for page in api.pages("/products", params, settings.page_size):
            for record in page:
                yield product_from_record(record, categories)


def stores(api: SmaregiClient) -> dict[str, str]:
    """The contract's store names by id."""
    names: dict[str, str] = {}
    for page in api.pages("/stores", {}, api.settings.page_size):
        names.update(store_names(page))
    return names


def _start(settings: SmaregiSettings, until: dt.datetime) -> dt.datetime:
    if settings.history_start is None:
        return until - HISTORY
    return dt.datetime.combine(settings.history_start, dt.time(), JST)


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Sales changed since ``ctx.since`` (and late uploads), ascending by update time."""
    settings = cast(SmaregiSettings, ctx.settings)
    lookback = dt.timedelta(days=settings.late_upload_days)
    since = ctx.since
    start = _start(settings, ctx.until) if since is None else since - lookback
    raw_seen = ctx.state.get("seen") if since is not None else None
    seen: dict[str, str] = dict(raw_seen) if isinstance(raw_seen, Mapping) else {}
    # (id, updDateTime) yielded in this window and the one before: a repeat can only come
    # from the same window (on two pages) or across its edge, so older ones are let go.
    yielded: set[tuple[str, str]] = set()
    before: set[tuple[str, str]] = set()
    with _client(ctx) as api:
        names = stores(api)
        low = start.replace(microsecond=0)
        while low <= ctx.until:
            high = min(low + WINDOW, ctx.until)
            params = {
                "upd_date_time-from": stamp(low),
                "upd_date_time-to": stamp(high),
                "sort": "updDateTime,transactionHeadId",
                "with_details": "all",
            }
            for page in api.pages("/transactions", params, settings.orders_page_size):
                for record in page:
                    order = order_from_transaction(record, names)
                    if order is None:
                        continue
                    key = (order.id, str(record.get("updDateTime")))
                    if key in yielded or key in before:  # on two pages, or at an edge
                        continue
                    yielded.add(key)
                    if since is not None and order.updated_at < since:
                        if seen.get(key[0]) == key[1]:
                            continue  # yielded by an earlier run
                        order = order.model_copy(update={"updated_at": since})  # uploaded late
                    seen[key[0]] = key[1]
                    yield order
            # Remember what the next run's look-back will find again.
            horizon = high - lookback
            seen = {k: v for k, v in seen.items() if dt.datetime.fromisoformat(v) >= horizon}
            yield Checkpoint(cursor=high, state={"seen": seen})
            before, yielded = yielded, set()
            low = high + dt.timedelta(seconds=1)
