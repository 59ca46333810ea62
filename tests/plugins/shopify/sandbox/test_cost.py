"""Query cost as Shopify documents it, and the leaky bucket that spends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import parse

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.cost import Cost, LeakyBucket, operation
from omnicrm.plugins.shopify.sandbox.schema import sandbox_schema

END_QUERY = "updated_at:>='2099-01-01T00:00:00Z'"  # matches nothing


def requested(document: str, **variables: Any) -> int:
    doc = parse(document)
    op = operation(doc, None)
    assert op is not None
    return Cost(sandbox_schema(), doc, op, variables).requested()


@pytest.mark.parametrize(
    ("document", "variables", "cost"),
    [
        ("{ shop { name ianaTimezone } }", {}, 1),  # an object 1, scalars 0
        ("{ customers(first: 10) { nodes { id } } }", {}, 2 + 10 * 1),
        (
            "{ customers(first: 10) { edges { cursor node { id defaultAddress { city } } }"
            " pageInfo { hasNextPage } } }",
            {},
            2 + 10 * (1 + 1),
        ),
        (
            "{ orders(first: 5) { nodes { id lineItems(first: 3) { nodes { id } } } } }",
            {},
            2 + 5 * (1 + (2 + 3 * 1)),
        ),
        ("query($n: Int!) { customers(last: $n) { nodes { id } } }", {"n": 7}, 2 + 7),
        (
            '{ order(id: "gid://shopify/Order/1") { totalPriceSet { shopMoney { amount } } } }',
            {},
            1 + 2,
        ),
        (
            '{ node(id: "gid://shopify/Order/1") { id ... on Order { customer { id } } } }',
            {},
            1 + 1,
        ),
        (
            'mutation { bulkOperationRunQuery(query: "{ shop { id } }") { userErrors { field } } }',
            {},
            10,
        ),
        # the plugin's documents at typical sizes (the numbers the client can plan with)
        (queries.CUSTOMERS, {"first": 100}, 2 + 100 * 7),  # 7: with two metafields
        (queries.CUSTOMERS, {"first": 142}, 996),
        (queries.ORDERS, {"first": 10, "lines": 5}, 2 + 10 * (18 + 9 * 5)),
        (queries.ORDERS, {"first": 25, "lines": 2}, 2 + 25 * (18 + 9 * 2)),
        (queries.ORDER_LINE_ITEMS, {"id": "gid://shopify/Order/1", "first": 100}, 1 + 2 + 900),
        (queries.ACCESS_SCOPES, {}, 3),
        (queries.CUSTOMERS_COUNT, {}, 1),
        (queries.ORDERS_COUNT, {"limit": 5}, 1),
        (queries.BULK_RUN, {"query": "{}"}, 10),
        (queries.BULK_CURRENT, {}, 1),
    ],
)
def test_requested_cost_follows_the_documented_formula(
    document: str, variables: dict[str, Any], cost: int
) -> None:
    assert requested(document, **variables) == cost


def test_skipped_fields_cost_nothing() -> None:
    doc = "query($s: Boolean!) { shop @skip(if: $s) { name } customers(first: 2) { nodes { id } } }"
    assert requested(doc, s=True) == 4
    assert requested(doc, s=False) == 5


def test_actual_cost_counts_what_came_back_and_the_rest_is_refunded(admin: Any) -> None:
    body = admin.run(queries.CUSTOMERS, "Customers", first=100, query=END_QUERY)
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 702
    assert cost["actualQueryCost"] == 2, "an empty page costs only the connection"
    body = admin.run("{ customers(first: 3) { nodes { id defaultAddress { city } } } }")
    nodes = body["data"]["customers"]["nodes"]
    assert body["extensions"]["cost"]["actualQueryCost"] == 2 + sum(
        1 + (n["defaultAddress"] is not None) for n in nodes
    )


def test_a_query_over_1000_is_refused_before_it_runs(admin: Any) -> None:
    body = admin.run(queries.CUSTOMERS, "Customers", first=250)
    assert "data" not in body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 1752 and error["extensions"]["maxCost"] == 1000


@pytest.fixture
def small_bucket() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=200, bucket_size=100, restore_rate=10) as shop:
        yield shop


def test_throttled_when_the_bucket_is_empty_then_restored(
    small_bucket: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(small_bucket)
    document = "{ customers(first: 50) { nodes { id } } }"  # 52, and 52 actually used
    body = admin.run(document)
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 100.0 and status["restoreRate"] == 10.0
    assert 48 <= status["currentlyAvailable"] <= 50
    throttled = admin.post(document)
    assert throttled.status_code == 200
    body = throttled.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 52
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    wait = (52 - body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]) / 10
    time.sleep(wait + 0.3)
    assert "errors" not in admin.run(document), "the bucket refilled at the restore rate"
    assert small_bucket.stats.throttled == 1


def test_the_bucket_leaks_as_documented() -> None:
    now = [0.0]
    bucket = LeakyBucket(1000, 50, clock=lambda: now[0])
    assert bucket.take(900)
    assert not bucket.take(200), "more than is available is refused, and nothing is taken"
    assert bucket.status().currently_available == 100
    bucket.refund(300)
    assert bucket.status().currently_available == 400
    now[0] += 2.0
    assert bucket.status().currently_available == 500
    now[0] += 100
    assert bucket.status().currently_available == 1000, "never above the bucket size"


def test_a_forced_throttle_and_a_shop_wide_bucket(shop: ShopifySandbox, admin: Any) -> None:
    shop.throttle_next(1)
    body = admin.run(queries.ACCESS_SCOPES, "AccessScopes")
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "errors" not in admin.run(queries.ACCESS_SCOPES, "AccessScopes")
