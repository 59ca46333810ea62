"""Cursor pagination, search syntax and sort order, with the shop changing underneath."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

LIST = """
query($first: Int, $last: Int, $after: String, $before: String, $query: String,
      $reverse: Boolean, $sort: CustomerSortKeys) {
  customers(first: $first, last: $last, after: $after, before: $before, query: $query,
            reverse: $reverse, sortKey: $sort) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id updatedAt createdAt } }
  }
}
"""


def walk(admin: Any, size: int = 50, between: Callable[[], None] | None = None, **args: Any
         ) -> Iterator[dict[str, Any]]:  # fmt: skip
    after = None
    while True:
        page = admin.data(LIST, first=size, after=after, **args)["customers"]
        yield from (e["node"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]
        if between:
            between()


def key(node: dict[str, Any]) -> tuple[str, int]:
    return node["updatedAt"], int(node["id"].rsplit("/", 1)[1])


@pytest.fixture
def fresh() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=300, seed=5, end=END, bucket_size=10**7, restore_rate=10**7) as s:
        yield s


def test_a_full_walk_sees_each_customer_once_in_update_then_id_order(
    shop: ShopifySandbox, admin: Any
) -> None:
    nodes = list(walk(admin, 37, sort="UPDATED_AT"))
    assert len(nodes) == len({n["id"] for n in nodes}) == shop.data.n
    assert [key(n) for n in nodes] == sorted(key(n) for n in nodes)


def test_orders_walk_in_update_order_with_their_lines(admin: Any, shop: ShopifySandbox) -> None:
    seen: list[tuple[str, int]] = []
    after = None
    while True:
        page = admin.data(queries.ORDERS, "Orders", first=30, lines=1, after=after)["orders"]
        for order in page["nodes"]:
            seen.append(key(order))
            lines = order["lineItems"]
            assert len(lines["nodes"]) == 1
            assert lines["pageInfo"]["hasNextPage"] == (len(shop.order(order["id"])["_lines"]) > 1)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == shop.data.base_orders
    assert seen == sorted(seen)


def test_concurrent_changes_lose_nothing(fresh: ShopifySandbox, client_for: Any) -> None:
    """Records changed while a walk runs move behind the cursor and are read again.

    Each change here happens a second after the one before (the sandbox's clock is
    stepped), as changes do when a walk takes its time; see the next test for changes
    within the second the cursor points at.
    """
    admin = client_for(fresh)
    clock = itertools.count(END.timestamp() + 86_400)
    fresh.data.clock = lambda: float(next(clock))
    rng = random.Random(1)
    changed: dict[str, str] = {}
    created: list[str] = []

    def change() -> None:
        for _ in range(3):
            record = fresh.data.update_customer(rng.randrange(fresh.data.n), note="変更")
            changed[record["id"]] = record["updatedAt"]
        created.append(fresh.create_customer()["id"])

    nodes = list(walk(admin, 20, change, sort="UPDATED_AT", query="updated_at:>='2020-01-01'"))
    latest = {n["id"]: n["updatedAt"] for n in nodes}
    assert len(latest) == fresh.data.n + len(created), "every customer, old and new, was seen"
    for gid, stamp in changed.items():
        assert latest[gid] == stamp, "the last change of each record was read"
    assert [key(n) for n in nodes] == sorted(key(n) for n in nodes)


def test_a_change_in_the_cursors_second_with_a_lower_id_sorts_behind_it(
    fresh: ShopifySandbox, client_for: Any
) -> None:
    """Timestamps are whole seconds, as Shopify shows them: a record changed in the very
    second of the cursor, with a lower id, sorts behind it and this walk misses it. A
    client re-reads a short lookback window to catch it (the next walk sees it)."""
    admin = client_for(fresh)
    fresh.data.clock = lambda: END.timestamp() + 86_400
    later = fresh.data.update_customer(200)
    page = admin.data(
        LIST, first=1, sort="UPDATED_AT", query=f"updated_at:>='{later['updatedAt']}'"
    )
    cursor = page["customers"]["pageInfo"]["endCursor"]
    earlier = fresh.data.update_customer(100)  # same second, lower id
    assert earlier["updatedAt"] == later["updatedAt"]
    rest = admin.data(LIST, first=10, after=cursor, sort="UPDATED_AT")["customers"]["edges"]
    assert earlier["id"] not in [e["node"]["id"] for e in rest]
    again = admin.data(
        LIST, first=10, sort="UPDATED_AT", query=f"updated_at:>='{later['updatedAt']}'"
    )
    assert [e["node"]["id"] for e in again["customers"]["edges"]] == [earlier["id"], later["id"]]


def test_reverse_and_backwards_pages_mirror_the_forward_walk(admin: Any) -> None:
    forward = [n["id"] for n in walk(admin, 60, sort="UPDATED_AT")]
    backward = [n["id"] for n in walk(admin, 60, sort="UPDATED_AT", reverse=True)]
    assert backward == forward[::-1]
    before, pages = None, []
    while True:
        page = admin.data(LIST, last=45, before=before, sort="UPDATED_AT")["customers"]
        pages.append([e["node"]["id"] for e in page["edges"]])
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert [gid for page in reversed(pages) for gid in page] == forward


def test_page_info_tells_both_ends(admin: Any) -> None:
    first = admin.data(LIST, first=10, sort="UPDATED_AT")["customers"]["pageInfo"]
    assert first["hasNextPage"] and not first["hasPreviousPage"]
    second = admin.data(LIST, first=10, after=first["endCursor"], sort="UPDATED_AT")
    assert second["customers"]["pageInfo"]["hasPreviousPage"]


def test_the_id_sort_is_by_id(admin: Any) -> None:
    ids = [int(n["id"].rsplit("/", 1)[1]) for n in walk(admin, 100, sort="ID")]
    assert ids == sorted(ids)
    created = [n["createdAt"] for n in walk(admin, 100, sort="ID")]
    assert created == sorted(created), "ids follow creation"


def _all(admin: Any) -> list[dict[str, Any]]:
    return list(walk(admin, 100, sort="UPDATED_AT"))


def test_update_bounds_are_inclusive_or_strict_as_written(admin: Any) -> None:
    everything = _all(admin)
    pivot = everything[len(everything) // 2]["updatedAt"]
    stamp = dt.datetime.fromisoformat(pivot)
    day = dt.datetime.combine(stamp.date(), dt.time(), dt.UTC)
    month_ago = day - dt.timedelta(days=30)
    cases: list[tuple[str, Callable[[dt.datetime], bool]]] = [
        (f"updated_at:>='{pivot}'", lambda s: s >= stamp),
        (f"updated_at:>'{pivot}'", lambda s: s > stamp),
        (f"updated_at:<'{pivot}'", lambda s: s < stamp),
        (f"updated_at:<={pivot}", lambda s: s <= stamp),
        (f"updated_at:>=\"{pivot}\" AND updated_at:<'{END.isoformat()}'", lambda s: s >= stamp),
        # a bare date is a whole day: from its start, or (with <) up to its start
        (
            f"updated_at:>='{month_ago.date()}' updated_at:<'{day.date()}'",
            lambda s: month_ago <= s < day,
        ),
        (f"updated_at:>{day.date()}", lambda s: s >= day + dt.timedelta(days=1)),
        (f"updated_at:{day.date()}", lambda s: day <= s < day + dt.timedelta(days=1)),
    ]
    for query, keep in cases:
        got = [n["id"] for n in walk(admin, 100, sort="UPDATED_AT", query=query)]
        want = [n["id"] for n in everything if keep(dt.datetime.fromisoformat(n["updatedAt"]))]
        assert got == want, query


def test_offsets_and_fractions_in_times_are_understood(admin: Any) -> None:
    everything = _all(admin)
    pivot = dt.datetime.fromisoformat(everything[100]["updatedAt"])
    tokyo = pivot.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat()
    a = [n["id"] for n in walk(admin, 100, sort="UPDATED_AT", query=f"updated_at:>='{tokyo}'")]
    assert a == [n["id"] for n in everything[100:]]
    half = (pivot - dt.timedelta(seconds=0.5)).isoformat()
    b = [n["id"] for n in walk(admin, 100, sort="UPDATED_AT", query=f"updated_at:>'{half}'")]
    assert b == a


def test_unknown_search_terms_are_ignored_with_a_warning(admin: Any) -> None:
    body = admin.run(LIST, first=5, query="tag:VIP updated_at:>='2020-01-01'")
    assert len(body["data"]["customers"]["edges"]) == 5
    warning = body["extensions"]["search"][0]
    assert warning["path"] == ["customers"] and warning["warnings"][0]["field"] == "tag"


def test_cursors_are_opaque_and_checked(admin: Any) -> None:
    page = admin.data(LIST, first=1, sort="UPDATED_AT")["customers"]
    cursor = page["edges"][0]["cursor"]
    decoded = json.loads(base64.b64decode(cursor))
    assert set(decoded) == {"last_id", "last_value"}
    body = admin.run(LIST, first=1, after="bm90IGEgY3Vyc29y")
    assert body["errors"][0]["message"].startswith("Invalid cursor")
    assert body["data"] is None


@pytest.mark.parametrize("args", [{}, {"first": 251}, {"last": -1}])
def test_page_sizes_are_required_and_bounded(admin: Any, args: dict[str, Any]) -> None:
    body = admin.run(LIST, **args)
    assert body["errors"] and body["errors"][0]["path"] == ["customers"]


def test_deleted_records_leave_the_listings(fresh: ShopifySandbox, client_for: Any) -> None:
    admin = client_for(fresh)
    victim = next(walk(admin, 5, sort="UPDATED_AT"))["id"]
    fresh.delete_customer(victim)
    assert victim not in {n["id"] for n in walk(admin, 100, sort="UPDATED_AT")}
    assert admin.data("query($id: ID!) { customer(id: $id) { id } }", id=victim)["customer"] is None


def test_counts_match_the_listings(admin: Any, shop: ShopifySandbox) -> None:
    query = "updated_at:>='2025-06-01'"
    listed = len(list(walk(admin, 100, sort="UPDATED_AT", query=query)))
    count = admin.data(queries.CUSTOMERS_COUNT, "CustomersCount", query=query)["customersCount"]
    assert count == {"count": listed, "precision": "EXACT"}
    capped = admin.data(queries.ORDERS_COUNT, "OrdersCount", limit=10)["ordersCount"]
    assert capped == {"count": 10, "precision": "AT_LEAST"}
    everything = admin.data(queries.ORDERS_COUNT, "OrdersCount")["ordersCount"]
    assert everything == {"count": shop.data.base_orders, "precision": "EXACT"}
