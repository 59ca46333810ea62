"""LINE end to end, on both stores: account linking through LINE's flow (link token,
the shop's nonce, the signed accountLink webhook), then a campaign that reaches the
linked customers, and an unfollow after planning that stops the message to that person."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from omnicrm.app.config import Config, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core import consent, links
from omnicrm.core.host import Host
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.core.store.inbox import EventStatus
from omnicrm.core.store.schema import address_links, webhook_events
from omnicrm.crm.profiles import profile_of
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.personal import HOLDER
from omnicrm.engage.schema import outbox
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.line import plugin
from omnicrm.plugins.line.client import Client
from omnicrm.plugins.line.sandbox import LineEmulator, demo_user
from omnicrm.plugins.line.settings import LineSettings
from tests.engage.conftest import NOW, SHOP, TOKYO, build, person
from tests.support.webhooks import serving, settled

HANAKO, TARO, JIRO = demo_user(0, 1), demo_user(0, 2), demo_user(0, 3)


@pytest.fixture
def host() -> Host:
    loaded = Host.load(extra={"line": plugin}, use_entry_points=False)
    assert not loaded.failures, loaded.failures
    return loaded


@pytest.fixture
def line() -> Iterator[LineEmulator]:
    with LineEmulator() as emulator:
        for user in (HANAKO, TARO, JIRO):
            emulator.add_friend(user)
        yield emulator


@pytest.fixture
def messaging(line: LineEmulator) -> MessagingSettings:
    return MessagingSettings.model_validate(
        {"dispatchers": {"line": {"dispatcher": "line", "settings": line.settings()}}}
    )


@pytest.fixture
def app(
    host: Host, store_url: str, store: Store, line: LineEmulator, messaging: MessagingSettings
) -> Iterator[str]:
    config = Config(
        None,
        store_url,
        SchedulerSection(),
        crm=CrmSection(refresh_after_sync=False),
        messaging=messaging,
    )
    with serving(Runtime(host, config)) as url:
        line.webhook_url = f"{url}/webhooks/line"
        yield url


def link(store: Store, line: LineEmulator, user: str, record_id: str) -> httpx.Response:
    """LINE's account link flow: the bot's link token, the shop's nonce for the customer
    who signed in, the user sent to LINE's account link page."""
    client = Client(LineSettings.model_validate(line.settings()))
    try:
        token = client.link_token(user)
    finally:
        client.close()
    with store.engine.begin() as conn:
        nonce = links.issue_nonce(
            conn,
            shop=SHOP,
            medium=Medium.LINE,
            member=("web", record_id),
            now=dt.datetime.now(dt.UTC),
        )
    return httpx.get(
        f"{line.url}/dialog/bot/accountLink", params={"linkToken": token, "nonce": nonce}
    )


def linked(store: Store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(address_links.c.address, address_links.c.connection, address_links.c.record_id)
        )
        return {a: (c, r) for a, c, r in rows}


def test_account_link_flow_links_the_user_to_the_customer(
    store: Store, line: LineEmulator, app: str
) -> None:
    build(store, [person(1), person(2)])
    answer = link(store, line, HANAKO, "C1")
    assert answer.status_code == 200 and "account link ok (webhook: 200)" in answer.text
    settled(store)
    assert linked(store) == {HANAKO: ("web", "C1")}
    with store.engine.connect() as conn:
        pid = profile_of(conn, "web", "C1", shop=SHOP)
        assert pid is not None
        statement = consent.latest_statement(
            conn, shop=SHOP, members=[("web", "C1")], medium=Medium.LINE
        )
    assert statement is not None and statement.state == ConsentState.OPTED_IN
    assert statement.method == "line_link"


