"""The EC-CUBE tokens: renewed by the rotating refresh token, kept durably before use,
never half-written, renewed once when two processes need it, never logged."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from omnicrm import Stream
from omnicrm.plugins.ec_cube.api import channel
from omnicrm.plugins.ec_cube.api.client import EccubeClient
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.tokens import TokenSource, TokenStore
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox
from omnicrm.testing import stream_context

# Renews, then dies the moment the rotated pair is on disk (before using or returning it).
_CRASH = """
import json, os, sys, httpx
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.tokens import TokenSource
settings = EccubeSettings.model_validate(json.loads(sys.argv[1]))
source = TokenSource(settings, "shop", httpx.Client(), after_save=lambda: os._exit(9))
source.renew(source.store.load().access_token)
"""


def _works(settings: EccubeSettings) -> bool:
    with EccubeClient(settings, "shop") as api:
        return api.run("Orders", {"page": 1, "limit": 1, "start": None, "end": None}) is not None


def test_a_crash_right_after_the_rotation_never_strands_the_connection(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    assert settings.token_file is not None
    before = TokenStore(settings.token_file).load()
    assert before is not None
    values = json.dumps(
        settings.model_dump(mode="json")
        | {"client_secret": sandbox.client_secret, "webhook_secret": None}
    )
    done = subprocess.run([sys.executable, "-c", _CRASH, values], capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr
    assert sandbox.refreshes == 1  # the shop rotated: the old refresh token is revoked
    after = TokenStore(settings.token_file).load()
    assert after is not None and after.refresh_token != before.refresh_token
    # A fresh process carries on with the pair the dead one kept: it works and renews.
    sandbox.expire_tokens()
    assert _works(settings)
    assert sandbox.refreshes == 2


def test_a_crash_mid_write_leaves_the_previous_pair_whole(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    assert settings.token_file is not None
    store = TokenStore(settings.token_file)
    before = store.load()
    assert before is not None
    with httpx.Client() as http:
        source = TokenSource(settings, "shop", http)
        fresh = source.renew(before.access_token)

    def die() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save(fresh, before_replace=die)
    assert store.load() == fresh  # the renewal's own save had completed; this one left it
    assert [
        p.name for p in settings.token_file.parent.iterdir() if p.name.startswith(".tokens-")
    ] == []
    assert stat.S_IMODE(settings.token_file.stat().st_mode) == 0o600


def test_two_processes_renewing_spend_one_refresh_token(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    assert settings.token_file is not None
    old = TokenStore(settings.token_file).load()
    assert old is not None
    sandbox.expire_tokens()
    got: list[str] = []
    barrier = threading.Barrier(2)

    def renew() -> None:
        with httpx.Client() as http:
            source = TokenSource(settings, "shop", http)
            barrier.wait()
            got.append(source.renew(old.access_token).access_token)

    threads = [threading.Thread(target=renew) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 2 and got[0] == got[1]
    assert sandbox.refreshes == 1
    assert _works(settings)


def test_a_revoked_refresh_token_asks_for_connect(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    sandbox.refresh.clear()  # the shop revoked the API client's tokens
    sandbox.expire_tokens()
    from omnicrm.errors import AuthError

    with pytest.raises(AuthError, match="omnicrm connect"):
        _works(settings)


def test_tokens_are_never_logged_nor_shown(
    sandbox: EccubeSandbox, settings: EccubeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.expire_tokens()
    sandbox.fail_next(1)
    ctx = stream_context(
        "ec_cube", settings, Stream.CUSTOMERS, connection="shop", sleep=lambda s: None
    )
    assert list(channel.sync_customers(ctx))
    assert settings.token_file is not None
    tokens = TokenStore(settings.token_file).load()
    assert tokens is not None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (tokens.access_token, tokens.refresh_token, sandbox.client_secret):
        assert secret not in logged
        assert secret not in repr(tokens) and secret not in repr(settings)


def test_an_unauthorised_connection_names_the_command(
    tmp_path: Path, sandbox: EccubeSandbox
) -> None:
    settings = EccubeSettings.model_validate(
        sandbox.settings(token_file=str(tmp_path / "none.json"))
    )
    from omnicrm.errors import AuthError

    with pytest.raises(AuthError, match="omnicrm connect shop"):
        _works(settings)
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    from omnicrm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bad\.json"):
        TokenStore(bad).load()
    assert os.path.exists(bad)
