"""The purchase reports on hand-built data whose answers are worked out below."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.records import OrderStatus
from omnicrm.core.store import Store
from omnicrm.crm.analytics import reports
from omnicrm.crm.analytics.reports import Kind, Report, format_cell
from omnicrm.crm.schema import profile_members
from tests.crm.analytics.shop import add_profile, jst, order, write_orders

NOW = jst(2024, 9, 15)

# Purchase days (Tokyo) of the four customers, as the reports must see them:
#   A  2024-01-10 (two orders: 1000.50 + 499.25), 02-20 (3000, POS, another connection),
#      05-05 (2000); a cancelled order on 06-01 does not count
#   B  2024-01-31 23:30 (1200; still January in Tokyo), 06-15 (800, POS)
#   C  2024-02-01 00:30 (700; January 31 in UTC, February in Tokyo); a refunded order
#   D  2024-08-20 (1500), 09-01 (100); an order after NOW does not count
# plus a guest order and an order of a customer no profile holds (not customers' purchases)
# and profile E without orders.
A_DAYS = [dt.date(2024, 1, 10), dt.date(2024, 2, 20), dt.date(2024, 5, 5)]
B_DAYS = [dt.date(2024, 1, 31), dt.date(2024, 6, 15)]
D_DAYS = [dt.date(2024, 8, 20), dt.date(2024, 9, 1)]


@pytest.fixture
def shop(store: Store) -> Store:
    with store.engine.begin() as conn:
        a = add_profile(conn, "a", family_name="山田", given_name="花子")
        add_profile(conn, "b", family_name="佐藤")
        add_profile(conn, "c")
        add_profile(conn, "d")
        add_profile(conn, "e")
        # A's second source customer, in the store's POS connection.
        conn.execute(
            insert(profile_members).values(
                shop=DEFAULT_SHOP, connection="pos", record_id="a-pos", profile_id=a, joined_at=NOW
            )
        )
    write_orders(
        store,
        [
            order("a1", "a", jst(2024, 1, 10, 10), "1000.50"),
            order("a2", "a", jst(2024, 1, 10, 18), "499.25", status=OrderStatus.FULFILLED),
            order("a4", "a", jst(2024, 5, 5), 2000),
            order("a5", "a", jst(2024, 6, 1), 5000, status=OrderStatus.CANCELLED),
            order("b1", "b", jst(2024, 1, 31, 23, 30), 1200),
            order("b2", "b", jst(2024, 6, 15), 800, channel="pos"),
            order("c1", "c", jst(2024, 2, 1, 0, 30), 700),
            order("c2", "c", jst(2024, 2, 10), 300, status=OrderStatus.REFUNDED),
            order("d1", "d", jst(2024, 8, 20), 1500),
            order("d2", "d", jst(2024, 9, 1), 100),
            order("d3", "d", jst(2024, 10, 1), 100),
            order("g1", None, jst(2024, 3, 1), 999),
            order("x1", "x", jst(2024, 3, 2), 999),
            order("pending", "a", jst(2024, 3, 3), 999, status=OrderStatus.PENDING),
        ],
    )
    write_orders(store, [order("a3", "a-pos", jst(2024, 2, 20), 3000, channel="pos")], "pos")
    return store


def run(store: Store, make: object, **kwargs: object) -> Report:
    with store.engine.connect() as conn:
        assert callable(make)
        report = make(conn, shop=DEFAULT_SHOP, now=NOW, **kwargs)
    assert isinstance(report, Report)
    return report


def by_first(report: Report) -> dict[object, tuple[object, ...]]:
    return {row[0]: row[1:] for row in report.rows}


def test_ltv_per_customer(shop: Store) -> None:
    report = run(shop, reports.ltv_customers, limit=3)
    assert report.column_names == (
        "profile",
        "name",
        "orders",
        "spend",
        "first purchase",
        "last purchase",
    )
    # A: 1000.50 + 499.25 + 3000 + 2000 over 4 orders; B 1200 + 800; D 1500 + 100; C 700.
    assert report.rows == (
        (1, "山田 花子", 4, Decimal("6499.75"), dt.date(2024, 1, 10), dt.date(2024, 5, 5)),
        (2, "佐藤", 2, Decimal("2000"), dt.date(2024, 1, 31), dt.date(2024, 6, 15)),
        (4, "", 2, Decimal("1600"), dt.date(2024, 8, 20), dt.date(2024, 9, 1)),
    )
    # 10,799.75 over 4 customers = 2,699.9375, shown to the hundredth.
    assert (
        "4 customers with purchases; total spend 10,799.75 JPY; average LTV 2,699.94 JPY"
        in (report.notes[0])
    )


def test_ltv_per_cohort(shop: Store) -> None:
    report = run(shop, reports.ltv_cohorts)
    assert report.column_names[-3:] == ("LTV +3m", "LTV +6m", "LTV +12m")
    rows = by_first(report)
    assert list(rows) == ["2024-01", "2024-02", "2024-08"]
    # January: A and B. Through April (+3): A 1499.75 + 3000, B 1200 -> 5699.75 / 2.
    # Through July (+6): everything, 8499.75 / 2. January 2025 (+12) has not ended.
    assert rows["2024-01"] == (
        2,
        Decimal("8499.75"),
        Decimal("4249.88"),
        Decimal("2849.88"),
        Decimal("4249.88"),
        None,
    )
    assert rows["2024-02"] == (
        1,
        Decimal("700"),
        Decimal("700.00"),
        Decimal("700.00"),
        Decimal("700.00"),
        None,
    )
    # August + 3 = November: not over on 15 September.
    assert rows["2024-08"] == (1, Decimal("1600"), Decimal("1600.00"), None, None, None)


def test_repeat_rate(shop: Store) -> None:
    report = run(shop, reports.repeat_rate)
    # A (3 days), B (2) and D (2) came back; C did not. A's two orders on 10 January are
    # one purchase day.
    assert report.rows == (
        ("all", 4, 3, 0.75),
        ("2024-01", 2, 2, 1.0),
        ("2024-02", 1, 0, 0.0),
        ("2024-08", 1, 1, 1.0),
    )


def test_f2_conversion_rates_only_cohorts_whose_window_has_passed(shop: Store) -> None:
    a_gap = (A_DAYS[1] - A_DAYS[0]).days  # 41
    b_gap = (B_DAYS[1] - B_DAYS[0]).days  # 136
    assert (a_gap, b_gap) == (41, 136)
    report = run(shop, reports.f2_conversion, window_days=90)
    rows = by_first(report)
    # January: A converts within 90 days, B does not. February: C never came back.
    assert rows["2024-01"] == (2, 1, 0.5, "complete")
    assert rows["2024-02"] == (1, 0, 0.0, "complete")
    # August customers have until 31 August + 90 days = 29 November.
    assert rows["2024-08"] == (1, None, None, "open until 2024-11-29")
    assert rows["all complete cohorts"] == (3, 1, pytest.approx(1 / 3), "complete")
    assert any("1 cohort(s) not rated yet" in n for n in report.notes)

    # The window is inclusive: day 41 is within 41 days, not within 40.
    assert by_first(run(shop, reports.f2_conversion, window_days=41))["2024-01"][1] == 1
    assert by_first(run(shop, reports.f2_conversion, window_days=40))["2024-01"][1] == 0
    # B's second purchase is within a 136-day window, but the January cohort's window
    # (31 Jan + 136 days = 15 June) must have passed too: on NOW it has.
    assert by_first(run(shop, reports.f2_conversion, window_days=136))["2024-01"][:2] == (2, 2)


def test_cohort_retention(shop: Store) -> None:
    report = run(shop, reports.cohort_retention, months=8)
    rows = by_first(report)
    # January (A, B): A in Feb (+1) and May (+4), B in June (+5); +8 = September has
    # not ended.
    assert rows["2024-01"] == (2, 0.5, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, None)
    # February (C): never again; +7 = September not ended.
    assert rows["2024-02"] == (1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, None)
    # August (D) bought again on 1 September, but September is not over.
    assert rows["2024-08"] == (1, None, None, None, None, None, None, None, None)
    assert report.column_names == ("cohort", "customers", *(f"+{k}" for k in range(1, 9)))


def test_average_order_value(shop: Store) -> None:
    report = run(shop, reports.average_order_value)
    rows = {(r[0], r[1]): r[2:] for r in report.rows}
    # 9 purchases: 1000.50 + 499.25 + 3000 + 2000 + 1200 + 800 + 700 + 1500 + 100.
    assert rows[("overall", "all")] == (9, Decimal("10799.75"), Decimal("1199.97"))
    assert rows[("channel", "store")] == (2, Decimal("3800"), Decimal("1900.00"))
    assert rows[("channel", "EC")] == (7, Decimal("6999.75"), Decimal("999.96"))
    # B's 23:30 order on 31 January is January; C's 00:30 order on 1 February is February.
    assert rows[("month", "2024-01")] == (3, Decimal("2699.75"), Decimal("899.92"))
    assert rows[("month", "2024-02")] == (2, Decimal("3700"), Decimal("1850.00"))
    assert [r[1] for r in report.rows if r[0] == "month"] == [
        "2024-01",
        "2024-02",
        "2024-05",
        "2024-06",
        "2024-08",
        "2024-09",
    ]
    assert any("2 purchase(s) without a known customer" in n for n in report.notes)


def test_purchase_interval(shop: Store) -> None:
    gaps = [
        (days[i + 1] - days[i]).days
        for days in (A_DAYS, B_DAYS, D_DAYS)
        for i in range(len(days) - 1)
    ]
    firsts = [(days[1] - days[0]).days for days in (A_DAYS, B_DAYS, D_DAYS)]
    assert sorted(gaps) == [12, 41, 75, 136] and sorted(firsts) == [12, 41, 136]
    report = run(shop, reports.purchase_interval)
    assert report.rows == (
        ("between consecutive purchases", 4, 66.0, 58.0),  # median of 12, 41, 75, 136
        ("first to second purchase", 3, 63.0, 41.0),
    )


def test_months_follow_the_shop_zone_through_daylight_saving(store: Store) -> None:
    new_york = ZoneInfo("America/New_York")
    with store.engine.begin() as conn:
        add_profile(conn, "w")
        add_profile(conn, "s")
    utc = dt.UTC
    write_orders(
        store,
        [
            # 04:30 UTC: 23:30 on 31 January in New York (EST, -5) ...
            order("w1", "w", dt.datetime(2024, 2, 1, 4, 30, tzinfo=utc), 10),
            # ... but 00:30 on 1 April (EDT, -4): a fixed -5 would say March.
            order("s1", "s", dt.datetime(2024, 4, 1, 4, 30, tzinfo=utc), 20),
            # 03:30 UTC on 10 March is 22:30 on the 9th, before the change at 07:00 UTC.
            order("w2", "w", dt.datetime(2024, 3, 10, 3, 30, tzinfo=utc), 30),
            order("s2", "s", dt.datetime(2024, 3, 10, 7, 30, tzinfo=utc), 40),
        ],
    )
    with store.engine.connect() as conn:
        aov = reports.average_order_value(conn, shop=DEFAULT_SHOP, now=NOW, tz=new_york)
        interval = reports.purchase_interval(conn, shop=DEFAULT_SHOP, now=NOW, tz=new_york)
    months = {r[1]: r[2] for r in aov.rows if r[0] == "month"}
    assert months == {"2024-01": 1, "2024-03": 2, "2024-04": 1}
    # w: 31 Jan -> 9 Mar = 38 days; s: 10 Mar (03:30 EDT) -> 1 Apr = 22 days.
    assert interval.rows[0][1:] == (2, 30.0, 30.0)


def test_empty_store_says_there_is_nothing_yet(store: Store) -> None:
    with store.engine.connect() as conn:
        made = [
            reports.ltv_customers(conn, shop=DEFAULT_SHOP),
            reports.ltv_cohorts(conn, shop=DEFAULT_SHOP),
            reports.repeat_rate(conn, shop=DEFAULT_SHOP),
            reports.f2_conversion(conn, shop=DEFAULT_SHOP),
            reports.cohort_retention(conn, shop=DEFAULT_SHOP),
            reports.average_order_value(conn, shop=DEFAULT_SHOP),
            reports.purchase_interval(conn, shop=DEFAULT_SHOP),
        ]
    for report in made:
        assert report.empty, report.title
        assert any("no purchases yet" in n for n in report.notes)


def test_money_is_exact_to_the_ten_thousandth(store: Store) -> None:
    with store.engine.begin() as conn:
        add_profile(conn, "m")
    amounts = ["0.1", "0.2", "1000.1234", "0.0001", "99999999.9999"]
    write_orders(
        store, [order(f"m{i}", "m", jst(2024, 1, 1 + i), a) for i, a in enumerate(amounts)]
    )
    with store.engine.connect() as conn:
        report = reports.ltv_customers(conn, shop=DEFAULT_SHOP, now=NOW)
    assert report.rows[0][3] == sum(Decimal(a) for a in amounts) == Decimal("100001000.4234")


def test_bad_arguments(store: Store) -> None:
    with store.engine.connect() as conn:
        with pytest.raises(ValueError, match="window_days"):
            reports.f2_conversion(conn, shop=DEFAULT_SHOP, window_days=0)
        with pytest.raises(ValueError, match="months"):
            reports.cohort_retention(conn, shop=DEFAULT_SHOP, months=0)
        with pytest.raises(ValueError, match="limit"):
            reports.ltv_customers(conn, shop=DEFAULT_SHOP, limit=0)
        with pytest.raises(ValueError, match="now"):
            reports.repeat_rate(conn, shop=DEFAULT_SHOP, now=dt.datetime(2024, 1, 1))


def test_rendering_text_and_json(shop: Store) -> None:
    report = run(shop, reports.repeat_rate)
    assert report.text_rows()[0] == ("all", "4", "3", "75.0%")
    data = json.loads(json.dumps(run(shop, reports.ltv_customers, limit=1).to_json()))
    assert data["rows"] == [
        {
            "profile": 1,
            "name": "山田 花子",
            "orders": 4,
            "spend": "6499.75",
            "first purchase": "2024-01-10",
            "last purchase": "2024-05-05",
        }
    ]
    assert data["columns"][3] == {"name": "spend", "kind": "money"}
    assert format_cell(Decimal("1234567.5"), Kind.MONEY) == "1,234,567.5"
    assert format_cell(None, Kind.INT) == "-"
