"""Two shops in one store whose customers are the same people: every segment, count,
score and history stays within its shop."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection, select, update

from omnicrm.core.store import Store
from omnicrm.crm.schema import crm_state, profiles, segments
from omnicrm.crm.segments.builtin import BUILTIN_SEGMENTS
from omnicrm.crm.segments.catalog import define, ensure_builtin, get_segment, list_segments, remove
from omnicrm.crm.segments.counts import (
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
from omnicrm.crm.segments.language import SegmentError
from omnicrm.crm.segments.scoring import last_full_scoring, score_profiles, stored_cuts
from tests.crm.segments.profiles import NOW, TOKYO, matching, populate

A, B = "tokyo-tea", "osaka-sweets"
BUILTIN = {s.name: s.expression for s in BUILTIN_SEGMENTS}


def two_shops(conn: Connection) -> tuple[list[int], list[int], list[int]]:
    """The same 40 people in both shops (same seed: same names, attributes, purchases),
    and 25 more in shop B only. Returns A's ids, B's ids of the same people, B's others."""
    in_a = populate(conn, 40, seed=7, shop=A)
    in_b = populate(conn, 40, seed=7, shop=B)
    only_b = populate(conn, 25, seed=8, shop=B)
    for shop in (A, B):
        ensure_builtin(conn, NOW, shop=shop)
    return in_a, in_b, only_b


def ids_of(conn: Connection, shop: str) -> set[int]:
    return set(conn.execute(select(profiles.c.id).where(profiles.c.shop == shop)).scalars())


def test_builtins_exist_in_every_shop_and_user_segments_in_one(store: Store) -> None:
    with store.engine.begin() as conn:
        two_shops(conn)
        for shop in (A, B):
            builtin = [s.name for s in list_segments(conn, shop=shop) if s.builtin]
            assert builtin == [s.name for s in BUILTIN_SEGMENTS]
        define(conn, "tokyo-vip", "prefecture = '東京都'", shop=A, now=NOW)
        assert "tokyo-vip" in {s.name for s in list_segments(conn, shop=A)}
        assert "tokyo-vip" not in {s.name for s in list_segments(conn, shop=B)}
        with pytest.raises(SegmentError, match="no segment named 'tokyo-vip'"):
            get_segment(conn, "tokyo-vip", shop=B)
        with pytest.raises(SegmentError, match="no segment named"):
            members(conn, "tokyo-vip", NOW, TOKYO, shop=B)
        # The same name in B is B's own segment, with its own expression.
        define(conn, "tokyo-vip", "number_of_orders >= 5", shop=B, now=NOW)
        assert get_segment(conn, "tokyo-vip", shop=A).expression == "prefecture = '東京都'"
        remove(conn, "tokyo-vip", shop=A)
        assert get_segment(conn, "tokyo-vip", shop=B).expression == "number_of_orders >= 5"
        # A shop's built-ins are repaired without touching another's rows.
        conn.execute(
            update(segments)
            .where(segments.c.shop == B, segments.c.name == "rfm:lost")
            .values(expression="age > 1")
        )
        ensure_builtin(conn, NOW, shop=A)
        assert get_segment(conn, "rfm:lost", shop=B).expression == "age > 1"
        ensure_builtin(conn, NOW, shop=B)
        assert get_segment(conn, "rfm:lost", shop=B).expression == "rfm_group = lost"


