"""FIFO expiry of earned points, on both backends."""

from __future__ import annotations

import datetime as dt

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.points import (
    PointsSettings,
    adjust,
    apply_order_points,
    balance,
    expire,
    history,
    plus_months,
    redeem,
    run_expiry,
)
from tests.crm.points.shop import T0, add_profile, customer, ledger, order, rows, write

SETTINGS = PointsSettings()  # 12 months
DAY = dt.timedelta(days=1)


def _apply(store: Store, now: dt.datetime, settings: PointsSettings = SETTINGS) -> None:
    with store.engine.begin() as conn:
        apply_order_points(conn, settings, now, shop=DEFAULT_SHOP)


def _expire(store: Store, now: dt.datetime, settings: PointsSettings = SETTINGS) -> int:
    """Run expiry; the points it took."""
    return run_expiry(store, settings, now, shop=DEFAULT_SHOP).points


def _expiries(store: Store) -> dict[str, int]:
    return {event: points for (_, event), points in ledger(store).items() if event[:7] == "expire:"}


def test_spending_takes_the_oldest_earn_first_and_only_the_rest_expires(store: Store) -> None:
    a, b = T0, T0 + dt.timedelta(days=60)
    write(store, "ec", customer("c1"), order("a", "c1", 10_000, placed=a))
    write(store, "ec", order("b", "c1", 5_000, placed=b))
    add_profile(store, 1, ("ec", "c1"))
    _apply(store, b)
    with store.engine.begin() as conn:
        redeem(conn, 1, 30, now=b + DAY, shop=DEFAULT_SHOP)

    due_a = plus_months(a, 12)
    assert _expire(store, due_a - dt.timedelta(microseconds=1)) == 0  # not yet
    assert _expire(store, due_a) == 70  # 100 earned, 30 of them spent
    assert _expire(store, due_a + DAY) == 0  # once
    assert _expiries(store) == {"expire:earn:a": -70}
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 50
        last = history(conn, 1, shop=DEFAULT_SHOP)[-1]
    assert (last.kind.value, last.occurred_at, last.order_id) == ("expire", due_a, "a")
    assert last.note == f"earned {a.date()}, expired {due_a.date()}"

    assert _expire(store, plus_months(b, 12) + DAY) == 50
    assert _expiries(store) == {"expire:earn:a": -70, "expire:earn:b": -50}
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 0


def test_one_wallet_across_members_spends_the_oldest_earn_wherever_it_was_earned(
    store: Store,
) -> None:
    # Earned online in April, in the store in September, spent in the store in October:
    # the spend used the April points, so nothing is left to expire next April.
    april, september, october = T0, T0 + dt.timedelta(days=160), T0 + dt.timedelta(days=190)
    write(store, "ec", customer("c1"), order("e1", "c1", 10_000, placed=april))
    write(
        store, "store", customer("m1"), order("s1", "m1", 10_000, channel="pos", placed=september)
    )
    write(store, "store", order("s2", "m1", 5_000, channel="pos", placed=october, redeemed=100))
    add_profile(store, 1, ("ec", "c1"), ("store", "m1"))
    _apply(store, october)

    assert _expire(store, plus_months(april, 12) + DAY) == 0
    assert _expire(store, plus_months(september, 12) + DAY) == 100
    assert _expiries(store) == {"expire:earn:s1": -100}
    assert _expire(store, plus_months(october, 12) + DAY) == 50


def test_a_spend_beyond_every_earn_is_paid_by_the_next_earn(store: Store) -> None:
    # A master POS reports a redemption larger than the ledger holds: the debt is paid
    # from the next earn, so only the rest of that earn can expire.
    masters = PointsSettings(masters=["pos"])
    write(store, "pos", customer("m1"))
    write(store, "pos", order("p1", "m1", 0, channel="pos", earned=100, placed=T0))
    write(
        store,
        "pos",
        order("p2", "m1", 0, channel="pos", redeemed=250, placed=T0 + DAY),
        order("p3", "m1", 0, channel="pos", earned=400, placed=T0 + 2 * DAY),
    )
    add_profile(store, 1, ("pos", "m1"))
    _apply(store, T0 + 3 * DAY, masters)
    assert _expire(store, plus_months(T0, 12) + 3 * DAY, masters) == 250
    assert _expiries(store) == {"expire:earn:p3": -250}
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 0


