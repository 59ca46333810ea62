"""Counts in one scan, incremental counts, history and members, on both backends."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import Connection, delete, func, insert, select, update

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.schema import profile_values, profiles
from omnicrm.crm.segments.catalog import define, ensure_builtin, list_segments
from omnicrm.crm.segments.compile import compile_expression
from omnicrm.crm.segments.counts import (
    CountPoint,
    apply_delta,
    begin_recount,
    count_all,
    count_segments,
    history,
    latest_counts,
    members,
    prune_history,
    record_counts,
    record_new_count,
)
from omnicrm.crm.segments.language import SegmentError, SegmentSyntaxError
from omnicrm.crm.segments.scoring import score_rfm, update_lifecycle
from tests.crm.segments.profiles import NOW, TOKYO, add_profile, days_ago, populate

USER_SEGMENTS = {
    "tokyo": "prefecture = '東京都'",
    "vip-or-gold": "customer_tags CONTAINS 'vip' OR customer_tags CONTAINS 'gold'",
    "recent-repeat": "number_of_orders >= 2 AND last_order_date > -60d",
    "line-ok-adults": "line_subscription_status = SUBSCRIBED AND age >= 20",
    "pos-not-umeda": "channel CONTAINS 'pos' AND store NOT CONTAINS 'umeda'",
    "no-clv": "predicted_clv IS NULL OR NOT points_balance > 100",
}


def one_by_one(
    conn: Connection, expressions: dict[str, str], now: dt.datetime, ids: list[int] | None = None
) -> dict[str, int]:
    """Each expression's COUNT(*) on its own: what one scan must agree with."""
    found = {}
    for name, expression in expressions.items():
        query = select(func.count()).select_from(profiles)
        query = query.where(compile_expression(expression, now, TOKYO))
        if ids is not None:
            query = query.where(profiles.c.id.in_(ids))
        found[name] = conn.execute(query).scalar_one()
    return found


def scored_shop(conn: Connection, n: int = 300, seed: int = 11) -> list[int]:
    ids = populate(conn, n, seed=seed)
    score_rfm(conn, NOW, shop=DEFAULT_SHOP)
    update_lifecycle(conn, NOW, shop=DEFAULT_SHOP)
    ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
    for name, expression in USER_SEGMENTS.items():
        define(conn, name, expression, now=NOW, shop=DEFAULT_SHOP)
    return ids


def everything(conn: Connection) -> dict[str, str]:
    return {s.name: s.expression for s in list_segments(conn, shop=DEFAULT_SHOP)}


def test_one_scan_counts_what_each_count_would(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        expressions = everything(conn)
        got = count_segments(conn, expressions, NOW, TOKYO, shop=DEFAULT_SHOP)
        assert got == one_by_one(conn, expressions, NOW)
        assert got == count_all(conn, NOW, TOKYO, shop=DEFAULT_SHOP)
    assert len(got) == 26 and sum(got.values()) > 0
    assert all(got[name] > 0 for name in USER_SEGMENTS)


def test_a_subset_counts_only_its_profiles(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = scored_shop(conn)
        expressions = everything(conn)
        subset = random.Random(2).sample(ids, 40)
        got = count_segments(
            conn, expressions, NOW, TOKYO, [*subset, *subset[:5], 10**9], shop=DEFAULT_SHOP
        )
        assert got == one_by_one(conn, expressions, NOW, subset)
        assert count_segments(
            conn, expressions, NOW, TOKYO, [], shop=DEFAULT_SHOP
        ) == dict.fromkeys(expressions, 0)
        assert count_segments(conn, {}, NOW, TOKYO, shop=DEFAULT_SHOP) == {}


def test_a_bad_expression_stops_the_count(store: Store) -> None:
    with store.engine.begin() as conn, pytest.raises(SegmentSyntaxError):
        count_segments(conn, {"x": "age >"}, NOW, shop=DEFAULT_SHOP)


def test_apply_delta_moves_counts_by_the_subset() -> None:
    assert apply_delta({"a": 10, "b": 3}, {"a": 2, "b": 1}, {"a": 0, "b": 4}) == {"a": 8, "b": 6}


def _change(conn: Connection, touched: list[int], now: dt.datetime) -> int:
    """A sync's worth of changes to ``touched`` (30 profiles): new purchases, refunds, new
    tags, a merge (the last one deleted); and one new profile, whose id it returns."""
    for pid in touched[:20]:
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(
                number_of_orders=profiles.c.number_of_orders + 1,
                amount_spent=profiles.c.amount_spent + 5000.0,
                last_order_at=now - dt.timedelta(hours=1),
                channel_mix="both",
            )
        )
    for pid in touched[20:25]:
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(number_of_orders=0, amount_spent=0.0, last_order_at=None, channel_mix="none")
        )
    for pid in touched[25:29]:
        conn.execute(delete(profile_values).where(profile_values.c.profile_id == pid))
        conn.execute(
            insert(profile_values).values(
                profile_id=pid, shop=DEFAULT_SHOP, attr="tag", value="vip"
            )
        )
        conn.execute(update(profiles).where(profiles.c.id == pid).values(prefecture="東京都"))
    gone = touched[29]
    conn.execute(delete(profile_values).where(profile_values.c.profile_id == gone))
    conn.execute(delete(profiles).where(profiles.c.id == gone))
    return add_profile(
        conn,
        {"tag": ["vip"], "channel": ["pos"], "store": ["tenjin"]},
        prefecture="東京都",
        number_of_orders=1,
        amount_spent=9000.0,
        first_order_at=now,
        last_order_at=now,
        channel_mix="store_only",
    )


