"""The dispatcher settings the docs show load as written: docs/configuration.md's
[shops.ID.messaging] example and the postal and webhook dispatchers' own examples, each
through the installed plugins, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicrm.app.config import load_config
from omnicrm.core.host import Host
from omnicrm.engage.campaigns import dispatcher_for
from tests.docs.markdown import blocks

ENV = {
    "TOKYO_TEA_SMTP_PASSWORD": "smtp-password-from-env",
    "TOKYO_TEA_LINE_TOKEN": "line-token-from-env",
    "TOKYO_TEA_LINE_SECRET": "line-secret-from-env",
    "TOKYO_TEA_WEBHOOK_SECRET": "webhook-secret-from-env-0123456789",
}


@pytest.mark.parametrize(
    ("document", "dispatchers"),
    [
        (
            "configuration.md",
            {"email": "email", "line": "line", "postal": "postal", "sms": "webhook-sms"},
        ),
        ("postal_dm.md", {"postal": "postal"}),
        ("webhook_dispatcher.md", {"sms": "webhook-sms"}),
    ],
)
def test_the_documented_dispatchers_load(
    document: str,
    dispatchers: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (example,) = [
        b.text for b in blocks(document) if b.language == "toml" and ".messaging." in b.text
    ]
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "omnicrm.toml"
    path.write_text('[shops.tokyo-tea]\nname = "東京茶舗"\n\n' + example, encoding="utf-8")
    config = load_config(path, {})
    host = Host.load()
    messaging = config.shop("tokyo-tea").messaging
    assert {m.value: c.dispatcher for m, c in messaging.dispatchers.items()} == dispatchers
    for medium in messaging.dispatchers:
        name, settings = dispatcher_for(host, messaging, medium, shop="tokyo-tea")
        shown = repr(settings) + str(settings)
        assert not any(secret in shown for secret in ENV.values()), name