def test_a_reversal_takes_back_only_what_did_not_expire(store: Store) -> None:
    write(store, "ec", customer("c1"), order("o1", "c1", 10_000))
    add_profile(store, 1, ("ec", "c1"))
    _apply(store, T0)
    with store.engine.begin() as conn:
        redeem(conn, 1, 30, now=T0 + DAY, shop=DEFAULT_SHOP)
    due = plus_months(T0, 12)
    assert _expire(store, due) == 70
    # Returned after the points expired: the 30 spent come back off the wallet, not 100.
    write(store, "ec", order("o1", "c1", 10_000, status="returned", updated=due + DAY))
    _apply(store, due + DAY)
    assert ledger(store)[("ec", "reverse:earn:o1")] == -30
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == -30
    assert _expire(store, due + 2 * DAY) == 0


def test_a_lot_written_after_a_run_with_a_past_due_date_still_expires(store: Store) -> None:
    write(store, "ec", customer("c1"), order("new", "c1", 1000, placed=T0))
    add_profile(store, 1, ("ec", "c1"))
    _apply(store, T0)
    now = T0 + dt.timedelta(days=10)
    assert _expire(store, now) == 0
    # An old order arrives late (a first sync of history): due long before the last run.
    write(store, "ec", order("old", "c1", 5000, placed=T0 - dt.timedelta(days=500)))
    _apply(store, now)
    assert _expire(store, now + DAY) == 50
    assert _expiries(store) == {"expire:earn:old": -50}


def test_grants_expire_only_when_given_a_date_and_loners_expire_too(store: Store) -> None:
    write(store, "ec", customer("c1"), order("o1", "c1", 1000))
    write(store, "ec", order("x1", "lone", 2000))  # a customer in no profile yet
    add_profile(store, 1, ("ec", "c1"))
    _apply(store, T0)
    with store.engine.begin() as conn:
        adjust(
            conn,
            1,
            300,
            "campaign",
            now=T0,
            expires_at=T0 + dt.timedelta(days=30),
            shop=DEFAULT_SHOP,
        )
        adjust(conn, 1, 5, "apology", now=T0, shop=DEFAULT_SHOP)
    assert _expire(store, T0 + dt.timedelta(days=31)) == 300
    assert _expire(store, plus_months(T0, 12)) == 30  # earn:o1 and the loner's earn:x1
    assert sorted(e.rsplit(":", 1)[0] for e in _expiries(store)) == [
        "expire:adjust",
        "expire:earn",
        "expire:earn",
    ]
    assert _expiries(store)["expire:earn:x1"] == -20
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 5


def test_no_expiry_configured_expires_nothing(store: Store) -> None:
    never = PointsSettings(expiry_months=None)
    write(store, "ec", customer("c1"), order("o1", "c1", 1000))
    add_profile(store, 1, ("ec", "c1"))
    _apply(store, T0, never)
    assert rows(store)[0]["expires_at"] is None
    with store.engine.begin() as conn:
        assert expire(conn, T0 + dt.timedelta(days=4000), never, shop=DEFAULT_SHOP).entries == 0
    # Lots that carry a date (earned under an earlier rule) stay too.
    write(store, "ec", order("o2", "c1", 1000))
    _apply(store, T0)
    assert rows(store)[1]["expires_at"] is not None
    with store.engine.begin() as conn:
        assert expire(conn, T0 + dt.timedelta(days=4000), never, shop=DEFAULT_SHOP).entries == 0
    assert _expiries(store) == {}
