"""``omnicrm connect``: authorising an EC-CUBE connection against the sandbox, by a
typed code or a caught redirect; tokens kept 0600 outside the config, never shown."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.plugins.ec_cube.api.tokens import TokenStore
from omnicrm.plugins.ec_cube.sandbox.data import generate
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sandbox() -> Iterator[EccubeSandbox]:
    data = generate(2, customers=10, orders=20, end=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    with EccubeSandbox(copy.deepcopy(data), redirect_uri=redirect) as server:
        yield server


@pytest.fixture
def config(sandbox: EccubeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    settings = sandbox.settings()
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        '[connections.shop]\nchannel = "ec_cube"\n[connections.shop.settings]\n'
        + lines
        + '\n[connections.other]\nchannel = "ec_cube"\n[connections.other.settings]\n'
        + 'url = "https://shop.example.jp"\nclient_id = "x"\nclient_secret = "y"\n',
        encoding="utf-8",
    )
    return path


def _code(sandbox: EccubeSandbox) -> str:
    reply = httpx.get(
        f"{sandbox.url}/admin/authorize",
        params={
            "response_type": "code",
            "client_id": sandbox.client_id,
            "redirect_uri": sandbox.redirect_uri,
        },
    )
    return parse_qs(urlsplit(reply.headers["location"]).query)["code"][0]


def _token_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tokens" / "ec_cube-shop.json"


def test_a_typed_code_authorises_and_status_says_until_when(
    sandbox: EccubeSandbox, config: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    before = runner.invoke(cli, ["--config", str(config), "connect", "--status"])
    assert before.exit_code == 0 and "shop: not authorised" in before.output
    done = runner.invoke(
        cli, ["--config", str(config), "connect", "shop"], input=_code(sandbox) + "\n"
    )
    assert done.exit_code == 0, done.output
    assert f"{sandbox.url}/admin/authorize?response_type=code" in done.output
    path = _token_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = TokenStore(path).load()
    assert tokens is not None
    for secret in (tokens.access_token, tokens.refresh_token, sandbox.client_secret):
        assert secret not in done.output
    assert "tokens" not in config.read_text(encoding="utf-8")  # nothing written to the config
    status = runner.invoke(cli, ["--config", str(config), "connect", "--status"])
    assert status.exit_code == 0
    assert "shop: authorised until" in status.output and "other: not authorised" in status.output
    assert tokens.access_token not in status.output


def test_a_wrong_code_fails_cleanly(sandbox: EccubeSandbox, config: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["--config", str(config), "connect", "shop"], input="guess\n")
    assert done.exit_code == 1 and "EC-CUBE refused the authorisation code" in done.output
    assert not _token_path(tmp_path).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["connect", "nope"], "no connection 'nope'"), (["connect"], "name the connection")],
)
def test_usage_errors(config: Path, args: list[str], message: str) -> None:
    done = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert done.exit_code == 2 and message in done.output


def test_the_redirect_is_caught_on_the_loopback_port(
    sandbox: EccubeSandbox, config: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "OMNICRM_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omnicrm.cli",
            "--config",
            str(config),
            "connect",
            "shop",
            "--listen",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("http"):
            url = line.strip()
        if "waiting for the redirect" in line:
            break
    assert url
    # The browser: the shop redirects it to the loopback listener, which answers.
    landed = _browse(url)
    assert landed.status_code == 200 and "authorised" in landed.text
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    tokens = TokenStore(_token_path(tmp_path)).load()
    assert tokens is not None and tokens.access_token not in out + err


def _browse(url: str) -> Any:
    for _ in range(100):
        try:
            return httpx.get(url, follow_redirects=True, timeout=10)
        except httpx.ConnectError:  # the listener is not up yet
            import time

            time.sleep(0.1)
    raise AssertionError("the listener never answered")
