"""The GraphQL client: cost estimates, pacing on the budget, and every error path, over
real HTTP against the Shopify sandbox with its fault switches."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from omnicrm import Order, Stream
from omnicrm.errors import (
    AuthError,
    ConfigError,
    RateLimitedError,
    SyncError,
    TransientError,
)
from omnicrm.plugins.shopify import client as client_module
from omnicrm.plugins.shopify import plugin, queries
from omnicrm.plugins.shopify.client import (
    SINGLE_QUERY_LIMIT,
    Budget,
    ShopifyClient,
    ThrottleStatus,
    estimate_cost,
    search_since,
)
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.testing import stream_context
from tests.support.http import serve

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

# -- estimates and the budget (no HTTP)


@pytest.mark.parametrize("operation", sorted(queries.OPERATIONS))
def test_every_operation_fits_well_under_the_single_query_limit(operation: str) -> None:
    client = ShopifyClient(ShopifySettings(domain="x.myshopify.com", access_token="shpat_x"))
    # As Shopify reports a standard plan's bucket (no request is made here).
    client.budget.update(ThrottleStatus(1000, 1000, 100, time.monotonic()))
    variables: dict[str, Any] = {"lines": 10, "variants": 10}
    if operation == "Orders":
        variables["lines"] = client.fit(operation, {"first": 1}, "lines", desired=250)
    if operation == "Products":
        variables["variants"] = client.fit(operation, {"first": 1}, "variants", desired=250)
    variables["first"] = client.fit(operation, variables, desired=250)
    cost = estimate_cost(operation, variables)
    assert 1 <= cost <= client.ceiling() <= SINGLE_QUERY_LIMIT / 2
    client.close()


@pytest.mark.parametrize(
    ("maximum", "restore", "ceiling"),
    [
        (2000, 100, 1000),  # a standard shop today: Shopify's single-query limit
        (1000, 50, 500),  # the older standard bucket: half of it
        (20_000, 1000, 1000),  # Plus: never past the single-query limit
        (400, 2000, 200),  # a small bucket: half of it
        (2000, 20, 200),  # a slow refill: what 10 seconds restore
    ],
)
def test_pages_are_sized_to_the_bucket_the_shop_reports(
    maximum: float, restore: float, ceiling: float
) -> None:
    client = ShopifyClient(ShopifySettings(domain="x.myshopify.com", access_token="shpat_x"))
    client.budget.update(ThrottleStatus(maximum, maximum, restore, time.monotonic()))
    assert client.ceiling() == ceiling
    lines = ShopifySettings.model_fields["lines_page_size"].default
    base = {"query": None, "lines": lines}
    first = client.fit("Orders", base, desired=250)
    # The largest page whose requested cost fits: one order more would not.
    assert estimate_cost("Orders", {**base, "first": first}) <= ceiling
    assert first == 250 or estimate_cost("Orders", {**base, "first": first + 1}) > ceiling
    client.close()


def test_an_incremental_read_pages_as_the_standard_bucket_allows() -> None:
    """At a standard shop's 2,000-point bucket and 100 points/s, an orders page asks for
    up to 1,000 points (Shopify refunds what it does not use) rather than a page sized for
    a worst case: about twice the orders per request."""
    with ShopifySandbox(customers=25, seed=4, end=END) as shop:
        settings = ShopifySettings(**shop.settings())
        since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        ctx = stream_context("shopify", settings, Stream.ORDERS, since=since)
        orders = [o for o in plugin.omnicrm_import_orders(ctx) if isinstance(o, Order)]
        pages = shop.stats.operations["Orders"]
    assert len(orders) > 40
    per_page = len(orders) / pages
    old_ceiling_fit = 500 // (estimate_cost("Orders", {"first": 1, "lines": 5}) - 2)
    assert per_page > 1.8 * old_ceiling_fit, (len(orders), pages)


def test_connection_costs_follow_shopifys_rules() -> None:
    # 2 per connection plus its page size times one node's cost (1 + nested objects).
    one = estimate_cost("Customers", {"first": 1})
    ten = estimate_cost("Customers", {"first": 10})
    assert ten - one == 9 * (one - 2)
    # A customer node: itself, two furigana metafields, amountSpent, two consents and
    # the address.
    assert one == 2 + 7
    assert estimate_cost("BulkRun", {"query": "x"}) == 10  # a mutation


def test_the_budget_extrapolates_and_waits_just_enough() -> None:
    budget = Budget()
    assert budget.wait_for(500, time.monotonic()) == 0  # nothing known yet: no guessing
    budget.update(ThrottleStatus(maximum=1000, available=100, restore_rate=50, at=10.0))
    assert budget.available(10.0) == 100
    assert budget.available(12.0) == 200
    assert budget.available(100.0) == 1000  # never more than the bucket
    assert budget.wait_for(50, 10.0) == 0
    assert budget.wait_for(300, 10.0) == pytest.approx(4.0, abs=0.01)
    assert budget.wait_for(300, 12.0) == pytest.approx(2.0, abs=0.01)
    assert budget.wait_for(5000, 10.0) == pytest.approx(18.0, abs=0.01)  # capped at a bucket
    # An older report does not overwrite a newer one.
    budget.update(ThrottleStatus(maximum=1000, available=900, restore_rate=50, at=5.0))
    assert budget.available(10.0) == 100


def test_search_since_is_inclusive_to_the_second() -> None:
    assert search_since(None) == ""
    since = dt.datetime(2024, 3, 1, 10, 0, 5, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert search_since(since) == "updated_at:>='2024-03-01T01:00:05Z'"


# -- over HTTP, against the sandbox


class Clock:
    """Records waits; rate-limit waits really sleep (the bucket refills in real time),
    backoff waits do not (they only need to be asked for)."""

    def __init__(self) -> None:
        self.rate_limit: list[float] = []
        self.backoff: list[float] = []

    def wait_for_rate_limit(self, seconds: float) -> None:
        self.rate_limit.append(seconds)
        time.sleep(seconds)

    def sleep(self, seconds: float) -> None:
        self.backoff.append(seconds)


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=30, seed=5, end=END, bucket_size=2000, restore_rate=20_000) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def connect(shop: ShopifySandbox, clock: Clock, **changes: Any) -> ShopifyClient:
    settings = ShopifySettings(**{**shop.settings(), **changes})
    return ShopifyClient(
        settings, on_rate_limit=clock.wait_for_rate_limit, sleep=clock.sleep, backoff=0.5
    )


@pytest.fixture
def client(shop: ShopifySandbox, clock: Clock) -> Iterator[ShopifyClient]:
    with connect(shop, clock, client_id=None, client_secret=None) as c:
        yield c


def test_reads_a_page_and_learns_its_cost(client: ShopifyClient, shop: ShopifySandbox) -> None:
    answer = client.execute("Customers", {"first": 5})
    assert len(answer.data["customers"]["nodes"]) == 5
    assert answer.requested_cost == estimate_cost("Customers", {"first": 5})
    assert client.budget.status is not None
    assert client.budget.status.maximum == 2000
    assert client.budget.status.restore_rate == 20_000


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_with_backoff(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock, status: int
) -> None:
    shop.fail_next(2, status=status)
    assert client.execute("Customers", {"first": 2}).data["customers"]["nodes"]
    assert len(clock.backoff) == 2
    assert clock.backoff[1] > clock.backoff[0] > 0  # exponential
    assert clock.rate_limit == []  # not a rate limit: not counted as one


def test_server_errors_that_persist_are_transient(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock
) -> None:
    shop.fail_next(10, status=503)
    with pytest.raises(TransientError, match=r"HTTP 503.*gave up after 4 attempts") as caught:
        client.execute("Customers", {"first": 2})
    assert not isinstance(caught.value, RateLimitedError)
    assert len(clock.backoff) == 3
    shop.clear_faults()
    assert client.execute("Customers", {"first": 2}).data


def test_a_timeout_is_retried_then_transient(shop: ShopifySandbox, clock: Clock) -> None:
    with connect(shop, clock, timeout=0.2) as slow:
        shop.delay_next(1, seconds=1.0)
        assert slow.execute("Customers", {"first": 1}).data
        shop.delay_next(4, seconds=1.0)
        with pytest.raises(TransientError, match=r"did not answer Customers within 0\.2s"):
            slow.execute("Customers", {"first": 1})


def test_connection_refused_is_transient(clock: Clock) -> None:
    with ShopifySandbox(customers=10, seed=1, end=END) as gone:
        settings = gone.settings()
    with connect_to(settings, clock) as client, pytest.raises(TransientError, match="cannot reach"):
        client.execute("Customers", {"first": 1})


def connect_to(settings: dict[str, Any], clock: Clock) -> ShopifyClient:
    return ShopifyClient(
        ShopifySettings(**settings), on_rate_limit=clock.wait_for_rate_limit, sleep=clock.sleep
    )


def test_malformed_json_is_retried_then_transient(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock
) -> None:
    shop.malform_next(1)
    assert client.execute("Customers", {"first": 3}).data["customers"]["nodes"]
    shop.malform_next(4)
    with pytest.raises(TransientError, match="malformed JSON"):
        client.execute("Customers", {"first": 3})


def test_http_429_waits_out_retry_after(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock
) -> None:
    shop.rate_limit_next(2, retry_after=0.1)
    assert client.execute("Customers", {"first": 2}).data
    assert clock.rate_limit[:2] == [0.1, 0.1]  # counted as rate-limit waits on the run


def test_a_long_retry_after_goes_to_the_engine(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock
) -> None:
    shop.rate_limit_next(1, retry_after=120)
    with pytest.raises(RateLimitedError) as caught:
        client.execute("Customers", {"first": 2})
    assert caught.value.retry_after == 120
    assert clock.rate_limit == []  # not held here for two minutes


def test_throttled_waits_for_the_refill_and_retries(
    client: ShopifyClient, shop: ShopifySandbox, clock: Clock
) -> None:
    shop.throttle_next(1)
    assert client.execute("Customers", {"first": 20}).data["customers"]["nodes"]
    assert shop.stats.throttled == 1
    # The bucket was drained: the client waited for the refill the answer reported.
    cost = estimate_cost("Customers", {"first": 20})
    assert clock.rate_limit and clock.rate_limit[-1] == pytest.approx(cost / 20_000, abs=0.01)


def test_throttled_again_and_again_is_rate_limited(
    client: ShopifyClient, shop: ShopifySandbox
) -> None:
    shop.throttle_next(20)
    with pytest.raises(RateLimitedError, match="kept throttling"):
        client.execute("Customers", {"first": 2})


def test_a_wrong_token_is_an_auth_error_that_never_shows_it(
    shop: ShopifySandbox, clock: Clock
) -> None:
    secret = "shpat_wrong_but_secret_123"
    with connect(shop, clock, access_token=secret) as client:
        with pytest.raises(AuthError) as caught:
            client.execute("Customers", {"first": 1})
        assert "401" in str(caught.value) and "access token" in str(caught.value)
        assert secret not in str(caught.value) + repr(client)
        assert not isinstance(caught.value, TransientError)


def test_a_wrong_url_is_a_config_error(shop: ShopifySandbox, clock: Clock) -> None:
    with connect(shop, clock, api_url=shop.url + "/elsewhere") as client:
        with pytest.raises(ConfigError) as caught:
            client.execute("Customers", {"first": 1})
        assert caught.value.key == "api_url"


# -- client credentials


def test_client_credentials_are_exchanged_once_and_renewed_on_401(
    shop: ShopifySandbox, clock: Clock
) -> None:
    settings = {**shop.settings(), "access_token": None}
    with connect_to(settings, clock) as first, connect_to(settings, clock) as second:
        assert first.execute("Customers", {"first": 1}).data
        assert second.execute("Customers", {"first": 1}).data
        assert shop.stats.tokens_issued == 1  # cached for the app and shop
        shop.expire_tokens()
        assert first.execute("Customers", {"first": 1}).data
        assert shop.stats.tokens_issued == 2  # renewed once, transparently


def test_wrong_client_credentials_are_an_auth_error(shop: ShopifySandbox, clock: Clock) -> None:
    settings = {**shop.settings(), "access_token": None, "client_secret": "shpss_wrong_secret"}
    with connect_to(settings, clock) as client, pytest.raises(AuthError) as caught:
        client.execute("Customers", {"first": 1})
    assert "invalid_client" in str(caught.value)
    assert "shpss_wrong_secret" not in str(caught.value)


# -- pacing


def test_pacing_runs_near_the_restore_rate_without_throttling(clock: Clock) -> None:
    # Slow enough a refill (a page of ~250 points every ~0.6 s) that even a loaded
    # machine is bound by the budget, not by its own speed.
    rate = 400.0
    with ShopifySandbox(customers=60, seed=2, end=END, bucket_size=400, restore_rate=rate) as shop:
        with connect(shop, clock, client_id=None, client_secret=None) as client:
            first = client.fit("Customers", {}, desired=250)
            started = time.monotonic()
            for _ in range(8):
                client.execute("Customers", {"first": first})
            elapsed = time.monotonic() - started
        stats = shop.stats
    assert stats.throttled == 0
    assert stats.requested_cost <= 8 * client.ceiling()  # pages fitted to the budget
    assert sum(clock.rate_limit) > 0  # it did have to wait, and said so
    # Points spent beyond the bucket it started with, per second, against the rate.
    efficiency = (stats.actual_cost - 400) / elapsed / rate
    assert 0.8 <= efficiency <= 1.05, efficiency


def test_a_new_client_starts_from_what_the_last_one_left(clock: Clock) -> None:
    # Refilling 252 points takes over a second at 200/s: enough that a loaded machine
    # cannot refill the bucket between the two clients by itself.
    with ShopifySandbox(customers=60, seed=2, end=END, bucket_size=300, restore_rate=200) as shop:
        with connect(shop, clock, client_id=None, client_secret=None) as one:
            for _ in range(3):
                one.execute("Customers", {"first": 35})  # 247 points each: drains it
        with connect(shop, clock, client_id=None, client_secret=None) as two:
            waited = len(clock.rate_limit)
            two.execute("Customers", {"first": 35})
            assert len(clock.rate_limit) > waited  # waited before its very first request
        assert shop.stats.throttled == 0


def test_secrets_never_reach_the_logs(
    shop: ShopifySandbox, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {**shop.settings(), "access_token": None}
    messages = []
    with connect_to(settings, clock) as client:
        for switch in (shop.fail_next, shop.malform_next, shop.throttle_next):
            switch(10)
            with pytest.raises(SyncError) as caught:
                client.execute("Customers", {"first": 1})
            messages.append(str(caught.value))
            shop.clear_faults()
        token = client_module._TOKENS[(client.settings.base_url, shop.shop, shop.client_id)].value
    shown = "\n".join(messages) + caplog.text
    assert token not in shown and shop.client_secret not in shown
    assert shop.access_token not in shown


# -- answers the sandbox never gives: a tiny scripted server on loopback


class Scripted:
    """Answers every request with the next scripted (status, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = []
        self.url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        status, body = self.answers.pop(0)
        raw = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    app = Scripted()
    with serve(app) as url:
        app.url = url
        yield app


def _scripted_client(scripted: Scripted, clock: Clock) -> ShopifyClient:
    settings = ShopifySettings(
        domain="tokyo-tea.myshopify.com", access_token="shpat_x", api_url=scripted.url
    )
    client = ShopifyClient(settings, on_rate_limit=clock.wait_for_rate_limit, sleep=clock.sleep)
    client.budget.update(ThrottleStatus(1000, 1000, 100, time.monotonic()))
    return client


def test_access_denied_names_the_missing_scope(scripted: Scripted, clock: Clock) -> None:
    scripted.answers.append(
        (
            200,
            {
                "data": None,
                "errors": [
                    {
                        "message": "Access denied for customers field. Required access: "
                        "`read_customers` access scope.",
                        "path": ["customers"],
                        "extensions": {
                            "code": "ACCESS_DENIED",
                            "documentation": "https://shopify.dev/api/usage/access-scopes",
                            "requiredAccess": "`read_customers` access scope.",
                        },
                    }
                ],
            },
        )
    )
    with _scripted_client(scripted, clock) as client, pytest.raises(AuthError) as caught:
        client.execute("Customers", {"first": 1})
    assert "lacks the read_customers scope" in str(caught.value)
    assert "tokyo-tea.myshopify.com" in str(caught.value)


def test_http_403_names_the_scope_it_mentions(scripted: Scripted, clock: Clock) -> None:
    message = "This action requires merchant approval for read_orders scope."
    scripted.answers.append((403, {"errors": message}))
    with _scripted_client(scripted, clock) as client, pytest.raises(AuthError) as caught:
        client.execute("Orders", {"first": 1, "lines": 1})
    assert "lacks the read_orders scope" in str(caught.value)


def test_other_graphql_errors_carry_shopifys_message(scripted: Scripted, clock: Clock) -> None:
    error = {
        "message": "Internal error. Looks like something went wrong on our end.",
        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
    }
    page = {"data": {"customers": {"nodes": [], "pageInfo": {"hasNextPage": False}}}}
    scripted.answers += [(200, {"errors": [error]}), (200, page)]
    with _scripted_client(scripted, clock) as client:
        assert client.execute("Customers", {"first": 1}).data == page["data"]  # retried
        assert len(clock.backoff) == 1
        scripted.answers.append(
            (
                200,
                {
                    "errors": [
                        {
                            "message": "Field 'x' doesn't exist on type 'Customer'",
                            "extensions": {"code": "undefinedField"},
                        }
                    ]
                },
            )
        )
        with pytest.raises(SyncError, match="Field 'x' doesn't exist") as caught:
            client.execute("Customers", {"first": 1})
        assert not isinstance(caught.value, TransientError | AuthError)
