"""Scheduled campaigns sent by the scheduler (omnicrm.engage.scheduled, wired by the
runtime's jobs): a real APScheduler, a real SMTP server on loopback, both backends.
Nobody runs `send`: the messages arrive at their time, quiet hours make them wait, a
pause or a cancel is honoured, and two checks at once send no message twice."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from omnicrm.app.runtime import Runtime
from omnicrm.core.records import Medium
from omnicrm.core.scheduler import build_scheduler
from omnicrm.core.store import Store
from omnicrm.engage import campaigns
from omnicrm.engage.scheduled import send_due, start
from omnicrm.engage.schema import outbox
from omnicrm.engage.sender import Sender
from omnicrm.plugins.email.sandbox import SmtpCatcher
from tests.engage.conftest import SHOP, TOKYO, build, person

PEOPLE = 12


def write_config(path: Path, store_url: str, catcher: SmtpCatcher, **messaging: str) -> Path:
    lines = [
        f"[store]\nurl = {json.dumps(store_url)}\n",
        '[crm]\nnightly = "off"\nrefresh_after_sync = false\n',
        "[messaging]",
        'check_every = "1s"',
        *(f"{k} = {json.dumps(v)}" for k, v in messaging.items()),
        '\n[messaging.dispatchers.email]\ndispatcher = "email"\n',
        "[messaging.dispatchers.email.settings]",
        *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in catcher.settings().items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shop(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    build(store, [person(i) for i in range(PEOPLE)])
    yield store
    store.close()


@pytest.fixture
def runtime(
    shop: Store,
    store_url: str,
    tmp_path: Path,
    catcher: SmtpCatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Runtime]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    loaded = Runtime.load(write_config(tmp_path / "omnicrm.toml", store_url, catcher))
    yield loaded
    loaded.close()


def create(runtime: Runtime, name: str, at: dt.datetime | None = None) -> None:
    """A campaign of the only shop to everyone who bought, A/B, a fifth held out."""
    shop = runtime.shop()
    with runtime.store.engine.begin() as conn:
        campaigns.create(
            conn,
            runtime.host,
            shop.messaging,
            shop=SHOP,
            name=name,
            segment="number_of_orders >= 1",
            medium=Medium.EMAIL,
            variants=[
                campaigns.Variant(name="A", subject="冬のご案内", body="{{ name }}、セールです。"),
                campaigns.Variant(name="B", subject="冬のセール", body="{{ name }}、お得です。"),
            ],
            holdout=0.2,
            scheduled_at=at,
            now=dt.datetime.now(dt.UTC),
        )


def status_of(store: Store, name: str) -> str:
    with store.engine.connect() as conn:
        return campaigns.get(conn, name, shop=SHOP).status


def planned_ids(store: Store, name: str) -> Counter[str]:
    """The Message-IDs the outbox says went out (status sent; the provider's id is the
    Message-ID header)."""
    with store.engine.connect() as conn:
        campaign = campaigns.get(conn, name, shop=SHOP)
        ids = conn.execute(
            select(outbox.c.provider_id).where(
                outbox.c.shop == SHOP,
                outbox.c.campaign_id == campaign.id,
                outbox.c.status == "sent",
            )
        ).scalars()
        return Counter(ids)


def arrived_ids(catcher: SmtpCatcher) -> Counter[str]:
    return Counter(str(a.parse()["Message-ID"]) for a in catcher.arrivals)


def wait_for_status(store: Store, name: str, status: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while status_of(store, name) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {status_of(store, name)}, not {status}")
        time.sleep(0.1)


def running(runtime: Runtime) -> BackgroundScheduler:
    scheduler = build_scheduler(
        runtime.config, runtime.engine(), scheduler=BackgroundScheduler(), jobs=runtime.jobs()
    )
    scheduler.start()
    return scheduler


def test_a_campaign_scheduled_a_second_ahead_arrives_without_a_send(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    create(runtime, "later", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    create(runtime, "someday", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    create(runtime, "by-hand", None)  # a draft: sent by `send` only
    assert [j.id for j in runtime.campaign_jobs()] == [f"campaigns:{SHOP}"]
    scheduler = running(runtime)
    try:
        assert status_of(runtime.store, "later") == "scheduled"
        wait_for_status(runtime.store, "later", "done")
    finally:
        scheduler.shutdown(wait=True)
    sent = planned_ids(runtime.store, "later")
    assert 0 < sum(sent.values()) < PEOPLE  # the hold-out group got nothing
    # Exactly what the outbox says went out arrived, each message once.
    assert arrived_ids(catcher) == sent
    assert set(sent.values()) == {1}
    assert status_of(runtime.store, "someday") == "scheduled"
    assert status_of(runtime.store, "by-hand") == "draft"


def test_paused_and_cancelled_campaigns_are_not_sent_at_their_time(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=500)
    create(runtime, "paused", soon)
    create(runtime, "cancelled", soon)
    create(runtime, "sent", soon)
    now = dt.datetime.now(dt.UTC)
    with runtime.store.engine.begin() as conn:
        for name, action in (("paused", "pause"), ("cancelled", "cancel")):
            campaigns.move(conn, campaigns.get(conn, name, shop=SHOP), action, now=now)
    scheduler = running(runtime)
    try:
        wait_for_status(runtime.store, "sent", "done")
        time.sleep(1.5)  # another check or two
        assert status_of(runtime.store, "paused") == "paused"
        assert status_of(runtime.store, "cancelled") == "cancelled"
        # Resumed, the paused one goes at the next check, by itself.
        with runtime.store.engine.begin() as conn:
            paused = campaigns.get(conn, "paused", shop=SHOP)
            assert campaigns.move(conn, paused, "resume", now=now) == "scheduled"
        wait_for_status(runtime.store, "paused", "done")
    finally:
        scheduler.shutdown(wait=True)
    expected = planned_ids(runtime.store, "sent") + planned_ids(runtime.store, "paused")
    assert arrived_ids(catcher) == expected
    assert planned_ids(runtime.store, "cancelled") == Counter()


def sender_at(runtime: Runtime, clock: dt.datetime | Callable[[], dt.datetime]) -> Sender:
    """A sender of the only shop, quiet from 21:00 to 08:00 Tokyo, whose time is
    ``clock`` (a time, or what a function answers each time it is asked)."""
    shop = runtime.shop()
    return Sender(
        runtime.store,
        runtime.host,
        shop=SHOP,
        shop_name=shop.name,
        settings=shop.messaging.model_copy(update={"quiet_hours": "21:00-08:00"}),
        tz=TOKYO,
        clock=clock if callable(clock) else lambda: clock,
    )


def test_a_time_in_the_quiet_hours_waits_for_them_to_end(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    night = dt.datetime(2026, 12, 24, 22, 0, tzinfo=TOKYO).astimezone(dt.UTC)
    morning = dt.datetime(2026, 12, 25, 8, 0, tzinfo=TOKYO).astimezone(dt.UTC)
    create(runtime, "eve", night)
    assert send_due(sender_at(runtime, night)) == []
    assert status_of(runtime.store, "eve") == "scheduled"  # not even planned
    assert catcher.arrivals == []
    (done,) = send_due(sender_at(runtime, morning))
    assert done.plan is not None and done.result is not None and done.result.finished
    assert status_of(runtime.store, "eve") == "done"
    assert arrived_ids(catcher) == planned_ids(runtime.store, "eve")


def test_a_campaign_that_cannot_be_planned_goes_back_to_draft(runtime: Runtime) -> None:
    create(runtime, "broken", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    with runtime.store.engine.begin() as conn:
        conn.execute(
            campaigns.campaigns.update()
            .where(campaigns.campaigns.c.name == "broken")
            .values(segment="no such segment ((")
        )
    (done,) = runtime.send_due(SHOP)
    assert done.error is not None and "segment" in done.error
    assert status_of(runtime.store, "broken") == "draft"
    assert runtime.send_due(SHOP) == []  # not tried again at every check


def test_two_checks_at_once_send_each_message_once(
    runtime: Runtime, catcher: SmtpCatcher, store_url: str
) -> None:
    create(runtime, "race", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    gate = threading.Barrier(2)
    errors: list[BaseException] = []

    def check() -> None:
        try:
            gate.wait()
            send_due(runtime.sender())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    if status_of(runtime.store, "race") != "done":
        send_due(runtime.sender())  # the one that found the shop's sender busy: later
    assert status_of(runtime.store, "race") == "done"
    arrived = arrived_ids(catcher)
    assert arrived == planned_ids(runtime.store, "race")
    assert set(arrived.values()) == {1}


EVENING = dt.datetime(2026, 12, 24, 20, 50, tzinfo=TOKYO).astimezone(dt.UTC)
NIGHT = dt.datetime(2026, 12, 24, 21, 30, tzinfo=TOKYO).astimezone(dt.UTC)
MORNING = dt.datetime(2026, 12, 25, 8, 0, tzinfo=TOKYO).astimezone(dt.UTC)


def night_after_the_first_hand_over(store: Store) -> Callable[[], dt.datetime]:
    """A clock at EVENING until the outbox holds a row handed over (or answered), then
    at NIGHT: the quiet hours begin while the send is under way, after its first group."""

    def clock() -> dt.datetime:
        with store.engine.connect() as conn:
            went = conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.status.in_(("handed_over", "sent", "rejected", "failed")))
            ).scalar_one()
        return NIGHT if went else EVENING

    return clock


def scheduled_at(store: Store, name: str) -> dt.datetime | None:
    with store.engine.connect() as conn:
        return campaigns.get(conn, name, shop=SHOP).scheduled_at


def test_a_send_by_hand_the_quiet_hours_stop_goes_on_by_itself_after_them(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    # More people than one hand-over group, so the quiet hours stop the send part-way.
    build(runtime.store, [person(i) for i in range(PEOPLE, 70)])
    create(runtime, "by-hand", None)  # a draft: the scheduler does not own it
    assert send_due(sender_at(runtime, EVENING)) == []
    by_hand = sender_at(runtime, night_after_the_first_hand_over(runtime.store))
    planned = start(by_hand, "by-hand", now=EVENING)  # what `campaigns send` does
    assert planned is not None and planned.planned > 2 * 20
    result = by_hand.send("by-hand")
    assert result.stopped == "quiet hours" and result.waiting_until == MORNING
    assert 0 < result.sent < planned.planned
    # Handed to the scheduler from the end of the quiet hours on.
    assert result.scheduled
    assert scheduled_at(runtime.store, "by-hand") == MORNING
    assert status_of(runtime.store, "by-hand") == "sending"
    assert len(catcher.arrivals) == result.sent
    # Not in the night; paused, not in the morning either; resumed, it goes on.
    assert send_due(sender_at(runtime, NIGHT)) == []
    with runtime.store.engine.begin() as conn:
        campaigns.move(conn, campaigns.get(conn, "by-hand", shop=SHOP), "pause", now=NIGHT)
    assert send_due(sender_at(runtime, MORNING)) == []
    assert len(catcher.arrivals) == result.sent
    with runtime.store.engine.begin() as conn:
        resumed = campaigns.move(
            conn, campaigns.get(conn, "by-hand", shop=SHOP), "resume", now=MORNING
        )
    assert resumed == "planned"
    (done,) = send_due(sender_at(runtime, MORNING))
    assert done.plan is None and done.result is not None and done.result.finished
    assert result.sent + done.result.sent == planned.planned
    assert status_of(runtime.store, "by-hand") == "done"
    arrived = arrived_ids(catcher)
    assert arrived == planned_ids(runtime.store, "by-hand")
    assert set(arrived.values()) == {1}  # never a row twice
    assert sum(arrived.values()) == planned.planned
    assert send_due(sender_at(runtime, MORNING)) == []  # done: nothing more to own


def test_a_cancel_in_the_night_is_honoured_and_a_metered_send_stays_the_operators(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    create(runtime, "cancelled", None)
    create(runtime, "metered", None)
    night = sender_at(runtime, NIGHT)
    for name in ("cancelled", "metered"):
        start(night, name, now=NIGHT)
    stopped = night.send("cancelled")  # in the quiet hours: nothing goes, handed over
    assert stopped.sent == 0 and stopped.scheduled
    metered = night.send("metered", limit=3)  # the operator meters it: not handed over
    assert metered.waiting_until == MORNING and not metered.scheduled
    assert scheduled_at(runtime.store, "metered") is None
    with runtime.store.engine.begin() as conn:
        campaigns.move(conn, campaigns.get(conn, "cancelled", shop=SHOP), "cancel", now=NIGHT)
    assert send_due(sender_at(runtime, MORNING)) == []
    assert catcher.arrivals == []
    assert status_of(runtime.store, "cancelled") == "cancelled"
    assert status_of(runtime.store, "metered") == "sending"
