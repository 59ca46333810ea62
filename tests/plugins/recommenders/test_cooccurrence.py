"""Bought together: the pair rules equal mlxtend's on real baskets, and the scores."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest

from benchmarks._retail import FILE, load, mlxtend_rules, our_rules, same_rules
from omnicrm import Purchase, PurchaseHistory
from omnicrm.plugins.recommenders.cooccurrence import CoOccurrenceModel, CoOccurrenceParams

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@cache
def sample() -> PurchaseHistory:
    if not FILE.exists():
        pytest.skip(f"no {FILE}")
    return load(limit=25_000).history()


@pytest.mark.parametrize(
    ("unit", "min_support", "min_confidence"),
    [("basket", 0.01, 0.2), ("basket", 0.02, 0.0), ("customer", 0.05, 0.3)],
)
def test_pair_rules_are_mlxtends_on_a_sample_of_online_retail(
    unit: str, min_support: float, min_confidence: float
) -> None:
    history = sample()
    ours = our_rules(history, min_support, min_confidence, unit)  # type: ignore[arg-type]
    theirs = mlxtend_rules(history, min_support, min_confidence, unit)  # type: ignore[arg-type]
    assert len(theirs) > 20  # thresholds that leave something to compare
    assert same_rules(ours, theirs) == []


def buy(customer: str, order: str, days_ago: float, *products: str) -> list[Purchase]:
    when = NOW - dt.timedelta(days=days_ago)
    return [Purchase(customer, p, placed_at=when, order_id=order) for p in products]


def test_counts_lift_and_the_reason_in_words() -> None:
    rows = [
        *buy("a", "1", 10, "tea", "cup"),
        *buy("b", "2", 10, "tea", "cup"),
        *buy("c", "3", 10, "tea"),
        *buy("c", "4", 5, "cup"),  # the same person across two orders
        *buy("d", "5", 10, "bag"),
        *buy("", "6", 10, "tea", "bag"),  # an anonymous basket counts on its own
    ]
    history = PurchaseHistory.from_purchases(rows, now=NOW, names={"tea": "煎茶"})
    model = CoOccurrenceModel(history, CoOccurrenceParams(min_count=1))
    (cup, bag) = model.for_product("tea", 5, None)
    assert cup.product_id == "cup" and bag.product_id == "bag"
    assert cup.evidence["together"] == 3 and cup.evidence["buyers"] == 4
    # 5 transactions; tea in 4, cup in 3, both in 3: lift = (3/4) / (3/5) = 1.25
    assert cup.evidence["lift"] == pytest.approx(1.25)
    assert cup.reason == "「煎茶」を買った人の 3 人が一緒に購入, lift 1.2"
    # Below the minimum count, a pair is no evidence.
    strict = CoOccurrenceModel(history, CoOccurrenceParams(min_count=2))
    assert [s.product_id for s in strict.for_product("tea", 5, None)] == ["cup"]


def test_for_a_customer_what_they_bought_is_left_out_and_recent_pairs_weigh_more() -> None:
    rows = [
        *buy("old1", "1", 900, "tea", "kettle"),
        *buy("old2", "2", 900, "tea", "kettle"),
        *buy("new1", "3", 3, "tea", "cup"),
        *buy("new2", "4", 3, "tea", "cup"),
        *buy("me", "5", 1, "tea"),
    ]
    history = PurchaseHistory.from_purchases(rows, now=NOW)
    ranked = CoOccurrenceModel(history, CoOccurrenceParams()).for_customer("me", 5, None)
    assert [s.product_id for s in ranked] == ["cup", "kettle"]
    flat = CoOccurrenceModel(history, CoOccurrenceParams(half_life_days=1e9))
    scores = {s.product_id: s.score for s in flat.for_customer("me", 5, None)}
    assert scores["cup"] == pytest.approx(scores["kettle"])


def test_popularity_damping_lifts_the_rarer_companion() -> None:
    rows = [*buy("x", "0", 1, "tea", "rare")]
    rows += [p for i in range(6) for p in buy(f"c{i}", f"o{i}", 1, "tea", "bag")]
    rows += [p for i in range(30) for p in buy(f"b{i}", f"b{i}", 1, "bag")]
    rows += buy("y", "9", 1, "tea", "rare")
    history = PurchaseHistory.from_purchases(rows, now=NOW)
    raw = CoOccurrenceModel(history, CoOccurrenceParams(damping=0.0))
    damped = CoOccurrenceModel(history, CoOccurrenceParams(damping=1.0))
    assert [s.product_id for s in raw.for_product("tea", 2, None)] == ["bag", "rare"]
    assert [s.product_id for s in damped.for_product("tea", 2, None)] == ["rare", "bag"]
