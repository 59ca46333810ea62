"""A sync stopped by Ctrl-C, SIGTERM or the scheduler is recorded as interrupted, never as
complete, and the stream it was reading is not marked done."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from omnicrm import Stream
from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.scheduler import run_scheduled
from omnicrm.core.store import Run, RunStatus, Store
from omnicrm.core.sync import Interrupted, StreamProgress, SyncEngine
from tests import synthetic_plugin
from tests.support.configs import write_synthetic_config
from tests.synthetic_plugin import SyntheticSettings

# Slow enough that a signal lands mid-sync: 300 pages of 0.05 s.
SLOW = {"customers": 3000, "orders": 3000, "page_size": 20, "page_delay": 0.05}


def write_config(path: Path, store_url: str) -> None:
    write_synthetic_config(path, store_url, SLOW, batch_size=50)


def _as_in_a_terminal() -> None:
    # A background job inherits SIGINT ignored; Ctrl-C reaches a foreground one.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_interrupted(run: Run, reason: str) -> None:
    assert run.status is RunStatus.FAILED
    assert run.error_kind == "interrupted"
    assert run.error is not None and reason in run.error
    assert run.ended_at is not None
    # The stream being read when the signal came is not done.
    assert len(run.streams) < 2 or not all(s["done"] for s in run.streams.values())


@pytest.mark.parametrize(
    ("signum", "reason"), [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")]
)
def test_a_signal_mid_sync_records_the_run_as_interrupted(
    store_url: str, synthetic_installed: Path, tmp_path: Path, signum: int, reason: str
) -> None:
    config = tmp_path / "omnicrm.toml"
    write_config(config, store_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), "sync", "shop"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
        preexec_fn=_as_in_a_terminal,
    )
    watcher = Store.open(store_url)
    try:
        deadline = time.monotonic() + 60
        while not [r for r in watcher.runs("shop") if r.records_written]:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the sync never wrote anything"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        [run] = watcher.runs("shop")
    finally:
        watcher.close()
    assert proc.returncode != 0
    assert "Traceback" not in err.decode()
    assert_interrupted(run, reason)


@pytest.fixture
def host() -> Host:
    return Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})


def connection(**settings: object) -> Connection:
    return Connection(
        "shop",
        "synthetic",
        SyntheticSettings(**settings),  # type: ignore[arg-type]
        lookback=dt.timedelta(minutes=1),
        batch_size=10,
    )


def test_any_base_exception_is_recorded_and_goes_on_unwinding(host: Host, store: Store) -> None:
    def ctrl_c(update: StreamProgress) -> None:
        if update.written >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SyncEngine(host, store).sync(connection(customers=100, orders=100), progress=ctrl_c)
    [run] = store.runs("shop")
    assert_interrupted(run, "SIGINT")
    assert run.streams == {"customers": {"read": 20, "written": 20, "done": False}}
    # The next run takes over from the last committed batch and completes.
    result = SyncEngine(host, store).sync(connection(customers=100, orders=100))
    assert result.status is RunStatus.COMPLETE
    assert store.stream_state("shop", Stream.CUSTOMERS).cursor is not None


def test_the_scheduler_stops_a_run_in_another_thread(host: Host, store: Store) -> None:
    engine = SyncEngine(host, store)
    settings = {"customers": 2000, "orders": 10, "page_size": 10, "page_delay": 0.02}
    job = threading.Thread(target=run_scheduled, args=(engine, connection(**settings)))
    job.start()
    deadline = time.monotonic() + 30
    while not [r for r in store.runs("shop") if r.records_written]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    engine.interrupt("SIGTERM")
    job.join(10)
    assert not job.is_alive(), "the run did not stop"
    [run] = store.runs("shop")
    assert_interrupted(run, "SIGTERM")


def test_an_interrupted_wait_ends_at_once(host: Host, store: Store) -> None:
    engine = SyncEngine(host, store)
    threading.Timer(0.2, engine.interrupt, args=("SIGTERM",)).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        engine._pause(30)
    assert time.monotonic() - started < 5
