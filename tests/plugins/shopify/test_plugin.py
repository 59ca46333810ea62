"""The plugin as omnicrm sees it: registration, incremental reads, read_all_orders, and
whole syncs through the engine into the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import jaconv
import pytest
from pydantic import BaseModel

from omnicrm import Checkpoint, OrderStatus, Stream
from omnicrm.app.config import Connection
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.crm.profiles import find_profiles, profile_of
from omnicrm.crm.refresh import refresh
from omnicrm.errors import AuthError, SyncError, TransientError
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.plugins.shopify.webhooks import ShopifyWebhooks
from omnicrm.testing import load_host, stream_context
from tests.support.http import serve

NOW = dt.datetime.now(dt.UTC)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


# The shop's history ends an hour ago, so the changes a test makes (stamped with the
# real clock) come after all of it and before any run that starts later.
END = NOW - dt.timedelta(hours=1)


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(
        customers=40, seed=8, end=END, bucket_size=4000, restore_rate=40_000
    ) as server:
        yield server


def settings(shop: ShopifySandbox, **changes: Any) -> BaseModel:
    # Typed as the hooks take it: StreamContext is invariant in its settings type.
    return ShopifySettings(**{**shop.settings(), **changes})


def read(
    shop: ShopifySandbox,
    stream: Stream,
    *,
    since: dt.datetime | None = LONG_AGO,
    until: dt.datetime | None = None,
    **changes: Any,
) -> list[Any]:
    ctx = stream_context("shopify", settings(shop, **changes), stream, since=since)
    if until is not None:
        ctx.until = until
    hook = (
        plugin.omnicrm_import_orders if stream is Stream.ORDERS else plugin.omnicrm_sync_customers
    )
    return [i for i in hook(ctx) if not isinstance(i, Checkpoint)]


# -- registration


def test_registers_the_shopify_channel_type() -> None:
    [channel] = load_host(plugin).channel_types.values()
    assert (channel.name, channel.title) == ("shopify", "Shopify")
    assert channel.settings is ShopifySettings
    assert set(channel.streams) == {
        Stream.CUSTOMERS,
        Stream.ORDERS,
        Stream.PRODUCTS,
        Stream.CHECKOUTS,
    }
    assert channel.sandbox is plugin.sandbox
    assert isinstance(channel.webhooks, ShopifyWebhooks)


def test_the_host_loads_it() -> None:
    host = Host.load(use_entry_points=False, extra={"shopify": plugin})
    assert host.failures == []
    assert host.channel_type("shopify").settings is ShopifySettings


def test_its_sandbox_yields_settings_that_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_SANDBOX_CUSTOMERS", "10")
    monkeypatch.setenv("SHOPIFY_SANDBOX_LIVE", "0")
    with plugin.sandbox() as values:
        valid: BaseModel = ShopifySettings(**values)
        ctx = stream_context("shopify", valid, Stream.CUSTOMERS, since=LONG_AGO)
        assert len(list(plugin.omnicrm_sync_customers(ctx))) == 10


# -- incremental reads


def test_a_read_from_a_cursor_yields_what_changed_since(shop: ShopifySandbox) -> None:
    customers = read(shop, Stream.CUSTOMERS)
    assert len(customers) == 40
    stamps = [c.updated_at for c in customers]
    assert stamps == sorted(stamps)
    middle = stamps[20]
    later = read(shop, Stream.CUSTOMERS, since=middle)
    assert {c.id for c in later} == {c.id for c in customers if c.updated_at >= middle}

    changed = shop.update_customer(customers[0].id, note="ギフト包装希望")
    after = read(shop, Stream.CUSTOMERS, since=stamps[-1])
    assert customers[0].id in {c.id for c in after}
    [record] = [c for c in after if c.id == customers[0].id]
    assert record.raw["note"] == "ギフト包装希望"
    assert record.updated_at.isoformat().replace("+00:00", "Z") == changed["updatedAt"]


def test_records_changed_after_the_run_began_are_left_for_the_next(shop: ShopifySandbox) -> None:
    orders = read(shop, Stream.ORDERS)
    until = orders[len(orders) // 2].updated_at
    first = read(shop, Stream.ORDERS, until=until)
    assert first and all(o.updated_at <= until for o in first)
    assert len(first) < len(orders)


def test_orders_with_more_lines_than_a_page_get_all_of_them(shop: ShopifySandbox) -> None:
    whole = {o.id: o for o in read(shop, Stream.ORDERS)}
    before = shop.stats.operations.get("OrderLineItems", 0)
    narrow = read(shop, Stream.ORDERS, lines_page_size=1)
    assert shop.stats.operations.get("OrderLineItems", 0) > before
    assert len(narrow) == len(whole)
    for order in narrow:
        assert order.lines == whole[order.id].lines
        assert "pageInfo" not in order.raw["lineItems"]
    assert any(len(o.lines) > 1 for o in narrow)


def test_mapped_orders_look_like_the_shop(shop: ShopifySandbox) -> None:
    orders = read(shop, Stream.ORDERS)
    assert {o.channel for o in orders} <= {"web", "pos", "draft", "other"}
    assert all(o.currency == "JPY" and o.total >= 0 for o in orders)
    sample = orders[0]
    truth = shop.order(sample.id)
    assert sample.name == truth["name"]
    assert len(sample.lines) == len(truth["_lines"])
    customers = read(shop, Stream.CUSTOMERS)
    assert all(c.id.startswith("gid://shopify/Customer/") for c in customers)
    assert any(c.address and c.address.prefecture for c in customers)


def test_the_largest_pages_asked_for_still_fit_the_cost_limit(shop: ShopifySandbox) -> None:
    big: dict[str, Any] = {"page_size": 250, "orders_page_size": 250, "lines_page_size": 250}
    assert len(read(shop, Stream.CUSTOMERS, **big)) == 40
    assert read(shop, Stream.ORDERS, **big)
    assert shop.stats.max_cost_exceeded == 0
    assert shop.stats.throttled == 0


# -- read_all_orders


def test_a_full_import_without_read_all_orders_says_so(shop: ShopifySandbox) -> None:
    shop.deny_read_all_orders()
    with pytest.raises(AuthError, match="read_all_orders") as caught:
        read(shop, Stream.ORDERS, since=None)
    assert "60 days" in str(caught.value)
    assert "recent_orders_only" in str(caught.value)
    with pytest.raises(AuthError, match="read_all_orders"):
        read(shop, Stream.ORDERS, since=NOW - dt.timedelta(days=90))


def test_a_recent_cursor_needs_no_read_all_orders(
    shop: ShopifySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    shop.deny_read_all_orders()
    caplog.set_level(logging.INFO)
    read(shop, Stream.ORDERS, since=NOW - dt.timedelta(days=10))
    assert "read_all_orders" in caplog.text


def test_recent_orders_only_accepts_the_cut_with_a_warning(
    shop: ShopifySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    every = read(shop, Stream.ORDERS)
    shop.deny_read_all_orders()
    caplog.set_level(logging.WARNING)
    recent = read(shop, Stream.ORDERS, since=None, recent_orders_only=True, bulk_threshold=10**6)
    assert "only orders of the last 60 days" in caplog.text
    assert 0 < len(recent) < len(every)
    horizon = NOW - dt.timedelta(days=61)
    assert all(o.placed_at >= horizon for o in recent)


# -- through the engine into the store


def connection(shop: ShopifySandbox, **changes: Any) -> Connection:
    return Connection(
        name="tokyo-tea",
        channel="shopify",
        settings=settings(shop, **changes),
        lookback=dt.timedelta(minutes=5),
        batch_size=50,
    )


@pytest.fixture
def engine(store: Store) -> SyncEngine:
    host = Host.load(use_entry_points=False, extra={"shopify": plugin})
    return SyncEngine(host, store, retry=RetryPolicy(attempts=3, base=0.01))


def test_sync_and_resync_into_the_store(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    conn = connection(shop)
    first = engine.sync(conn)
    assert first.status is RunStatus.COMPLETE, first.error
    customers = {c.id: c for c in store.customers("tokyo-tea")}
    orders = {o.id: o for o in store.orders("tokyo-tea")}
    assert len(customers) == 40
    assert len(orders) == first.streams[Stream.ORDERS].written > 40
    assert sum(len(o.lines) for o in orders.values()) > len(orders)
    for stream in (Stream.CUSTOMERS, Stream.ORDERS):
        cursor = store.stream_state("tokyo-tea", stream).cursor
        assert cursor is not None and cursor <= dt.datetime.now(dt.UTC)

    # The shop moves on: an edit, a new order, a cancellation.
    someone = next(iter(customers))
    shop.update_customer(someone, note="電話連絡不可")
    placed = shop.create_order(someone)
    cancelled = shop.cancel_order(next(iter(orders)))

    second = engine.sync(conn)
    assert second.status is RunStatus.COMPLETE, second.error
    assert second.read < first.read / 2  # only what changed (and the lookback)
    assert store.count(Stream.ORDERS, "tokyo-tea") == len(orders) + 1
    again = {o.id: o for o in store.orders("tokyo-tea")}
    assert again[cancelled["id"]].status is OrderStatus.CANCELLED
    assert again[placed["id"]].customer_id == someone
    [edited] = [c for c in store.customers("tokyo-tea") if c.id == someone]
    assert edited.raw["note"] == "電話連絡不可"

    third = engine.sync(conn)
    assert third.status is RunStatus.COMPLETE
    assert third.written == 0


def test_a_full_sync_by_bulk_operation_into_the_store(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    conn = connection(shop, bulk_threshold=0)
    result = engine.sync(conn)
    assert result.status is RunStatus.COMPLETE, result.error
    assert shop.stats.operations["BulkRun"] == 2  # customers and orders
    assert store.count(Stream.CUSTOMERS, "tokyo-tea") == 40
    # The finished export is forgotten: the next run reads incrementally.
    assert store.stream_state("tokyo-tea", Stream.ORDERS).state == {}
    engine.sync(conn)
    assert shop.stats.operations["BulkRun"] == 2


def test_a_bulk_sync_that_breaks_resumes_its_operation(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    conn = connection(shop, bulk_threshold=0)
    shop.truncate_next_download(3)  # more than the engine's retries of one run
    failed = engine.sync(conn)
    assert failed.status is RunStatus.FAILED
    assert "incomplete" in (failed.error or "") or "truncated" in (failed.error or "")
    state = store.stream_state("tokyo-tea", Stream.CUSTOMERS).state
    assert "bulk_operation" in state  # committed at once, so the next run finds it
    shop.clear_faults()
    resumed = engine.sync(conn)
    assert resumed.status is RunStatus.COMPLETE, resumed.error
    assert shop.stats.operations["BulkRun"] == 2  # the customers one was resumed
    assert store.count(Stream.CUSTOMERS, "tokyo-tea") == 40


def test_waiting_for_the_budget_is_recorded_on_the_run(store: Store) -> None:
    host = Host.load(use_entry_points=False, extra={"shopify": plugin})
    with ShopifySandbox(customers=60, seed=9, end=END, bucket_size=300, restore_rate=300) as shop:
        # Paged (a bulk export, the default for a full read, costs a few points).
        result = SyncEngine(host, store).sync(connection(shop, bulk_threshold=10**6))
        assert result.status is RunStatus.COMPLETE, result.error
        assert shop.stats.throttled == 0
    assert result.rate_limit_wait > 0
    [run] = store.runs("tokyo-tea")
    assert run.rate_limit_wait == pytest.approx(result.rate_limit_wait)


def test_a_denied_history_fails_the_run_and_says_why(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    shop.deny_read_all_orders()
    result = engine.sync(connection(shop))
    assert result.status is RunStatus.FAILED
    assert result.error_kind == "auth"
    assert "read_all_orders" in (result.error or "")
    [run] = store.runs("tokyo-tea")
    assert "read_all_orders" in (run.error or "")
    assert store.count(Stream.CUSTOMERS, "tokyo-tea") == 40  # customers were synced


# -- listings that go wrong under us (a scripted server: the sandbox is always consistent)


class Pages:
    """Answers each GraphQL operation with its next scripted body."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        operation = json.loads(raw)["operationName"]
        cost = {
            "requestedQueryCost": 10,
            "actualQueryCost": 10,
            "throttleStatus": {
                "maximumAvailable": 1000.0,
                "currentlyAvailable": 990.0,
                "restoreRate": 100.0,
            },
        }
        body = {**self.bodies[operation].pop(0), "extensions": {"cost": cost}}
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.fixture
def pages() -> Iterator[Pages]:
    app = Pages()
    with serve(app) as url:
        app.url = url
        yield app


