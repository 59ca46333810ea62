"""``omnicrm tui``: a bad config exits 2; ``--serve`` serves the UI's page over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from omnicrm.cli._common import Context
from omnicrm.cli.tui import tui_command


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(tui_command, [], obj=Context(tmp_path / "missing.toml"))
    assert result.exit_code == 2, result.output
    assert "missing.toml" in result.output


def test_a_shop_not_configured_exits_2_naming_the_shops(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n'
        "[shops.tokyo-tea]\n[shops.osaka-sweets]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(tui_command, ["--shop", "kyoto"], obj=Context(config))
    assert result.exit_code == 2, result.output
    assert "kyoto" in result.output and "osaka-sweets, tokyo-tea" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_prints_the_url_and_serves_the_page(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n', encoding="utf-8")
    port = _free_port()
    code = (
        "from pathlib import Path\n"
        "from omnicrm.cli._common import Context\n"
        "from omnicrm.cli.tui import tui_command\n"
        f"tui_command(['--serve', '--host', '127.0.0.1', '--port', '{port}'], "
        f"obj=Context(Path({str(config)!r})))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert page.status_code == 200
        assert "omnicrm" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
