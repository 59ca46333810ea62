"""Campaigns: refused whole before anything is sent, planned into the outbox with every
suppression's reason, variants and hold-out by a stable hash."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from omnicrm.core import consent
from omnicrm.core.consent import Method
from omnicrm.core.host import Host
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.schema import profiles
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import CampaignError, Variant
from omnicrm.engage.permission import Policy, change_consent, may_send
from omnicrm.engage.schema import outbox
from omnicrm.engage.templates import TemplateError
from omnicrm.errors import ConfigError
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person, unsubscribe

BODY = "{{ name }}、いつもありがとうございます。ポイント残高: {{ points }}"


def make(
    store: Store, host: Host, drop: Path, *, name: str = "winter", **kw: object
) -> campaigns.Campaign:
    settings = kw.pop("settings", None) or messaging(drop)
    variants = kw.pop("variants", None) or [Variant(name="A", subject="冬のご案内", body=BODY)]
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            settings,  # type: ignore[arg-type]
            shop=SHOP,
            name=name,
            segment=kw.pop("segment", "number_of_orders >= 1"),  # type: ignore[arg-type]
            medium=Medium.EMAIL,
            variants=variants,  # type: ignore[arg-type]
            now=NOW,
            **kw,  # type: ignore[arg-type]
        )
        return campaigns.get(conn, cid, shop=SHOP)


def test_a_campaign_is_refused_whole_with_the_reason(store: Store, host: Host, drop: Path) -> None:
    with pytest.raises(CampaignError, match="segment"):
        make(store, host, drop, segment="number_of_orders >>= 1")
    with pytest.raises(TemplateError, match=r"unknown field.*coupon"):
        make(store, host, drop, variants=[Variant(name="A", subject="x", body="{{ coupon }}")])
    with pytest.raises(TemplateError, match="line 2"):
        make(store, host, drop, variants=[Variant(name="A", subject="x", body="a\n{% if %}")])
    no_dispatcher = messaging(drop).model_copy(update={"dispatchers": {}})
    with pytest.raises(ConfigError, match="no dispatcher is configured for email"):
        make(store, host, drop, settings=no_dispatcher)
    broken = messaging(drop)
    broken.dispatchers[Medium.EMAIL].settings = {}
    with pytest.raises(ConfigError, match="incomplete or wrong: path"):
        make(store, host, drop, settings=broken)
    with store.engine.connect() as conn:
        assert campaigns.list_campaigns(conn, shop=SHOP) == []


def test_planning_writes_one_row_per_recipient_with_each_suppression_reason(
    store: Store, host: Host, drop: Path
) -> None:
    build(
        store,
        [
            person(1),
            person(2),
            person(3, consent=ConsentState.OPTED_OUT),
            person(4, consent=None),
            person(5, email=None),
            person(6),
        ],
    )
    unsubscribe(store, "web", "C6")
    campaign = make(store, host, drop)
    with store.engine.begin() as conn:
        result = campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
        assert result.planned == 2
        assert result.suppressed == {"no_consent": 2, "no_address": 1, "unsubscribed": 1}
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 6
        with pytest.raises(CampaignError, match="planned already"):
            campaigns.plan(
                conn,
                campaigns.get(conn, campaign.id, shop=SHOP),
                messaging(drop),
                now=NOW,
                tz=TOKYO,
            )
        report = campaigns.report(conn, campaigns.get(conn, campaign.id, shop=SHOP))
    assert report.count("planned") == 2 and report.suppressed["unsubscribed"] == 1


def test_variants_and_holdout_are_stable_and_near_their_shares() -> None:
    campaign = campaigns.Campaign(
        id=7,
        shop=SHOP,
        name="ab",
        segment="x",
        medium=Medium.EMAIL,
        dispatcher="filedrop",
        variants=(Variant(name="A", body="a"), Variant(name="B", weight=3, body="b")),
        holdout=0.1,
        status="draft",
        scheduled_at=None,
        created_at=NOW,
        planned_at=None,
        finished_at=None,
    )
    first = [campaigns.assign(campaign, pid) for pid in range(20_000)]
    assert first == [campaigns.assign(campaign, pid) for pid in range(20_000)]
    share = {name: first.count(name) / len(first) for name in ("holdout", "A", "B")}
    assert abs(share["holdout"] - 0.10) < 0.01
    assert abs(share["A"] - 0.225) < 0.015 and abs(share["B"] - 0.675) < 0.015
    other = campaigns.Campaign(**{**campaign.__dict__, "id": 8})
    assert [campaigns.assign(other, pid) for pid in range(200)] != first[:200]


def test_planning_in_the_database_agrees_with_assign_and_may_send(
    store: Store, host: Host, drop: Path
) -> None:
    """The set-based plan against the per-person checks the sender makes: every row's
    variant is assign()'s and its reason the one may_send() gives."""
    people = [person(i) for i in range(1, 41)]
    people[2] = person(3, consent=ConsentState.OPTED_OUT)
    people[3] = person(4, consent=None)
    people[4] = person(5, email=None)
    people[6] = person(7, consent=ConsentState.OPTED_OUT)
    build(store, people)
    unsubscribe(store, "web", "C6")
    settings = messaging(drop)
    with store.engine.begin() as conn:
        pid = {i: profile_of(conn, "web", f"C{i}", shop=SHOP) for i in range(1, 41)}
        # Opted out on the channel, in again through omnicrm later: the later one stands.
        change_consent(
            conn,
            shop=SHOP,
            profile_id=pid[7],  # type: ignore[arg-type]
            medium=Medium.EMAIL,
            state=ConsentState.OPTED_IN,
            at=NOW,
            source="https://shop.example/preferences",
            method=Method.LINK,
        )
        # In and out at the same moment: the opt-out wins the tie.
        for state in (ConsentState.OPTED_OUT, ConsentState.OPTED_IN):
            consent.record_consent(
                conn,
                shop=SHOP,
                members=[("web", "C8")],
                medium=Medium.EMAIL,
                state=state,
                at=NOW,
                source="operator",
                method=Method.OPERATOR,
            )
        # Addresses as real data has them: SQL cannot normalise the first and third.
        for i, email in (
            (9, " P9@Example.JP\u3000"),
            (10, "P10@EXAMPLE.JP "),
            (11, "\uff2011@example.jp"),
        ):
            conn.execute(update(profiles).where(profiles.c.id == pid[i]).values(email=email))
            consent.suppress(
                conn,
                shop=SHOP,
                medium=Medium.EMAIL,
                address=email,
                reason=consent.Refusal.BOUNCED,
                at=NOW,
            )
    whole = make(store, host, drop, name="whole", holdout=0)
    split = make(
        store,
        host,
        drop,
        name="split",
        holdout=0.3,
        variants=[
            Variant(name="A", subject="a", body=BODY),
            Variant(name="B", subject="b", weight=2, body=BODY),
        ],
    )
    check = partial(
        may_send, shop=SHOP, medium=Medium.EMAIL, now=NOW, policy=Policy(settings, TOKYO)
    )
    for campaign in (whole, split):
        with store.engine.begin() as conn:
            campaigns.plan(conn, campaign, settings, now=NOW, tz=TOKYO)
            rows = conn.execute(
                select(outbox.c.profile_id, outbox.c.variant, outbox.c.status, outbox.c.reason)
                .where(outbox.c.campaign_id == campaign.id)
                .order_by(outbox.c.profile_id)
            ).all()
            assert [r.profile_id for r in rows] == sorted(pid.values())  # type: ignore[type-var]
            for profile_id, variant, status, reason in rows:
                assert variant == campaigns.assign(campaign, profile_id)
                verdict = check(conn, profile_id=profile_id, holdout=variant == campaigns.HOLDOUT)
                assert reason == (verdict.refusal.value if verdict.refusal else None), profile_id
                assert status == ("suppressed" if reason else "planned")
        if campaign is whole:
            reasons = {r.profile_id: r.reason for r in rows}
            assert [reasons[pid[i]] for i in range(3, 12)] == [
                "no_consent",
                "no_consent",
                "no_address",
                "unsubscribed",
                None,
                "unsubscribed",
                "bounced",
                "bounced",
                "bounced",
            ]
        else:
            assert {r.variant for r in rows} == {"holdout", "A", "B"}


