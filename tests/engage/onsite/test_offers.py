"""Which offers a visitor sees, in which variant: the rules, the caps, the split."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from omnicrm.engage.onsite.offers import VisitorState, choose, variant_of
from omnicrm.engage.onsite.settings import OfferSettings

NOW = dt.datetime(2026, 12, 10, 3, 0, tzinfo=dt.UTC)


def offer(**values: object) -> OfferSettings:
    return OfferSettings.model_validate({"kind": "popup", "text": "10%OFF", **values})


def shown(offers: dict[str, OfferSettings], state: VisitorState, page: str = "/") -> list[str]:
    return [s.name for s in choose(offers, "visitor-0123456789ab", state, page=page, now=NOW)]


def test_the_second_visit_rule_waits_for_the_second_visit() -> None:
    offers = {"second": offer(min_visits=2)}
    assert shown(offers, VisitorState(visits=1)) == []
    assert shown(offers, VisitorState(visits=2)) == ["second"]


def test_no_purchase_yet_leaves_out_buyers() -> None:
    offers = {"first-buy": offer(no_purchase_yet=True)}
    assert shown(offers, VisitorState(visits=1, purchased=True)) == []
    assert shown(offers, VisitorState(visits=1, purchased=False)) == ["first-buy"]


def test_a_segment_offer_is_for_its_members_only() -> None:
    offers = {"vip": offer(segment="rfm_group = 'champions'")}
    assert shown(offers, VisitorState(visits=1)) == []  # anonymous: in no segment
    assert shown(offers, VisitorState(visits=1, in_segment={"vip": False})) == []
    assert shown(offers, VisitorState(visits=1, in_segment={"vip": True})) == ["vip"]


def test_the_page_pattern_matches_the_path_only() -> None:
    offers = {"tea": offer(kind="banner", page="/products/*")}
    assert shown(offers, VisitorState(visits=1), "/products/sencha?variant=1") == ["tea"]
    assert shown(offers, VisitorState(visits=1), "/cart") == []


def test_the_cap_counts_today_or_in_total() -> None:
    total = {"t": offer(max_impressions=3)}
    daily = {"d": offer(max_impressions=3, per="day")}
    assert shown(total, VisitorState(visits=1, impressions={"t": (0, 2)})) == ["t"]
    assert shown(total, VisitorState(visits=1, impressions={"t": (0, 3)})) == []
    assert shown(daily, VisitorState(visits=1, impressions={"d": (0, 9)})) == ["d"]
    assert shown(daily, VisitorState(visits=1, impressions={"d": (3, 9)})) == []


def test_an_offer_runs_from_its_start_until_its_end() -> None:
    hour = dt.timedelta(hours=1)
    assert shown({"later": offer(start=NOW + hour)}, VisitorState(visits=1)) == []
    assert shown({"over": offer(end=NOW)}, VisitorState(visits=1)) == []
    assert shown({"on": offer(start=NOW - hour, end=NOW + hour)}, VisitorState(visits=1)) == ["on"]


def test_one_popup_at_a_time_and_every_banner() -> None:
    offers = {
        "a-popup": offer(),
        "b-popup": offer(),
        "c-banner": offer(kind="banner"),
        "d-banner": offer(kind="banner"),
    }
    assert shown(offers, VisitorState(visits=1)) == ["a-popup", "c-banner", "d-banner"]


def test_a_visitor_keeps_their_variant_and_weights_split_visitors() -> None:
    split = offer(variants=[{"name": "A", "weight": 3}, {"name": "B", "weight": 1}])
    visitors = [f"visitor-{i:012d}" for i in range(20_000)]
    counts = Counter(variant_of("welcome", split, v) for v in visitors)
    assert abs(counts["A"] / len(visitors) - 0.75) < 0.015
    assert [variant_of("welcome", split, v) for v in visitors[:100]] == [
        variant_of("welcome", split, v) for v in visitors[:100]
    ]
    # Another offer splits the same visitors independently.
    other = Counter(
        (variant_of("welcome", split, v), variant_of("spring", split, v)) for v in visitors
    )
    assert abs(other[("B", "B")] / len(visitors) - 0.25 * 0.25) < 0.01


def test_a_variant_shows_its_own_text_and_coupon_and_the_offers_otherwise() -> None:
    two = offer(
        coupon="TEN",
        image="https://tokyo-tea.jp/a.png",
        variants=[{"name": "A"}, {"name": "B", "coupon": "FIFTEEN", "text": "15%OFF"}],
    )
    seen = {}
    for i in range(200):
        for s in choose({"w": two}, f"visitor-{i:012d}", VisitorState(visits=1), page="/", now=NOW):
            seen[s.variant] = (s.text, s.coupon, s.image)
    assert seen == {
        "A": ("10%OFF", "TEN", "https://tokyo-tea.jp/a.png"),
        "B": ("15%OFF", "FIFTEEN", "https://tokyo-tea.jp/a.png"),
    }
