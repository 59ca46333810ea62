"""The EC-CUBE Web API channel type and its stream readers (customers, orders, products,
checkouts).

How a stream reads without skipping: the API pages by offset in ``update_date`` DESC
order, so a row updated while a run pages leaves its place and shifts every later page
by one; the row that moved into the gap's page would be skipped. So no offset beyond the
first page is ever trusted:

1. The read ends ``settle_seconds`` before the run's start (a closed window in the
   past): an update during the run stamps its row after the window, so rows can only
   *leave* the window while it is read, never enter it.
2. The range is halved (``limit: 1`` probes read ``totalCount``) until each window holds
   at most ``window_size`` rows; windows are read oldest first.
3. Within a window only page 1 is read, over and over: one answer is one snapshot, and
   the rows on it newer than its oldest second are every row of that part of the window
   (DESC order puts them first). The window's end moves down to that second (exclusive
   end, so the second itself is read again) and page 1 is asked again.
4. When a whole page shares one second (more than ``page_size`` rows updated in the same
   second), that second is read page by page, and its ``totalCount`` must be the same on
   every page: since rows can only leave, an unchanged count means nothing moved;
   otherwise the second is read again.

A window's rows are then yielded ascending by update date and a checkpoint at its end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from omnicrm import (
    ChannelType,
    Checkout,
    Checkpoint,
    Customer,
    Order,
    Product,
    Stream,
    StreamContext,
)
from omnicrm.errors import TransientError
from omnicrm.plugins.ec_cube.api.client import EccubeClient
from omnicrm.plugins.ec_cube.api.mapping import (
    checkout_from_node,
    customer_from_node,
    order_from_node,
    product_from_node,
)
from omnicrm.plugins.ec_cube.api.reconcile import deleted_ids
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.webhooks import EccubeWebhooks

CHANNEL_NAME = "ec_cube"
SECOND = dt.timedelta(seconds=1)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Where a full read starts without ``history_start`` (EC-CUBE 2 was released 2007)."""
_SAME_SECOND_TRIES = 5


def sandbox() -> AbstractContextManager[Mapping[str, Any]]:
    """Start the local EC-CUBE emulator; its context yields a connection's settings."""
    module = importlib.import_module("omnicrm.plugins.ec_cube.sandbox")
    start: Callable[[], AbstractContextManager[Mapping[str, Any]]] = module.sandbox
    return start()


# In `omnicrm demo` the EC-CUBE shop is the second client shop's (osaka-sweets') EC site.
sandbox.demo_clients = (1,)  # type: ignore[attr-defined]


def describe(settings: BaseModel) -> str:
    """Where a connection points: the shop's URL."""
    return f"EC-CUBE {cast(EccubeSettings, settings).base}"


CHANNEL = ChannelType(
    name=CHANNEL_NAME,
    settings=EccubeSettings,
    title="EC-CUBE 4 (Web API)",
    sandbox=sandbox,
    webhooks=EccubeWebhooks(),
    describe=describe,
    streams=(Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS, Stream.CHECKOUTS),
    # EC-CUBE never retries a webhook: a hard delete whose notice was lost is found
    # only by listing the ids the shop still has.
    reconciles=(Stream.CUSTOMERS, Stream.ORDERS),
)


def stamp(value: dt.datetime, zone: dt.tzinfo) -> str:
    """A time as the API's filters take it: whole seconds with the shop's offset."""
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def _floor(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=0)


