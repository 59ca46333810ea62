"""`omnicrm run` and a piped `omnicrm sync` log each sync's start and end, one readable
line each, at the default level; the libraries' chatter stays at debug."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnicrm.core.store import Store

# What alembic and APScheduler say at INFO: none of it shows without -vv.
CHATTER = ("Context impl", "Will assume", "Running upgrade", "Added job", "apscheduler")


@pytest.fixture
def config(tmp_path: Path, synthetic_installed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OMNICRM_CONFIG", raising=False)
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n[connections.shop]\n'
        'channel = "synthetic"\nevery = "1s"\n',
        encoding="utf-8",
    )
    return path


def omnicrm(*args: str) -> list[str]:
    return [sys.executable, "-m", "omnicrm.cli", *args]


def test_run_logs_each_syncs_start_and_end(config: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        omnicrm("--config", str(config), "run"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        deadline = time.monotonic() + 60
        while len([r for r in store.runs("shop") if r.status == "complete"]) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no scheduled runs within 60 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        store.close()
    started = re.findall(r"INFO omnicrm\.sync: shop: run (\d+) started \(schedule\)$", err, re.M)
    ended = re.findall(
        r"INFO omnicrm\.sync: shop: run (\d+) complete in [\d.]+s: [\d,]+ read, [\d,]+ written, "
        r"[\d.]+s waited on rate limits, 0 error\(s\)$",
        err,
        re.M,
    )
    assert len(started) >= 2 and set(ended) >= set(started[:2]), err
    assert not [c for c in CHATTER if c in err], err
    # Each line says when, in the shop's zone (Asia/Tokyo by default).
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST INFO", err, re.M), err


def test_a_piped_sync_logs_its_start_and_end_and_vv_shows_the_libraries(config: Path) -> None:
    quiet = subprocess.run(
        omnicrm("--config", str(config), "sync", "shop"), capture_output=True, text=True
    )
    assert quiet.returncode == 0, quiet.stderr
    assert re.search(r"shop: run 1 started \(manual\)$", quiet.stderr, re.M), quiet.stderr
    assert re.search(r"shop: run 1 complete in .*130 read, 130 written", quiet.stderr)
    assert "shop: complete - 130 read, 130 written" in quiet.stdout
    assert not [c for c in CHATTER if c in quiet.stderr]
    loud = subprocess.run(
        omnicrm("-vv", "--config", str(config), "sync", "shop"), capture_output=True, text=True
    )
    assert loud.returncode == 0 and "INFO alembic" in loud.stderr
