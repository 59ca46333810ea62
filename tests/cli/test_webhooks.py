"""``omnicrm webhooks list``: what became of each webhook event, for the operator."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.store import Store, inbox


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
