"""The omnicrm command line, with the synthetic channel installed as a real plugin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnicrm.cli import cli
from omnicrm.core.store import RunStatus, Store


@pytest.fixture(autouse=True)
def _wide_and_isolated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, synthetic_installed: Path
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OMNICRM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def omnicrm(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_config(path: Path, store_url: str, settings: str = "", extra: str = "") -> Path:
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n[connections.shop]\nchannel = "synthetic"\n'
        f'every = "1s"\n[connections.shop.settings]\ntoken = {{ env = "SHOP_TOKEN" }}\n'
        f"{settings}\n{extra}",
        encoding="utf-8",
    )
    return path


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = omnicrm("init")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "omnicrm.toml").read_text(encoding="utf-8")
    assert "# [connections.my-synthetic-shop]" in text
    assert '# token = { env = "MY_SYNTHETIC_SHOP_TOKEN" }' in text
    assert omnicrm("connections").exit_code == 0
    again = omnicrm("init")
    assert again.exit_code == 2 and "--force" in again.output


def test_plugins_lists_versions_hooks_and_failures(synthetic_installed: Path) -> None:
    from tests.conftest import install_plugin

    install_plugin(synthetic_installed, "broken", "no_such_module")
    result = omnicrm("plugins")
    assert result.exit_code == 0
    assert "synthetic" in result.output and "1.0" in result.output
    assert "channel:synthetic" in result.output and "omnicrm_import_orders" in result.output
    assert "failed: ModuleNotFoundError" in result.output


def test_connections_validates_and_exits_2_on_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t")
    good = write_config(tmp_path / "omnicrm.toml", "sqlite:///x.db")
    assert "ok" in omnicrm("--config", str(good), "connections").output
    write_config(good, "sqlite:///x.db", settings="customers = 'many'")
    result = omnicrm("--config", str(good), "connections")
    assert result.exit_code == 2
    assert "[connections.shop.settings.customers]" in result.output


def test_sync_then_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t-secret-123")
    config = write_config(tmp_path / "omnicrm.toml", store_url)
    result = omnicrm("--config", str(config), "sync", "shop")
    assert result.exit_code == 0, result.output
    assert "shop: complete - 130 read, 130 written" in result.output
    status = omnicrm("--config", str(config), "status")
    assert "complete" in status.output and "130" in status.output
    assert "t-secret-123" not in result.output + status.output
    failing = omnicrm("--config", str(config), "sync", "shop", "--full")
    assert failing.exit_code == 0 and "0 written" in failing.output


def test_a_failed_sync_exits_1_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t")
    config = write_config(
        tmp_path / "omnicrm.toml", f"sqlite:///{tmp_path}/s.db", settings='fault = "auth"'
    )
    result = omnicrm("--config", str(config), "sync", "shop")
    assert result.exit_code == 1
    assert "failed" in result.output and "token rejected" in result.output


def test_status_without_a_config_reads_the_default_store(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'omnicrm.db'}")
    store.record_run("agency-shop", RunStatus.MISSED, trigger="schedule", error="missed")
    store.close()
    result = omnicrm("status")
    assert result.exit_code == 0 and "agency-shop" in result.output and "missed" in result.output


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnicrm.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def test_bad_config_exits_2_naming_file_line_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "omnicrm.toml", "sqlite:///x.db")
    result = run_cli("--config", str(config), "sync", "shop", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{config}:8 [connections.shop.settings.token]" in result.stderr
    assert "environment variable SHOP_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr
    unknown = run_cli("--config", str(config), "sync", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no connection named 'nope'" in unknown.stderr


def test_demo_once_syncs_every_sandbox_into_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The POS sandboxes at a tenth of their demo size: this is about the demo's wiring.
    for name, value in {
        "SMAREGI_SANDBOX_MEMBERS": "60",
        "SMAREGI_SANDBOX_SALES": "600",
        "SQUARE_SANDBOX_MEMBERS": "60",
        "SQUARE_SANDBOX_SALES": "600",
        "ECCUBE_SANDBOX_CUSTOMERS": "60",
        "ECCUBE_SANDBOX_ORDERS": "300",
    }.items():
        monkeypatch.setenv(name, value)
    # Seven sandboxes start and sync one after another: a loaded CI machine needs time.
    result = run_cli("demo", "--once", cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "tokyo-tea-synthetic: complete, 70 read, 70 written" in result.stdout
    connections = ("tokyo-tea-smaregi", "tokyo-tea-square", "osaka-sweets-square")
    for connection in (*connections, "osaka-sweets-ec_cube"):
        assert f"{connection}: complete," in result.stdout
    assert (tmp_path / "data" / "omnicrm.db").exists()
    # Each shop's mail goes to its own catcher, kept in a Maildir; its campaign waits.
    assert "campaigns: tokyo-tea, osaka-sweets each have second-purchase ready" in result.stdout
    for shop in ("tokyo-tea", "osaka-sweets"):
        assert (tmp_path / "data" / "demo-messages" / f"{shop}-email" / "new").is_dir()
        # Postal DM files go to a directory kept beside it.
        assert (tmp_path / "data" / "demo-messages" / f"{shop}-postal").is_dir()


@pytest.mark.slow
def test_run_schedules_syncs_until_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t")
    config = write_config(tmp_path / "omnicrm.toml", store_url)
    store = Store.open(store_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 30
        while len([r for r in store.runs("shop") if r.ended_at]) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no scheduled runs within 30 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        store.close()
    assert proc.returncode == 0, err
    assert "scheduled: sync shop (every 1s)" in out


def test_httpx_url_logging_is_quieted_because_urls_can_carry_secrets() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.NOTSET)
    omnicrm("-vv", "plugins")
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