def test_a_replayed_or_forged_link_links_nobody(store: Store, line: LineEmulator, app: str) -> None:
    build(store, [person(1)])
    assert link(store, line, HANAKO, "C1").status_code == 200
    settled(store)
    # The same nonce again, in a genuine (signed) event from another user: refused.
    with store.engine.connect() as conn:
        used = conn.execute(select(links.link_nonces.c.nonce)).scalar_one()
    replay = line.event("accountLink", TARO, link={"result": "ok", "nonce": used})
    assert line.post_webhook(replay).status_code == 200  # type: ignore[union-attr]
    forged = line.event("accountLink", JIRO, link={"result": "ok", "nonce": "made-up-nonce-1"})
    assert line.post_webhook(forged).status_code == 200  # type: ignore[union-attr]
    settled(store)
    assert linked(store) == {HANAKO: ("web", "C1")}
    with store.engine.connect() as conn:
        outcomes = conn.execute(select(webhook_events.c.status, webhook_events.c.error)).all()
    rejected = [e for s, e in outcomes if s == EventStatus.REJECTED.value]
    assert len(rejected) == 2
    assert any("used before" in (e or "") for e in rejected)
    assert any("did not issue" in (e or "") for e in rejected)
    # An unsigned request is not even queued.
    unsigned = httpx.post(line.webhook_url or "", content=line.webhook_body(forged))
    assert unsigned.status_code == 401


def test_an_unfollow_after_planning_stops_the_message(
    store: Store, host: Host, line: LineEmulator, messaging: MessagingSettings, app: str
) -> None:
    build(store, [person(1), person(2), person(3)])
    for user, record_id in ((HANAKO, "C1"), (TARO, "C2")):
        assert link(store, line, user, record_id).status_code == 200
    settled(store)  # C3 has no LINE account linked
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            messaging,
            shop=SHOP,
            name="line-winter",
            segment="number_of_orders >= 1",
            medium=Medium.LINE,
            variants=[Variant(name="A", body="{{ name }}、冬のセールのご案内です。")],
            now=NOW,
        )
        campaign = campaigns.get(conn, cid, shop=SHOP)
        campaigns.plan(conn, campaign, messaging, now=NOW, tz=TOKYO)
    with store.engine.connect() as conn:
        c3 = profile_of(conn, "web", "C3", shop=SHOP)
        planned = dict(conn.execute(select(outbox.c.profile_id, outbox.c.status)).all())
    assert sorted(planned.values()) == ["planned", "planned", "suppressed"]
    assert planned[c3] == "suppressed"
    # Hanako blocks the account after the plan; the unfollow lands before its answer.
    answer = line.unfollow(HANAKO)
    assert answer is not None and answer.json()["status"] == "applied"
    sender = Sender(
        store,
        host,
        shop=SHOP,
        shop_name="見本店",
        settings=messaging,
        tz=TOKYO,
        clock=lambda: NOW,
    )
    result = sender.send(cid)
    assert (result.sent, result.suppressed) == (1, {"unsubscribed": 1})
    assert [d.to for d in line.delivered] == [(TARO,)]
    assert line.delivered[0].messages[0]["text"] == "山田 花子2 様、冬のセールのご案内です。"
    assert line.received_by(HANAKO) == []
    with store.engine.connect() as conn:
        listed = consent.suppressed(conn, shop=SHOP, medium=Medium.LINE)
    assert listed == {HANAKO: consent.Refusal.UNSUBSCRIBED}


def test_a_follow_again_restores_consent_for_a_linked_user(
    store: Store, line: LineEmulator, app: str
) -> None:
    build(store, [person(1)])
    assert link(store, line, HANAKO, "C1").status_code == 200
    settled(store)
    line.unfollow(HANAKO)
    with store.engine.connect() as conn:
        verdict = consent.consent_of(
            conn, shop=SHOP, members=[("web", "C1")], medium=Medium.LINE, address=HANAKO
        )
    assert not verdict and verdict.refusal == consent.Refusal.UNSUBSCRIBED
    line.follow(HANAKO, unblocked=True)
    settled(store)
    with store.engine.connect() as conn:
        verdict = consent.consent_of(
            conn, shop=SHOP, members=[("web", "C1")], medium=Medium.LINE, address=HANAKO
        )
    assert verdict and verdict.statement is not None
    assert verdict.statement.method == "line_follow"


