"""The generated shop: reproducible, consistent, realistic for a Japanese shop."""

from __future__ import annotations

import collections
import datetime as dt
import random
import re
from functools import cache

import numpy as np
import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from omnicrm.plugins.shopify.sandbox import data as data_module
from omnicrm.plugins.shopify.sandbox.data import (
    EPOCH,
    MASK,
    SHIFT,
    ShopData,
    _updated_times,
    customer_number,
    order_events,
)
from omnicrm.plugins.shopify.sandbox.search import Search

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@cache
def shop(customers: int = 600, seed: int = 3) -> ShopData:
    return ShopData(customers, seed, end=END, background=False)


def test_the_same_seed_gives_the_same_shop_and_another_seed_another() -> None:
    a, b = ShopData(200, 11, end=END), ShopData(200, 11, end=END)
    assert [a.customer(c) for c in range(200)] == [b.customer(c) for c in range(200)]
    assert [a.order(r) for r in range(a.base_orders)] == [b.order(r) for r in range(b.base_orders)]
    assert list(a.customers_by_updated.base) == list(b.customers_by_updated.base)
    other = ShopData(200, 12, end=END)
    assert [a.customer(c)["email"] for c in range(20)] != [
        other.customer(c)["email"] for c in range(20)
    ]


def test_the_fast_indexes_agree_with_the_record_by_record_definitions() -> None:
    data = shop()
    for key in data.customers_by_updated.base:
        c = int(key) & MASK
        assert data.customer_times(c)[1] == int(key) >> 23, c
    for rank, key in enumerate(data.by_created):
        assert data.order_created(rank) == int(key) >> 23
    for key in data.orders_by_updated.base:
        rank = int(key) & MASK
        assert data.order_core(rank).events.updated == int(key) >> 23, rank
    for c in range(data.n):  # every customer's orders are found, in order
        _, first, span, count = data._plan(c)
        times = [data._order_time(c, first, span, count, j) for j in range(count)]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert [data.order_created(r) for r in data.customer_orders(c)] == times


def test_the_order_index_built_in_chunks_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = shop()  # one chunk, checked record by record above
    monkeypatch.setattr(data_module, "ORDER_CHUNK", 97)  # bounds fall amid a customer's orders
    chunked = ShopData(600, 3, end=END, background=False)
    assert chunked.by_created == whole.by_created
    assert chunked.orders_by_updated.base == whole.orders_by_updated.base


def test_the_vectorised_update_time_matches_the_order_events() -> None:
    rng = random.Random(5)
    end = 200_000_000
    samples = [
        (
            end - rng.choice((0, 1, 600, 3600, 5 * 86_400, 40 * 86_400, 10**7)),
            rng.randrange(65536),
            rng.randrange(65536),
        )
        for _ in range(20_000)
    ]
    created, flags, delays = (np.array(column) for column in zip(*samples, strict=True))
    updated = _updated_times(
        created.astype(np.int64), flags.astype(np.int32), delays.astype(np.int32), end
    )
    expected = [order_events(c, f, d, end).updated for c, f, d in samples]
    assert updated.tolist() == expected


def test_listings_are_sorted_by_update_then_id() -> None:
    data = shop()
    keys = list(data.customers_by_updated.base)
    assert keys == sorted(keys)
    pairs = [(data.customer_times(int(k) & MASK)[1], int(k) & MASK) for k in keys]
    assert pairs == sorted(pairs)
    numbers = [customer_number(c) for c in range(data.n)]
    assert numbers == sorted(numbers), "ids grow with sign-up, as Shopify's do"


def test_counts_and_amounts_are_consistent_with_the_orders() -> None:
    data = shop()
    by_owner: dict[int, list[int]] = collections.defaultdict(list)
    for rank in range(data.base_orders):
        owner = data.order_core(rank).owner
        if owner is not None:
            by_owner[owner].append(rank)
    for c in range(data.n):
        record = data.customer(c)
        ranks = by_owner.get(c, [])
        assert int(record["numberOfOrders"]) == len(ranks)
        spent = sum(data.order_core(r).spent for r in ranks)
        assert record["amountSpent"] == {"amount": f"{spent}.0", "currencyCode": "JPY"}
        created, updated = record["createdAt"], record["updatedAt"]
        assert created <= updated
        for r in ranks:
            order = data.order(r)
            assert order["createdAt"] >= created
            assert order["customer"]["id"] == record["id"] and order["_owner"] == c


def test_orders_add_up_in_yen_with_tax_included() -> None:
    data = shop()
    for rank in range(0, data.base_orders, 7):
        order, core = data.order(rank), data.order_core(rank)
        assert order["currencyCode"] == "JPY" and order["taxesIncluded"] is True
        total = int(order["totalPriceSet"]["shopMoney"]["amount"].removesuffix(".0"))
        subtotal = int(order["subtotalPriceSet"]["shopMoney"]["amount"].removesuffix(".0"))
        shipping = int(order["totalShippingPriceSet"]["shopMoney"]["amount"].removesuffix(".0"))
        tax = int(order["totalTaxSet"]["shopMoney"]["amount"].removesuffix(".0"))
        assert total == subtotal + shipping and tax == total * 10 // 110
        lines = order["_lines"]
        assert 1 <= len(lines) <= 5
        line_sum = 0
        for line in lines:
            unit = int(line["discountedUnitPriceSet"]["shopMoney"]["amount"].removesuffix(".0"))
            line_sum += unit * line["quantity"]
            price = int(line["originalUnitPriceSet"]["shopMoney"]["amount"].removesuffix(".0"))
            assert 300 <= price <= 30_000
        assert line_sum == subtotal
        assert order["createdAt"] <= order["updatedAt"]
        refunded = sum(a for _, a in core.refunds)
        assert 0 <= refunded <= total
        if order["sourceName"] == "pos":
            assert order["retailLocation"] and order["retailLocation"]["name"].endswith("店")
        else:
            assert order["retailLocation"] is None


