"""Compiled expressions select exactly the right hand-built profiles, on both backends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from omnicrm.core.store import Store
from omnicrm.crm.segments._dates import shift
from omnicrm.crm.segments.compile import compile_expression
from omnicrm.crm.segments.language import RelativeDate
from tests.crm.segments.profiles import NOW, TOKYO, add_profile, all_ids, days_ago, jst, matching


def build(conn: Connection) -> dict[str, int]:
    """Four people; NOW is 2024-05-01 12:00 in Tokyo."""
    return {
        "vip": add_profile(
            conn,
            {"tag": ["vip", "gold"], "channel": ["web"], "connection": ["shopify"]},
            prefecture="東京都",
            number_of_orders=5,
            amount_spent=52000.0,
            first_order_at=jst(2023, 1, 10),
            last_order_at=days_ago(10),  # 2024-04-21
            birth_date=dt.date(1990, 5, 1),  # 34 today
            gender="female",
            consent_email="opted_in",
            rfm_group="champions",
            lifecycle_stage="loyal",
            channel_mix="ec_only",
            predicted_clv=80000.0,
            points_balance=1200,
            first_seen_at=jst(2022, 12, 1),
        ),
        "osaka": add_profile(
            conn,
            {"channel": ["pos"], "store": ["umeda"], "connection": ["pos"]},
            prefecture="大阪府",
            number_of_orders=1,
            amount_spent=3000.0,
            first_order_at=days_ago(45),  # 2024-03-17
            last_order_at=days_ago(45),
            birth_date=dt.date(1990, 5, 2),  # 33, 34 tomorrow
            gender="male",
            consent_email="opted_out",
            rfm_group="about_to_sleep",
            lifecycle_stage="second_purchase_candidate",
            channel_mix="store_only",
            first_seen_at=days_ago(45),
        ),
        "both": add_profile(
            conn,
            {
                "tag": ["gold"],
                "channel": ["web", "pos"],
                "store": ["shibuya"],
                "connection": ["shopify", "ec-cube"],
            },
            number_of_orders=3,
            amount_spent=15000.0,
            first_order_at=jst(2024, 1, 31, 0, 0),  # the first instant of 2024-01-31
            last_order_at=days_ago(30, hour=0),  # 2024-04-01 00:00
            consent_email="pending",
            rfm_group="at_risk",
            lifecycle_stage="repeat",
            channel_mix="both",
            predicted_clv=1000.0,
        ),
        "prospect": add_profile(
            conn,
            birth_date=dt.date(2006, 5, 1),  # 18 today
            first_seen_at=days_ago(0, hour=9),
        ),
    }


CASES = [
    ("number_of_orders > 0", {"vip", "osaka", "both"}),
    ("number_of_orders = 0", {"prospect"}),
    ("number_of_orders BETWEEN 3 AND 1", {"osaka", "both"}),
    ("amount_spent >= 15000", {"vip", "both"}),
    ("amount_spent != 3000", {"vip", "both", "prospect"}),
    ("amount_spent < 3000.5", {"osaka", "prospect"}),
    ("last_order_date > -30d", {"vip"}),
    ("last_order_date >= -30d", {"vip", "both"}),
    ("last_order_date = -30d", {"both"}),
    ("last_order_date < -30d", {"osaka"}),
    ("last_order_date <= -30d", {"osaka", "both"}),
    ("last_order_date != -30d", {"vip", "osaka"}),
    ("last_order_date BETWEEN -45d AND -30d", {"osaka", "both"}),
    ("last_order_date BETWEEN -30d AND -45d", {"osaka", "both"}),
    ("last_order_date >= 2024-04-21", {"vip"}),
    ("last_order_date > 2024-04-21", set()),
    ("last_order_date = 2024-04-21", {"vip"}),
    ("last_order_date >= -1m", {"vip", "both"}),
    ("last_order_date >= -6w", {"vip", "both"}),
    ("last_order_date >= -7w", {"vip", "osaka", "both"}),
    ("last_order_date >= 30_days_ago", {"vip", "both"}),
    ("last_order_date IS NULL", {"prospect"}),
    ("first_order_date = 2024-01-31", {"both"}),
    ("first_order_date < 2024-01-31", {"vip"}),
    ("customer_added_date = today", {"prospect"}),
    ("customer_added_date < -1y", {"vip"}),
    ("customer_added_date IS NULL", {"both"}),
    ("customer_tags CONTAINS 'vip'", {"vip"}),
    ("customer_tags CONTAINS 'gold'", {"vip", "both"}),
    ("customer_tags CONTAINS 'GOLD'", set()),
    ("customer_tags NOT CONTAINS 'gold'", {"osaka", "prospect"}),
    ("customer_tags IS NULL", {"osaka", "prospect"}),
    ("customer_tags IS NOT NULL", {"vip", "both"}),
    ("channel CONTAINS 'pos'", {"osaka", "both"}),
    ("channel CONTAINS 'pos' AND channel CONTAINS 'web'", {"both"}),
    ("store CONTAINS 'umeda'", {"osaka"}),
    ("store IS NOT NULL", {"osaka", "both"}),
    ("connection CONTAINS 'ec-cube'", {"both"}),
    ("prefecture = '東京都'", {"vip"}),
    ("prefecture != '東京都'", {"osaka"}),
    ("prefecture IS NULL", {"both", "prospect"}),
    ("age = 34", {"vip"}),
    ("age = 33", {"osaka"}),
    ("age >= 34", {"vip"}),
    ("age > 33", {"vip"}),
    ("age < 34", {"osaka", "prospect"}),
    ("age <= 18", {"prospect"}),
    ("age != 33", {"vip", "prospect"}),
    ("age BETWEEN 18 AND 33", {"osaka", "prospect"}),
    ("age IS NULL", {"both"}),
    ("gender = female", {"vip"}),
    ("gender != male", {"vip", "both", "prospect"}),
    ("gender = unknown", {"both", "prospect"}),
    ("email_subscription_status = SUBSCRIBED", {"vip"}),
    ("email_subscription_status = 'UNSUBSCRIBED'", {"osaka"}),
    ("email_subscription_status = pending", {"both"}),
    ("email_subscription_status = NOT_SUBSCRIBED", {"prospect"}),
    ("sms_subscription_status = NOT_SUBSCRIBED", {"vip", "osaka", "both", "prospect"}),
    ("line_subscription_status != NOT_SUBSCRIBED", set()),
    ("postal_subscription_status = SUBSCRIBED", set()),
    ("rfm_group = champions", {"vip"}),
    ("rfm_group IS NULL", {"prospect"}),
    ("rfm_group != champions", {"osaka", "both"}),
    ("lifecycle_stage = prospect", {"prospect"}),
    ("lifecycle_stage = second_purchase_candidate", {"osaka"}),
    ("channel_mix = store_only", {"osaka"}),
    ("channel_mix = none", {"prospect"}),
    ("predicted_clv > 5000", {"vip"}),
    ("predicted_clv IS NULL", {"osaka", "prospect"}),
    ("points_balance >= 1000", {"vip"}),
    ("points_balance = 0", {"osaka", "both", "prospect"}),
    ("customer_tags CONTAINS 'gold' AND NOT channel CONTAINS 'pos'", {"vip"}),
    ("number_of_orders > 0 AND (prefecture = '大阪府' OR prefecture IS NULL)", {"osaka", "both"}),
    ("NOT prefecture = '東京都'", {"osaka", "both", "prospect"}),
    ("NOT (age > 20 OR customer_tags CONTAINS 'gold')", {"prospect"}),
    ("NOT NOT gender = female", {"vip"}),
    ("gender = male OR age = 18 OR store CONTAINS 'shibuya'", {"osaka", "both", "prospect"}),
]


def test_each_expression_selects_exactly_its_profiles(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = build(conn)
        names = {ids[name]: name for name in ids}
        wrong = {
            expression: (got, expected)
            for expression, expected in CASES
            if (got := {names[i] for i in matching(conn, expression)}) != expected
        }
    assert wrong == {}


def test_not_is_the_exact_complement_even_where_values_are_missing(store: Store) -> None:
    with store.engine.begin() as conn:
        build(conn)
        everyone = all_ids(conn)
        for expression, _ in CASES:
            selected = matching(conn, expression)
            assert matching(conn, f"NOT ({expression})") == everyone - selected, expression


def test_days_are_the_shop_s_days(store: Store) -> None:
    """00:30 in Tokyo on May 1 is April 30 in UTC: the zone decides what 'today' is."""
    with store.engine.begin() as conn:
        late = add_profile(conn, number_of_orders=1, last_order_at=jst(2024, 5, 1, 0, 30))
        assert matching(conn, "last_order_date = today") == {late}
        assert matching(conn, "last_order_date = 2024-05-01") == {late}
        utc = ZoneInfo("UTC")
        # NOW is 03:00 on May 1 in UTC too, and the purchase 15:30 on April 30 there.
        assert matching(conn, "last_order_date = yesterday", tz=utc) == {late}
        assert matching(conn, "last_order_date = today", tz=utc) == set()
        assert matching(conn, "last_order_date = 2024-04-30", tz=utc) == {late}
        # A minute before the day starts in Tokyo is the day before.
        early = add_profile(conn, number_of_orders=1, last_order_at=jst(2024, 4, 30, 23, 59))
        assert matching(conn, "last_order_date = yesterday") == {early}
        assert matching(conn, "last_order_date < today") == {early}


def test_relative_dates_resolve_against_now(store: Store) -> None:
    """The same expression selects different profiles as time passes."""
    with store.engine.begin() as conn:
        april = add_profile(conn, number_of_orders=1, last_order_at=jst(2024, 4, 1))
        assert matching(conn, "last_order_date >= -30d") == {april}
        later = dt.datetime(2024, 5, 2, 3, 0, tzinfo=dt.UTC)
        assert matching(conn, "last_order_date >= -30d", now=later) == set()
        assert matching(conn, "last_order_date >= -1m", now=later) == set()  # 2024-04-02
        assert matching(conn, "last_order_date >= -5w", now=later) == {april}


@pytest.mark.parametrize(
    ("today", "amount", "unit", "expected"),
    [
        (dt.date(2024, 5, 1), -30, "d", dt.date(2024, 4, 1)),
        (dt.date(2024, 5, 1), -2, "w", dt.date(2024, 4, 17)),
        (dt.date(2024, 3, 31), -1, "m", dt.date(2024, 2, 29)),
        (dt.date(2023, 3, 31), -1, "m", dt.date(2023, 2, 28)),
        (dt.date(2024, 1, 31), -3, "m", dt.date(2023, 10, 31)),
        (dt.date(2024, 2, 29), -1, "y", dt.date(2023, 2, 28)),
        (dt.date(2024, 5, 1), 7, "d", dt.date(2024, 5, 8)),
        (dt.date(2024, 12, 15), 1, "m", dt.date(2025, 1, 15)),
    ],
)
def test_date_offsets_are_calendar_arithmetic(
    today: dt.date, amount: int, unit: str, expected: dt.date
) -> None:
    assert RelativeDate(amount, unit).resolve(today) == expected
    assert shift(today, amount, unit) == expected


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2024, 2, 29, 3, tzinfo=dt.UTC),
        dt.datetime(2023, 2, 28, 3, tzinfo=dt.UTC),
        dt.datetime(2023, 3, 1, 3, tzinfo=dt.UTC),
        dt.datetime(2024, 12, 31, 16, tzinfo=dt.UTC),  # already 2025-01-01 in Tokyo
    ],
)
def test_age_bounds_agree_with_birthdays(store: Store, now: dt.datetime) -> None:
    """age = n selects exactly those whose n-th birthday has passed and n+1-th has not,
    leap days included."""
    births = [
        dt.date(2000, 2, 29),
        dt.date(2000, 2, 28),
        dt.date(2000, 3, 1),
        dt.date(2001, 2, 28),
        dt.date(2001, 3, 1),
        dt.date(1999, 12, 31),
        dt.date(2000, 1, 1),
        dt.date(2004, 2, 29),
        dt.date(1960, 6, 15),
    ]
    today = now.astimezone(TOKYO).date()
    with store.engine.begin() as conn:
        ids = {add_profile(conn, birth_date=born): born for born in births}
        for n in range(18, 26):
            expected = {i for i, born in ids.items() if _age(born, today) == n}
            assert matching(conn, f"age = {n}", now=now) == expected, (n, today)
            at_least = {i for i, born in ids.items() if _age(born, today) >= n}
            assert matching(conn, f"age >= {n}", now=now) == at_least, (n, today)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        compile_expression("age > 3", dt.datetime(2024, 5, 1))


def test_the_sql_is_plain_comparisons_with_bound_values(store: Store) -> None:
    """No per-row date functions: dates and ages arrive as parameters."""
    condition = compile_expression(
        "last_order_date > -30d AND age >= 20 AND customer_tags CONTAINS 'vip'", NOW
    )
    with store.engine.connect() as conn:
        sql = str(condition.compile(dialect=conn.dialect))
    lowered = sql.lower()
    for function in ("date(", "julianday", "now(", "current_date", "age(", "extract"):
        assert function not in lowered, sql
