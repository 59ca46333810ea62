"""The Smaregi streams against the sandbox: windows, late uploads, merged members."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

import omnicrm.plugins.pos.plugin
from omnicrm import Checkpoint, Customer, Order, OrderStatus, Stream, StreamContext
from omnicrm.core.channels import Connection
from omnicrm.core.store import RunStatus, Store
from omnicrm.crm.identity import IdentitySettings, resolve_all
from omnicrm.crm.schema import profile_members
from omnicrm.plugins.pos.seed import JST, Sale, StoreData, generate
from omnicrm.plugins.pos.smaregi import channel
from omnicrm.plugins.pos.smaregi.sandbox.server import TRANSACTION_BASE, SmaregiSandbox
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings
from tests.support.syncing import engine_for

from .conftest import END

ENGINE_LOOKBACK = Connection("c", "smaregi", SmaregiSettings.model_construct()).lookback
"""A connection's own lookback by default: the engine reads from its cursor less it."""


def ctx(
    settings: SmaregiSettings,
    stream: Stream,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime = END,
    state: Mapping[str, Any] | None = None,
) -> StreamContext[SmaregiSettings]:
    return StreamContext(
        connection="shibuya",
        channel="smaregi",
        stream=stream,
        settings=settings,
        since=since,
        until=until,
        state=dict(state or {}),
        full=since is None,
        logger=logging.getLogger("test"),
        sleep=lambda _: None,
    )


def orders(items: list[Order | Checkpoint]) -> list[Order]:
    return [i for i in items if isinstance(i, Order)]