def current_ids(conn: Connection) -> list[int]:
    return sorted(conn.execute(select(profiles.c.id)).scalars())


def test_incremental_counts_equal_a_full_recount(store: Store) -> None:
    rng = random.Random(5)
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        for round_ in range(4):
            now = NOW + dt.timedelta(hours=2, minutes=10 * round_)
            touched = rng.sample(current_ids(conn), 30)
            recount = begin_recount(conn, now, TOKYO, touched, shop=DEFAULT_SHOP)
            born = _change(conn, touched, now)  # found by the recount without being told
            score_rfm(conn, now, [*touched, born], shop=DEFAULT_SHOP)
            update_lifecycle(conn, now, [*touched, born], shop=DEFAULT_SHOP)
            got = recount.finish(conn)
            assert recount.incremental is True
            assert got == count_all(conn, now, shop=DEFAULT_SHOP), round_
            record_counts(conn, got, now, shop=DEFAULT_SHOP)


def _recount_after_a_change(
    conn: Connection, now: dt.datetime, *, full_scoring: bool = False
) -> tuple[bool | None, bool]:
    touched = random.Random(9).sample(current_ids(conn), 30)
    recount = begin_recount(conn, now, TOKYO, touched, shop=DEFAULT_SHOP)
    born = _change(conn, touched, now)
    score_rfm(conn, now, None if full_scoring else [*touched, born], shop=DEFAULT_SHOP)
    update_lifecycle(conn, now, [*touched, born], shop=DEFAULT_SHOP)
    got = recount.finish(conn)
    return recount.incremental, got == count_all(conn, now, shop=DEFAULT_SHOP)


