"""RFM scores, groups and lifecycle stages, written by set-based SQL on both backends."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random

import pytest
from sqlalchemy import Connection, select, update

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments.language import LIFECYCLE_VALUES, RFM_GROUP_VALUES
from omnicrm.crm.segments.scoring import (
    RFM_RULES,
    RfmCuts,
    rfm_group,
    score_profiles,
    score_rfm,
    stored_cuts,
    update_lifecycle,
)
from tests.crm.segments.profiles import NOW, TOKYO, add_profile, days_ago, populate

TOMORROW = NOW + dt.timedelta(days=1)


def scores(conn: Connection) -> dict[int, tuple[int | None, int | None, int | None, str | None]]:
    p = profiles.c
    rows = conn.execute(select(p.id, p.rfm_recency, p.rfm_frequency, p.rfm_monetary, p.rfm_group))
    return {row.id: (row[1], row[2], row[3], row[4]) for row in rows}


def stages(conn: Connection) -> dict[int, str]:
    rows = conn.execute(select(profiles.c.id, profiles.c.lifecycle_stage))
    return {row.id: row.lifecycle_stage for row in rows}


# -- the rules ---------------------------------------------------------------------------


def test_every_rfm_combination_falls_in_exactly_one_group() -> None:
    used = set()
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        groups = [rule.group for rule in RFM_RULES if rule.matches(r, f, m)]
        assert len(groups) == 1, ((r, f, m), groups)
        assert rfm_group(r, f, m) == groups[0]
        used.add(groups[0])
    assert [rule.group for rule in RFM_RULES] == list(RFM_GROUP_VALUES)
    assert used == set(RFM_GROUP_VALUES)  # no group is empty


@pytest.mark.parametrize(
    ("r", "f", "m", "group"),
    [
        (5, 5, 5, "champions"),
        (5, 4, 4, "champions"),
        (4, 5, 5, "loyal"),
        (3, 4, 4, "loyal"),
        (5, 1, 5, "potential_loyalist"),  # one big recent purchase
        (5, 1, 1, "new"),
        (4, 1, 2, "promising"),
        (3, 3, 3, "need_attention"),
        (3, 1, 1, "about_to_sleep"),
        (2, 4, 4, "at_risk"),
        (1, 5, 5, "cannot_lose"),
        (2, 5, 5, "cannot_lose"),
        (2, 1, 1, "hibernating"),
        (1, 2, 3, "hibernating"),
        (1, 1, 2, "lost"),
    ],
)
def test_groups_read_as_documented(r: int, f: int, m: int, group: str) -> None:
    assert rfm_group(r, f, m) == group


def test_scores_outside_1_to_5_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        rfm_group(0, 3, 3)


# -- RFM scoring ----------------------------------------------------------------------


def _reference_scores(
    metrics: dict[int, tuple[int, int, float]],
) -> dict[int, tuple[int, int, int]]:
    """The documented definition, computed in Python: cut i is the value at position
    ceil(i * n / 5) from worst to best; score = 1 + cuts strictly bettered."""
    n = len(metrics)
    positions = [math.ceil(i * n / 5) for i in (1, 2, 3, 4)]
    days = sorted((v[0] for v in metrics.values()), reverse=True)  # worst (oldest) first
    freq = sorted(v[1] for v in metrics.values())
    money = sorted(v[2] for v in metrics.values())
    r_cuts = [days[p - 1] for p in positions]
    f_cuts = [freq[p - 1] for p in positions]
    m_cuts = [money[p - 1] for p in positions]
    return {
        pid: (
            1 + sum(d < c for c in r_cuts),
            1 + sum(f > c for c in f_cuts),
            1 + sum(m > c for c in m_cuts),
        )
        for pid, (d, f, m) in metrics.items()
    }


def test_scores_are_quintiles_of_the_purchasers(store: Store) -> None:
    rng = random.Random(7)
    metrics: dict[int, tuple[int, int, float]] = {}
    with store.engine.begin() as conn:
        for _ in range(237):
            d = rng.choice([0, 1, 3, 10, 45, 90, 200, 400, 800]) + rng.randrange(3)
            f = rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 6, 12])
            m = round(rng.uniform(500, 80000), 2)
            pid = add_profile(
                conn,
                number_of_orders=f,
                amount_spent=m,
                last_order_at=days_ago(d, hour=rng.randrange(24)),
            )
            metrics[pid] = (d, f, m)
        prospects = {add_profile(conn) for _ in range(5)}
        cuts = score_rfm(conn, NOW, tz=TOKYO, shop=DEFAULT_SHOP)
        got = scores(conn)
    expected = _reference_scores(metrics)
    assert cuts is not None and cuts.profiles == 237 and cuts.day == dt.date(2024, 5, 1)
    for pid, (r, f, m) in expected.items():
        assert got[pid] == (r, f, m, rfm_group(r, f, m)), pid
    for pid in prospects:
        assert got[pid] == (None, None, None, None)
    # Roughly a fifth each where values do not tie much (monetary is all distinct).
    monetary = [got[pid][2] for pid in metrics]
    assert all(46 <= monetary.count(s) <= 48 for s in range(1, 6))


def test_ties_take_the_lower_score(store: Store) -> None:
    """Six one-time buyers of ten: all F = 1; the scores they span stay empty."""
    with store.engine.begin() as conn:
        orders = [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]
        ids = [
            add_profile(
                conn, number_of_orders=n, amount_spent=1000.0 * (i + 1), last_order_at=days_ago(i)
            )
            for i, n in enumerate(orders)
        ]
        cuts = score_rfm(conn, NOW, shop=DEFAULT_SHOP)
        got = scores(conn)
    assert cuts is not None and cuts.frequency == (1, 1, 1, 2)
    assert [got[i][1] for i in ids] == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # Recency: one purchase per day, 0..9 days ago, cuts at the 2nd, 4th, 6th, 8th oldest.
    assert cuts.recency_days == (8, 6, 4, 2)
    assert [got[i][0] for i in ids] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_a_purchase_just_after_midnight_counts_for_that_day(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [
            add_profile(
                conn, number_of_orders=1, amount_spent=100.0, last_order_at=days_ago(d, hour=0)
            )
            for d in (0, 1, 2, 3, 4)
        ]
        late = add_profile(
            conn, number_of_orders=1, amount_spent=100.0, last_order_at=days_ago(3, hour=23)
        )
        cuts = score_rfm(conn, NOW, shop=DEFAULT_SHOP)
        got = scores(conn)
    # Days ago, oldest first: 4 3 3 2 1 0; cuts at positions 2, 3, 4, 5. The purchase at
    # 23:00 three days ago is on the same day as the one at 00:00: the same score.
    assert cuts is not None and cuts.recency_days == (3, 3, 2, 1)
    assert [got[i][0] for i in ids] == [5, 4, 3, 1, 1]
    assert got[late][0] == 1


def test_incremental_rescoring_uses_the_stored_cuts(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [
            add_profile(
                conn,
                number_of_orders=1 + i % 4,
                amount_spent=1000.0 * (i + 1),
                last_order_at=days_ago(3 * i),
            )
            for i in range(20)
        ]
        first = score_rfm(conn, NOW, shop=DEFAULT_SHOP)
        before = scores(conn)
        changed, stale = ids[0], ids[1]
        for pid in (changed, stale):
            conn.execute(
                update(profiles)
                .where(profiles.c.id == pid)
                .values(number_of_orders=50, amount_spent=10.0, last_order_at=days_ago(100))
            )
        again = score_rfm(conn, NOW + dt.timedelta(hours=3), [changed], shop=DEFAULT_SHOP)
        after = scores(conn)
        assert stored_cuts(conn, shop=DEFAULT_SHOP) == first
    assert again == first
    assert after[changed][:3] == (1, 5, 1)  # against the old cuts: oldest, most, least
    assert after[changed][3] == rfm_group(1, 5, 1)
    assert after[stale] == before[stale]  # not asked for: left as it was
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in before.items() if k != changed
    }


def test_a_new_day_rescores_everyone(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [
            add_profile(conn, number_of_orders=1, amount_spent=100.0 * i, last_order_at=days_ago(i))
            for i in range(1, 11)
        ]
        score_rfm(conn, NOW, shop=DEFAULT_SHOP)
        conn.execute(
            update(profiles)
            .where(profiles.c.id == ids[0])
            .values(number_of_orders=0, last_order_at=None)
        )
        cuts = score_rfm(conn, TOMORROW, [ids[5]], shop=DEFAULT_SHOP)
        got = scores(conn)
        assert cuts is not None and cuts.day == dt.date(2024, 5, 2) and cuts.profiles == 9
        assert got[ids[0]] == (None, None, None, None)  # rescored although not asked for


def test_no_purchases_means_no_scores(store: Store) -> None:
    with store.engine.begin() as conn:
        buyer = add_profile(conn, number_of_orders=1, amount_spent=10.0, last_order_at=days_ago(1))
        prospect = add_profile(conn)
        assert isinstance(score_rfm(conn, NOW, shop=DEFAULT_SHOP), RfmCuts)
        # The one purchase is refunded: no purchaser is left.
        conn.execute(
            update(profiles)
            .where(profiles.c.id == buyer)
            .values(number_of_orders=0, amount_spent=0.0, last_order_at=None)
        )
        assert score_rfm(conn, NOW, shop=DEFAULT_SHOP) is None
        assert stored_cuts(conn, shop=DEFAULT_SHOP) is None
        got = scores(conn)
        assert got[buyer] == got[prospect] == (None, None, None, None)
        # With no cuts stored, an incremental call takes them: the first buyer is scored.
        conn.execute(
            update(profiles)
            .where(profiles.c.id == buyer)
            .values(number_of_orders=1, amount_spent=10.0, last_order_at=days_ago(0))
        )
        cuts = score_rfm(conn, NOW, [buyer], shop=DEFAULT_SHOP)
        assert cuts is not None and cuts.profiles == 1
        assert scores(conn)[buyer] == (1, 1, 1, "lost")  # alone, it ties every cut


# -- lifecycle -------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [False, True])
def test_lifecycle_stages_at_their_boundaries(store: Store, incremental: bool) -> None:
    cases = [
        (0, None, "prospect"),
        (1, days_ago(0), "new"),
        (1, days_ago(29, hour=23), "new"),
        (1, days_ago(30, hour=0), "second_purchase_candidate"),
        (1, days_ago(89, hour=23), "second_purchase_candidate"),
        (1, days_ago(90, hour=0), "dormant"),
        (2, days_ago(89), "repeat"),
        (4, days_ago(10), "repeat"),
        (5, days_ago(10), "loyal"),
        (12, days_ago(0), "loyal"),
        (2, days_ago(90), "dormant"),
        (5, days_ago(364, hour=23), "dormant"),
        (5, days_ago(365, hour=0), "lapsed"),
        (1, days_ago(400), "lapsed"),
        (3, NOW + dt.timedelta(hours=30), "repeat"),  # a clock ahead: still active
    ]
    with store.engine.begin() as conn:
        ids = {
            add_profile(conn, number_of_orders=n, amount_spent=100.0 * n, last_order_at=at): stage
            for n, at, stage in cases
        }
        if incremental:
            update_lifecycle(
                conn, NOW, [], shop=DEFAULT_SHOP
            )  # the first call is full anyway: set everyone
            conn.execute(update(profiles).values(lifecycle_stage="prospect"))
            assert update_lifecycle(conn, NOW, list(ids), shop=DEFAULT_SHOP) is False
        else:
            assert update_lifecycle(conn, NOW, shop=DEFAULT_SHOP) is True
        assert stages(conn) == ids
    assert set(ids.values()) == set(LIFECYCLE_VALUES)


def test_lifecycle_moves_with_the_calendar(store: Store) -> None:
    with store.engine.begin() as conn:
        newcomer = add_profile(conn, number_of_orders=1, last_order_at=days_ago(29))
        other = add_profile(conn, number_of_orders=1, last_order_at=days_ago(29))
        update_lifecycle(conn, NOW, shop=DEFAULT_SHOP)
        assert stages(conn) == {newcomer: "new", other: "new"}
        # The same day: only the profiles asked for.
        conn.execute(update(profiles).where(profiles.c.id == other).values(number_of_orders=2))
        assert update_lifecycle(conn, NOW, [newcomer], shop=DEFAULT_SHOP) is False
        assert stages(conn) == {newcomer: "new", other: "new"}
        # The next day in Tokyo every profile is looked at again.
        assert update_lifecycle(conn, TOMORROW, [newcomer], shop=DEFAULT_SHOP) is True
        assert stages(conn) == {newcomer: "second_purchase_candidate", other: "repeat"}


def _scored(conn: Connection) -> dict[int, tuple[object, ...]]:
    p = profiles.c
    query = select(
        p.id, p.rfm_recency, p.rfm_frequency, p.rfm_monetary, p.rfm_group, p.lifecycle_stage
    )
    return {row.id: tuple(row[1:]) for row in conn.execute(query)}


def test_score_profiles_is_both_in_one(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = populate(conn, 200, seed=8)
        with conn.begin_nested() as apart:
            score_rfm(conn, NOW, shop=DEFAULT_SHOP)
            update_lifecycle(conn, NOW, shop=DEFAULT_SHOP)
            expected = _scored(conn)
            apart.rollback()
        assert score_profiles(conn, NOW, shop=DEFAULT_SHOP) == stored_cuts(conn, shop=DEFAULT_SHOP)
        assert _scored(conn) == expected
        # Incremental, the same day: the same as the two calls for those profiles.
        later = NOW + dt.timedelta(hours=5)
        changed = ids[:15]
        conn.execute(
            update(profiles)
            .where(profiles.c.id.in_(changed))
            .values(number_of_orders=profiles.c.number_of_orders + 1, last_order_at=later)
        )
        with conn.begin_nested() as apart:
            score_rfm(conn, later, changed, shop=DEFAULT_SHOP)
            update_lifecycle(conn, later, changed, shop=DEFAULT_SHOP)
            expected = _scored(conn)
            apart.rollback()
        score_profiles(conn, later, changed, shop=DEFAULT_SHOP)
        assert _scored(conn) == expected