def _customer(number: int, updated: str) -> dict[str, Any]:
    return {"id": f"gid://shopify/Customer/{number}", "updatedAt": f"2024-03-01T{updated}Z"}


def _page(nodes: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    info = {"hasNextPage": after is not None, "endCursor": after}
    return {"data": {"customers": {"nodes": nodes, "pageInfo": info}}}


def _read_pages(pages: Pages) -> list[Any]:
    valid: BaseModel = ShopifySettings(
        domain="tokyo-tea.myshopify.com", access_token="shpat_x", api_url=pages.url
    )
    pages.bodies["AccessScopes"] = [{"data": {"currentAppInstallation": {"accessScopes": []}}}]
    ctx = stream_context("shopify", valid, Stream.CUSTOMERS, since=LONG_AGO)
    return list(plugin.omnicrm_sync_customers(ctx))


def test_a_version_seen_twice_is_yielded_once(pages: Pages) -> None:
    pages.bodies["Customers"] = [
        _page([_customer(1, "10:00:00"), _customer(2, "11:00:00")], "c1"),
        # A page boundary shifted: customer 2 comes again, the same version.
        _page([_customer(2, "11:00:00"), _customer(3, "11:00:00"), _customer(4, "12:00:00")], None),
    ]
    assert [c.id.rsplit("/", 1)[1] for c in _read_pages(pages)] == ["1", "2", "3", "4"]


def test_a_listing_that_goes_back_in_time_is_read_again(pages: Pages) -> None:
    pages.bodies["Customers"] = [
        _page([_customer(1, "10:00:00"), _customer(2, "11:00:00")], "c1"),
        _page([_customer(3, "09:00:00")], None),
    ]
    with pytest.raises(TransientError, match="out of updatedAt order"):
        _read_pages(pages)


def test_a_cursor_that_does_not_move_stops_the_run(pages: Pages) -> None:
    pages.bodies["Customers"] = [
        _page([_customer(1, "10:00:00")], "same"),
        _page([_customer(2, "11:00:00")], "same"),
    ]
    with pytest.raises(SyncError, match="same customers page cursor twice"):
        _read_pages(pages)


def test_furigana_in_metafields_make_customers_findable_by_kana(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    """The sandbox keeps readings where Japanese shops do (customer metafields), the sync
    brings them in, and a lookup in hiragana finds the person."""
    for since_first_sync in (False, True):  # bulk (first sync), then paged (incremental)
        result = engine.sync(connection(shop))
        assert result.status is RunStatus.COMPLETE, result.error
        if not since_first_sync:
            for c in range(5):  # touched, so the incremental run reads them page by page
                shop.data.update_customer(c)
    refresh(store)
    read = {c.id: c for c in store.customers("tokyo-tea")}
    with_kana = [c for c in read.values() if c.family_name_kana]
    assert 0.5 < len(with_kana) / len(read) < 0.9  # most gave a reading, not all
    for c in range(shop.data.n):
        record = shop.data.customer(c)
        stored = read[record["id"]]
        expected = record["_metafields"].get(("custom", "family_name_kana"))
        assert stored.family_name_kana == expected, c
    person = with_kana[0]
    hiragana = jaconv.kata2hira(f"{person.family_name_kana}{person.given_name_kana}")
    with store.engine.connect() as conn:
        found = [m.id for m in find_profiles(conn, hiragana, shop=DEFAULT_SHOP)]
        assert profile_of(conn, "tokyo-tea", person.id, shop=DEFAULT_SHOP) in found
