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
  with its own times, behind a cursor that has passed them. The checkpoint's state keeps
  ``through`` (the end of the last window read) and ``seen``: the ids and ``updDateTime``
  yielded with a stamp in the ``late_upload_days`` before it. Each incremental read starts
  at ``through - late_upload_days`` (earlier only if the connection's own lookback reaches
  further); in ``through - late_upload_days .. through`` what ``seen`` holds is skipped
  and what is new is yielded with ``through`` as its ``updated_at`` (the engine's cursor
  only moves forward; the raw payload keeps Smaregi's stamp). Anything else read keeps
  its own stamp: past ``through`` it is new or was written by a run cut short (the store
  skips what it holds), and before the kept stamps only the connection's lookback asked
  for it. So a run with nothing new at Smaregi yields nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from itertools import chain
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


def _through(ctx: StreamContext[BaseModel]) -> dt.datetime | None:
    """Where the stamps in the state's ``seen`` end: the last checkpoint's window end (a
    state from before it was kept: the read's start, as that state's prune assumed)."""
    if ctx.since is None:
        return None
    raw = ctx.state.get("through")
    if isinstance(raw, str):
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            pass
    return ctx.since


def _kept_from(through: dt.datetime, lookback: dt.timedelta) -> dt.datetime:
    """The first whole second whose stamps ``seen`` keeps for a read ending at ``through``:
    the prune and the next read's horizon both come from here, so they agree."""
    kept = through - lookback
    if kept.microsecond:
        kept = kept.replace(microsecond=0) + dt.timedelta(seconds=1)
    return kept


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Sales changed since ``ctx.since`` (and late uploads), ascending by update time."""
    settings = cast(SmaregiSettings, ctx.settings)
    lookback = dt.timedelta(days=settings.late_upload_days)
    since, through = ctx.since, _through(ctx)
    raw_seen = ctx.state.get("seen") if through is not None else None
    seen: dict[str, str] = dict(raw_seen) if isinstance(raw_seen, Mapping) else {}
    if since is None or through is None:
        start = kept = _start(settings, ctx.until)
    else:
        # `seen` holds the stamps from `kept` on (the prune below): reading from there,
        # not from `since - lookback`, keeps the two horizons the same.
        kept = _kept_from(through, lookback)
        start = min(since, kept)
    # (id, updDateTime) yielded in this window and the one before: a repeat can only come
    # from the same window (on two pages) or across its edge, so older ones are let go.
    yielded: set[tuple[str, str]] = set()
    before: set[tuple[str, str]] = set()
    # What this window yields joins `seen` at its checkpoint: a state committed with a
    # batch inside the window need not (and so does not) carry it, as a run resumed from
    # there yields what is past `through` with its own stamp, and the store skips it.
    fresh: dict[str, str] = {}
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
                    if through is not None and kept <= order.updated_at <= through:
                        if seen.get(key[0]) == key[1]:
                            continue  # yielded by an earlier run
                        order = order.model_copy(update={"updated_at": through})  # late
                    fresh[key[0]] = key[1]
                    yield order
            # Remember what the next run's look-back will find again.
            horizon = _kept_from(high, lookback)
            # A new dict: the one the last checkpoint's state holds is left as it was.
            seen = {
                k: v
                for k, v in chain(seen.items(), fresh.items())
                if dt.datetime.fromisoformat(v) >= horizon
            }
            fresh = {}
            yield Checkpoint(cursor=high, state={"seen": seen, "through": high.isoformat()})
            before, yielded = yielded, set()
            low = high + dt.timedelta(seconds=1)
