"""Kill the sync process at random points; a rerun must leave the same store as one clean run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import SyncEngine
from tests import synthetic_plugin
from tests.support.configs import write_synthetic_config
from tests.synthetic_plugin import SyntheticSettings

SETTINGS = {"customers": 600, "orders": 1000, "page_size": 20, "page_delay": 0.05}


def write_config(path: Path, store_url: str) -> None:
    write_synthetic_config(path, store_url, SETTINGS, batch_size=23, lookback="2m")


def sync_process(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), "sync", "shop"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def snapshot(store: Store) -> tuple[list[object], list[object]]:
    customers = [c.model_copy(update={"connection": None}) for c in store.customers("shop")]
    orders = [o.model_copy(update={"connection": None}) for o in store.orders("shop")]
    return customers, orders


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_a_clean_run(
    store_url: str, synthetic_installed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "omnicrm.toml"
    write_config(config, store_url)
    seed = int(os.environ.get("OMNICRM_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill seed {seed} (set OMNICRM_KILL_SEED to replay)")

    watcher = Store.open(store_url)
    killed = 0
    for attempt in range(6):
        proc = sync_process(config)
        # Kill mid-sync: once this attempt's run is recorded, at a random point of it.
        deadline = time.monotonic() + 30
        while len(watcher.runs("shop")) <= attempt and proc.poll() is None:
            assert time.monotonic() < deadline, "the sync never started"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.02, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(30)
    watcher.close()
    assert killed >= 4, "too few kills landed mid-sync to prove anything"

    final = sync_process(config)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()

    store = Store.open(store_url)
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}")
    try:
        host = Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})
        connection = Connection("shop", "synthetic", SyntheticSettings(**SETTINGS))
        assert SyncEngine(host, clean).sync(connection).status is RunStatus.COMPLETE
        assert snapshot(store) == snapshot(clean)
        runs = store.runs("shop")
        assert runs[0].status is RunStatus.COMPLETE
        assert not [r for r in runs if r.status is RunStatus.RUNNING]
        assert sum(r.error_kind == "abandoned" for r in runs) == killed
    finally:
        store.close()
        clean.close()
