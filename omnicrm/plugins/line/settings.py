"""Settings of the LINE dispatcher: the channel's credentials, the API, retries, a button."""

from __future__ import annotations

import urllib.parse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from omnicrm import is_loopback

API_URL = "https://api.line.me"


class LineSettings(BaseModel):
    """How a shop's LINE Official Account sends, and how its webhooks are checked."""

    model_config = ConfigDict(extra="forbid")

    channel_access_token: SecretStr = Field(
        description='The channel access token: write  channel_access_token = { env = "NAME" }.'
    )
    channel_secret: SecretStr = Field(
        description="The channel secret, which signs the webhooks (X-Line-Signature): "
        'write  channel_secret = { env = "NAME" }.'
    )
    api_url: str = Field(
        default=API_URL,
        description="The Messaging API's base URL (https; http only on loopback, for the "
        "emulator).",
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per request.")
    attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries of one message when LINE answers 429 or 5xx or does not answer "
        "(the same X-Line-Retry-Key each time, so none is delivered twice).",
    )
    backoff: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds before the second try, doubled for each further one "
        "(Retry-After, when LINE gives it, instead).",
    )
    button_label: str | None = Field(
        default=None,
        max_length=20,
        description="With button_url: a button under each message (a buttons template).",
    )
    button_url: str | None = Field(default=None, description="The https link of the button.")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value.strip())
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise ValueError("must be an https URL such as https://api.line.me")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("http is allowed only on loopback (the emulator); use https")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be the API's base URL, without a path")
        return value.strip().rstrip("/")

    @field_validator("button_url")
    @classmethod
    def _button_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https URL (LINE opens it in its browser)")
        if len(value.strip()) > 1000:
            raise ValueError("must be at most 1000 characters (LINE's limit for a URI action)")
        return value.strip()

    @field_validator("channel_access_token", "channel_secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _button(self) -> LineSettings:
        if (self.button_label is None) != (self.button_url is None):
            raise ValueError("give button_label and button_url together, or neither")
        return self
