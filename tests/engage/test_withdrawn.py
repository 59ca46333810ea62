"""A member who withdrew (退会) is never messaged: out of every segment after the refresh,
suppressed as ``withdrawn`` at planning when the refresh has not run yet, and at the
hand-over when they withdraw after planning; whatever their consent said."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from omnicrm.core.channels import Stream
from omnicrm.core.consent import Refusal, consent_of
from omnicrm.core.host import Host
from omnicrm.core.records import Medium
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage import campaigns
from omnicrm.engage.permission import Policy, may_send, members_of
from omnicrm.engage.schema import outbox
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_sender import planned, sender
from tests.support.filedrop_plugin import arrived

LEFT = NOW - dt.timedelta(days=2)


def withdraw(store: Store, i: int, connection: str = "web", **fields: object) -> None:
    """Person ``i``'s record on ``connection`` withdraws (synced; no refresh)."""
    store.write_batch(
        connection,
        Stream.CUSTOMERS,
        [person(i, updated_at=NOW - dt.timedelta(days=1), withdrawn_at=LEFT, **fields)],
    )


def reasons(store: Store, campaign: campaigns.Campaign) -> dict[int, str | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.profile_id, outbox.c.reason).where(outbox.c.campaign_id == campaign.id)
        )
        return {pid: reason for pid, reason in rows}


def test_a_member_who_withdraws_after_planning_is_suppressed_at_hand_over(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2), person(3)])
    campaign = planned(store, host, drop)
    with store.engine.connect() as conn:
        gone = profile_of(conn, "web", "C2", shop=SHOP)
    withdraw(store, 2)
    result = sender(store, host, messaging(drop)).send(campaign.id)
    assert result.sent == 2 and result.suppressed == {"withdrawn": 1}
    assert sorted(m["to"] for m in arrived(drop)) == ["p1@example.jp", "p3@example.jp"]
    assert reasons(store, campaign)[gone] == "withdrawn"  # type: ignore[index]


def test_a_withdrawn_member_is_refused_whatever_their_consent(store: Store) -> None:
    build(store, [person(1)])
    build(store, [person(1, id="POS1")], connection="pos")  # one person, both opted in
    withdraw(store, 1, connection="pos", id="POS1")
    policy = Policy(messaging(Path("unused")), TOKYO)
    with store.engine.connect() as conn:
        pid = profile_of(conn, "web", "C1", shop=SHOP)
        assert pid is not None
        verdict = may_send(
            conn, shop=SHOP, profile_id=pid, medium=Medium.EMAIL, now=NOW, policy=policy
        )
        assert not verdict and verdict.refusal == Refusal.WITHDRAWN
        members = members_of(conn, pid, shop=SHOP)
        refused = consent_of(
            conn, shop=SHOP, members=members, medium=Medium.EMAIL, address="p1@example.jp"
        )
        assert refused.refusal == Refusal.WITHDRAWN and refused.statement is not None
    # The refresh takes the store's record out; the person's web record is still a member
    # in good standing, so they may be messaged again.
    refresh(store, CrmSettings(), now=NOW)
    with store.engine.connect() as conn:
        assert members_of(conn, pid, shop=SHOP) == [("web", "C1")]
        assert may_send(
            conn, shop=SHOP, profile_id=pid, medium=Medium.EMAIL, now=NOW, policy=policy
        )


def test_planning_suppresses_a_withdrawal_the_refresh_has_not_reached(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    withdraw(store, 1)
    campaign = planned(store, host, drop)
    with store.engine.connect() as conn:
        one = profile_of(conn, "web", "C1", shop=SHOP)
        two = profile_of(conn, "web", "C2", shop=SHOP)
    assert reasons(store, campaign) == {one: "withdrawn", two: None}  # type: ignore[dict-item]


def test_after_the_refresh_a_withdrawn_member_is_in_no_campaign(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    withdraw(store, 1)
    refresh(store, CrmSettings(), now=NOW)
    campaign = planned(store, host, drop)
    with store.engine.connect() as conn:
        two = profile_of(conn, "web", "C2", shop=SHOP)
    assert reasons(store, campaign) == {two: None}
    assert sender(store, host, messaging(drop)).send(campaign.id).sent == 1
    assert [m["to"] for m in arrived(drop)] == ["p2@example.jp"]


def test_a_person_two_of_whose_records_withdrew_is_planned_once(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    build(store, [person(1, id="POS1")], connection="pos")  # one person, two records
    withdraw(store, 1)
    withdraw(store, 1, connection="pos", id="POS1")
    campaign = planned(store, host, drop)
    with store.engine.connect() as conn:
        one = profile_of(conn, "web", "C1", shop=SHOP)
        two = profile_of(conn, "web", "C2", shop=SHOP)
        assert one == profile_of(conn, "pos", "POS1", shop=SHOP)
    assert reasons(store, campaign) == {one: "withdrawn", two: None}  # type: ignore[dict-item]