def test_a_frequency_cap_counts_what_went_before(store: Store, host: Host, drop: Path) -> None:
    from omnicrm.engage.sender import Sender

    build(store, [person(1), person(2)])
    capped = messaging(drop, caps=[{"medium": "email", "count": 1, "per": "7d"}])
    first = make(store, host, drop, name="first", settings=capped)
    with store.engine.begin() as conn:
        campaigns.plan(conn, first, capped, now=NOW, tz=TOKYO)
    sender = Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=capped, tz=TOKYO, clock=lambda: NOW
    )
    assert sender.send(first.id).sent == 2
    second = make(store, host, drop, name="second", settings=capped)
    with store.engine.begin() as conn:
        result = campaigns.plan(conn, second, capped, now=NOW + dt.timedelta(days=1), tz=TOKYO)
    assert result.suppressed == {"frequency_cap": 2}
    third = make(store, host, drop, name="third", settings=capped)
    with store.engine.begin() as conn:
        result = campaigns.plan(conn, third, capped, now=NOW + dt.timedelta(days=8), tz=TOKYO)
    assert result.planned == 2


def test_several_caps_in_the_plan_agree_with_may_send(store: Store, host: Host, drop: Path) -> None:
    """Two caps over one medium (planning joins their union): each person's reason is
    the one the sender's per-person check gives, whatever went to them before."""
    build(store, [person(i) for i in range(1, 13)])
    settings = messaging(
        drop,
        caps=[
            {"medium": "email", "count": 1, "per": "1d"},
            {"medium": "email", "count": 3, "per": "7d"},
        ],
    )
    with store.engine.begin() as conn:
        pid = {i: profile_of(conn, "web", f"C{i}", shop=SHOP) for i in range(1, 13)}
        # (person, hours ago, status) of what went before: under, at and over each cap;
        # a suppressed or a failed row does not count, one older than the week neither.
        earlier = [
            (1, 2, "sent"),
            (2, 30, "sent"),
            (3, 30, "sent"),
            (3, 50, "handed_over"),
            (3, 70, "unknown"),
            (4, 30, "sent"),
            (4, 50, "sent"),
            (5, 2, "suppressed"),
            (6, 30, "failed"),
            (6, 50, "sent"),
            (6, 70, "sent"),
            (7, 200, "sent"),
            (7, 210, "sent"),
            (7, 220, "sent"),
            (8, 2, "sent"),
            (8, 30, "sent"),
            (8, 50, "sent"),
        ]
        for n, (i, hours, status) in enumerate(earlier):
            at = NOW - dt.timedelta(hours=hours)
            conn.execute(
                outbox.insert().values(
                    shop=SHOP,
                    campaign_id=1000 + n,
                    profile_id=pid[i],
                    medium="email",
                    variant="A",
                    status=status,
                    message_id=f"earlier.{n}",
                    planned_at=at,
                    handed_at=at,
                )
            )
    campaign = make(store, host, drop, settings=settings, holdout=0)
    check = partial(
        may_send, shop=SHOP, medium=Medium.EMAIL, now=NOW, policy=Policy(settings, TOKYO)
    )
    with store.engine.begin() as conn:
        result = campaigns.plan(conn, campaign, settings, now=NOW, tz=TOKYO)
        rows = dict(
            conn.execute(
                select(outbox.c.profile_id, outbox.c.reason).where(
                    outbox.c.campaign_id == campaign.id
                )
            ).all()
        )
        for i in range(1, 13):
            verdict = check(conn, profile_id=pid[i])  # type: ignore[arg-type]
            assert rows[pid[i]] == (verdict.refusal.value if verdict.refusal else None), i
    capped = {i for i in range(1, 13) if rows[pid[i]] == "frequency_cap"}
    assert capped == {1, 3, 8}
    assert result.planned == 9 and result.suppressed == {"frequency_cap": 3}
