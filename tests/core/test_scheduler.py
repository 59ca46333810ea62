"""The scheduler: one job per connection from config; jobs fire; missed runs are recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import NIGHTLY_JOB, crm_jobs
from omnicrm.core.host import Host
from omnicrm.core.scheduler import IntervalJob, add_jobs, build_scheduler, run_scheduled
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import SyncEngine
from tests import synthetic_plugin
from tests.synthetic_plugin import SyntheticSettings


def config(store: Store, **connections: Connection) -> Config:
    return Config(
        path=None,
        store_url=str(store.url),
        scheduler=SchedulerSection(misfire_grace=dt.timedelta(seconds=1)),
        connections=dict(connections),
    )


def every(name: str, seconds: float, **settings: object) -> Connection:
    return Connection(
        name,
        "synthetic",
        SyntheticSettings(**settings),  # type: ignore[arg-type]
        every=dt.timedelta(seconds=seconds),
    )


@pytest.fixture
def engine(store: Store) -> SyncEngine:
    return SyncEngine(
        Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin}), store
    )


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_job_per_scheduled_connection_with_explicit_options(
    store: Store, engine: SyncEngine
) -> None:
    cfg = config(
        store,
        tokyo=every("tokyo", 900),
        osaka=Connection("osaka", "synthetic", SyntheticSettings(), cron="0 3 * * *"),
        manual=Connection("manual", "synthetic", SyntheticSettings()),
        off=Connection(
            "off", "synthetic", SyntheticSettings(), every=dt.timedelta(minutes=1), enabled=False
        ),
    )
    sched = build_scheduler(cfg, engine, scheduler=BackgroundScheduler())
    sched.start(paused=True)
    try:
        jobs = {job.id: job for job in sched.get_jobs()}
        assert set(jobs) == {"sync:tokyo", "sync:osaka"}
        for job in jobs.values():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 1)
        assert jobs["sync:tokyo"].trigger.interval == dt.timedelta(minutes=15)
        assert str(jobs["sync:osaka"].trigger.timezone) == "Asia/Tokyo"
        assert str(jobs["sync:osaka"].trigger.fields[5]) == "3"  # the hour field
        # Rebuilding from the same config replaces the jobs, it does not add twins.
        add_jobs(sched, cfg, engine)
        assert len(sched.get_jobs()) == 2
    finally:
        sched.shutdown(wait=False)


@pytest.mark.slow
def test_jobs_fire_and_their_runs_are_recorded(store: Store, engine: SyncEngine) -> None:
    sched = build_scheduler(
        config(store, shop=every("shop", 1)), engine, scheduler=BackgroundScheduler()
    )
    sched.start()
    try:
        wait_for(lambda: len([r for r in store.runs("shop") if r.ended_at]) >= 2)
    finally:
        sched.shutdown(wait=True)
    runs = store.runs("shop")
    assert {r.trigger for r in runs} == {"schedule"}
    assert all(r.status is RunStatus.COMPLETE for r in runs)
    assert runs[-1].records_written == 130


def test_a_missed_run_is_recorded(store: Store, engine: SyncEngine) -> None:
    nightly = Connection("nightly", "synthetic", SyntheticSettings(), cron="0 3 * * *")
    sched = build_scheduler(config(store, nightly=nightly), engine, scheduler=BackgroundScheduler())
    sched.start(paused=True)
    try:
        # As if the machine slept through 03:00: due an hour ago, grace is 1 s.
        sched.modify_job(
            "sync:nightly", next_run_time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        )
        sched.resume()
        wait_for(lambda: bool(store.runs("nightly")))
    finally:
        sched.shutdown(wait=True)
    (run,) = store.runs("nightly")
    assert run.status is RunStatus.MISSED and run.trigger == "schedule"
    assert run.error and run.error.startswith("missed its start at")


def test_a_run_that_finds_the_connection_busy_is_recorded_as_skipped(
    store: Store, engine: SyncEngine
) -> None:
    sched = build_scheduler(
        config(store, shop=every("shop", 3600)), engine, scheduler=BackgroundScheduler()
    )
    with store.lock("shop"):  # as if `omnicrm sync shop` were running in another process
        sched.start()
        try:
            wait_for(lambda: bool(store.runs("shop")))
        finally:
            sched.shutdown(wait=True)
    (run,) = store.runs("shop")
    assert run.status is RunStatus.SKIPPED and "already syncing" in (run.error or "")


def test_the_crm_nightly_job_runs_on_its_cron_and_can_be_turned_off(
    store: Store, engine: SyncEngine
) -> None:
    ran: list[str] = []
    cfg = config(store)
    sched = build_scheduler(
        cfg,
        engine,
        scheduler=BackgroundScheduler(),
        jobs=crm_jobs(cfg, lambda: ran.append("nightly")),
    )
    sched.start(paused=True)
    try:
        job = sched.get_job(NIGHTLY_JOB)
        assert job is not None
        assert str(job.trigger.fields[5]) == "3" and str(job.trigger.fields[6]) == "30"
        assert str(job.trigger.timezone) == "Asia/Tokyo"
        job.func(*job.args)  # what the scheduler calls: the nightly body, failures logged
        assert ran == ["nightly"]
    finally:
        sched.shutdown(wait=False)

    off = dataclasses.replace(cfg, crm=CrmSection(nightly="off"))
    sched = build_scheduler(
        off, engine, scheduler=BackgroundScheduler(), jobs=crm_jobs(off, lambda: None)
    )
    sched.start(paused=True)
    try:
        assert sched.get_job(NIGHTLY_JOB) is None
    finally:
        sched.shutdown(wait=False)


def test_an_interval_job_runs_at_start_then_every_interval_and_survives_failing(
    store: Store, engine: SyncEngine
) -> None:
    ran: list[float] = []

    def body() -> None:
        ran.append(time.monotonic())
        raise RuntimeError("a failing check is logged, and the next one still runs")

    job = IntervalJob("campaigns:x", "campaigns of x", dt.timedelta(seconds=1), body)
    sched = build_scheduler(config(store), engine, scheduler=BackgroundScheduler(), jobs=[job])
    started = time.monotonic()
    sched.start()
    try:
        wait_for(lambda: len(ran) >= 2)
    finally:
        sched.shutdown(wait=True)
    assert ran[0] - started < 0.6  # at start, not after a first interval
    assert ran[1] - ran[0] > 0.8


def test_a_paused_connection_is_skipped_and_recorded(store: Store, engine: SyncEngine) -> None:
    shop = every("shop", 3600)
    store.set_paused("shop", True)
    assert store.paused() == {"shop"}
    run_scheduled(engine, shop)
    run = store.runs("shop")[0]
    assert (run.status, run.error) == (RunStatus.SKIPPED, "paused by the operator")
    store.set_paused("shop", False)
    assert store.paused() == set()
    run_scheduled(engine, shop)
    assert store.runs("shop")[0].status is RunStatus.COMPLETE
