"""The sync engine's log: one line when a run starts, one when it ends, and progress
lines at a steady interval in between (what `omnicrm run` shows without a terminal)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from tests import synthetic_plugin
from tests.synthetic_plugin import SyntheticSettings


@pytest.fixture(autouse=True)
def _fresh_faults() -> Iterator[None]:
    synthetic_plugin.reset_faults()
    yield
    synthetic_plugin.reset_faults()


def engine(store: Store, interval: float = 10.0) -> SyncEngine:
    host = Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})
    return SyncEngine(
        host, store, retry=RetryPolicy(attempts=2, base=0.001, cap=0.01), progress_interval=interval
    )


def conn(**settings: Any) -> Connection:
    return Connection(
        name="shop",
        channel="synthetic",
        settings=SyntheticSettings(**settings),
        lookback=dt.timedelta(minutes=5),
        batch_size=10,
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "omnicrm.sync"]


def test_a_run_logs_its_start_and_its_end_with_counts_time_waits_and_errors(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omnicrm.sync")
    result = engine(store).sync(conn())
    start, end = lines(caplog)
    assert start == f"shop: run {result.run_id} started (manual)"
    assert re.fullmatch(
        rf"shop: run {result.run_id} complete in \d+\.\ds: 130 read, 130 written, "
        r"0\.0s waited on rate limits, 0 error\(s\)",
        end,
    ), end


def test_a_failed_run_says_how_it_failed_in_its_end_line(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omnicrm.sync")
    engine(store).sync(conn(fault="auth"))
    end = [line for line in lines(caplog) if " in " in line and "started" not in line][-1]
    assert re.search(r"failed \(auth\) in [\d.]+s: .* 1 error\(s\)", end), end


def test_a_long_run_logs_progress_at_a_steady_interval(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omnicrm.sync")
    began = time.monotonic()
    result = engine(store, interval=0.2).sync(conn(page_delay=0.15, page_size=10))
    took = time.monotonic() - began
    progress = [line for line in lines(caplog) if "going for" in line]
    # 13 pages of 0.15 s: about ten beats of 0.2 s; a loaded machine may lose a few.
    assert took > 1.5 and len(progress) >= 3, progress
    assert all(
        re.fullmatch(rf"shop: run {result.run_id} going for [\d.]+s, now \w+; read so far: .+", p)
        for p in progress
    ), progress
    assert any("customers" in p for p in progress)
    # Nothing after the end: the beat stops with the run.
    assert "complete in" in lines(caplog)[-1]


def test_no_progress_thread_when_nobody_reads_info(store: Store) -> None:
    logging.getLogger("omnicrm.sync").setLevel(logging.WARNING)
    try:
        engine(store, interval=0.01).sync(conn(page_delay=0.05, page_size=10, customers=20))
    finally:
        logging.getLogger("omnicrm.sync").setLevel(logging.NOTSET)
    assert not [t for t in threading.enumerate() if t.name.startswith("progress ")]
