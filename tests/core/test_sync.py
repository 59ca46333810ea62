"""The sync engine against the synthetic channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from omnicrm import Checkpoint, Customer, Stream, StreamContext, hookimpl
from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import profile_changes
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.crm.schema import profiles
from omnicrm.errors import LockedError
from tests import synthetic_plugin
from tests.synthetic_plugin import SyntheticSettings


@pytest.fixture(autouse=True)
def _fresh_faults() -> Iterator[None]:
    synthetic_plugin.reset_faults()
    yield
    synthetic_plugin.reset_faults()


@pytest.fixture
def host() -> Host:
    host = Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})
    assert not host.failures
    return host


@pytest.fixture
def engine(host: Host, store: Store) -> SyncEngine:
    return SyncEngine(host, store, retry=RetryPolicy(attempts=3, base=0.001, cap=0.01))


class NoSettings(BaseModel):
    pass


def conn(name: str = "shop", **settings: Any) -> Connection:
    return Connection(
        name=name,
        channel="synthetic",
        settings=SyntheticSettings(**settings),
        lookback=dt.timedelta(minutes=5),
        batch_size=10,
    )


def test_full_sync_stores_every_record_with_its_connection(
    engine: SyncEngine, store: Store
) -> None:
    result = engine.sync(conn())
    assert result.status is RunStatus.COMPLETE
    assert (result.read, result.written) == (130, 130)
    stored = list(store.customers("shop"))
    assert len(stored) == 50 and {c.connection for c in stored} == {"shop"}
    expected = {c.id: c for c in synthetic_plugin.customers(50, 1, 0)}
    assert all(c == expected[c.id].model_copy(update={"connection": "shop"}) for c in stored)
    assert store.count(Stream.ORDERS, "shop") == 80
    run = store.runs("shop")[0]
    assert (run.status, run.records_read, run.records_written) == (RunStatus.COMPLETE, 130, 130)
    assert run.streams["customers"] == {"read": 50, "written": 50, "done": True}


def test_cursor_is_the_last_record_and_rerun_writes_nothing(
    engine: SyncEngine, store: Store
) -> None:
    engine.sync(conn())
    last = synthetic_plugin.customers(50, 1, 0)[-1].updated_at
    assert store.stream_state("shop", Stream.CUSTOMERS).cursor == last
    again = engine.sync(conn())
    assert again.status is RunStatus.COMPLETE
    assert again.written == 0
    # Only the lookback window (5 minutes = 15 customers at 3 per minute) is read again.
    assert 0 < again.streams[Stream.CUSTOMERS].read <= 18


def test_incremental_run_picks_up_changes(engine: SyncEngine, store: Store) -> None:
    engine.sync(conn())
    changed = engine.sync(conn(generation=1))
    assert changed.status is RunStatus.COMPLETE
    touched = [i for i in range(50) if i % 7 == 1]
    assert changed.streams[Stream.CUSTOMERS].written == len(touched)
    emails = {c.raw["index"]: c.email for c in store.customers("shop")}
    assert all(emails[i] == f"user{i}.g1@example.jp" for i in touched)
    assert len(emails) == 50


def test_order_lines_are_replaced_not_appended(engine: SyncEngine, store: Store) -> None:
    engine.sync(conn())
    engine.sync(conn(generation=1))
    by_id = {o.id: o for o in store.orders("shop")}
    for expected in synthetic_plugin.orders(80, 50, 1, 1):
        assert by_id[expected.id].lines == expected.lines


def test_cursor_is_capped_at_the_run_start(host: Host, store: Store) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    class Late:
        @hookimpl
        def omnicrm_register(self, register: Any) -> None:
            from omnicrm import ChannelType

            register.channel_type(ChannelType("late", NoSettings, streams=(Stream.CUSTOMERS,)))

        @hookimpl
        def omnicrm_sync_customers(self, ctx: StreamContext[BaseModel]) -> Iterator[Customer]:
            yield Customer(id="1", updated_at=future, raw={"a": 1})

    host.add(Late(), "late")
    engine = SyncEngine(host, store)
    before = dt.datetime.now(dt.UTC)
    engine.sync(Connection("late", "late", NoSettings()))
    cursor = store.stream_state("late", Stream.CUSTOMERS).cursor
    assert cursor is not None and before <= cursor < future


def test_transient_errors_are_retried_from_the_last_checkpoint(
    engine: SyncEngine, store: Store
) -> None:
    result = engine.sync(conn(fault="transient", fault_at=25, fault_times=2))
    assert result.status is RunStatus.COMPLETE
    assert result.errors == 4  # two per stream
    assert store.count(Stream.CUSTOMERS, "shop") == 50
    # The retries re-read from the committed batch at 20 (minus lookback), never from 0.
    assert result.streams[Stream.CUSTOMERS].read < 50 + 2 * 25


def test_exhausted_retries_fail_and_keep_the_committed_cursor(
    engine: SyncEngine, store: Store
) -> None:
    result = engine.sync(conn(fault="transient", fault_at=25, fault_times=99))
    assert result.status is RunStatus.FAILED and result.error_kind == "transient"
    assert "503" in (result.error or "")
    cursor = store.stream_state("shop", Stream.CUSTOMERS).cursor
    records = synthetic_plugin.customers(50, 1, 0)
    # Committed batches stand (at least the first 20); nothing at or past the failing
    # record 25 was ever committed.
    assert cursor is not None
    assert records[19].updated_at <= cursor < records[25].updated_at
    run = store.runs("shop")[0]
    assert run.status is RunStatus.FAILED and run.errors == 3 and run.ended_at is not None


def test_rate_limits_are_waited_out_and_counted(engine: SyncEngine, store: Store) -> None:
    ok = engine.sync(conn(fault="rate_limited", fault_at=5, fault_times=2))
    assert ok.status is RunStatus.COMPLETE
    assert ok.rate_limit_wait == pytest.approx(0.04)  # 2 waits of 0.01 s per stream
    synthetic_plugin.reset_faults()
    limited = engine.sync(conn(name="other", fault="rate_limited", fault_times=99))
    assert limited.status is RunStatus.RATE_LIMITED
    assert store.runs("other")[0].status is RunStatus.RATE_LIMITED


def test_a_retry_after_too_long_to_wait_ends_the_run_at_once(host: Host, store: Store) -> None:
    engine = SyncEngine(host, store, retry=RetryPolicy(attempts=5, longest_wait=0.001))
    result = engine.sync(conn(fault="rate_limited", fault_times=99))  # asks for 0.01 s
    assert result.status is RunStatus.RATE_LIMITED
    assert result.errors == 1 and result.rate_limit_wait == 0


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("auth", "auth"), ("data", "data"), ("unordered", "plugin"), ("wrong_type", "plugin")],
)
def test_permanent_errors_fail_at_once(
    engine: SyncEngine, store: Store, fault: str, kind: str
) -> None:
    result = engine.sync(conn(fault=fault, fault_at=3, fault_times=99))
    assert result.status is RunStatus.FAILED
    assert result.error_kind == kind
    assert result.errors == 1  # not retried
    assert store.runs("shop")[0].error == result.error


def test_checkpoint_state_is_handed_back(host: Host, store: Store) -> None:
    seen: list[dict[str, Any]] = []

    class Stateful:
        @hookimpl
        def omnicrm_register(self, register: Any) -> None:
            from omnicrm import ChannelType

            register.channel_type(ChannelType("stateful", NoSettings, streams=(Stream.CUSTOMERS,)))

        @hookimpl
        def omnicrm_sync_customers(
            self, ctx: StreamContext[BaseModel]
        ) -> Iterator[Customer | Checkpoint]:
            seen.append(dict(ctx.state))
            yield Customer(id="1", updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            yield Checkpoint(state={"bulk_operation": f"op-{len(seen)}"})

    host.add(Stateful(), "stateful")
    engine = SyncEngine(host, store)
    engine.sync(Connection("s", "stateful", NoSettings()))
    engine.sync(Connection("s", "stateful", NoSettings()))
    assert seen == [{}, {"bulk_operation": "op-1"}]


def test_full_resync_reads_everything_again(engine: SyncEngine, store: Store) -> None:
    engine.sync(conn())
    full = engine.sync(conn(), full=True)
    assert full.streams[Stream.CUSTOMERS].read == 50
    assert full.written == 0
    assert store.runs("shop")[0].full


def test_two_runs_of_one_connection_never_overlap(
    host: Host, store: Store, engine: SyncEngine
) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(update: Any) -> None:
        started.set()
        release.wait(10)

    worker = threading.Thread(target=lambda: engine.sync(conn(), progress=slow))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(LockedError):
            SyncEngine(host, store).sync(conn())
        assert SyncEngine(host, store).sync(conn(name="other")).status is RunStatus.COMPLETE
    finally:
        release.set()
        worker.join(10)
    assert store.runs("shop")[0].status is RunStatus.COMPLETE


def test_a_run_left_running_by_a_dead_process_is_marked_failed(
    engine: SyncEngine, store: Store
) -> None:
    stale = store.start_run("shop", trigger="schedule")
    engine.sync(conn())
    runs = {run.id: run for run in store.runs("shop")}
    assert runs[stale].status is RunStatus.FAILED
    assert runs[stale].error_kind == "abandoned"


def test_secrets_never_reach_the_logs(engine: SyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    engine.sync(conn(fault="auth"))
    engine.sync(conn(name="ok"))
    assert caplog.text and "synthetic-secret-token" not in caplog.text


def test_after_run_sees_the_recorded_run_and_cannot_fail_it(host: Host, store: Store) -> None:
    seen: list[RunStatus] = []

    def after(result: Any) -> None:
        seen.append(store.runs("shop")[0].status)
        raise RuntimeError("the CRM refresh broke")

    engine = SyncEngine(host, store, after_run=after)
    result = engine.sync(conn())
    assert result.status is RunStatus.COMPLETE
    assert seen == [RunStatus.COMPLETE]


def test_a_runtime_sync_refreshes_the_profiles(host: Host, store_url: str) -> None:
    runtime = Runtime(host, Config(path=None, store_url=store_url, scheduler=SchedulerSection()))
    try:
        assert runtime.engine().sync(conn()).status is RunStatus.COMPLETE
        with runtime.store.engine.connect() as c:
            assert c.execute(select(func.count()).select_from(profiles)).scalar_one() > 0
            assert c.execute(select(func.count()).select_from(profile_changes)).scalar_one() == 0
    finally:
        runtime.close()
