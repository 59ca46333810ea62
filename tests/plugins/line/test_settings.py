"""The LINE settings as docs/line.md writes them, and what they refuse, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omnicrm.app.config import load_config
from omnicrm.core.host import Host
from omnicrm.core.records import Medium
from omnicrm.engage.campaigns import dispatcher_for
from omnicrm.plugins.line import plugin
from omnicrm.plugins.line.settings import LineSettings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "line.md"


def test_the_documented_configuration_loads_with_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOCS.read_text(encoding="utf-8")
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    toml = "\n".join(line.strip() for line in toml.splitlines())
    monkeypatch.setenv("TOKYO_TEA_LINE_TOKEN", "token-from-env")
    monkeypatch.setenv("TOKYO_TEA_LINE_SECRET", "secret-from-env")
    path = tmp_path / "omnicrm.toml"
    path.write_text('[shops.tokyo-tea]\nname = "東京茶舗"\n\n' + toml, encoding="utf-8")
    config = load_config(path, {})
    host = Host.load(extra={"line": plugin}, use_entry_points=False)
    shop = config.shop("tokyo-tea")
    name, settings = dispatcher_for(host, shop.messaging, Medium.LINE, shop="tokyo-tea")
    assert name == "line" and isinstance(settings, LineSettings)
    assert settings.channel_access_token.get_secret_value() == "token-from-env"
    assert "token-from-env" not in repr(settings) and "secret-from-env" not in str(settings)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"api_url": "http://api.line.me"}, "api_url"),
        ({"api_url": "https://api.line.me/v2/bot"}, "api_url"),
        ({"channel_access_token": " "}, "channel_access_token"),
        ({"button_url": "http://example.jp"}, "button_url"),
        ({"attempts": 0}, "attempts"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    base = {"channel_access_token": "t", "channel_secret": "s"}
    with pytest.raises(ValidationError) as caught:
        LineSettings.model_validate({**base, **change})
    assert field in {str(e["loc"][0]) for e in caught.value.errors() if e["loc"]}


def test_a_button_needs_both_its_label_and_its_url() -> None:
    with pytest.raises(ValidationError, match="together"):
        LineSettings.model_validate(
            {"channel_access_token": "t", "channel_secret": "s", "button_label": "見る"}
        )


def test_http_is_allowed_on_loopback_only() -> None:
    settings = LineSettings.model_validate(
        {"channel_access_token": "t", "channel_secret": "s", "api_url": "http://127.0.0.1:8080/"}
    )
    assert settings.api_url == "http://127.0.0.1:8080"
