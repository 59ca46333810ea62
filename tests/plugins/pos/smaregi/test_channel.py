"""The Smaregi streams against the sandbox: windows, late uploads, merged members."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select

from omnicrm import Checkpoint, Customer, Order, OrderStatus, Stream, StreamContext
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolve_all
from omnicrm.crm.schema import profile_members
from omnicrm.plugins.pos.seed import JST, StoreData
from omnicrm.plugins.pos.smaregi import channel
from omnicrm.plugins.pos.smaregi.sandbox.server import TRANSACTION_BASE, SmaregiSandbox
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings

from .conftest import END


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