@dataclass
class Reader:
    """Reads one list operation (``Customers``, ``Orders``, ``Products``) window by window."""

    api: EccubeClient
    operation: str
    root: str
    zone: dt.tzinfo
    page_size: int
    window_size: int

    def _page(
        self, low: dt.datetime, high: dt.datetime, page: int, limit: int
    ) -> tuple[int, list[Any]]:
        variables = {
            "page": page,
            "limit": limit,
            "start": stamp(low, self.zone),
            "end": stamp(high, self.zone),
        }
        data = self.api.run(self.operation, variables)
        connection = data.get(self.root)
        if not isinstance(connection, Mapping):
            raise TransientError(f"EC-CUBE's answer to {self.operation} has no {self.root}")
        total, nodes = connection.get("totalCount"), connection.get("nodes")
        if not isinstance(total, int) or not isinstance(nodes, list):
            raise TransientError(f"EC-CUBE's {self.root} lacks totalCount or nodes")
        return total, nodes

    def windows(
        self, low: dt.datetime, high: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """[low, high) halved until each part holds at most ``window_size`` rows, oldest
        first; empty parts are left out."""
        pending = [(low, high)]
        while pending:
            lo, hi = pending.pop()
            total, _ = self._page(lo, hi, 1, 1)
            if total == 0:
                continue
            if total <= self.window_size or hi - lo <= SECOND:
                yield lo, hi
                continue
            mid = _floor(lo + (hi - lo) / 2)
            if mid <= lo:
                mid = lo + SECOND
            pending.append((mid, hi))
            pending.append((lo, mid))  # popped first: oldest first

    def _updated(self, node: Any) -> dt.datetime:
        raw = node.get("update_date") if isinstance(node, Mapping) else None
        try:
            value = dt.datetime.fromisoformat(str(raw))
        except ValueError:
            raise TransientError(
                f"EC-CUBE {self.root}: a node's update_date is not a date-time"
            ) from None
        return value if value.tzinfo is not None else value.replace(tzinfo=self.zone)

    def window(self, low: dt.datetime, high: dt.datetime) -> list[Any]:
        """Every row of [low, high), each once, read by first pages only (see above)."""
        rows: dict[str, Any] = {}
        top = high
        while top > low:
            total, nodes = self._page(low, top, 1, self.page_size)
            if total <= len(nodes):
                rows.update((str(n.get("id")), n) for n in nodes)
                break
            if not nodes:
                raise TransientError(f"EC-CUBE counted {total} {self.root} but sent none")
            oldest = _floor(min(self._updated(n) for n in nodes))
            newer = [n for n in nodes if self._updated(n) >= oldest + SECOND]
            if newer:
                rows.update((str(n.get("id")), n) for n in newer)
                top = oldest + SECOND
            else:  # a full page in one second: that second by offsets, checked
                rows.update((str(n.get("id")), n) for n in self._second(oldest))
                top = oldest
        return sorted(rows.values(), key=lambda n: (self._updated(n), int(str(n.get("id")))))

    def _second(self, at: dt.datetime) -> list[Any]:
        for _ in range(_SAME_SECOND_TRIES):
            total, nodes = self._page(at, at + SECOND, 1, self.page_size)
            found = list(nodes)
            page = 1
            steady = True
            while len(found) < total:
                page += 1
                again, more = self._page(at, at + SECOND, page, self.page_size)
                if again != total or not more:
                    steady = False  # a row left the second: the pages shifted
                    break
                found.extend(more)
            if steady:
                return found
        raise TransientError(
            f"EC-CUBE {self.root} updated at {at.isoformat()} kept changing while read"
        )


def _client(ctx: StreamContext[BaseModel]) -> EccubeClient:
    return EccubeClient(cast(EccubeSettings, ctx.settings), ctx.connection, sleep=ctx.sleep)


def _range(ctx: StreamContext[BaseModel]) -> tuple[dt.datetime, dt.datetime]:
    settings = cast(EccubeSettings, ctx.settings)
    high = _floor(ctx.until - dt.timedelta(seconds=settings.settle_seconds))
    if ctx.since is not None:
        low = _floor(ctx.since)
    elif settings.history_start is not None:
        low = dt.datetime.combine(settings.history_start, dt.time(), settings.zone)
    else:
        low = EARLIEST
    return low, high


def read(
    ctx: StreamContext[BaseModel],
    operation: str,
    root: str,
    mapper: Callable[[Any, dt.tzinfo], Any],
) -> Iterator[Any]:
    """The records of one list operation, ascending, a checkpoint after each window."""
    settings = cast(EccubeSettings, ctx.settings)
    low, high = _range(ctx)
    if high <= low:
        return
    with _client(ctx) as api, ThreadPoolExecutor(1, thread_name_prefix="ec_cube-read") as ahead:
        reader = Reader(
            api, operation, root, settings.zone, settings.page_size, settings.window_size
        )
        spans = reader.windows(low, high)

        def fetch() -> tuple[dt.datetime, list[Any]] | None:
            # Only this worker advances ``spans`` and uses the client, one call at a time.
            span = next(spans, None)
            return None if span is None else (span[1], reader.window(*span))

        # The next window is read while this one is mapped and written.
        coming = ahead.submit(fetch)
        while (got := coming.result()) is not None:
            coming = ahead.submit(fetch)
            end, nodes = got
            for node in nodes:
                record = mapper(node, settings.zone)
                if record is not None:
                    yield record
            yield Checkpoint(cursor=end)
    yield Checkpoint(cursor=high)


def sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Customers of every status changed since ``ctx.since``, ascending by update date."""
    return cast(
        Iterator[Customer | Checkpoint], read(ctx, "Customers", "customers", customer_from_node)
    )


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Orders (every status but unfinished checkouts) changed since ``ctx.since``."""
    return cast(Iterator[Order | Checkpoint], read(ctx, "Orders", "orders", order_from_node))


def sync_products(ctx: StreamContext[BaseModel]) -> Iterator[Product | Checkpoint]:
    """Products of every status (discontinued ones too) changed since ``ctx.since``,
    each with all of its classes, ascending by when the product or any class changed.

    EC-CUBE stamps each entity it saves: a sale that takes stock stamps the product class
    (商品規格), never its product, and the API filters by the product's date only. So the
    whole catalogue is read each run (one request per ``page_size`` products) and what
    changed since ``ctx.since``, the product or any of its classes, is passed on: a class
    sold out by a sale reaches the store on the next run.
    """
    settings = cast(EccubeSettings, ctx.settings)
    low, high = _range(ctx)
    if high <= low:
        return
    start = _range(dataclasses.replace(ctx, since=None))[0]
    found: list[Product] = []
    with _client(ctx) as api:
        reader = Reader(
            api, "Products", "products", settings.zone, settings.page_size, settings.window_size
        )
        for span in reader.windows(start, high):
            for node in reader.window(*span):
                product = product_from_node(
                    node, settings.zone, base=settings.base, tax_rate=settings.tax_rate
                )
                if ctx.since is None or product.updated_at >= low:
                    found.append(product)
    found.sort(key=lambda p: (p.updated_at, p.id))
    yield from found
    yield Checkpoint(cursor=high)


def sync_checkouts(ctx: StreamContext[BaseModel]) -> Iterator[Checkout | Checkpoint]:
    """Carts left in the shopping flow (orders in status 7, 8) changed since
    ``ctx.since``, ascending by update date."""
    return cast(
        Iterator[Checkout | Checkpoint], read(ctx, "Checkouts", "orders", checkout_from_node)
    )


def reconcile(ctx: StreamContext[BaseModel], stored: frozenset[str]) -> list[str]:
    """The ``stored`` ids of ``ctx.stream`` the shop no longer has, each confirmed gone."""
    with _client(ctx) as api:
        return deleted_ids(api, ctx.stream.value, stored, ctx.until)
