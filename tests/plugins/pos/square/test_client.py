"""The Square client and readers against the emulator over HTTP: paging, expiring
cursors, the location batch limit, limit rules and faults."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from pydantic import SecretStr

from omnicrm import Stream
from omnicrm.errors import AuthError, RateLimitedError, SyncError, TransientError
from omnicrm.plugins.pos.square import channel
from omnicrm.plugins.pos.square.client import SquareClient
from omnicrm.plugins.pos.square.reader import SquareReader
from omnicrm.plugins.pos.square.sandbox import SquareSandbox
from omnicrm.plugins.pos.square.settings import SquareSettings
from omnicrm.testing import stream_context
from tests.plugins.pos.square.conftest import MEMBERS, SALES

log = logging.getLogger("test")


def read(settings: SquareSettings, stream: Stream) -> list[object]:
    ctx = stream_context("square", settings, stream, sleep=lambda _s: None)
    reader = channel.sync_customers if stream is Stream.CUSTOMERS else channel.import_orders
    return list(reader(ctx))


def client(settings: SquareSettings, waits: list[float] | None = None) -> SquareClient:
    sink = waits if waits is not None else []
    return SquareClient(settings, sleep=sink.append, on_rate_limit=sink.append, backoff=0.01)


def test_every_record_once_in_order_across_small_pages(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    small = settings.model_copy(update={"customers_page_size": 7, "orders_page_size": 13})
    customers = read(small, Stream.CUSTOMERS)
    orders = read(small, Stream.ORDERS)
    assert len({c.id for c in customers}) == len(customers) == len(sandbox.data.customers)  # type: ignore[attr-defined]
    assert len({o.id for o in orders}) == len(orders) == SALES  # type: ignore[attr-defined]
    for records in (customers, orders):
        stamps = [r.updated_at for r in records]  # type: ignore[attr-defined]
        assert stamps == sorted(stamps)
    searches = [e for e in sandbox.exchanges if e.path == "/v2/orders/search"]
    assert len(searches) == -(-SALES // 13)
    assert all(e.request["limit"] == 13 for e in searches)


def test_an_expired_cursor_resumes_from_the_watermark(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    small = settings.model_copy(update={"customers_page_size": 5, "orders_page_size": 20})
    sandbox.expire_cursors_next(3)
    orders = read(small, Stream.ORDERS)
    assert sorted(o.id for o in orders) == sorted(sandbox.data.orders)  # type: ignore[attr-defined]
    refused = [e for e in sandbox.exchanges if e.status == 400]
    assert refused and refused[0].response["errors"][0]["code"] == "INVALID_CURSOR"
    # The search after an expiry starts at the last order read, not at the beginning.
    after = sandbox.exchanges[list(sandbox.exchanges).index(refused[0]) + 1]
    assert after.request["query"]["filter"]["date_time_filter"]["updated_at"]["start_at"]
    sandbox.expire_cursors_next(2)
    customers = read(small, Stream.CUSTOMERS)
    assert len({c.id for c in customers}) == len(customers) == len(sandbox.data.customers)  # type: ignore[attr-defined]


def test_cursors_expire_with_time(settings: SquareSettings) -> None:
    with SquareSandbox(members=MEMBERS, sales=SALES, cursor_ttl=0.001) as quick:
        fast = SquareSettings.model_validate({**quick.settings(), "orders_page_size": 50})
        with pytest.raises(TransientError, match="cursor"):
            read(fast, Stream.ORDERS)  # every cursor is stale on arrival: no progress


def test_locations_are_searched_ten_at_a_time() -> None:
    with SquareSandbox(members=MEMBERS, sales=SALES, extra_locations=11) as many:
        settings = SquareSettings.model_validate(many.settings())
        orders = read(settings, Stream.ORDERS)
        searches = [e for e in many.exchanges if e.path == "/v2/orders/search"]
        assert [len(e.request["location_ids"]) for e in searches] == [10, 3]
        assert len(orders) == SALES
        stamps = [o.updated_at for o in orders]  # type: ignore[attr-defined]
        assert stamps == sorted(stamps)
        with client(settings) as raw, pytest.raises(SyncError, match="ARRAY_LENGTH_TOO_LONG"):
            raw.post(
                "/v2/orders/search", {"location_ids": [loc["id"] for loc in many.data.locations]}
            )


def test_the_sandbox_keeps_square_limit_rules(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    location = sandbox.data.locations[0]["id"]
    with client(settings) as raw:
        with pytest.raises(SyncError, match=r"VALUE_TOO_HIGH.*field limit"):
            raw.post("/v2/orders/search", {"location_ids": [location], "limit": 1001})
        with pytest.raises(SyncError, match="VALUE_TOO_HIGH"):
            raw.post("/v2/customers/search", {"limit": 101})
        with pytest.raises(SyncError, match="VALUE_TOO_HIGH"):
            raw.post("/v2/loyalty/events/search", {"limit": 31})
        with pytest.raises(SyncError, match="sort_field"):
            raw.post(
                "/v2/orders/search",
                {
                    "location_ids": [location],
                    "query": {
                        "filter": {
                            "date_time_filter": {"updated_at": {"start_at": "2025-01-01T00:00:00Z"}}
                        },
                        "sort": {"sort_field": "CREATED_AT"},
                    },
                },
            )
        page = raw.post("/v2/orders/search", {"location_ids": [location], "limit": 1000})
        assert len(page["orders"]) == sum(
            o["location_id"] == location for o in sandbox.data.orders.values()
        )


def test_faults_are_retried(sandbox: SquareSandbox, settings: SquareSettings) -> None:
    waits: list[float] = []
    with client(settings, waits) as raw:
        sandbox.fail_next(2, status=503)
        assert raw.get("/v2/locations")
        sandbox.malform_next(1)
        assert raw.get("/v2/locations")
        sandbox.rate_limit_next(1, retry_after=1.5)
        assert raw.get("/v2/locations")
        assert 1.5 in waits
        sandbox.delay_next(1, seconds=3)
        assert raw.get("/v2/locations")
        assert raw.requests == 3 + 2 + 2 + 2  # each fault, then the answer


def test_faults_that_persist_fail_clearly(sandbox: SquareSandbox, settings: SquareSettings) -> None:
    with client(settings) as raw:
        sandbox.fail_next(10, status=500)
        with pytest.raises(TransientError, match=r"HTTP 500.*gave up"):
            raw.get("/v2/locations")
        sandbox.clear_faults()
        sandbox.rate_limit_next(1, retry_after=600)
        with pytest.raises(RateLimitedError) as limited:
            raw.get("/v2/locations")
        assert limited.value.retry_after == 600
    wrong = settings.model_copy(update={"access_token": SecretStr("EAAAnot-the-token")})
    with client(wrong) as raw, pytest.raises(AuthError, match="UNAUTHORIZED") as refused:
        raw.get("/v2/locations")
    assert "EAAAnot-the-token" not in str(refused.value)


def test_loyalty_is_read_where_the_seller_has_it(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    customers = read(settings, Stream.CUSTOMERS)
    balances = {a["customer_id"]: a["balance"] for a in sandbox.data.accounts.values()}
    assert {c.id: c.points for c in customers} == balances  # type: ignore[attr-defined]
    sandbox.exchanges.clear()
    orders = {o.id: o for o in read(settings, Stream.ORDERS)}  # type: ignore[attr-defined]
    # Events are read by time for many orders at once, not once per member's sale.
    searches = sum(e.path == "/v2/loyalty/events/search" for e in sandbox.exchanges)
    with_customer = sum(o.customer_id is not None for o in orders.values())
    assert searches * 4 < with_customer
    for sale in sandbox.data.seed.sales:
        if sale.member is None or sale.cancelled:
            continue
        order = next(o for o in orders.values() if o.name.endswith(f"-{sale.number}"))  # type: ignore[attr-defined]
        assert order.points_earned == (sale.points_earned or None)
        assert order.points_redeemed == (sale.points_spent or None)
    with SquareSandbox(members=MEMBERS, sales=SALES, loyalty=False) as plain:
        settings = SquareSettings.model_validate(plain.settings())
        assert all(c.points is None for c in read(settings, Stream.CUSTOMERS))  # type: ignore[attr-defined]
        assert not [e for e in plain.exchanges if "/loyalty/events" in e.path]
        forced = settings.model_copy(update={"loyalty": True})
        with SquareClient(forced) as raw, pytest.raises(Exception, match="no loyalty programme"):
            SquareReader(raw, forced, log).loyalty()


def test_customers_still_propagating_wait_for_the_next_run(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    customer = next(iter(sandbox.data.customers.values()))
    before = customer["updated_at"]
    customer["updated_at"] = dt.datetime.now(dt.UTC).isoformat()
    try:
        assert customer["id"] not in {c.id for c in read(settings, Stream.CUSTOMERS)}  # type: ignore[attr-defined]
        at_once = settings.model_copy(update={"search_lag": 0.0})
        assert customer["id"] in {c.id for c in read(at_once, Stream.CUSTOMERS)}  # type: ignore[attr-defined]
    finally:
        customer["updated_at"] = before