def test_counts_and_scores_are_per_shop(store: Store) -> None:
    with store.engine.begin() as conn:
        in_a, in_b, only_b = two_shops(conn)
        # Scoring A alone leaves B's profiles as they were.
        score_profiles(conn, NOW, shop=A, tz=TOKYO)
        unscored = conn.execute(
            select(profiles.c.rfm_group, profiles.c.lifecycle_stage).where(profiles.c.shop == B)
        ).all()
        assert {row.lifecycle_stage for row in unscored} == {"prospect"}
        assert {row.rfm_group for row in unscored} == {None}
        assert last_full_scoring(conn, shop=B) is None
        score_profiles(conn, NOW, shop=B, tz=TOKYO)
        # The cuts are each shop's own purchasers'.
        cuts_a, cuts_b = stored_cuts(conn, shop=A), stored_cuts(conn, shop=B)
        assert cuts_a is not None and cuts_b is not None
        buyers = select(profiles.c.id).where(profiles.c.number_of_orders > 0)
        assert cuts_a.profiles == len(conn.execute(buyers.where(profiles.c.shop == A)).all())
        assert cuts_b.profiles == len(conn.execute(buyers.where(profiles.c.shop == B)).all())

        counts_a = count_all(conn, NOW, TOKYO, shop=A)
        counts_b = count_all(conn, NOW, TOKYO, shop=B)
        for name, expression in BUILTIN.items():
            assert counts_a[name] == len(matching(conn, expression) & set(in_a)), name
            assert counts_b[name] == len(matching(conn, expression) & set(in_b + only_b)), name
        assert sum(counts_a[f"lifecycle:{s}"] for s in ("new", "lapsed", "dormant")) > 0
        # Another shop's ids count nothing.
        assert set(count_segments(conn, BUILTIN, NOW, TOKYO, in_b, shop=A).values()) == {0}
        found = members(conn, "customer_tags contains 'vip'", NOW, TOKYO, 100, shop=A)
        assert found and {m.id for m in found} <= set(in_a)


def test_history_and_snapshot_are_per_shop(store: Store) -> None:
    with store.engine.begin() as conn:
        two_shops(conn)
        earlier = NOW - dt.timedelta(days=40)
        for at in (earlier, earlier + dt.timedelta(hours=1), NOW):
            record_counts(conn, {"rfm:lost": 1, "lifecycle:new": 2}, at, shop=A)
        record_counts(conn, {"rfm:lost": 10}, NOW - dt.timedelta(hours=1), shop=B)
        record_counts(conn, {"rfm:lost": 12}, NOW, shop=B)
        assert [p.count for p in history(conn, "rfm:lost", shop=A)] == [1, 1, 1]
        assert [p.count for p in history(conn, "rfm:lost", shop=B)] == [10, 12]
        assert latest_counts(conn, shop=B)["rfm:lost"].change == 2
        assert "lifecycle:new" not in latest_counts(conn, shop=B)
        assert prune_history(conn, NOW, TOKYO, shop=B) == 0
        assert prune_history(conn, NOW, TOKYO, shop=A) == 2  # one of each per old day
        assert [p.count for p in history(conn, "rfm:lost", shop=B)] == [10, 12]
        # Each shop keeps its own snapshot (and RFM state) under the same keys.
        keys = conn.execute(select(crm_state.c.shop, crm_state.c.key)).all()
        assert {(A, "segment_counts"), (B, "segment_counts")} <= set(keys)
        define(conn, "vip", "customer_tags contains 'vip'", shop=A, now=NOW)
        assert record_new_count(conn, "vip", NOW, TOKYO, shop=A) > 0
        assert history(conn, "vip", shop=B) == []


def test_an_incremental_recount_of_one_shop_sees_only_its_changes(store: Store) -> None:
    with store.engine.begin() as conn:
        in_a, in_b, _ = two_shops(conn)
        for shop in (A, B):
            score_profiles(conn, NOW, shop=shop, tz=TOKYO)
            record_counts(conn, count_all(conn, NOW, TOKYO, shop=shop), NOW, shop=shop)
        later = NOW + dt.timedelta(minutes=5)
        changed = in_a[:10]
        recount = begin_recount(conn, later, TOKYO, changed, shop=A)
        # The same people change in both shops; only A's changes may move A's counts.
        conn.execute(
            update(profiles)
            .where(profiles.c.id.in_(changed + in_b[:30]))
            .values(number_of_orders=0, last_order_at=None, channel_mix="none")
        )
        score_profiles(conn, later, changed, shop=A, tz=TOKYO)
        score_profiles(conn, later, in_b[:30], shop=B, tz=TOKYO)
        populate(conn, 5, seed=9, shop=B)  # made in B during A's recount
        counts = recount.finish(conn)
        assert recount.incremental
        assert counts == count_all(conn, later, TOKYO, shop=A)
        assert counts != count_all(conn, later, TOKYO, shop=B)
        assert ids_of(conn, A) == set(in_a)
