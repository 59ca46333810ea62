"""The neutral POS seed: deterministic, Japanese, and overlapping the EC sandbox."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from omnicrm.crm.identity.normalize import normalize_email, normalize_phone
from omnicrm.plugins.pos.seed import JST, StoreData, generate
from omnicrm.plugins.shopify.sandbox.data import ShopData

END = dt.datetime(2026, 11, 30, 21, tzinfo=JST)


@pytest.fixture(scope="module")
def data() -> StoreData:
    return generate(3, members=200, sales=3000, end=END, ec_customers=400, merged_share=0.05)


def test_same_arguments_same_data(data: StoreData) -> None:
    again = generate(3, members=200, sales=3000, end=END, ec_customers=400, merged_share=0.05)
    assert again.members == data.members
    assert [(s.sold_at, s.lines, s.points_after) for s in again.sales] == [
        (s.sold_at, s.lines, s.points_after) for s in data.sales
    ]
    other = generate(4, members=200, sales=3000, end=END, ec_customers=400)
    assert [s.lines for s in other.sales] != [s.lines for s in data.sales]


def test_two_stores_and_realistic_baskets(data: StoreData) -> None:
    assert [s.name for s in data.stores] == ["渋谷店", "梅田店"]
    by_store = Counter(s.store.name for s in data.sales)
    assert by_store["渋谷店"] > by_store["梅田店"] > 0
    sizes = Counter(len(s.lines) for s in data.sales)
    assert sizes[1] > sizes[2] > sizes[3] > sizes[5] > 0  # most buy one or two things
    mean = sum(len(s.lines) for s in data.sales) / len(data.sales)
    assert 1.8 < mean < 2.8
    times = [s.sold_at for s in data.sales]
    assert times == sorted(times) and times[0] >= END - dt.timedelta(days=366)
    assert all(10 <= t.hour < 21 for t in times)  # opening hours, JST


def test_returns_cancels_and_late_uploads(data: StoreData) -> None:
    returns = [s for s in data.sales if any(line.returned for line in s.lines)]
    assert returns and all(s.subtotal < sum(abs(li.amount) for li in s.lines) for s in returns)
    assert any(s.cancelled and s.cancelled_at for s in data.sales)
    late = [s for s in data.sales if s.offline]
    assert late and max(s.received_at - s.sold_at for s in late) > dt.timedelta(days=1)
    assert all(
        s.received_at - s.sold_at < dt.timedelta(minutes=1) for s in data.sales if not s.offline
    )


def test_points_follow_the_sales(data: StoreData) -> None:
    for sale in data.sales:
        if sale.member is None or sale.cancelled:
            assert sale.points_earned == sale.points_spent == 0 and sale.points_after is None
        else:
            assert sale.points_earned == max(0, sale.total) // 100
    last: dict[str, int] = {}
    for sale in data.sales:
        if sale.points_after is not None and sale.member is not None:
            last[sale.member.code] = sale.points_after
    merged = [m for m in data.members if m.status == "merged"]
    assert merged
    for member in merged:
        survivor = data.members_by_code[member.merged_into or ""]
        assert member.points == 0 and survivor.status == "active"
        assert survivor.last_kana == member.last_kana and survivor.birth_date == member.birth_date
        # nothing sold to the merged card after the merge
        assert all(
            s.member is not member for s in data.sales if s.sold_at >= (member.merged_at or END)
        )


def test_shared_members_are_the_ec_customers_written_differently(data: StoreData) -> None:
    shop = ShopData(400, 1, end=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), background=False)
    shared = [m for m in data.members if m.ec_customer is not None and m.status == "active"]
    assert len(shared) >= 0.25 * 200
    same_phone = same_email = kana_only = styled = 0
    for member in shared:
        person = shop.customer(member.ec_customer or 0)
        assert member.last_kana and member.first_kana
        numbers = {normalize_phone(n) for n in (member.phone, member.mobile) if n}
        same_phone += normalize_phone(person["phone"]) in numbers
        same_email += member.email is not None and normalize_email(member.email) == normalize_email(
            person["email"]
        )
        kana_only += member.last_name != person["lastName"]
        styled += any(
            n and ("-" in n or "\uff10" <= n[0] <= "\uff19")  # hyphens, full-width digits
            for n in (member.phone, member.mobile, member.zip)
        )
    assert 0 < same_phone < len(shared)  # a landline at one, a mobile at the other
    assert 0 < same_email < len(shared)
    assert 0 < kana_only < len(shared)
    assert styled > len(shared) // 3
