"""Settings of the webhook dispatcher: the endpoint, the signing secret, retries."""

from __future__ import annotations

import urllib.parse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from omnicrm import is_loopback

MIN_SECRET = 16
"""The shortest signing secret taken: an HMAC key must not be guessable."""


class WebhookSettings(BaseModel):
    """Where a shop's messages are posted, and how they are signed and retried."""

    # A secret given wrong (too short) must not come back in the error's text.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(
        description="The shop's endpoint: https (http only on loopback, for a local tool)."
    )
    secret: SecretStr = Field(
        description="The key of the HMAC-SHA256 signature (at least 16 characters): "
        'write  secret = { env = "NAME" }.'
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per request.")
    attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries of one message when the endpoint answers 429 or 5xx or does not "
        "answer in time (the same Idempotency-Key each time).",
    )
    backoff: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds before the second try, doubled for each further one "
        "(Retry-After, when the endpoint gives it, instead, up to max_wait).",
    )
    max_wait: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="The longest pause between two tries; an endpoint asking for a longer "
        "one gets the message later, as failed.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https URL such as https://shop.example.jp/omnicrm")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                "must be https: http is allowed only on loopback (a tool on this machine)"
            )
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry a user or password: the signature authenticates")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        return value.strip()

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < MIN_SECRET:
            raise ValueError(f"must be at least {MIN_SECRET} characters")
        return value

    @property
    def host(self) -> str:
        """The endpoint's host, for messages (the URL's path or query may hold a token)."""
        return urllib.parse.urlsplit(self.url).hostname or ""
