"""The webhook settings: https except on loopback, a real secret, never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from omnicrm.plugins.webhook.settings import WebhookSettings

SECRET = "0123456789abcdef-secret"


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.jp/omnicrm",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]:9000/",
    ],
)
def test_https_or_loopback_is_taken(url: str) -> None:
    assert WebhookSettings(url=url, secret=SECRET).url == url  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ({"url": "http://shop.example.jp/hook"}, "url", "http is allowed only on loopback"),
        ({"url": "ftp://shop.example.jp/"}, "url", "must be an https URL"),
        ({"url": "https://user:pw@shop.example.jp/"}, "url", "must not carry a user"),
        ({"secret": "short"}, "secret", "at least 16 characters"),
        ({"attempts": 0}, "attempts", "greater than or equal to 1"),
        ({"timeout": 0}, "timeout", "greater than 0"),
    ],
)
def test_a_mistake_is_named_by_its_field(given: dict[str, object], field: str, says: str) -> None:
    values = {"url": "https://shop.example.jp/omnicrm", "secret": SECRET, **given}
    with pytest.raises(ValidationError) as caught:
        WebhookSettings.model_validate(values)
    (error,) = caught.value.errors()
    assert error["loc"] == (field,) and says in error["msg"]
    assert "input_value" not in str(caught.value)  # a secret given wrong is not repeated


def test_the_secret_never_shows() -> None:
    settings = WebhookSettings(url="https://shop.example.jp/", secret=SECRET)  # type: ignore[arg-type]
    assert SECRET not in repr(settings) + str(settings) + settings.model_dump_json()
