"""The 20 built-in segments select what their titles promise, on scored profiles."""

from __future__ import annotations

import re

from sqlalchemy import select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments.builtin import BUILTIN_SEGMENTS
from omnicrm.crm.segments.counts import count_segments
from omnicrm.crm.segments.language import parse
from omnicrm.crm.segments.scoring import score_rfm, update_lifecycle
from tests.crm.segments.profiles import NOW, all_ids, matching, populate

# The lifecycle stages said in the language's own terms, from the raw purchase facts.
LIFECYCLE_IN_WORDS = {
    "lifecycle:new": "number_of_orders = 1 AND last_order_date > -30d",
    "lifecycle:second-purchase-candidate": (
        "number_of_orders = 1 AND last_order_date <= -30d AND last_order_date > -90d"
    ),
    "lifecycle:repeat": "number_of_orders BETWEEN 2 AND 4 AND last_order_date > -90d",
    "lifecycle:loyal": "number_of_orders >= 5 AND last_order_date > -90d",
    "lifecycle:dormant": (
        "number_of_orders > 0 AND last_order_date <= -90d AND last_order_date > -365d"
    ),
    "lifecycle:lapsed": "number_of_orders > 0 AND last_order_date <= -365d",
}


def test_twenty_named_titled_and_described() -> None:
    names = [s.name for s in BUILTIN_SEGMENTS]
    assert len(names) == len(set(names)) == 20
    assert sum(n.startswith("rfm:") for n in names) == 11
    assert sum(n.startswith("lifecycle:") for n in names) == 6
    assert sum(n.startswith("channel:") for n in names) == 3
    for segment in BUILTIN_SEGMENTS:
        assert re.fullmatch(r"(rfm|lifecycle|channel):[a-z]+(-[a-z]+)*", segment.name)
        assert segment.title and segment.description
        parse(segment.expression)
    assert {"rfm:champions", "rfm:potential-loyalist", "lifecycle:dormant", "channel:both"} <= set(
        names
    )


def test_each_scored_profile_is_in_exactly_one_rfm_group(store: Store) -> None:
    with store.engine.begin() as conn:
        populate(conn, 400, seed=3)
        score_rfm(conn, NOW, shop=DEFAULT_SHOP)
        buyers = set(
            conn.execute(select(profiles.c.id).where(profiles.c.number_of_orders > 0)).scalars()
        )
        seen: dict[int, list[str]] = {}
        for segment in BUILTIN_SEGMENTS:
            if segment.name.startswith("rfm:"):
                for pid in matching(conn, segment.expression):
                    seen.setdefault(pid, []).append(segment.name)
    assert set(seen) == buyers
    assert all(len(groups) == 1 for groups in seen.values())
    assert len({g[0] for g in seen.values()}) >= 8  # the data reaches most groups


def test_lifecycle_segments_match_their_definition_in_words(store: Store) -> None:
    with store.engine.begin() as conn:
        populate(conn, 400, seed=4)
        update_lifecycle(conn, NOW, shop=DEFAULT_SHOP)
        everyone = all_ids(conn)
        covered: set[int] = set()
        for segment in BUILTIN_SEGMENTS:
            if segment.name.startswith("lifecycle:"):
                selected = matching(conn, segment.expression)
                assert selected, segment.name
                assert selected == matching(conn, LIFECYCLE_IN_WORDS[segment.name]), segment.name
                assert not selected & covered
                covered |= selected
        # Only prospects (no purchase) are in none of them.
        assert everyone - covered == matching(conn, "number_of_orders = 0")


def test_channel_mix_segments_split_the_buyers(store: Store) -> None:
    with store.engine.begin() as conn:
        populate(conn, 300, seed=5)
        store_only = matching(conn, "channel_mix = store_only")
        assert store_only == matching(
            conn,
            "channel CONTAINS 'pos' AND NOT (channel CONTAINS 'web' OR channel CONTAINS 'app')",
        )
        both = matching(conn, "channel_mix = both")
        assert both == matching(
            conn, "channel CONTAINS 'pos' AND (channel CONTAINS 'web' OR channel CONTAINS 'app')"
        )
        ec_only = matching(conn, "channel_mix = ec_only")
        assert ec_only == matching(conn, "channel IS NOT NULL AND NOT channel CONTAINS 'pos'")
        counts = count_segments(
            conn,
            {s.name: s.expression for s in BUILTIN_SEGMENTS if s.name.startswith("channel:")},
            NOW,
            shop=DEFAULT_SHOP,
        )
        assert counts == {
            "channel:store-only": len(store_only),
            "channel:ec-only": len(ec_only),
            "channel:both": len(both),
        }
        assert sum(counts.values()) == len(matching(conn, "number_of_orders > 0"))