def test_a_new_day_counts_everything(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        # 00:30 the next day in Tokyo: 'last_order_date > -60d' has moved for everyone.
        assert _recount_after_a_change(conn, dt.datetime(2024, 5, 1, 15, 30, tzinfo=dt.UTC)) == (
            False,
            True,
        )


def test_a_full_scoring_during_the_change_counts_everything(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        later = NOW + dt.timedelta(hours=1)
        assert _recount_after_a_change(conn, later, full_scoring=True) == (False, True)


def test_a_segment_without_a_recent_count_means_a_full_count(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        define(conn, "late-comer", "gender = other", now=NOW, shop=DEFAULT_SHOP)
        assert _recount_after_a_change(conn, NOW + dt.timedelta(hours=1)) == (False, True)


def test_a_segment_counted_when_added_shows_at_once_and_keeps_counts_incremental(
    store: Store,
) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        added_at = NOW + dt.timedelta(minutes=5)
        define(conn, "late-comer", "gender = other", now=added_at, shop=DEFAULT_SHOP)
        count = record_new_count(conn, "late-comer", added_at, TOKYO, shop=DEFAULT_SHOP)
        latest = latest_counts(conn, shop=DEFAULT_SHOP)["late-comer"]
        assert (latest.count, latest.at, latest.change) == (count, added_at, None)
        assert history(conn, "late-comer", shop=DEFAULT_SHOP) == [CountPoint(added_at, count)]
        # The next refresh moves it with the others, exactly.
        assert _recount_after_a_change(conn, NOW + dt.timedelta(hours=1)) == (True, True)


def test_a_redefined_segment_means_a_full_count(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        record_counts(conn, count_all(conn, NOW, shop=DEFAULT_SHOP), NOW, shop=DEFAULT_SHOP)
        define(conn, "tokyo", "prefecture = '大阪府'", replace=True, now=NOW, shop=DEFAULT_SHOP)
        assert _recount_after_a_change(conn, NOW + dt.timedelta(hours=1)) == (False, True)


def test_no_counts_yet_or_no_ids_means_a_full_count(store: Store) -> None:
    with store.engine.begin() as conn:
        scored_shop(conn)
        later = NOW + dt.timedelta(hours=1)
        assert _recount_after_a_change(conn, later) == (False, True)
        record_counts(conn, count_all(conn, later, shop=DEFAULT_SHOP), later, shop=DEFAULT_SHOP)
        recount = begin_recount(conn, later, TOKYO, None, shop=DEFAULT_SHOP)
        assert recount.finish(conn) == count_all(conn, later, shop=DEFAULT_SHOP)
        assert recount.incremental is False


# -- history -------------------------------------------------------------------------------


def test_history_and_latest_counts(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        define(conn, "adults", "age >= 18", now=NOW, shop=DEFAULT_SHOP)
        moments = [NOW + dt.timedelta(hours=h) for h in range(4)]
        for i, at in enumerate(moments):
            record_counts(conn, {"adults": 100 + i * i, "rfm:lost": 7}, at, shop=DEFAULT_SHOP)
        record_counts(
            conn, {"adults": 42}, moments[-1], shop=DEFAULT_SHOP
        )  # the same moment again: replaced
        assert [(p.at, p.count) for p in history(conn, "adults", shop=DEFAULT_SHOP)] == list(
            zip(moments, [100, 101, 104, 42], strict=True)
        )
        assert [p.count for p in history(conn, "adults", limit=2, shop=DEFAULT_SHOP)] == [104, 42]
        latest = latest_counts(conn, shop=DEFAULT_SHOP)
    assert set(latest) == {"adults", "rfm:lost"}  # nothing recorded for the rest
    adults = latest["adults"]
    assert (adults.count, adults.at, adults.previous, adults.change) == (42, moments[3], 104, -62)
    assert latest["rfm:lost"].change == 0


def test_a_first_count_has_no_change(store: Store) -> None:
    with store.engine.begin() as conn:
        define(conn, "adults", "age >= 18", now=NOW, shop=DEFAULT_SHOP)
        record_counts(conn, {"adults": 5}, NOW, shop=DEFAULT_SHOP)
        only = latest_counts(conn, shop=DEFAULT_SHOP)["adults"]
    assert (only.count, only.previous, only.change) == (5, None, None)


# -- members -------------------------------------------------------------------------------


def test_members_by_name_or_expression(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        a = add_profile(
            conn,
            family_name="山田",
            given_name="花子",
            email="hanako@example.jp",
            prefecture="東京都",
            number_of_orders=2,
            amount_spent=12000.0,
            last_order_at=days_ago(3),
            channel_mix="ec_only",
            lifecycle_stage="repeat",
        )
        add_profile(conn, prefecture="大阪府", channel_mix="store_only")
        c = add_profile(conn, prefecture="東京都", channel_mix="ec_only")
        define(conn, "tokyo", "prefecture = '東京都'", now=NOW, shop=DEFAULT_SHOP)
        found = members(conn, "tokyo", NOW, TOKYO, shop=DEFAULT_SHOP)
        assert [m.id for m in found] == [a, c]
        first = found[0]
        assert (first.name, first.email, first.number_of_orders, first.amount_spent) == (
            "山田 花子",
            "hanako@example.jp",
            2,
            12000.0,
        )
        assert first.last_order_at == days_ago(3) and first.lifecycle_stage == "repeat"
        assert found[1].name is None
        assert [
            m.id for m in members(conn, "channel:ec-only", NOW, TOKYO, limit=1, shop=DEFAULT_SHOP)
        ] == [a]
        assert [m.id for m in members(conn, "amount_spent > 100", NOW, shop=DEFAULT_SHOP)] == [a]
        with pytest.raises(
            SegmentError, match=r"no segment named 'tokio' \(did you mean tokyo\?\)"
        ):
            members(conn, "tokio", NOW, shop=DEFAULT_SHOP)
        with pytest.raises(SegmentSyntaxError):
            members(conn, "amount_spent >", NOW, shop=DEFAULT_SHOP)


def test_prune_history_keeps_recent_counts_and_the_last_of_each_older_day(
    store: Store,
) -> None:
    tokyo = TOKYO
    now = dt.datetime(2026, 6, 30, 3, tzinfo=dt.UTC)
    old_day = [dt.datetime(2026, 4, 1, h, tzinfo=tokyo) for h in (9, 12, 23)]
    recent = [now - dt.timedelta(days=2, hours=h) for h in (1, 2)]
    with store.engine.begin() as conn:
        for at in [*old_day, *recent]:
            record_counts(conn, {"a": 1, "b": 2}, at, shop=DEFAULT_SHOP)
        # Segment b also counted once more that old day, later than a's last.
        record_counts(
            conn, {"b": 3}, dt.datetime(2026, 4, 1, 23, 30, tzinfo=tokyo), shop=DEFAULT_SHOP
        )
        assert prune_history(conn, now, tokyo, shop=DEFAULT_SHOP) == 2 + 3
        assert [p.at for p in history(conn, "a", shop=DEFAULT_SHOP)] == [
            old_day[-1],
            *sorted(recent),
        ]
        kept_b = [(p.at, p.count) for p in history(conn, "b", shop=DEFAULT_SHOP)]
        assert len(kept_b) == 3
        assert kept_b[0] == (dt.datetime(2026, 4, 1, 23, 30, tzinfo=tokyo), 3)
        assert prune_history(conn, now, tokyo, shop=DEFAULT_SHOP) == 0
