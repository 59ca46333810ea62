"""Backfill by bulk operation against the sandbox: join, sort, resume, faults."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from omnicrm import Checkpoint, Customer, Order, Stream
from omnicrm.errors import DataError, TransientError
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.bulk import STATE_KEY, _JoinFile
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.testing import stream_context


def _quick(seconds: float) -> None:
    # Bulk polls back off up to 30 s; the sandbox answers in milliseconds.
    time.sleep(min(seconds, 0.02))


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=40, seed=21, bucket_size=2000, restore_rate=5000) as server:
        yield server


def _settings(shop: ShopifySandbox, **changes: Any) -> BaseModel:
    # Typed as the hooks take it: StreamContext is invariant in its settings type.
    return ShopifySettings(**{**shop.settings(), "bulk_threshold": 0, **changes})


def _read(
    shop: ShopifySandbox,
    stream: Stream,
    *,
    state: dict[str, Any] | None = None,
    since: dt.datetime | None = None,
    **changes: Any,
) -> list[Customer | Order | Checkpoint]:
    ctx = stream_context(
        "shopify", _settings(shop, **changes), stream, state=state, since=since, sleep=_quick
    )
    hook = (
        plugin.omnicrm_import_orders if stream is Stream.ORDERS else plugin.omnicrm_sync_customers
    )
    return list(hook(ctx))


def _records(items: list[Any]) -> list[Any]:
    return [i for i in items if not isinstance(i, Checkpoint)]


def _paged(shop: ShopifySandbox, stream: Stream) -> list[Any]:
    """The same stream read page by page (an incremental read from before the shop)."""
    return _records(_read(shop, stream, since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


# -- the join on its own: children interleaved, parents out of order


def _lines(*objects: dict[str, Any]) -> list[bytes]:
    return [json.dumps(o).encode() for o in objects]


def test_children_join_their_parent_wherever_they_are(tmp_path: Path) -> None:
    def order(n: int, updated: str) -> dict[str, Any]:
        return {"id": f"gid://shopify/Order/{n}", "updatedAt": updated}

    def line(n: int, parent: int) -> dict[str, Any]:
        return {"id": f"gid://shopify/LineItem/{n}", "__parentId": f"gid://shopify/Order/{parent}"}

    join = _JoinFile(tmp_path / "join.sqlite3")
    for number, raw in enumerate(
        _lines(
            order(2, "2024-03-02T00:00:00Z"),
            order(1, "2024-03-01T09:00:00+09:00"),  # earlier than order 2, listed later
            line(21, 2),
            line(11, 1),
            order(3, "2024-03-01T00:00:00Z"),  # a tie with order 1, in UTC
            line(22, 2),
            line(31, 3),
            line(12, 1),
        ),
        start=1,
    ):
        join.add(raw, number)
    join.finish()
    assert join.orphan() is None
    nodes = list(join.nodes(None))
    assert [n["id"].rsplit("/", 1)[1] for n in nodes] == ["1", "3", "2"]
    assert [[c["id"].rsplit("/", 1)[1] for c in n["lineItems"]["nodes"]] for n in nodes] == [
        ["11", "12"],
        ["31"],
        ["21", "22"],
    ]
    assert all("__parentId" not in c for n in nodes for c in n["lineItems"]["nodes"])
    # From a cursor: only parents updated at or after it.
    since = dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    assert [n["id"] for n in join.nodes(since)] == ["gid://shopify/Order/2"]
    join.close()


def test_an_orphan_child_is_found(tmp_path: Path) -> None:
    join = _JoinFile(tmp_path / "join.sqlite3")
    join.add(b'{"id": "gid://shopify/Order/1", "updatedAt": "2024-01-01T00:00:00Z"}', 1)
    join.add(
        b'{"id":"gid:\\/\\/shopify\\/LineItem\\/9","__parentId":"gid:\\/\\/shopify\\/Order\\/8"}', 2
    )
    join.finish()
    assert join.orphan() == ("gid://shopify/LineItem/9", "gid://shopify/Order/8")
    join.close()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"id": "gid://shopify/Order/1", "updatedAt": "2024-0', TransientError),
        (b'["not", "an", "object"]', TransientError),
        (b'{"id": "gid://shopify/Order/1", "updatedAt": "2024-01-01T00:00:00"}', DataError),
    ],
)
def test_unreadable_lines(tmp_path: Path, raw: bytes, error: type[Exception]) -> None:
    join = _JoinFile(tmp_path / "join.sqlite3")
    with pytest.raises(error):
        join.add(raw, 7, last=True)
    join.close()


# -- against the sandbox


def test_a_bulk_read_equals_a_paged_read(shop: ShopifySandbox) -> None:
    for stream in (Stream.CUSTOMERS, Stream.ORDERS):
        items = _read(shop, stream)
        assert isinstance(items[0], Checkpoint) and STATE_KEY in items[0].state
        assert items[-1] == Checkpoint(cursor=items[-2].updated_at, state={})  # type: ignore[union-attr]
        bulk = _records(items)
        paged = _paged(shop, stream)
        assert len(bulk) == len(paged) > 0
        stamps = [r.updated_at for r in bulk]
        assert stamps == sorted(stamps)
        # Same records; ties in updatedAt may come in another order.
        assert sorted(r.model_dump_json() for r in bulk) == sorted(
            r.model_dump_json() for r in paged
        )
    orders = _records(_read(shop, Stream.ORDERS))
    assert sum(len(o.lines) for o in orders) > len(orders)  # the join really joined
    assert shop.stats.operations["BulkRun"] == 3


def test_a_first_sync_is_a_bulk_operation_whatever_the_shop_size(shop: ShopifySandbox) -> None:
    """With the default settings, even a 40-customer shop's full read is one bulk
    operation: paging a whole shop at 100 points/s takes far longer than a bulk export."""
    settings = ShopifySettings(**shop.settings())
    for stream in (Stream.CUSTOMERS, Stream.ORDERS):
        ctx = stream_context("shopify", settings, stream, since=None)
        hook = (
            plugin.omnicrm_sync_customers
            if stream is Stream.CUSTOMERS
            else (plugin.omnicrm_import_orders)
        )
        assert [r for r in hook(ctx) if not isinstance(r, Checkpoint)]
    assert shop.stats.operations.get("BulkRun") == 2
    assert "Customers" not in shop.stats.operations and "Orders" not in shop.stats.operations
    assert "CustomersCount" not in shop.stats.operations  # no count decides it


def test_the_count_decides_when_to_use_bulk(shop: ShopifySandbox) -> None:
    _read(shop, Stream.CUSTOMERS, bulk_threshold=39)
    assert shop.stats.operations.get("BulkRun") == 1
    _read(shop, Stream.CUSTOMERS, bulk_threshold=40)
    assert shop.stats.operations.get("BulkRun") == 1  # 40 customers: paged
    # An incremental read never starts a bulk operation.
    _read(shop, Stream.CUSTOMERS, since=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert shop.stats.operations.get("BulkRun") == 1


def test_a_crash_after_the_checkpoint_resumes_the_same_operation(shop: ShopifySandbox) -> None:
    shop.bulk.min_seconds = 0.3  # still running when the "crash" happens
    ctx = stream_context("shopify", _settings(shop), Stream.ORDERS, sleep=_quick)
    stream = plugin.omnicrm_import_orders(ctx)
    first = next(iter(stream))
    assert isinstance(first, Checkpoint)
    stream.close()  # type: ignore[attr-defined]  # the run dies here; the checkpoint was committed
    resumed = _read(shop, Stream.ORDERS, state=dict(first.state))
    assert not any(isinstance(i, Checkpoint) and i.state for i in resumed)  # no new operation
    assert shop.stats.operations["BulkRun"] == 1
    assert len(_records(resumed)) == len(_paged(shop, Stream.ORDERS))


def test_a_crash_before_the_checkpoint_adopts_the_running_operation(shop: ShopifySandbox) -> None:
    shop.bulk.min_seconds = 0.5
    ctx = stream_context("shopify", _settings(shop), Stream.ORDERS, sleep=_quick)
    stream = plugin.omnicrm_import_orders(ctx)
    assert isinstance(next(iter(stream)), Checkpoint)
    stream.close()  # type: ignore[attr-defined]
    items = _read(shop, Stream.ORDERS)  # the checkpoint never reached the store
    assert shop.stats.operations["BulkRun"] == 1
    assert len(_records(items)) == len(_paged(shop, Stream.ORDERS))


def test_a_finished_operation_is_downloaded_again(shop: ShopifySandbox) -> None:
    items = _read(shop, Stream.CUSTOMERS)
    state = dict(items[0].state)  # type: ignore[union-attr]
    again = _read(shop, Stream.CUSTOMERS, state=state)
    assert shop.stats.operations["BulkRun"] == 1
    assert len(_records(again)) == len(_records(items))
    # Resumed from a cursor (some batches were committed): only the rest is yielded.
    middle = _records(items)[len(items) // 2].updated_at
    rest = _read(shop, Stream.CUSTOMERS, state=state, since=middle)
    assert shop.stats.operations["BulkRun"] == 1
    assert all(r.updated_at >= middle for r in _records(rest))
    assert len(_records(rest)) == sum(1 for r in _records(items) if r.updated_at >= middle)


def test_a_truncated_download_is_transient_and_retried_on_the_same_operation(
    shop: ShopifySandbox,
) -> None:
    shop.truncate_next_download(1, keep=0.6)
    ctx = stream_context("shopify", _settings(shop), Stream.ORDERS, sleep=_quick)
    seen: list[Any] = []
    with pytest.raises(TransientError, match=r"truncated|incomplete"):
        for item in plugin.omnicrm_import_orders(ctx):
            seen.append(item)
    assert seen and all(isinstance(i, Checkpoint) for i in seen)  # nothing half-joined
    items = _read(shop, Stream.ORDERS, state=dict(seen[0].state))
    assert shop.stats.operations["BulkRun"] == 1
    assert shop.stats.downloads == 2
    assert len(_records(items)) == len(_paged(shop, Stream.ORDERS))


def test_a_failed_operation_is_started_again(shop: ShopifySandbox) -> None:
    shop.fail_next_bulk(1)
    ctx = stream_context("shopify", _settings(shop), Stream.CUSTOMERS, sleep=_quick)
    seen: list[Any] = []
    with pytest.raises(TransientError, match=r"failed.*INTERNAL_SERVER_ERROR"):
        for item in plugin.omnicrm_sync_customers(ctx):
            seen.append(item)
    items = _read(shop, Stream.CUSTOMERS, state=dict(seen[0].state))
    assert shop.stats.operations["BulkRun"] == 2
    assert len(_records(items)) == 40


def test_another_running_operation_is_waited_for(shop: ShopifySandbox) -> None:
    # Someone else's bulk query (different text) is running on the shop.
    shop.bulk.min_seconds = 0.4
    shop.bulk.run("{ customers(first: 5) { edges { node { id } } } }")
    started = time.monotonic()
    items = _read(shop, Stream.CUSTOMERS)
    assert time.monotonic() - started >= 0.3
    assert len(_records(items)) == 40
    assert shop.stats.operations["BulkRun"] == 1  # ours, after the other one finished


def test_memory_stays_flat_while_joining(shop: ShopifySandbox, tmp_path: Path) -> None:
    """The join holds at most one batch in memory: rows go to SQLite as they arrive."""
    join = _JoinFile(tmp_path / "join.sqlite3")
    for n in range(5000):
        line = {"id": f"gid://shopify/Customer/{n}", "updatedAt": "2024-01-01T00:00:00Z"}
        join.add(json.dumps(line).encode(), n)
        assert len(join._parents) < 2000
    join.finish()
    assert sum(1 for _ in join.nodes(None)) == 5000
    join.close()
