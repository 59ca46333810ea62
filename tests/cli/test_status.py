"""`omnicrm status`: times in the shop's zone, saying so, and the last error of a failed run."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.store import RunStatus, Store


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's own zone is neither UTC nor the shop's."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OMNICRM_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "omnicrm.db"


def shown_at(moment: dt.datetime, zone: str) -> set[str]:
    """The minute shown, or the next one if the clock turned meanwhile."""
    tz = ZoneInfo(zone)
    return {(moment + dt.timedelta(minutes=m)).astimezone(tz).strftime("%H:%M") for m in (0, 1)}


def test_status_shows_times_in_the_shops_zone_and_names_it(
    store_path: Path, machine_in_new_york: None
) -> None:
    store = Store.open(f"sqlite:///{store_path}")
    before = dt.datetime.now(dt.UTC)
    store.record_run("tokyo-shop", RunStatus.MISSED, trigger="schedule", error="missed")
    store.close()
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "(JST)" in result.output
    assert any(hhmm in result.output for hhmm in shown_at(before, "Asia/Tokyo")), result.output
    assert not any(hhmm in result.output for hhmm in shown_at(before, "America/New_York"))


def test_status_follows_the_configured_timezone(
    store_path: Path, machine_in_new_york: None
) -> None:
    store = Store.open(f"sqlite:///{store_path}")
    before = dt.datetime.now(dt.UTC)
    store.record_run("paris-shop", RunStatus.MISSED, trigger="schedule", error="missed")
    store.close()
    config = store_path.parent.parent / "omnicrm.toml"
    config.write_text('[scheduler]\ntimezone = "Europe/Paris"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "(CET)" in result.output or "(CEST)" in result.output
    assert any(hhmm in result.output for hhmm in shown_at(before, "Europe/Paris"))


def test_status_shows_the_last_error_of_a_failed_run(store_path: Path) -> None:
    store = Store.open(f"sqlite:///{store_path}")
    run = store.start_run("osaka-shop", trigger="schedule")
    store.finish_run(
        run,
        RunStatus.FAILED,
        errors=1,
        error="AuthError: the access token was rejected (401)",
        error_kind="auth",
    )
    store.record_run("kobe-shop", RunStatus.SKIPPED, trigger="schedule", error="paused")
    store.close()
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the line wraps at 80 columns
    assert "osaka-shop failed (auth) at " in said, result.output
    assert " JST: AuthError: the access token was rejected (401)" in said
    assert "kobe-shop skipped" not in result.output  # a skip says why in its status
