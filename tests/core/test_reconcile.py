"""Id reconciliation: the engine asks a reconciling channel which stored records the
platform deleted without notice, deletes them, records the run, and trusts no plugin
that names records the store never held."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import BaseModel

from omnicrm import ChannelType, Checkpoint, Customer, Order, Stream, StreamContext, hookimpl
from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.core.host import Host, Registrar
from omnicrm.core.scheduler import RECONCILE_PREFIX, build_scheduler, run_reconcile
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.errors import LockedError, TransientError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Platform(BaseModel):
    pass


class VanishingShop:
    """A platform whose customers and orders can disappear without a webhook."""

    def __init__(self, *, reconciles: tuple[Stream, ...] = (Stream.CUSTOMERS, Stream.ORDERS)):
        self.customers = {f"c{i}" for i in range(20)}
        self.orders = {f"o{i}": f"c{i % 20}" for i in range(30)}
        self.reconciles = reconciles
        self.asked: list[tuple[Stream, frozenset[str], dt.datetime]] = []
        self.failures = 0  # transient failures still to raise
        self.answer_extra: list[str] = []  # a buggy plugin's strangers

    @hookimpl
    def omnicrm_register(self, register: Registrar) -> None:
        register.channel_type(
            ChannelType(name="vanishing", settings=Platform, reconciles=self.reconciles)
        )

    @hookimpl
    def omnicrm_sync_customers(self, ctx: StreamContext[BaseModel]) -> Iterator[Customer]:
        for ident in sorted(self.customers):
            yield Customer(id=ident, connection=ctx.connection, updated_at=T0)

    @hookimpl
    def omnicrm_import_orders(self, ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
        for ident, owner in sorted(self.orders.items()):
            yield Order(
                id=ident,
                connection=ctx.connection,
                customer_id=owner,
                placed_at=T0,
                updated_at=T0,
                subtotal=Decimal(1000),
                total=Decimal(1100),
            )

    @hookimpl
    def omnicrm_reconcile(self, ctx: StreamContext[BaseModel], stored: frozenset[str]) -> list[str]:
        self.asked.append((ctx.stream, stored, ctx.until))
        if self.failures:
            self.failures -= 1
            raise TransientError("the shop's API is busy")
        held = self.customers if ctx.stream is Stream.CUSTOMERS else set(self.orders)
        return sorted(stored - held) + self.answer_extra


def connection() -> Connection:
    return Connection(name="shop", channel="vanishing", settings=Platform())


def engine_for(store: Store, platform: VanishingShop) -> SyncEngine:
    host = Host.load(use_entry_points=False, extra={"vanishing": platform})
    assert not host.failures, host.failures
    return SyncEngine(host, store, retry=RetryPolicy(attempts=3, base=0.001, cap=0.01))


def test_records_deleted_on_the_platform_are_deleted_and_the_run_recorded(
    store: Store,
) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    engine.sync(connection())
    platform.customers -= {"c3", "c7"}
    del platform.orders["o4"]

    result = engine.reconcile(connection())

    assert result.status is RunStatus.COMPLETE
    assert result.gone == {Stream.CUSTOMERS: ["c3", "c7"], Stream.ORDERS: ["o4"]}
    assert store.record_ids("shop", Stream.CUSTOMERS) == frozenset(platform.customers)
    assert store.record_ids("shop", Stream.ORDERS) == frozenset(platform.orders)
    # The plugin saw every stored id, and when the reconciliation started.
    asked = {stream: stored for stream, stored, _ in platform.asked}
    assert len(asked[Stream.CUSTOMERS]) == 20 and len(asked[Stream.ORDERS]) == 30
    run = store.runs("shop")[0]
    assert (run.trigger, run.status) == ("reconcile", RunStatus.COMPLETE)
    assert run.streams["customers"] == {"read": 20, "written": 2, "done": True}
    assert run.streams["orders"] == {"read": 30, "written": 1, "done": True}
    # Nothing is gone any more: a second reconciliation deletes nothing.
    again = engine.reconcile(connection())
    assert again.written == 0 and again.gone == {Stream.CUSTOMERS: [], Stream.ORDERS: []}


def test_a_dry_run_reports_and_changes_nothing(store: Store) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    engine.sync(connection())
    runs = len(store.runs("shop"))
    platform.customers.discard("c1")

    result = engine.reconcile(connection(), dry_run=True)

    assert result.gone[Stream.CUSTOMERS] == ["c1"] and result.written == 0
    assert "c1" in store.record_ids("shop", Stream.CUSTOMERS)
    assert len(store.runs("shop")) == runs


def test_a_plugin_naming_records_never_stored_deletes_nothing(store: Store) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    engine.sync(connection())
    platform.customers.discard("c2")
    platform.answer_extra = ["someone-else"]

    result = engine.reconcile(connection())

    assert (result.status, result.error_kind) == (RunStatus.FAILED, "plugin")
    assert "someone-else" in (result.error or "")
    assert "c2" in store.record_ids("shop", Stream.CUSTOMERS)
    assert store.runs("shop")[0].status is RunStatus.FAILED


def test_transient_failures_are_retried(store: Store) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    engine.sync(connection())
    platform.customers.discard("c5")
    platform.failures = 2

    result = engine.reconcile(connection())

    assert result.status is RunStatus.COMPLETE and result.errors == 2
    assert result.gone[Stream.CUSTOMERS] == ["c5"]


def test_it_waits_for_no_one_and_never_overlaps_a_sync(store: Store) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    engine.sync(connection())
    with store.lock("shop"), pytest.raises(LockedError):
        engine.reconcile(connection())
    # The scheduled job logs it and goes on; the next night catches up.
    with store.lock("shop"):
        run_reconcile(engine, connection())
    assert [r.trigger for r in store.runs("shop")] == ["manual"]


def test_only_streams_the_channel_reconciles_are_asked(store: Store) -> None:
    platform = VanishingShop(reconciles=(Stream.ORDERS,))
    engine = engine_for(store, platform)
    engine.sync(connection())
    engine.reconcile(connection())
    assert [stream for stream, _, _ in platform.asked] == [Stream.ORDERS]


def test_a_channel_reconciling_a_stream_it_does_not_offer_is_refused() -> None:
    platform = VanishingShop(reconciles=(Stream.PRODUCTS,))
    host = Host.load(use_entry_points=False, extra={"vanishing": platform})
    assert "does not offer" in host.failures[0].error


def test_a_channel_that_reconciles_must_implement_the_hook() -> None:
    class Forgetful:
        @hookimpl
        def omnicrm_register(self, register: Registrar) -> None:
            register.channel_type(
                ChannelType(name="forgetful", settings=Platform, streams=(Stream.CUSTOMERS,))
            )
            register.channel_type(
                ChannelType(
                    name="forgetful-2",
                    settings=Platform,
                    streams=(Stream.CUSTOMERS,),
                    reconciles=(Stream.CUSTOMERS,),
                )
            )

        @hookimpl
        def omnicrm_sync_customers(self, ctx: StreamContext[BaseModel]) -> list[Customer]:
            return []

    host = Host.load(use_entry_points=False, extra={"forgetful": Forgetful()})
    assert "omnicrm_reconcile" in host.failures[0].error


def test_the_scheduler_reconciles_each_enabled_reconciling_connection(store: Store) -> None:
    platform = VanishingShop()
    engine = engine_for(store, platform)
    disabled = Connection(name="off", channel="vanishing", settings=Platform(), enabled=False)
    config = Config(
        path=None,
        store_url=str(store.url),
        scheduler=SchedulerSection(reconcile="15 2 * * *"),
        connections={"shop": connection(), "off": disabled},
    )
    scheduler = build_scheduler(config, engine, scheduler=BackgroundScheduler())
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {f"{RECONCILE_PREFIX}shop"}
    assert str(jobs[f"{RECONCILE_PREFIX}shop"].trigger) == (
        "cron[month='*', day='*', day_of_week='*', hour='2', minute='15']"
    )

    off = dataclasses.replace(config, scheduler=SchedulerSection(reconcile="off"))
    assert build_scheduler(off, engine, scheduler=BackgroundScheduler()).get_jobs() == []
