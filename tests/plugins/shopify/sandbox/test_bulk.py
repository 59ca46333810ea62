"""Bulk operations: one at a time, JSONL with interleaved children, resumable."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def bulk_shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=250, seed=9, end=END, bucket_size=10**7, restore_rate=10**7) as s:
        yield s


def run(admin: Any, stream: str, search: str = "") -> dict[str, Any]:
    body = admin.data(queries.BULK_RUN, "BulkRun", query=queries.bulk_query(stream, search))
    result: dict[str, Any] = body["bulkOperationRunQuery"]
    return result


def finish(admin: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        op: dict[str, Any] = admin.data(queries.BULK_CURRENT, "BulkCurrent")["currentBulkOperation"]
        if op["status"] not in ("CREATED", "RUNNING"):
            return op
        assert time.monotonic() < deadline, "the bulk operation never finished"
        time.sleep(0.05)


def lines_of(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in httpx.get(url).text.splitlines()]


def test_orders_with_lines_as_jsonl_children_after_parents_but_interleaved(
    bulk_shop: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(bulk_shop)
    started = run(admin, "orders", "updated_at:>='2020-01-01T00:00:00Z'")
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    op = finish(admin)
    assert op["status"] == "COMPLETED" and op["id"] == started["bulkOperation"]["id"]
    rows = lines_of(op["url"])
    parents = [r for r in rows if "__parentId" not in r]
    children = [r for r in rows if "__parentId" in r]
    assert len(parents) == bulk_shop.data.base_orders == int(op["rootObjectCount"])
    assert len(rows) == int(op["objectCount"])
    assert int(op["fileSize"]) == len(httpx.get(op["url"]).content)
    position = {r["id"]: i for i, r in enumerate(rows)}
    assert all(position[c["__parentId"]] < position[c["id"]] for c in children)
    assert all("lineItems" not in p for p in parents), "nested connections are not inline"
    # interleaved: some parent's children are not one run right after it
    grouped = True
    for i, row in enumerate(rows):
        if "__parentId" in row and i > 0:
            previous = rows[i - 1]
            if previous.get("__parentId", previous["id"]) != row["__parentId"]:
                grouped = False
    assert not grouped, "children must not be grouped behind their parents"
    stamps = [(p["updatedAt"], int(p["id"].rsplit("/", 1)[1])) for p in parents]
    assert stamps == sorted(stamps), "roots in the query's sort order"


def test_joined_bulk_rows_equal_what_the_api_returns(
    bulk_shop: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(bulk_shop)
    run(admin, "orders", "updated_at:>='2026-01-01T00:00:00Z'")
    rows = lines_of(finish(admin)["url"])
    joined: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "__parentId" in row:
            child = dict(row)
            joined[child.pop("__parentId")]["lines"].append(child)
        else:
            joined[row["id"]] = {"order": row, "lines": []}
    api: dict[str, Any] = {}
    after = None
    while True:
        page = admin.data(
            queries.ORDERS, "Orders", first=15, lines=5, after=after,
            query="updated_at:>='2026-01-01T00:00:00Z'",
        )["orders"]  # fmt: skip
        for node in page["nodes"]:
            api[node["id"]] = node
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert set(api) == set(joined) and api
    for gid, node in api.items():
        lines = node.pop("lineItems")["nodes"]
        assert joined[gid]["order"] == node
        assert sorted(joined[gid]["lines"], key=lambda x: x["id"]) == sorted(
            lines, key=lambda x: x["id"]
        )


def test_customers_in_bulk_equal_the_listing(admin: Any, shop: ShopifySandbox) -> None:
    shop.bulk.wait()
    started = run(admin, "customers", "updated_at:>='2025-09-01'")
    assert not started["userErrors"]
    rows = lines_of(finish(admin)["url"])
    listed: list[Any] = []
    after = None
    while len(listed) < len(rows):  # pages of 100 fit the single-query limit
        page = admin.data(
            queries.CUSTOMERS,
            "Customers",
            first=100,
            after=after,
            query="updated_at:>='2025-09-01'",
        )["customers"]
        listed += page["nodes"]
        after = page["pageInfo"]["endCursor"]
    assert rows == listed[: len(rows)]
    assert all("__parentId" not in r for r in rows)


def test_one_bulk_query_at_a_time_and_a_crashed_client_finds_it_again(
    bulk_shop: ShopifySandbox, client_for: Any
) -> None:
    bulk_shop.bulk.min_seconds = 1.0
    admin = client_for(bulk_shop)
    first = run(admin, "customers")["bulkOperation"]
    second = run(admin, "orders")
    assert second["bulkOperation"] is None
    error = second["userErrors"][0]
    assert error["code"] == "OPERATION_IN_PROGRESS" and first["id"] in error["message"]
    admin.http.close()  # the client "crashes"; a new one resumes the same operation
    again = client_for(bulk_shop)
    current = again.data(queries.BULK_CURRENT, "BulkCurrent")["currentBulkOperation"]
    assert current["id"] == first["id"] and current["status"] in ("CREATED", "RUNNING")
    done = finish(again)
    assert done["id"] == first["id"] and done["status"] == "COMPLETED"
    assert run(again, "orders")["userErrors"] == [], "free again once completed"


def test_an_empty_result_has_no_url(bulk_shop: ShopifySandbox, client_for: Any) -> None:
    admin = client_for(bulk_shop)
    run(admin, "customers", "updated_at:>='2099-01-01'")
    op = finish(admin)
    assert op["status"] == "COMPLETED" and op["objectCount"] == "0"
    assert op["url"] is None and op["fileSize"] is None


@pytest.mark.parametrize(
    "query",
    [
        "{ shop { name } }",
        "{ customers { edges { node { nope } } } }",
        "{ customers { edges { node { id } } } orders { edges { node { id } } } }",
        "query($q: String) { customers(query: $q) { edges { node { id } } } }",
    ],
)
def test_bad_bulk_queries_get_user_errors(admin: Any, shop: ShopifySandbox, query: str) -> None:
    shop.bulk.wait()
    body = admin.data(queries.BULK_RUN, "BulkRun", query=query)["bulkOperationRunQuery"]
    assert body["bulkOperation"] is None
    assert (
        body["userErrors"][0]["field"] == ["query"] and body["userErrors"][0]["code"] == "INVALID"
    )


def test_a_failed_operation_offers_its_partial_data(
    bulk_shop: ShopifySandbox, client_for: Any
) -> None:
    admin = client_for(bulk_shop)
    bulk_shop.fail_next_bulk()
    run(admin, "orders")
    op = finish(admin)
    assert op["status"] == "FAILED" and op["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert op["url"] is None and op["partialDataUrl"]
    partial = lines_of(op["partialDataUrl"])
    assert 0 < len([r for r in partial if "__parentId" not in r]) < bulk_shop.data.base_orders


def test_a_truncated_download_ends_mid_line(bulk_shop: ShopifySandbox, client_for: Any) -> None:
    admin = client_for(bulk_shop)
    run(admin, "customers")
    url = finish(admin)["url"]
    whole = httpx.get(url).text
    bulk_shop.truncate_next_download()
    cut = httpx.get(url).text
    assert whole.startswith(cut) and len(cut) < len(whole)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.splitlines()[-1])
    assert httpx.get(url).text == whole, "only the next download is cut"


def test_bulk_respects_read_all_orders(bulk_shop: ShopifySandbox, client_for: Any) -> None:
    admin = client_for(bulk_shop)
    bulk_shop.data.clock = lambda: END.timestamp() + 3600
    bulk_shop.deny_read_all_orders()
    run(admin, "orders")
    rows = lines_of(finish(admin)["url"])
    cutoff = (END + dt.timedelta(hours=1) - dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    parents = [r for r in rows if "__parentId" not in r]
    assert parents and all(r["createdAt"] >= cutoff for r in parents)
    assert len(parents) < bulk_shop.data.base_orders / 4
