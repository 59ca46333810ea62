"""Cursor pagination: every record exactly once, in order, even while the shop changes."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from typing import Any

from omnicrm_minishop.client import MiniShopClient, Resource
from omnicrm_minishop.sandbox import MiniShopServer


def key(record: dict[str, Any]) -> tuple[dt.datetime, str]:
    return dt.datetime.fromisoformat(record["updated_at"]), record["id"]


def test_full_listing_is_every_record_once_in_order(shop: MiniShopServer) -> None:
    before = len(shop.requests)
    with MiniShopClient(shop.base_url, shop.api_key, page_size=250) as client:
        got = list(client.iter_records("customers"))
    assert got == shop.records("customers")
    assert [key(r) for r in got] == sorted(key(r) for r in got)
    assert len(shop.requests) - before == math.ceil(2000 / 250)


def test_ties_on_updated_at_survive_page_boundaries(shop: MiniShopServer) -> None:
    # The first tenth of the shop arrived in one CSV import, all at one second: pages of 7
    # cut that tie many times, and only the (updated_at, id) token keeps it exact.
    expected = shop.records("customers")[:300]
    tied = [r for r in expected if r["updated_at"] == expected[0]["updated_at"]]
    assert len(tied) > 100
    with MiniShopClient(shop.base_url, shop.api_key, page_size=7) as client:
        got = list(itertools.islice(client.iter_records("customers"), 300))
    assert got == expected


def test_updated_since_is_inclusive_and_offset_agnostic(shop: MiniShopServer) -> None:
    records = shop.records("orders")
    since = dt.datetime.fromisoformat(records[1234]["updated_at"])
    expected = [r for r in records if key(r)[0] >= since]
    assert records[1234] in expected
    with MiniShopClient(shop.base_url, shop.api_key, page_size=250) as client:
        in_jst = list(client.iter_records("orders", updated_since=since))
        in_utc = list(client.iter_records("orders", updated_since=since.astimezone(dt.UTC)))
        just_after = list(
            client.iter_records("orders", updated_since=since + dt.timedelta(seconds=1))
        )
    assert in_jst == in_utc == expected
    assert records[1234] not in just_after


def check_listing_under_change(server: MiniShopServer, resource: Resource, seed: int) -> None:
    """Page through ``resource`` while changing the shop after every page, then check that
    nothing was lost or doubled and that order held."""
    rng = random.Random(seed)
    untouched = {r["id"] for r in server.records(resource)}
    got: list[dict[str, Any]] = []
    token = None
    with MiniShopClient(server.base_url, server.api_key, page_size=9) as client:
        while True:
            page = client.get_page(resource, page_token=token)
            got.extend(page.records)
            if page.next_page_token is None:
                break
            token = page.next_page_token
            # Between two pages: new records, changed customers, a cancelled order.
            for _ in range(3):
                untouched.discard(server.tick()[1])
            if resource == "orders":
                victim = rng.choice(server.records("orders"))["id"]
                server.update("orders", victim, status="cancelled")
                untouched.discard(victim)

    final = {r["id"]: r for r in server.records(resource)}
    ids = [r["id"] for r in got]
    assert set(ids) == set(final), "a record was lost"
    assert all(ids.count(i) == 1 for i in untouched), "an unchanged record came twice"
    assert [key(r) for r in got] == sorted(key(r) for r in got), "out of order"
    last_seen = {r["id"]: r for r in got}
    assert last_seen == final, "a record's last version is not its current one"


def test_customer_pages_stay_exact_while_the_shop_changes(small_shop: MiniShopServer) -> None:
    check_listing_under_change(small_shop, "customers", seed=1)


def test_order_pages_stay_exact_while_the_shop_changes(small_shop: MiniShopServer) -> None:
    check_listing_under_change(small_shop, "orders", seed=2)


def test_a_record_changed_behind_the_cursor_comes_again(small_shop: MiniShopServer) -> None:
    records = small_shop.records("customers")
    got = []
    with MiniShopClient(small_shop.base_url, small_shop.api_key, page_size=10) as client:
        for i, record in enumerate(client.iter_records("customers"), start=1):
            got.append(record["id"])
            if i == 10:
                small_shop.update("customers", records[0]["id"], tags=["VIP"])
    assert got.count(records[0]["id"]) == 2
    assert got[-1] == records[0]["id"]
