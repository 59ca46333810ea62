"""Visitors and their events in the store, on both backends: visits counted, a visitor
joining the customer who signs in, what the rules read, and a redaction taking it all."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from omnicrm.app.runtime import Runtime
from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.visitors import BadEvent, Customer, Event
from omnicrm.engage.schema import onsite_events, onsite_visitors
from tests.engage.onsite.conftest import NOW
from tests.support.storefront import SHOP, popup

TOKYO = ZoneInfo("Asia/Tokyo")
V1, V2, V3 = "visitor-aaaaaaaaaaaa", "visitor-bbbbbbbbbbbb", "visitor-cccccccccccc"


def customer(runtime: Runtime, record: str) -> Customer:
    with runtime.store.engine.connect() as conn:
        found = visitors.customer_of(conn, SHOP, "web", [record])
    assert found is not None and found.profile_id is not None
    return found


def test_a_visit_counts_once_per_session_begun(runtime: Runtime) -> None:
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, SHOP, V1, now=NOW, new_visit=True)
        visitors.touch(conn, SHOP, V1, now=NOW, new_visit=False)  # another page
        visitors.touch(conn, SHOP, V1, now=NOW + dt.timedelta(days=1), new_visit=True)
        state = visitors.state(conn, SHOP, V1, {}, customer=None, now=NOW, tz=TOKYO)
        kinds = conn.execute(select(onsite_events.c.kind).where(onsite_events.c.visitor == V1))
        assert [k for (k,) in kinds] == ["visit", "visit"]
    assert state.visits == 2 and not state.purchased


def test_the_rules_read_purchases_and_segments_of_the_signed_in_customer(
    runtime: Runtime,
) -> None:
    offers = {"second": popup()}
    hanako, taro = customer(runtime, "C1"), customer(runtime, "C2")
    with runtime.store.engine.begin() as conn:
        for v in (V1, V2):
            visitors.touch(conn, SHOP, v, now=NOW, new_visit=True)
        prospect = visitors.state(conn, SHOP, V1, offers, customer=hanako, now=NOW, tz=TOKYO)
        buyer = visitors.state(conn, SHOP, V2, offers, customer=taro, now=NOW, tz=TOKYO)
        anonymous = visitors.state(conn, SHOP, V1, offers, customer=None, now=NOW, tz=TOKYO)
    assert (prospect.purchased, prospect.in_segment) == (False, {"second": True})
    assert (buyer.purchased, buyer.in_segment) == (True, {"second": False})
    assert anonymous.in_segment == {}


def test_a_visitor_joins_the_customer_with_its_past_and_their_other_browsers(
    runtime: Runtime,
) -> None:
    hanako = customer(runtime, "C1")
    offers = {"second": popup(max_impressions=5)}
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, SHOP, V1, now=NOW, new_visit=True)
        visitors.record(conn, SHOP, V1, [Event("impression", "second", "A")], now=NOW)
        visitors.touch(conn, SHOP, V2, now=NOW, new_visit=True)  # her phone
        visitors.join(conn, SHOP, V1, "web", "C1")
        visitors.join(conn, SHOP, V2, "web", "C1")
        visitors.touch(conn, SHOP, V3, now=NOW, new_visit=True)  # somebody else
        state = visitors.state(conn, SHOP, V2, offers, customer=hanako, now=NOW, tz=TOKYO)
    assert state.visits == 2
    assert state.impressions == {"second": (1, 1)}


def test_todays_impressions_are_counted_from_midnight_in_the_shops_zone(
    runtime: Runtime,
) -> None:
    offers = {"second": popup(max_impressions=2, per="day")}
    midnight_tokyo = dt.datetime(2026, 12, 10, 15, 0, tzinfo=dt.UTC)  # 00:00 on the 11th
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, SHOP, V1, now=NOW, new_visit=True)
        for at in (midnight_tokyo - dt.timedelta(minutes=1), midnight_tokyo):
            visitors.record(conn, SHOP, V1, [Event("impression", "second", "A")], now=at)
        later = midnight_tokyo + dt.timedelta(hours=2)
        state = visitors.state(conn, SHOP, V1, offers, customer=None, now=later, tz=TOKYO)
    assert state.impressions == {"second": (1, 2)}


def test_a_redaction_deletes_the_visitors_who_signed_in_as_the_person(
    runtime: Runtime,
) -> None:
    with runtime.store.engine.begin() as conn:
        for v in (V1, V2, V3):
            visitors.touch(conn, SHOP, v, now=NOW, new_visit=True)
            visitors.record(conn, SHOP, v, [Event("view", product="TEA-01")], now=NOW)
        visitors.join(conn, SHOP, V1, "web", "C1")
        visitors.join(conn, SHOP, V2, "web", "C1")
        visitors.join(conn, SHOP, V3, "web", "C2")
    exported = runtime.store.export_customer("web", "C1")["storefront_visitors"]
    assert sorted(v["visitor"] for v in exported) == [V1, V2]
    assert [e["kind"] for e in exported[0]["events"]] == ["visit", "view"]
    runtime.store.redact_customer("web", "C1")
    with runtime.store.engine.connect() as conn:
        left = conn.execute(select(onsite_visitors.c.id)).scalars().all()
        events = conn.execute(
            select(onsite_events.c.visitor, func.count()).group_by(onsite_events.c.visitor)
        ).all()
    assert left == [V3]
    assert dict(events) == {V3: 2}


def test_erasing_the_connection_deletes_its_signed_in_visitors_only(runtime: Runtime) -> None:
    with runtime.store.engine.begin() as conn:
        for v in (V1, V2):
            visitors.touch(conn, SHOP, v, now=NOW, new_visit=True)
        visitors.join(conn, SHOP, V1, "web", "C1")
    runtime.store.erase_connection("web")
    with runtime.store.engine.connect() as conn:
        assert conn.execute(select(onsite_visitors.c.id)).scalars().all() == [V2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body is"),
        ({"events": [{"kind": "purchase"}]}, r"events\[0\]\.kind"),
        ({"events": [{"kind": "click", "offer": "nope", "variant": "A"}]}, r"events\[0\]\.offer"),
        ({"events": [{"kind": "click", "offer": "second", "variant": "Z"}]}, "variant"),
        ({"events": [{"kind": "view"}]}, "product"),
        ({"events": [{"kind": "view", "product": "X"}] * 51}, "at most"),
    ],
)
def test_an_event_the_script_could_not_send_is_refused(body: object, message: str) -> None:
    with pytest.raises(BadEvent, match=message):
        visitors.check_events(body, {"second": popup()})


def test_segment_members_read_once_give_the_same_facts_as_asking_per_customer(
    runtime: Runtime,
) -> None:
    offers = {"second": popup(), "everyone": popup(segment=None)}
    with runtime.store.engine.connect() as conn:
        members = visitors.segment_members(conn, SHOP, offers, now=NOW, tz=TOKYO)
        assert set(members) == {"second"}  # an offer for everyone names no segment
        facts: list[visitors.CustomerFacts] = []
        for record in ("C1", "C2"):
            who = customer(runtime, record)
            each = visitors.customer_facts(conn, SHOP, offers, who, now=NOW, tz=TOKYO)
            kept = visitors.customer_facts(
                conn, SHOP, offers, who, now=NOW, tz=TOKYO, members=members
            )
            assert kept == each
            facts.append(kept)
    assert [f.in_segment for f in facts] == [{"second": True}, {"second": False}]


def test_a_batch_of_visits_is_written_as_the_requests_one_by_one(runtime: Runtime) -> None:
    view = Event("view", product="TEA-01")
    batch = [
        visitors.Visit(SHOP, V1, NOW, True),
        visitors.Visit(SHOP, V1, NOW, False, events=(view,)),  # the same visitor twice
        visitors.Visit(SHOP, V1, NOW, True, join=("web", "C1")),
        visitors.Visit(SHOP, V2, NOW, False, events=(view, view)),
    ]
    with runtime.store.engine.begin() as conn:
        assert visitors.write_visits(conn, batch) == [0, 1, 0, 2]
    with runtime.store.engine.connect() as conn:
        rows = conn.execute(
            select(
                onsite_visitors.c.id, onsite_visitors.c.visits, onsite_visitors.c.record_id
            ).order_by(onsite_visitors.c.id)
        ).all()
        kinds = conn.execute(
            select(onsite_events.c.visitor, onsite_events.c.kind).order_by(onsite_events.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [(V1, 2, "C1"), (V2, 1, None)]
    assert [tuple(k) for k in kinds] == [
        (V1, "visit"),
        (V1, "visit"),
        (V1, "view"),
        (V2, "view"),
        (V2, "view"),
    ]
