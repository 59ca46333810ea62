"""Earning on orders, redemptions, adjustments and balances, on both backends."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import update

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.points import (
    AppliedPoints,
    EventConflictError,
    InsufficientPointsError,
    PointsError,
    PointsSettings,
    UnknownProfileError,
    adjust,
    apply_order_points,
    balance,
    history,
    plus_months,
    primary_member,
    redeem,
    refresh_balances,
)
from omnicrm.crm.points.settings import EarnBase, Rounding
from omnicrm.crm.schema import profile_members
from tests.crm.points.shop import (
    T0,
    add_profile,
    customer,
    ledger,
    order,
    rows,
    stored_balance,
    write,
)

LATER = T0 + dt.timedelta(days=30)


def _apply(
    store: Store,
    settings: PointsSettings | None = None,
    *,
    connection: str | None = None,
    customer_ids: list[str] | None = None,
) -> AppliedPoints:
    with store.engine.begin() as conn:
        return apply_order_points(
            conn, settings or PointsSettings(), LATER, connection, customer_ids, shop=DEFAULT_SHOP
        )


# -- earning ------------------------------------------------------------------------------


def test_purchases_earn_one_point_per_100_yen_of_the_total_without_shipping(
    store: Store,
) -> None:
    write(
        store,
        "ec",
        order("o1", "c1", 2190, shipping=200),  # 1,990 yen earns 19
        order("o2", "c1", 5000, status="fulfilled"),
        order("o3", "c1", 99),  # 0 points: no entry
        order("o4", "c1", 3000, status="pending"),
        order("o5", "c1", 3000, status="cancelled"),
        order("o6", None, 3000),  # a guest: nobody to hold the points
    )
    done = _apply(store)
    assert ledger(store) == {("ec", "earn:o1"): 19, ("ec", "earn:o2"): 50}
    assert done.earned == 2
    first = next(r for r in rows(store) if r["event_id"] == "earn:o1")
    assert (first["kind"], first["connection"], first["customer_id"]) == ("earn", "ec", "c1")
    assert (first["order_id"], first["occurred_at"]) == ("o1", T0)
    assert first["expires_at"] == dt.datetime(2025, 4, 1, 3, 0, tzinfo=dt.UTC)


def test_channel_and_connection_multipliers_multiply(store: Store) -> None:
    settings = PointsSettings(
        channel_multipliers={"pos": Decimal(2)}, connection_multipliers={"tokyo-ec": Decimal("1.5")}
    )
    write(store, "store", order("s1", "c1", 1000, channel="pos"), order("s2", "c1", 1000))
    write(
        store,
        "tokyo-ec",
        order("e1", "c2", 1000),
        order("e2", "c2", 1000, channel="pos"),
        order("e3", "c2", 999),  # 14.985 rounds down
    )
    _apply(store, settings)
    assert ledger(store) == {
        ("store", "earn:s1"): 20,
        ("store", "earn:s2"): 10,
        ("tokyo-ec", "earn:e1"): 15,
        ("tokyo-ec", "earn:e2"): 30,
        ("tokyo-ec", "earn:e3"): 14,
    }


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [(Rounding.DOWN, {"a": 12, "b": 12}), (Rounding.NEAREST, {"a": 13, "b": 12}),
     (Rounding.UP, {"a": 13, "b": 13})],
)  # fmt: skip
def test_rounding(store: Store, rounding: Rounding, expected: dict[str, int]) -> None:
    write(store, "ec", order("a", "c1", 1250), order("b", "c1", "1249.9999"))
    _apply(store, PointsSettings(rounding=rounding))
    assert ledger(store) == {("ec", f"earn:{k}"): v for k, v in expected.items()}


@pytest.mark.parametrize(
    ("base", "points"),
    [
        (EarnBase.TOTAL, 20),
        (EarnBase.TOTAL_EXCL_SHIPPING, 17),
        (EarnBase.TOTAL_EXCL_SHIPPING_AND_TAX, 16),
    ],
)
def test_the_base_an_order_earns_on(store: Store, base: EarnBase, points: int) -> None:
    write(store, "ec", order("o1", "c1", 2000, shipping=300, tax=100))
    _apply(store, PointsSettings(base=base))
    assert ledger(store) == {("ec", "earn:o1"): points}


def test_currency_start_and_delay_limit_what_earns_by_the_rule(store: Store) -> None:
    settings = PointsSettings(start=T0, delay_days=14)
    write(
        store,
        "ec",
        order("usd", "c1", 1000, currency="USD"),
        order("before-start", "c1", 1000, placed=T0 - dt.timedelta(seconds=1)),
        order("at-start", "c1", 1000, placed=T0),
        order("too-recent", "c1", 1000, placed=LATER - dt.timedelta(days=13)),
        order("old-enough", "c1", 1000, placed=LATER - dt.timedelta(days=14)),
    )
    _apply(store, settings)
    assert ledger(store) == {("ec", "earn:at-start"): 10, ("ec", "earn:old-enough"): 10}


def test_a_master_connection_s_points_are_taken_as_reported(store: Store) -> None:
    settings = PointsSettings(masters=["pos"], channel_multipliers={"pos": Decimal(2)})
    write(
        store,
        "pos",
        order("p1", "m1", 10_000, channel="pos", earned=37, redeemed=10),
        order("p2", "m1", 10_000, channel="pos"),  # the POS granted nothing: nothing
        order("p3", "m1", 10_000, channel="pos", earned=5, status="pending"),
    )
    write(store, "ec", order("e1", "c1", 1000, redeemed=300))  # a points app on the EC site
    _apply(store, settings)
    assert ledger(store) == {
        ("pos", "earn:p1"): 37,
        ("pos", "redeem:p1"): -10,
        ("ec", "earn:e1"): 10,
        ("ec", "redeem:e1"): -300,
    }


def test_disabled_points_write_nothing(store: Store) -> None:
    write(store, "ec", order("o1", "c1", 1000))
    _apply(store, PointsSettings(enabled=False))
    assert ledger(store) == {}


# -- idempotency and reversal -----------------------------------------------------------------


def test_applying_twice_and_a_re_sync_of_the_same_order_leave_the_same_ledger(
    store: Store,
) -> None:
    write(store, "ec", order("o1", "c1", 1000, redeemed=5), order("o2", "c2", 2500))
    _apply(store)
    first = rows(store)
    again = _apply(store)
    assert again.total == 0
    # The platform sends o1 again, edited (another total): the earn stays as first written.
    write(store, "ec", order("o1", "c1", 9000, redeemed=5, updated=T0 + dt.timedelta(hours=1)))
    _apply(store)
    assert rows(store) == first
    assert ledger(store) == {("ec", "earn:o1"): 10, ("ec", "redeem:o1"): -5, ("ec", "earn:o2"): 25}


@pytest.mark.parametrize("status", ["cancelled", "refunded", "returned"])
def test_an_order_undone_later_reverses_its_earn_and_gives_back_its_redemption(
    store: Store, status: str
) -> None:
    write(store, "ec", order("o1", "c1", 1000, redeemed=30), order("o2", "c1", 500))
    _apply(store)
    undone = T0 + dt.timedelta(days=3)
    write(
        store,
        "ec",
        order("o1", "c1", 1000, redeemed=30, status=status, updated=undone + dt.timedelta(hours=2)),
    )
    assert _apply(store).reversed == 2
    assert _apply(store).total == 0
    assert ledger(store) == {
        ("ec", "earn:o1"): 10,
        ("ec", "redeem:o1"): -30,
        ("ec", "reverse:earn:o1"): -10,
        ("ec", "reverse:redeem:o1"): 30,
        ("ec", "earn:o2"): 5,
    }
    by_event = {r["event_id"]: r for r in rows(store)}
    assert by_event["reverse:earn:o1"]["occurred_at"] == undone + dt.timedelta(hours=2)
    assert by_event["reverse:earn:o1"]["expires_at"] is None
    # Points given back count as newly earned: they expire a year after the refund.
    assert by_event["reverse:redeem:o1"]["expires_at"] == plus_months(
        undone + dt.timedelta(hours=2), 12
    )


def test_cancelled_at_dates_the_reversal(store: Store) -> None:
    write(store, "ec", order("o1", "c1", 1000))
    _apply(store)
    cancelled = T0 + dt.timedelta(days=2)
    write(
        store,
        "ec",
        order(
            "o1",
            "c1",
            1000,
            status="cancelled",
            cancelled=cancelled,
            updated=T0 + dt.timedelta(days=5),
        ),
    )
    _apply(store)
    (reversal,) = [r for r in rows(store) if r["kind"] == "reverse"]
    assert reversal["occurred_at"] == cancelled


def test_an_order_never_seen_as_a_purchase_has_nothing_to_reverse(store: Store) -> None:
    write(store, "ec", order("o1", "c1", 1000, status="cancelled", redeemed=10))
    _apply(store)
    assert ledger(store) == {}


def test_scoped_to_some_customers_of_one_connection(store: Store) -> None:
    write(store, "ec", order("o1", "c1", 1000), order("o2", "c2", 1000), order("o3", "c3", 1000))
    write(store, "pos", order("p1", "c1", 1000))
    done = _apply(store, connection="ec", customer_ids=["c1", "c3"])
    assert ledger(store) == {("ec", "earn:o1"): 10, ("ec", "earn:o3"): 10}
    assert done.earned == 2
    _apply(store, connection="pos")
    assert ("pos", "earn:p1") in ledger(store)
    assert ("ec", "earn:o2") not in ledger(store)
    with pytest.raises(ValueError, match="connection"):
        _apply(store, customer_ids=["c2"])


@pytest.mark.parametrize(
    ("placed", "months"),
    [
        (dt.datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), 1),  # Feb 29 (leap)
        (dt.datetime(2023, 1, 31, 12, 0, tzinfo=dt.UTC), 1),  # Feb 28
        (dt.datetime(2024, 2, 29, 8, 30, 0, 1, tzinfo=dt.UTC), 12),  # Feb 28 next year
        (dt.datetime(2024, 3, 31, 0, 0, tzinfo=dt.UTC), 6),  # Sep 30
        (dt.datetime(2024, 12, 31, 15, 0, tzinfo=dt.UTC), 2),  # Feb 28 across the year
        (dt.datetime(2024, 8, 15, 9, 15, 30, 123456, tzinfo=dt.UTC), 120),
    ],
)
def test_expiry_dates_are_calendar_months_clamped_to_the_month_end(
    store: Store, placed: dt.datetime, months: int
) -> None:
    write(store, "ec", order("o1", "c1", 1000, placed=placed))
    with store.engine.begin() as conn:
        apply_order_points(conn, PointsSettings(expiry_months=months), placed, shop=DEFAULT_SHOP)
    (entry,) = rows(store)
    assert entry["expires_at"] == plus_months(placed, months)
    assert entry["expires_at"].day <= placed.day
    assert entry["expires_at"].time() == placed.time()


def test_plus_months_clamps_the_day() -> None:
    assert plus_months(dt.datetime(2024, 1, 31, tzinfo=dt.UTC), 1).date() == dt.date(2024, 2, 29)
    assert plus_months(dt.datetime(2024, 11, 30, tzinfo=dt.UTC), 3).date() == dt.date(2025, 2, 28)
    assert plus_months(dt.datetime(2024, 5, 5, tzinfo=dt.UTC), 12).date() == dt.date(2025, 5, 5)


# -- a profile's wallet ---------------------------------------------------------------------


def _two_member_profile(store: Store) -> None:
    """Profile 1 = EC customer c1 + store customer m1; profile 2 = EC customer c2."""
    write(store, "ec", customer("c1"), customer("c2"))
    write(store, "store", customer("m1", updated=T0 + dt.timedelta(days=1)))
    write(
        store,
        "ec",
        order("o1", "c1", 1000),
        order("o2", "c1", 2000),
        order("o3", "c2", 700),
    )
    write(store, "store", order("s1", "m1", 3000, channel="pos", earned=99))
    add_profile(store, 1, ("ec", "c1"), ("store", "m1"))
    add_profile(store, 2, ("ec", "c2"))
    _apply(store, PointsSettings(channel_multipliers={"pos": Decimal(2)}))


def test_balance_by_connection_and_in_total_across_members(store: Store) -> None:
    _two_member_profile(store)
    with store.engine.connect() as conn:
        one, two = balance(conn, 1, shop=DEFAULT_SHOP), balance(conn, 2, shop=DEFAULT_SHOP)
        entries = history(conn, 1, shop=DEFAULT_SHOP)
    assert (one.total, dict(one.by_connection)) == (90, {"ec": 30, "store": 60})
    assert (two.total, dict(two.by_connection)) == (7, {"ec": 7})
    assert [e.event_id for e in entries] == ["earn:o1", "earn:o2", "earn:s1"]
    assert sum(e.points for e in entries) == 90
    # apply_order_points refreshed what it reached.
    assert (stored_balance(store, 1), stored_balance(store, 2)) == (90, 7)


def test_moving_a_member_to_another_profile_moves_its_points(store: Store) -> None:
    _two_member_profile(store)
    with store.engine.begin() as conn:  # an unmerge puts m1 in a profile of its own
        conn.execute(
            update(profile_members)
            .where(profile_members.c.connection == "store", profile_members.c.record_id == "m1")
            .values(profile_id=2)
        )
        assert refresh_balances(conn, [1, 2], shop=DEFAULT_SHOP) == 2
        one, two = balance(conn, 1, shop=DEFAULT_SHOP), balance(conn, 2, shop=DEFAULT_SHOP)
    assert (one.total, dict(one.by_connection)) == (30, {"ec": 30})
    assert (two.total, dict(two.by_connection)) == (67, {"ec": 7, "store": 60})
    assert (stored_balance(store, 1), stored_balance(store, 2)) == (30, 67)


def test_refresh_balances_of_every_profile(store: Store) -> None:
    _two_member_profile(store)
    add_profile(store, 3)  # no members: zero
    with store.engine.begin() as conn:
        conn.execute(update(profile_members).values(profile_id=3))
        assert refresh_balances(conn, shop=DEFAULT_SHOP) == 3
    assert [stored_balance(store, p) for p in (1, 2, 3)] == [0, 0, 97]


def test_unknown_profiles_are_refused(store: Store) -> None:
    add_profile(store, 5)  # a profile with no source customer
    with store.engine.begin() as conn:
        with pytest.raises(UnknownProfileError, match="no profile 42"):
            balance(conn, 42, shop=DEFAULT_SHOP)
        with pytest.raises(UnknownProfileError, match="no profile 42"):
            history(conn, 42, shop=DEFAULT_SHOP)
        with pytest.raises(UnknownProfileError, match="profile 5 has no source customer"):
            adjust(conn, 5, 10, "welcome", shop=DEFAULT_SHOP)
    assert ledger(store) == {}


# -- redeem and adjust ------------------------------------------------------------------------


def test_redeem_refuses_to_overdraw_and_writes_nothing(store: Store) -> None:
    _two_member_profile(store)
    before = rows(store)
    with store.engine.begin() as conn, pytest.raises(InsufficientPointsError) as caught:
        redeem(conn, 1, 91, shop=DEFAULT_SHOP)
    assert str(caught.value) == "profile 1 has 90 points; cannot redeem 91"
    assert (caught.value.balance, caught.value.requested) == (90, 91)
    assert rows(store) == before
    with store.engine.begin() as conn:
        entry = redeem(conn, 1, 90, now=LATER, note="a gift", shop=DEFAULT_SHOP)
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 0
    assert (entry.kind.value, entry.points, entry.note, entry.source) == (
        "redeem",
        -90,
        "a gift",
        "operator",
    )
    assert stored_balance(store, 1) == 0
    with store.engine.begin() as conn, pytest.raises(PointsError, match="positive"):
        redeem(conn, 1, 0, shop=DEFAULT_SHOP)


def test_the_primary_member_is_the_most_recently_updated(store: Store) -> None:
    _two_member_profile(store)
    with store.engine.begin() as conn:
        assert primary_member(conn, 1, shop=DEFAULT_SHOP) == ("store", "m1")
        entry = redeem(conn, 1, 10, now=LATER, shop=DEFAULT_SHOP)
    assert (entry.connection, entry.customer_id) == ("store", "m1")
    write(store, "ec", customer("c1", updated=T0 + dt.timedelta(days=2)))
    with store.engine.begin() as conn:
        assert primary_member(conn, 1, shop=DEFAULT_SHOP) == ("ec", "c1")


def test_redeem_and_adjust_with_an_event_id_happen_once(store: Store) -> None:
    _two_member_profile(store)
    with store.engine.begin() as conn:
        first = redeem(conn, 1, 40, event_id="till-7:0042", now=LATER, shop=DEFAULT_SHOP)
        again = redeem(conn, 1, 40, event_id="till-7:0042", now=LATER, shop=DEFAULT_SHOP)
        bonus = adjust(conn, 1, 500, "birthday", event_id="bday-2024", now=LATER, shop=DEFAULT_SHOP)
        bonus_again = adjust(
            conn, 1, 500, "birthday", event_id="bday-2024", now=LATER, shop=DEFAULT_SHOP
        )
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 90 - 40 + 500
    assert first == again and bonus == bonus_again
    assert first.event_id == "redeem:till-7:0042" and bonus.event_id == "adjust:bday-2024"
    with store.engine.begin() as conn, pytest.raises(EventConflictError, match="till-7:0042"):
        redeem(conn, 1, 41, event_id="till-7:0042", shop=DEFAULT_SHOP)
    with store.engine.begin() as conn, pytest.raises(EventConflictError, match="profile 1"):
        adjust(conn, 2, 500, "birthday", event_id="bday-2024", shop=DEFAULT_SHOP)
    with store.engine.begin() as conn:  # without an id, each call is a new event
        adjust(conn, 2, 5, "sorry", shop=DEFAULT_SHOP)
        adjust(conn, 2, 5, "sorry", shop=DEFAULT_SHOP)
        assert balance(conn, 2, shop=DEFAULT_SHOP).total == 17


def test_adjust_can_take_points_away_but_needs_a_reason(store: Store) -> None:
    _two_member_profile(store)
    with store.engine.begin() as conn:
        entry = adjust(conn, 2, -20, "double-counted visit", now=LATER, shop=DEFAULT_SHOP)
        assert balance(conn, 2, shop=DEFAULT_SHOP).total == -13  # a correction may leave a debt
        assert entry.expires_at is None
        with pytest.raises(PointsError, match="note"):
            adjust(conn, 2, 5, "  ", shop=DEFAULT_SHOP)
        with pytest.raises(PointsError, match="0 points"):
            adjust(conn, 2, 0, "nothing", shop=DEFAULT_SHOP)
        with pytest.raises(PointsError, match="event id"):
            adjust(conn, 2, 5, "x", event_id="e" * 256, shop=DEFAULT_SHOP)
    assert stored_balance(store, 2) == -13


def test_two_redemptions_at_once_cannot_both_spend_the_same_points(store: Store) -> None:
    _two_member_profile(store)  # profile 1 holds 90
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            with store.engine.begin() as conn:
                redeem(conn, 1, 60, now=LATER, shop=DEFAULT_SHOP)
            outcome.append(None)
        except InsufficientPointsError as exc:
            outcome.append(exc)

    with store.engine.begin() as conn:
        redeem(conn, 1, 60, now=LATER, shop=DEFAULT_SHOP)
        # The second starts while the first is not committed yet: it waits for the
        # profile's row lock (PostgreSQL) or the write lock (SQLite), then finds 30.
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and outcome[0] is not None
    assert isinstance(outcome[0], InsufficientPointsError)
    assert outcome[0].balance == 30
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 30