def test_the_shop_looks_like_a_japanese_shop() -> None:
    data = shop()
    customers = [data.customer(c) for c in range(data.n)]
    orders = [data.order(r) for r in range(data.base_orders)]
    counts = collections.Counter(int(c["numberOfOrders"]) for c in customers)
    buyers = sum(n for k, n in counts.items() if k)
    assert counts[1] > buyers / 2, "most buyers buy once"
    assert max(counts) >= 10, "a long tail buys often"
    assert sum(1 for o in orders if o["customer"] is None and o["_owner"] is None) > 0, "guests"
    sources = collections.Counter(o["sourceName"] for o in orders)
    assert set(sources) == {"web", "pos", "shopify_draft_order"}
    assert sources["web"] > sources["pos"] > sources["shopify_draft_order"]
    statuses = collections.Counter(o["displayFinancialStatus"] for o in orders)
    assert statuses["PAID"] > len(orders) * 0.8
    assert statuses["REFUNDED"] and statuses["PARTIALLY_REFUNDED"] and statuses["VOIDED"]
    assert collections.Counter(c["state"] for c in customers).keys() >= {
        "ENABLED",
        "DISABLED",
        "INVITED",
    }
    emails = [c["email"] for c in customers if c["email"]]
    assert len(set(emails)) == len(emails), "emails are unique in a shop"
    phones = [c["phone"] for c in customers if c["phone"]]
    assert len(set(phones)) == len(phones)
    # Mobiles (070/080/090, then 1-9) and, since issue 9, landlines (nine digits).
    assert all(re.fullmatch(r"\+81(?:[789]0[1-9]\d{7}|[2-9]\d{8})", p) for p in phones)
    kanji = re.compile(r"[\u4e00-\u9fff\u3040-\u30ff]")
    assert all(kanji.search(c["lastName"]) for c in customers)
    addresses = [c["defaultAddress"] for c in customers if c["defaultAddress"]]
    for a in addresses:
        assert re.fullmatch(r"\d{3}-\d{4}", a["zip"])
        assert re.fullmatch(r"JP-\d\d", a["provinceCode"]) and a["countryCodeV2"] == "JP"
        assert a["province"].endswith(("都", "道", "府", "県"))
    tokyo = sum(1 for a in addresses if a["provinceCode"] == "JP-13")
    assert tokyo > len(addresses) / 47 * 3, "Tokyo dominates"
    consents = {c["emailMarketingConsent"]["marketingState"] for c in customers if c["email"]}
    assert consents >= {"SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED"}
    created = sorted(c["createdAt"] for c in customers)
    first, last = (dt.datetime.fromisoformat(created[i]) for i in (0, -1))
    assert (last - first).days > 600, "sign-ups spread over about two years"


@pytest.mark.parametrize("customers", [1, 10, 37])
def test_tiny_shops_work(customers: int) -> None:
    data = ShopData(customers, 1, end=END)
    page = data.page(
        "customers", "UPDATED_AT", Search(), first=50, last=None, after=None, before=None,
        reverse=False,
    )  # fmt: skip
    assert len(page.items) == customers and not page.has_next
    assert data.base_orders >= 1


def test_changes_move_records_to_the_end_and_keep_ids() -> None:
    data = ShopData(100, 2, end=END)
    before = data.customer(5)
    after = data.update_customer(5, note="電話希望")
    assert after["id"] == before["id"] and after["note"] == "電話希望"
    assert after["updatedAt"] > before["updatedAt"]
    assert data.customers_by_updated.extra[-1] == float(
        (int(dt.datetime.fromisoformat(after["updatedAt"]).timestamp()) - EPOCH) * SHIFT + 5
    )
    order = data.create_order(5)
    assert data.customer(5)["numberOfOrders"] == str(int(before["numberOfOrders"]) + 1)
    assert order["name"] == f"#{1001 + data.base_orders}"
    spent = int(data.customer(5)["amountSpent"]["amount"].removesuffix(".0"))
    assert spent == int(before["amountSpent"]["amount"].removesuffix(".0")) + int(
        order["totalPriceSet"]["shopMoney"]["amount"].removesuffix(".0")
    )
    cancelled = data.cancel_order(data.order_rank(order["id"]) or 0)
    assert cancelled["cancelledAt"] and cancelled["displayFinancialStatus"] == "REFUNDED"
    assert data.customer(5)["amountSpent"] == before["amountSpent"]


@pytest.mark.parametrize("seed", [1, 2, 7, 2024])
def test_every_phone_number_is_a_valid_japanese_number(seed: int) -> None:
    """Every customer's phone (and the address's, the same number) is one phonenumbers
    accepts as Japanese, landlines and mobiles alike: identity resolution drops the rest."""
    shop = ShopData(3000, seed)
    kinds: set[int] = set()
    for c in range(shop.n):
        record = shop.customer(c)
        numbers = {record["phone"], (record["defaultAddress"] or {}).get("phone")} - {None}
        for number in numbers:
            parsed = phonenumbers.parse(number)
            assert phonenumbers.is_valid_number(parsed), (c, number)
            assert phonenumbers.region_code_for_number(parsed) == "JP", (c, number)
            kinds.add(phonenumbers.number_type(parsed))
    assert kinds == {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE}
