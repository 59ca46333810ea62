"""``omnicrm webhooks list`` (what became of each event) and ``webhooks work`` (apply them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.channels import Stream
from omnicrm.core.store import Store, inbox
from omnicrm.core.store.inbox import EventStatus
from omnicrm.plugins.shopify.sandbox import webhooks as payloads
from omnicrm.plugins.shopify.sandbox.data import ShopData
from tests.support.webhooks import settled


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_the_list_shows_outcomes_and_reasons(store: Store, store_url: str, tmp_path: Path) -> None:
    inbox.enqueue(store, "tokyo", "evt-queued", "orders/create", b'{"email": "a@example.jp"}')
    inbox.record_rejected(
        store, "tokyo", "evt-bad", "shop/redact", "the body is not a shop/redact payload"
    )
    config = tmp_path / "omnicrm.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(cli, ["--config", str(config), "webhooks", "list"])
    assert shown.exit_code == 0, shown.output
    assert "1 waiting to be applied" in shown.output
    assert "evt-queued" in shown.output and "queued" in shown.output
    assert "evt-bad" in shown.output and "not a shop/redact payload" in shown.output
    assert "a@example.jp" not in shown.output  # never a body
    rejected = runner.invoke(
        cli, ["--config", str(config), "webhooks", "list", "--status", "rejected"]
    )
    assert rejected.exit_code == 0 and "evt-queued" not in rejected.output


@pytest.mark.parametrize("command", [["webhooks", "work"], ["run", "--webhooks"]])
def test_work_applies_what_another_process_accepted_and_stops_on_sigterm(
    store: Store, store_url: str, tmp_path: Path, command: list[str]
) -> None:
    data = ShopData(3, seed=5, background=False)
    for n in range(3):
        body = payloads.encode(payloads.customer_payload(data.customer(n)))
        inbox.enqueue(store, "tokyo", f"w{n}", "customers/update", body)
    config = tmp_path / "omnicrm.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n'
        "[connections.tokyo]\n"
        'channel = "shopify"\n'
        'cron = "0 3 1 1 *"\n'  # scheduled (for `run`), but no sync during the test
        "[connections.tokyo.settings]\n"
        'domain = "tokyo.myshopify.com"\n'
        'access_token = "shpat_x"\n'
        'client_secret = "shpss_x"\n',
        encoding="utf-8",
    )
    work = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMNICRM_DATA_DIR": str(tmp_path / "data")},
    )
    try:
        settled(store, timeout=60)
    finally:
        work.send_signal(signal.SIGTERM)
        output, _ = work.communicate(timeout=60)
    assert work.returncode == 0, output
    assert "Traceback" not in output
    assert {e.status for e in inbox.events(store, "tokyo")} == {EventStatus.APPLIED}
    assert store.count(Stream.CUSTOMERS, "tokyo") == 3


def test_work_with_a_bad_store_url_fails_clearly(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text('[store]\nurl = "nosuchdb://x"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "webhooks", "work"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "nosuchdb" in result.output


def test_serve_help_names_the_intake_only_mode() -> None:
    shown = CliRunner().invoke(cli, ["webhooks", "serve", "--help"])
    assert shown.exit_code == 0 and "--no-apply" in shown.output
