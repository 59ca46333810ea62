"""The built-in recommenders through the hook, and popularity in a segment."""

from __future__ import annotations

import datetime as dt

from omnicrm import Purchase, PurchaseHistory, RecommendationRequest
from omnicrm.core.host import Host
from omnicrm.plugins.recommenders import plugin
from omnicrm.plugins.recommenders.popularity import PopularityModel, PopularityParams

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def history() -> PurchaseHistory:
    rows = []
    for i in range(6):
        rows += [
            Purchase(f"w{i}", "lipstick", placed_at=NOW),
            Purchase(f"w{i}", "mirror", placed_at=NOW),
        ]
    for i in range(8):
        rows.append(Purchase(f"m{i}", "razor", placed_at=NOW))
    segments = {**{f"w{i}": "female 30代" for i in range(6)}, **{f"m{i}": "male" for i in range(8)}}
    return PurchaseHistory.from_purchases(rows, now=NOW, segment_of=segments)


def test_the_plugin_registers_three_recommenders_and_fits_once_per_history() -> None:
    host = Host.load(extra={"recommenders": plugin}, use_entry_points=False)
    assert sorted(host.recommenders) == ["also-bought", "reorder", "segment-popular"]
    shared = history()
    ask = RecommendationRequest("also-bought", shared, product_id="lipstick")
    (mirror,) = host.recommend(ask)
    assert mirror.product_id == "mirror" and mirror.evidence["together"] == 6
    assert plugin.also_bought(shared) is plugin.also_bought(shared)  # kept on the history
    # Only also-bought answers for a product.
    assert host.recommend(RecommendationRequest("reorder", shared, product_id="lipstick")) == []


def test_someone_new_gets_what_their_segment_buys() -> None:
    host = Host.load(extra={"recommenders": plugin}, use_entry_points=False)
    ask = RecommendationRequest(
        "segment-popular", history(), customer_id="new", segment="female 30代", limit=1
    )
    (top,) = host.recommend(ask)
    assert top.product_id in {"lipstick", "mirror"}
    assert top.reason == "セグメント「female 30代」で 6 人が購入"
    men = RecommendationRequest("segment-popular", history(), customer_id="m0", limit=1)
    assert [s.product_id for s in host.recommend(men)] == ["razor"]


def test_a_small_segment_falls_back_to_the_whole_shop() -> None:
    model = PopularityModel(history(), PopularityParams(min_buyers=7))
    (top,) = model.for_segment("female 30代", 1, None)
    assert top.product_id == "razor" and top.reason == "ショップ全体で 8 人が購入"


def test_a_list_of_purchases_still_makes_a_request() -> None:
    request = RecommendationRequest(
        "also-bought", [Purchase("a", "x"), Purchase("a", "y")], customer_id="a"
    )
    assert isinstance(request.history, PurchaseHistory)
    assert request.purchases.bought_by("a") == {"x", "y"}
