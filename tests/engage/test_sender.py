"""The sender: each row handed over once, the provider's answer recorded, consent
checked again just before the hand-over, an interrupted hand-over marked unknown."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.engage import campaigns
from omnicrm.engage.schema import outbox
from omnicrm.engage.sender import HANDOVER, Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.engage.tracking import Links
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person, unsubscribe
from tests.engage.test_campaigns import make
from tests.support.filedrop_plugin import arrived


def sender(
    store: Store,
    host: Host,
    settings: MessagingSettings,
    now: dt.datetime = NOW,
    links: Links | None = None,
) -> Sender:
    return Sender(
        store,
        host,
        shop=SHOP,
        shop_name="見本店",
        settings=settings,
        tz=TOKYO,
        clock=lambda: now,
        links=links,
    )


def planned(store: Store, host: Host, drop: Path, **kw: object) -> campaigns.Campaign:
    settings = kw.get("settings") or messaging(drop)
    campaign = make(store, host, drop, **kw)
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, settings, now=NOW, tz=TOKYO)  # type: ignore[arg-type]
    return campaign


def statuses(store: Store) -> dict[int, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.profile_id, outbox.c.status))
        return {pid: status for pid, status in rows}


def test_each_message_is_rendered_sent_once_and_recorded(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1, points=1500), person(2, email="x@rejected.example")])
    campaign = planned(store, host, drop)
    result = sender(store, host, messaging(drop)).send(campaign.name)
    assert (result.sent, result.rejected, result.finished) == (1, 1, True)
    (message,) = arrived(drop)
    assert message["to"] == "p1@example.jp" and message["subject"] == "冬のご案内"
    assert message["body"].startswith("山田 花子1 様、")
    assert (
        message["id"]
        == f"{SHOP}.c{campaign.id}.p{message['id'].split('.p')[1].split('.')[0]}.email"
    )
    with store.engine.connect() as conn:
        report = campaigns.report(conn, campaigns.get(conn, campaign.id, shop=SHOP))
    assert report.by_status == {"sent": 1, "rejected": 1}
    assert report.campaign.status == "done"
    # Sending again sends nothing more.
    again = sender(store, host, messaging(drop))
    with store.engine.begin() as conn:
        conn.execute(update(campaigns.campaigns).values(status="sending"))
    assert again.send(campaign.name).sent == 0 and len(arrived(drop)) == 1


def test_an_unsubscribe_after_planning_holds_across_merged_records(
    store: Store, host: Host, drop: Path
) -> None:
    # One person online and in the store (the same email joins them).
    build(store, [person(1)])
    build(store, [person(1, consent=None, id="POS1")], connection="pos")
    build(store, [person(2)])
    campaign = planned(store, host, drop)
    pid = unsubscribe(store, "pos", "POS1", source="pos:渋谷店")
    with store.engine.connect() as conn:
        assert pid == profile_of(conn, "web", "C1", shop=SHOP)
    result = sender(store, host, messaging(drop)).send(campaign.id)
    assert result.sent == 1 and result.suppressed == {"unsubscribed": 1}
    assert [m["to"] for m in arrived(drop)] == ["p2@example.jp"]


def test_each_of_a_group_gets_their_own_fields_and_an_unsubscribe_holds_from_the_next_group(
    store: Store, host: Host, drop: Path
) -> None:
    count = HANDOVER + 5
    build(store, [person(i) for i in range(count)])
    campaign = planned(store, host, drop)
    assert sender(store, host, messaging(drop)).send(campaign.id, limit=HANDOVER).sent == HANDOVER
    went = {m["to"] for m in arrived(drop)}
    later = next(i for i in range(count) if f"p{i}@example.jp" not in went)
    unsubscribe(store, "web", f"C{later}")
    rest = sender(store, host, messaging(drop)).send(campaign.id)
    assert (rest.sent, rest.suppressed, rest.finished) == (4, {"unsubscribed": 1}, True)
    messages = arrived(drop)
    assert len(messages) == count - 1
    assert f"p{later}@example.jp" not in {m["to"] for m in messages}
    for m in messages:  # the batch's fields went to the right person
        i = m["to"].removeprefix("p").split("@")[0]
        assert m["body"].startswith(f"山田 花子{i} 様、"), m


def test_quiet_hours_hold_the_send_until_they_end(store: Store, host: Host, drop: Path) -> None:
    build(store, [person(1)])
    quiet = messaging(drop, quiet_hours="21:00-08:00")
    campaign = planned(store, host, drop, settings=quiet)
    late = dt.datetime(2026, 11, 20, 13, 30, tzinfo=dt.UTC)  # 22:30 in Tokyo
    result = sender(store, host, quiet, now=late).send(campaign.id)
    assert result.sent == 0 and result.stopped == "quiet hours"
    assert result.waiting_until == dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)  # 08:00
    assert set(statuses(store).values()) == {"planned"}
    morning = dt.datetime(2026, 11, 20, 23, 5, tzinfo=dt.UTC)
    assert sender(store, host, quiet, now=morning).send(campaign.id).sent == 1


def test_a_paused_campaign_stops_and_resumes(store: Store, host: Host, drop: Path) -> None:
    build(store, [person(i) for i in range(3)])
    campaign = planned(store, host, drop)
    with store.engine.begin() as conn:
        campaigns.move(conn, campaigns.get(conn, campaign.id, shop=SHOP), "pause", now=NOW)
    with pytest.raises(campaigns.CampaignError, match="paused"):
        sender(store, host, messaging(drop)).send(campaign.id)
    assert arrived(drop) == []
    with store.engine.begin() as conn:
        campaigns.move(conn, campaigns.get(conn, campaign.id, shop=SHOP), "resume", now=NOW)
    assert sender(store, host, messaging(drop)).send(campaign.id).sent == 3


def test_a_hand_over_without_an_answer_becomes_unknown_never_resent(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    campaign = planned(store, host, drop)
    # What a sender killed mid-send leaves: one row handed over, one claimed.
    with store.engine.begin() as conn:
        ids = conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all()
        conn.execute(
            update(outbox)
            .where(outbox.c.id == ids[0])
            .values(status="handed_over", claimed_by="dead-1", handed_at=NOW)
        )
        conn.execute(
            update(outbox)
            .where(outbox.c.id == ids[1])
            .values(status="claimed", claimed_by="dead-1")
        )
    result = sender(store, host, messaging(drop)).send(campaign.id)
    assert result.sent == 1
    assert sorted(statuses(store).values()) == ["sent", "unknown"]
    with store.engine.connect() as conn:
        (unknown,) = campaigns.unknown_rows(conn, campaigns.get(conn, campaign.id, shop=SHOP))
    assert unknown[1].endswith(".email")


def test_two_senders_at_once_never_send_the_same_row(store: Store, host: Host, drop: Path) -> None:
    build(store, [person(i) for i in range(60)])
    campaign = planned(store, host, drop)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sender(store, host, messaging(drop)).send(campaign.id)
        except BaseException as exc:  # SQLite: the second finds the shop's outbox locked
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # SQLite has one writer: a second sender finds the shop's outbox taken (or, started
    # late, the campaign done). On PostgreSQL both send, each its own rows.
    for error in errors:
        assert "another sender" in str(error) or "is done" in str(error), error
    if store.dialect == "postgresql":
        assert not [e for e in errors if "another sender" in str(e)]
    ids = [m["id"] for m in arrived(drop)]
    assert len(ids) == len(set(ids)) == 60