def test_a_full_read_walks_31_day_windows(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    read = list(channel.import_orders(ctx(settings, Stream.ORDERS)))
    got = orders(read)
    assert len({o.id for o in got}) == len(got) == len(seeded.sales)
    windows = [parse_qs(r.split("?", 1)[1]) for r in sandbox.requests if "/transactions?" in r]
    spans = {(q["upd_date_time-from"][0], q["upd_date_time-to"][0]) for q in windows if "page" in q}
    assert len(spans) >= 13  # a year and more, a window at a time
    for low, high in spans:
        width = dt.datetime.fromisoformat(high) - dt.datetime.fromisoformat(low)
        assert dt.timedelta(0) <= width <= dt.timedelta(days=31)
    stamps = [o.updated_at for o in got]
    assert stamps == sorted(stamps)
    by_id = {o.id: o for o in got}
    for sale in seeded.sales:
        order = by_id[str(TRANSACTION_BASE + sale.number)]
        assert order.placed_at == sale.sold_at  # the register's time
        assert order.location == sale.store.name
        assert order.total == sale.total
        assert order.status is (OrderStatus.CANCELLED if sale.cancelled else OrderStatus.PAID)
        assert order.raw["terminalId"] == str(sale.terminal)
        if sale.member is not None and not sale.cancelled:
            assert order.points_earned == sale.points_earned
            assert order.points_redeemed == sale.points_spent
    assert isinstance(read[-1], Checkpoint) and read[-1].cursor == END


def test_late_uploads_are_found_by_the_look_back_once(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    late = [
        s for s in seeded.sales if s.offline and s.received_at - s.sold_at > dt.timedelta(hours=20)
    ]
    sale = late[len(late) // 2]
    t0 = sale.sold_at + (sale.received_at - sale.sold_at) / 2  # made, not yet uploaded
    sandbox.clock = lambda: t0
    first = list(channel.import_orders(ctx(settings, Stream.ORDERS, until=t0)))
    ids = {o.id for o in orders(first)}
    wanted = str(TRANSACTION_BASE + sale.number)
    assert wanted not in ids
    state = [i for i in first if isinstance(i, Checkpoint)][-1].state

    t1 = sale.received_at + dt.timedelta(hours=1)
    sandbox.clock = lambda: t1
    without = settings.model_copy(update={"late_upload_days": 0})
    missed = orders(list(channel.import_orders(ctx(without, Stream.ORDERS, since=t0, until=t1))))
    assert wanted not in {o.id for o in missed}  # why the look-back exists

    again = orders(
        list(channel.import_orders(ctx(settings, Stream.ORDERS, since=t0, until=t1, state=state)))
    )
    found = [o for o in again if o.id == wanted]
    assert len(found) == 1 and found[0].updated_at == t0  # at the cursor, not behind it
    assert found[0].raw["updDateTime"] < t0.isoformat()  # Smaregi's own stamp is kept
    assert all(o.updated_at >= t0 for o in again)
    repeated = {o.id for o in again if o.updated_at == t0} & ids
    assert not repeated  # what the first run read is not read again


def last_checkpoint(items: list[Order | Checkpoint]) -> Checkpoint:
    return [i for i in items if isinstance(i, Checkpoint)][-1]


@pytest.mark.parametrize("engine_lookback", [ENGINE_LOOKBACK, dt.timedelta(days=1)])
def test_a_run_with_nothing_new_yields_nothing(
    settings: SmaregiSettings,
    sandbox: SmaregiSandbox,
    seeded: StoreData,
    engine_lookback: dt.timedelta,
) -> None:
    """The next run reads from the cursor less the engine's lookback and the late-upload
    days: a sale just older than the kept stamps is not taken for a late upload."""
    sale = [s for s in seeded.sales if not s.offline and s.received_at < END - dt.timedelta(4)][-1]
    t0 = sale.received_at + dt.timedelta(days=settings.late_upload_days, minutes=5)
    sandbox.clock = lambda: t0
    first = list(channel.import_orders(ctx(settings, Stream.ORDERS, until=t0)))
    assert str(TRANSACTION_BASE + sale.number) in {o.id for o in orders(first)}
    cursor, state = last_checkpoint(first).cursor, last_checkpoint(first).state
    assert cursor == t0
    later = t0 + dt.timedelta(hours=1)
    since = cursor - engine_lookback
    second = list(
        channel.import_orders(ctx(settings, Stream.ORDERS, since=since, until=later, state=state))
    )
    assert orders(second) == []
    assert last_checkpoint(second).state["seen"] == state["seen"]  # kept, and no more


def test_an_engine_lookback_past_the_late_days_rereads_with_own_stamps(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    """A connection whose lookback reaches before the kept stamps reads those sales again
    as they are (the store skips them), not as late uploads at the cursor."""
    short = settings.model_copy(update={"late_upload_days": 1})
    t0 = END - dt.timedelta(days=10)
    sandbox.clock = lambda: t0
    first = list(channel.import_orders(ctx(short, Stream.ORDERS, until=t0)))
    since = t0 - dt.timedelta(days=3)
    state = last_checkpoint(first).state
    again = orders(
        list(channel.import_orders(ctx(short, Stream.ORDERS, since=since, until=t0, state=state)))
    )
    held = {(o.id, o.updated_at) for o in orders(first)}
    assert again
    assert all((o.id, o.updated_at) in held for o in again)
    assert all(since <= o.updated_at < t0 - dt.timedelta(days=1) for o in again)


def test_a_state_from_before_through_was_kept_still_reads(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    """A state without ``through``: its prune assumed the read starts at the cursor."""
    t0 = END - dt.timedelta(days=10)
    sandbox.clock = lambda: t0
    first = list(channel.import_orders(ctx(settings, Stream.ORDERS, until=t0)))
    state = {"seen": last_checkpoint(first).state["seen"]}
    again = list(
        channel.import_orders(ctx(settings, Stream.ORDERS, since=t0, until=t0, state=state))
    )
    assert orders(again) == []
    assert last_checkpoint(again).state["through"] == t0.isoformat()


# The engine's test below runs in real time (the engine's runs start now): the seed ends
# at the last 23:00 JST, so its sales sit the same way against the date every day.
_NOW = dt.datetime.now(JST) - dt.timedelta(minutes=1)
LIVE_END = _NOW.replace(hour=23, minute=0, second=0, microsecond=0) - dt.timedelta(
    days=1 if _NOW.hour < 23 else 0
)


@pytest.fixture(scope="module")
def live() -> StoreData:
    return generate(8, members=80, sales=3000, end=LIVE_END, ec_customers=300, offline_share=0.1)


def shown(sale: Sale, now: dt.datetime) -> tuple[str, dt.datetime] | None:
    """(id, updDateTime) of ``sale`` as the sandbox lists it at ``now``, if it does."""
    if sale.received_at > now:
        return None
    cancelled = sale.cancelled_at is not None and sale.cancelled_at <= now
    at = sale.cancelled_at if cancelled and sale.cancelled_at else SmaregiSandbox.stamped(sale)
    return str(TRANSACTION_BASE + sale.number), at


@pytest.mark.parametrize("engine_lookback", [ENGINE_LOOKBACK, dt.timedelta(days=1)])
def test_engine_runs_write_each_sale_once_and_late_uploads_once(
    live: StoreData, tmp_path: Path, engine_lookback: dt.timedelta
) -> None:
    """SyncEngine into SQLite: a second run with nothing new reads nothing; a sale made
    before those runs and uploaded after them is written once, at the cursor it was
    found behind; what was written is not written again."""
    late = [
        s
        for s in live.sales
        if s.offline
        and s.sold_at >= LIVE_END - dt.timedelta(days=2)
        and s.received_at - s.sold_at >= dt.timedelta(hours=3)
        and s.received_at <= LIVE_END
    ]
    assert late, "the seed has no late upload to find"
    target = late[0]
    t0 = target.sold_at + (target.received_at - target.sold_at) / 2
    wanted = str(TRANSACTION_BASE + target.number)
    store = Store.open(f"sqlite:///{tmp_path / 'crm.db'}")
    with SmaregiSandbox(live) as server:
        engine = engine_for(store, "pos", omnicrm.plugins.pos.plugin)
        smaregi = engine.host.channel_type("smaregi")
        engine.host.channel_types["smaregi"] = dataclasses.replace(
            smaregi, streams=(Stream.ORDERS,)
        )
        connection = Connection(
            "shibuya",
            "smaregi",
            SmaregiSettings.model_validate(server.settings()),
            lookback=engine_lookback,
        )

        def run() -> tuple[int, int]:
            result = engine.sync(connection)
            assert result.status is RunStatus.COMPLETE, result.error
            return result.streams[Stream.ORDERS].read, result.streams[Stream.ORDERS].written

        server.clock = lambda: t0
        read, written = run()
        before = {o.id: o.updated_at for o in store.orders("shibuya")}
        assert read == written == len(before) and wanted not in before
        assert run() == (0, 0)  # nothing new at Smaregi: nothing read
        cursor = store.stream_state("shibuya", Stream.ORDERS).cursor
        assert cursor is not None

        server.clock = lambda: LIVE_END
        kept = cursor - dt.timedelta(days=connection.settings.late_upload_days)
        now = {s for sale in live.sales if (s := shown(sale, LIVE_END)) is not None}
        then = {s for sale in live.sales if (s := shown(sale, t0)) is not None}
        arrived = {(i, at) for i, at in now - then if at >= kept}
        assert run() == (len(arrived), len(arrived))
        after = {o.id: o for o in store.orders("shibuya")}
        assert after[wanted].updated_at == cursor  # behind the cursor, written at it
        assert after[wanted].placed_at == target.sold_at
        assert {i for i, _ in arrived} <= set(after)
        assert run() == (0, 0)
    store.close()


def test_a_merged_member_is_one_person(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData, tmp_path: Path
) -> None:
    customers = [
        c
        for c in channel.sync_customers(ctx(settings, Stream.CUSTOMERS))
        if isinstance(c, Customer)
    ]
    assert len(customers) == len(seeded.members)
    stamps = [c.updated_at for c in customers]
    assert stamps == sorted(stamps)
    merged = [m for m in seeded.members if m.status == "merged"]
    assert merged
    store = Store.open(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        store.write_batch("shibuya", Stream.CUSTOMERS, customers)
        with store.engine.begin() as conn:
            resolve_all(conn, IdentitySettings(), shop="default")
        with store.engine.connect() as conn:
            profile = {r.record_id: r.profile_id for r in conn.execute(select(profile_members))}
    finally:
        store.close()
    ids = {c.member_code: c.id for c in customers if c.points is not None}
    for member in merged:
        dup = next(c for c in customers if c.raw["customerCode"] == member.code)
        assert dup.points is None and dup.member_code == member.merged_into
        assert profile[dup.id] == profile[ids[member.merged_into]]
    assert len(set(profile.values())) < len(customers) - len(merged) + 1


def test_withdrawn_members_come_through_withdrawn_and_join_no_one(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData, tmp_path: Path
) -> None:
    assert sandbox.withdrawals  # the sandbox seeds a few
    customers = {
        c.raw["customerCode"]: c
        for c in channel.sync_customers(ctx(settings, Stream.CUSTOMERS))
        if isinstance(c, Customer)
    }
    gone = {code for code, c in customers.items() if c.withdrawn_at is not None}
    assert gone == set(sandbox.withdrawals)
    for code in gone:
        c = customers[code]
        assert c.raw["status"] == "3" and c.points is None
        assert c.withdrawn_at is not None and c.withdrawn_at <= c.updated_at
        assert c.raw["leaveDate"] == c.withdrawn_at.astimezone(JST).date().isoformat()
    store = Store.open(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        store.write_batch("shibuya", Stream.CUSTOMERS, list(customers.values()))
        with store.engine.begin() as conn:
            resolve_all(conn, IdentitySettings(), shop="default")
        with store.engine.connect() as conn:
            members = {r.record_id for r in conn.execute(select(profile_members))}
    finally:
        store.close()
    assert members == {c.id for code, c in customers.items() if code not in gone}


def test_a_withdrawal_and_a_restoration_reach_an_incremental_sync(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    member = next(
        m for m in seeded.members if m.status == "active" and m.code not in sandbox.withdrawals
    )
    left = END - dt.timedelta(hours=2)
    sandbox.withdraw(member.code, left)
    since = END - dt.timedelta(hours=3)
    read = [
        c
        for c in channel.sync_customers(ctx(settings, Stream.CUSTOMERS, since=since))
        if isinstance(c, Customer)
    ]
    (changed,) = [c for c in read if c.raw["customerCode"] == member.code]
    assert changed.updated_at == left and changed.withdrawn_at is not None
    assert changed.withdrawn_at.astimezone(JST).date() == left.astimezone(JST).date()
    back = END - dt.timedelta(hours=1)
    sandbox.restore(member.code, back)
    again = [
        c
        for c in channel.sync_customers(ctx(settings, Stream.CUSTOMERS, since=left))
        if isinstance(c, Customer) and c.raw["customerCode"] == member.code
    ]
    assert [(c.updated_at, c.withdrawn_at, c.points) for c in again] == [
        (back, None, member.points)
    ]
    # A withdrawal dated after "now" is not shown yet.
    later = next(m for m in seeded.members if m.status == "active" and m.code != member.code)
    sandbox.withdraw(later.code, END + dt.timedelta(days=1))
    assert sandbox.customer_json(later)["status"] == "0"