def test_a_follow_by_an_unlinked_user_grants_nothing(
    store: Store, line: LineEmulator, app: str
) -> None:
    build(store, [person(1)])
    line.follow(JIRO)
    settled(store)
    assert linked(store) == {}
    with store.engine.connect() as conn:
        verdict = consent.consent_of(
            conn, shop=SHOP, members=[("web", "C1")], medium=Medium.LINE, address=JIRO
        )
    assert not verdict and verdict.refusal == consent.Refusal.NO_CONSENT


def test_a_line_campaign_with_a_subject_is_refused(
    store: Store, host: Host, messaging: MessagingSettings
) -> None:
    with store.engine.begin() as conn, pytest.raises(campaigns.CampaignError, match="no subject"):
        campaigns.create(
            conn,
            host,
            messaging,
            shop=SHOP,
            name="with-subject",
            segment="number_of_orders >= 1",
            medium=Medium.LINE,
            variants=[Variant(name="A", subject="冬", body="{{ name }}")],
            now=NOW,
        )


def test_a_link_is_exported_with_the_customer_and_gone_with_a_redaction(
    store: Store, line: LineEmulator, app: str
) -> None:
    build(store, [person(1), person(2)])
    for user, record_id in ((HANAKO, "C1"), (TARO, "C2")):
        assert link(store, line, user, record_id).status_code == 200
    settled(store)
    with store.engine.connect() as conn:
        held = HOLDER.export(conn, "web", "C1")
    assert [(a["medium"], a["address"], a["method"]) for a in held["linked_addresses"]] == [
        ("line", HANAKO, "line_link")
    ]
    store.redact_customer("web", "C1")
    assert linked(store) == {TARO: ("web", "C2")}
    with store.engine.connect() as conn:
        nonces = conn.execute(select(links.link_nonces.c.record_id)).scalars().all()
    assert nonces == ["C2"]


def _line_campaign(
    store: Store, host: Host, messaging: MessagingSettings, name: str
) -> campaigns.Campaign:
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            messaging,
            shop=SHOP,
            name=name,
            segment="number_of_orders >= 1",
            medium=Medium.LINE,
            variants=[Variant(name="A", body="{{ name }}、冬のセールのご案内です。")],
            now=NOW,
        )
        campaign = campaigns.get(conn, cid, shop=SHOP)
        campaigns.plan(conn, campaign, messaging, now=NOW, tz=TOKYO)
    return campaign


def test_a_user_who_is_not_a_friend_is_suppressed_as_bounced(
    store: Store, host: Host, line: LineEmulator, messaging: MessagingSettings, app: str
) -> None:
    build(store, [person(1), person(2)])
    for user, record_id in ((HANAKO, "C1"), (TARO, "C2")):
        assert link(store, line, user, record_id).status_code == 200
    settled(store)
    # Hanako blocked the account and no unfollow webhook came (the server was down):
    # LINE answers the push 400, "Failed to send messages".
    line.block(HANAKO)
    first = _line_campaign(store, host, messaging, "first")
    sender = Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=messaging, tz=TOKYO, clock=lambda: NOW
    )
    result = sender.send(first.id)
    assert (result.sent, result.rejected) == (1, 1)
    assert [d.to for d in line.delivered] == [(TARO,)]
    with store.engine.connect() as conn:
        listed = consent.suppressed(conn, shop=SHOP, medium=Medium.LINE)
    assert listed == {HANAKO: consent.Refusal.BOUNCED}
    # The next campaign skips her with reason bounced, before anything is pushed.
    second = _line_campaign(store, host, messaging, "second")
    with store.engine.connect() as conn:
        reasons = conn.execute(
            select(outbox.c.reason).where(outbox.c.campaign_id == second.id)
        ).scalars()
        assert sorted(reasons, key=str) == [None, "bounced"]
    assert sender.send(second.id).sent == 1
    assert line.received_by(HANAKO) == []
    # She adds the account again: the follow ends the bounce (and restores consent).
    line.follow(HANAKO, unblocked=True)
    settled(store)
    with store.engine.connect() as conn:
        assert consent.suppressed(conn, shop=SHOP, medium=Medium.LINE) == {}
