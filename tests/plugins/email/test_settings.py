"""Email settings: what is refused, and the secret that never shows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from omnicrm.plugins.email.sandbox import DEMO_SENDER
from omnicrm.plugins.email.settings import EmailSettings

BASE: dict[str, Any] = {"host": "smtp.example.jp", **DEMO_SENDER}


def errors(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        EmailSettings.model_validate({**BASE, **changes})
    return {".".join(map(str, e["loc"])) or "-": e["msg"] for e in caught.value.errors()}


def test_defaults() -> None:
    settings = EmailSettings.model_validate(BASE)
    assert (settings.tls, settings.smtp_port, settings.dkim) == ("starttls", 587, False)
    assert EmailSettings.model_validate({**BASE, "tls": "implicit"}).smtp_port == 465


def test_each_error_names_its_field() -> None:
    assert set(errors(sender_address="shop")) == {"sender_address"}
    assert "https" in errors(unsubscribe_url="http://tokyo-tea.example.jp/u")["unsubscribe_url"]
    assert "特定電子メール法" in errors(postal_address=" ")["postal_address"]
    assert set(errors(tls="ssl")) == {"tls"}
    assert set(errors(host="smtp.example.jp:587")) == {"host"}
    assert "Asia/Tokyo" in errors(timezone="Tokyo")["timezone"]
    assert set(errors(port=0)) == {"port"}
    missing = errors(sender_name=None)
    assert set(missing) == {"sender_name"}
    with pytest.raises(ValidationError) as caught:
        EmailSettings.model_validate({})
    named = {e["loc"][0] for e in caught.value.errors()}
    assert named == {
        "host",
        "sender_name",
        "sender_address",
        "postal_address",
        "opt_out_contact",
        "unsubscribe_url",
        "unsubscribe_mailto",
    }


def test_credentials_go_together_and_never_in_clear_to_another_host() -> None:
    assert "together" in errors(username="shop")["-"]
    clear = errors(username="shop", password="pw", tls="none")["-"]
    assert "in clear to smtp.example.jp" in clear and "pw" not in clear.replace("password", "")
    local = EmailSettings.model_validate(
        {**BASE, "host": "127.0.0.1", "tls": "none", "username": "u", "password": "pw"}
    )
    assert local.password is not None


def test_dkim_settings_go_together_and_the_key_is_read(tmp_path: Path) -> None:
    assert "together" in errors(dkim_selector="s1")["-"]
    assert (
        "cannot read"
        in errors(dkim_private_key_path=str(tmp_path / "none.pem"))["dkim_private_key_path"]
    )
    (tmp_path / "notakey.pem").write_text("hello")
    assert (
        "not a PEM private key"
        in errors(dkim_private_key_path=str(tmp_path / "notakey.pem"))["dkim_private_key_path"]
    )


def test_the_password_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    settings = EmailSettings.model_validate({**BASE, "username": "shop", "password": "hunter2-xyz"})
    caplog.set_level(logging.DEBUG)
    logging.getLogger("omnicrm").info("settings: %s %r", settings, settings)
    shown = repr(settings) + str(settings) + settings.model_dump_json() + caplog.text
    assert "hunter2-xyz" not in shown
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2-xyz"
