"""The runtime's scheduled jobs: the recommendation write-back runs on ``[recommend]
write_back`` and is off unless asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicrm.app.config import load_config
from omnicrm.app.runtime import NIGHTLY_JOB, WRITE_BACK_JOB, Runtime
from omnicrm.core.host import Host
from omnicrm.errors import ConfigError


def runtime(tmp_path: Path, text: str) -> Runtime:
    path = tmp_path / "omnicrm.toml"
    path.write_text(text, "utf-8")
    return Runtime(Host.load(use_entry_points=False), load_config(path, {}))


def test_the_write_back_job_is_scheduled_on_its_cron(tmp_path: Path) -> None:
    on = runtime(tmp_path, '[recommend]\nwrite_back = "0 4 * * *"\nitems = 5\n')
    jobs = {job.id: job for job in on.jobs()}
    assert set(jobs) == {NIGHTLY_JOB, WRITE_BACK_JOB}
    assert jobs[WRITE_BACK_JOB].cron == "0 4 * * *"
    assert jobs[WRITE_BACK_JOB].run == on.write_back_all
    assert on.config.recommend.items == 5


def test_the_write_back_is_off_by_default_and_when_said(tmp_path: Path) -> None:
    assert WRITE_BACK_JOB not in {job.id for job in runtime(tmp_path, "").jobs()}
    off = runtime(tmp_path, '[recommend]\nwrite_back = "off"\n')
    assert WRITE_BACK_JOB not in {job.id for job in off.jobs()}


def test_a_bad_write_back_cron_names_the_key_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        runtime(tmp_path, '[store]\n\n[recommend]\nwrite_back = "nightly"\n')
    assert caught.value.line == 4 and caught.value.key == "recommend.write_back"
