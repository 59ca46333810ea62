"""The scheduler: one APScheduler job per connection, rebuilt from config at start.

A connection whose channel type reconciles (``ChannelType.reconciles``) also gets a
``reconcile:NAME`` job on ``[scheduler] reconcile``. Jobs have explicit ids
(``sync:NAME``), never overlap (``max_instances=1`` here, the
connection lock across processes), coalesce a backlog into one run, and tolerate a
generous misfire grace. Cursors and run history live in the store, not in a job store;
runs the scheduler missed or had to skip are recorded there too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from omnicrm.core.channels import Connection
from omnicrm.core.settings import SchedulerSection
from omnicrm.core.store import RunStatus
from omnicrm.core.sync import Interrupted, SyncEngine
from omnicrm.errors import LockedError

log = logging.getLogger("omnicrm.scheduler")

JOB_PREFIX = "sync:"
RECONCILE_PREFIX = "reconcile:"


class Schedule(Protocol):
    """What the scheduler reads of a loaded configuration."""

    @property
    def scheduler(self) -> SchedulerSection: ...

    @property
    def connections(self) -> Mapping[str, Connection]: ...


@dataclass(frozen=True)
class CronJob:
    """A job of a layer above the framework (the CRM's nightly refresh, a campaign) run
    on a cron schedule in the scheduler's timezone; failures are logged, never raised."""

    id: str
    name: str
    cron: str
    run: Callable[[], None]


@dataclass(frozen=True)
class IntervalJob:
    """A job of a layer above the framework run every ``every`` (a check for scheduled
    campaigns that are due), the first time at start; failures are logged, never raised.
    A run still going when the next is due makes the next wait (``max_instances=1``)."""

    id: str
    name: str
    every: dt.timedelta
    run: Callable[[], None]


def job_id(connection: str) -> str:
    return f"{JOB_PREFIX}{connection}"


def trigger_for(connection: Connection, timezone: str) -> BaseTrigger | None:
    """The trigger of a connection's schedule, or None if it is synced by hand only."""
    if connection.cron:
        return CronTrigger.from_crontab(connection.cron, timezone=timezone)
    if connection.every:
        return IntervalTrigger(seconds=connection.every.total_seconds(), timezone=timezone)
    return None


def run_scheduled(engine: SyncEngine, connection: Connection) -> None:
    """The job body: one scheduled sync. Never raises, so the scheduler never sees a crash."""
    try:
        if connection.name in engine.store.paused():
            engine.store.record_run(
                connection.name,
                RunStatus.SKIPPED,
                trigger="schedule",
                error="paused by the operator",
            )
            return
        engine.sync(connection, trigger="schedule")
    except Interrupted as exc:
        # Recorded on the run; the scheduler is shutting down.
        log.info("%s: scheduled sync stopped: %s", connection.name, exc.reason)
    except LockedError as exc:
        engine.store.record_run(
            connection.name, RunStatus.SKIPPED, trigger="schedule", error=str(exc)
        )
    except Exception:
        log.exception("%s: scheduled sync crashed", connection.name)


def run_reconcile(engine: SyncEngine, connection: Connection) -> None:
    """The nightly id reconciliation of one connection. Never raises."""
    try:
        if connection.name in engine.store.paused():
            return
        engine.reconcile(connection, trigger="schedule")
    except Interrupted as exc:
        log.info("%s: reconciliation stopped: %s", connection.name, exc.reason)
    except LockedError as exc:
        # A sync is running: the next night's reconciliation catches up.
        log.info("%s: reconciliation skipped: %s", connection.name, exc)
    except Exception:
        log.exception("%s: reconciliation crashed", connection.name)


def _run_cron_job(job: CronJob | IntervalJob) -> None:
    try:
        job.run()
    except Exception:
        log.exception("the job %s failed", job.name)


def build_scheduler(
    config: Schedule,
    engine: SyncEngine,
    *,
    scheduler: BaseScheduler | None = None,
    run_at_start: bool = True,
    jobs: Sequence[CronJob | IntervalJob] = (),
) -> BaseScheduler:
    """A scheduler with one job per enabled, scheduled connection of ``config``, and
    ``jobs`` from the layers above (the CRM's nightly refresh on its cron, the check for
    due campaigns every few seconds)."""
    sched = scheduler or BlockingScheduler()
    sched.configure(
        timezone=config.scheduler.timezone,
        executors={"default": ThreadPoolExecutor(config.scheduler.max_workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(config.scheduler.misfire_grace.total_seconds()),
        },
    )
    add_jobs(sched, config, engine, run_at_start=run_at_start)
    zone = config.scheduler.timezone
    for job in jobs:
        trigger: BaseTrigger
        if isinstance(job, IntervalJob):
            trigger = IntervalTrigger(seconds=job.every.total_seconds(), timezone=zone)
            every = f"every {job.every.total_seconds():g}s"
            extra: dict[str, Any] = {"next_run_time": dt.datetime.now(dt.UTC)}
        else:
            trigger = CronTrigger.from_crontab(job.cron, timezone=zone)
            every, extra = f"cron {job.cron}", {}
        sched.add_job(
            _run_cron_job,
            trigger,
            args=[job],
            id=job.id,
            name=f"{job.name} ({every})",
            replace_existing=True,
            **extra,
        )
    sched.add_listener(_recorder(engine), EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return sched


def add_jobs(
    sched: BaseScheduler, config: Schedule, engine: SyncEngine, *, run_at_start: bool = True
) -> None:
    """Add or replace the job of each enabled, scheduled connection of ``config``."""
    now = dt.datetime.now(dt.UTC)
    for connection in config.connections.values():
        _add_reconcile_job(sched, config, engine, connection)
        trigger = trigger_for(connection, config.scheduler.timezone)
        if not connection.enabled or trigger is None:
            continue
        extra: dict[str, Any] = {}
        if run_at_start and connection.every:
            extra["next_run_time"] = now  # interval jobs start with a sync, not a wait
        sched.add_job(
            run_scheduled,
            trigger,
            args=[engine, connection],
            id=job_id(connection.name),
            name=f"sync {connection.name} ({connection.schedule})",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(config.scheduler.misfire_grace.total_seconds()),
            **extra,
        )


def _add_reconcile_job(
    sched: BaseScheduler, config: Schedule, engine: SyncEngine, connection: Connection
) -> None:
    """The nightly reconciliation of ``connection``, if its channel type reconciles."""
    cron = config.scheduler.reconcile
    job = f"{RECONCILE_PREFIX}{connection.name}"
    channel = engine.host.channel_types.get(connection.channel)
    if not connection.enabled or not cron or channel is None or not channel.reconciles:
        if sched.get_job(job) is not None:
            sched.remove_job(job)
        return
    sched.add_job(
        run_reconcile,
        CronTrigger.from_crontab(cron, timezone=config.scheduler.timezone),
        args=[engine, connection],
        id=job,
        name=f"reconcile {connection.name} (cron {cron})",
        replace_existing=True,
    )


def _recorder(engine: SyncEngine) -> Callable[[JobExecutionEvent | JobSubmissionEvent], None]:
    """A listener that records runs the scheduler missed or had to skip."""

    def on_event(event: JobExecutionEvent | JobSubmissionEvent) -> None:
        if not event.job_id.startswith(JOB_PREFIX):
            return
        name = event.job_id.removeprefix(JOB_PREFIX)
        if event.code == EVENT_JOB_MISSED:
            when = event.scheduled_run_time
            status, why = RunStatus.MISSED, f"missed its start at {when:%Y-%m-%d %H:%M:%S%z}"
        else:
            status, why = RunStatus.SKIPPED, "the previous scheduled run was still going"
        log.warning("%s: %s", name, why)
        try:
            engine.store.record_run(name, status, trigger="schedule", error=why)
        except Exception:
            log.exception("%s: could not record a %s run", name, status.value)

    return on_event
