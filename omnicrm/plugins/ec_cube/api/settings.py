"""Settings of one EC-CUBE 4 Web API connection (one shop with the Api42 plugin)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from omnicrm import TimeZoneName


class EccubeSettings(BaseModel):
    """How to reach one shop's Web API and which API client (OAuth管理) to use."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="The shop's base URL, e.g. 'https://shop.example.jp' (the API answers "
        "at {url}/api, tokens at {url}/token).",
    )
    admin_path: str = Field(
        default="admin",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The admin screen's path (管理画面URL): authorising is at "
        "{url}/{admin_path}/authorize.",
    )
    client_id: str = Field(min_length=1, description="The API client's id (OAuth管理).")
    client_secret: SecretStr = Field(description="The API client's secret.")
    redirect_uri: str = Field(
        default="http://127.0.0.1:8765/callback",
        description="The API client's redirect URI as registered; a loopback one lets "
        "`omnicrm connect` catch the code itself.",
    )
    scope: str = Field(default="read", description="Scopes asked for ('read' suffices).")
    token_file: Path | None = Field(
        default=None,
        description="Where the connection's tokens are kept (default: "
        "DATA_DIR/tokens/ec_cube-CONNECTION.json, mode 0600). Never in omnicrm.toml.",
    )
    refresh_token_days: float = Field(
        default=30.0,
        gt=0,
        description="How long the shop keeps a refresh token valid (the Api42 default "
        "is one month); `omnicrm connect --status` counts from the last rotation.",
    )
    timezone: TimeZoneName = Field(
        default="Asia/Tokyo", description="The shop's time zone: its dates are local."
    )
    page_size: int = Field(
        default=100, ge=1, le=100, description="Records per request (the API's limit)."
    )
    window_size: int = Field(
        default=1000,
        ge=100,
        le=100_000,
        description="Records read (newest first) before they are yielded in ascending "
        "order and checkpointed: windows of update dates are halved until they hold "
        "at most this many.",
    )
    settle_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Reads end this long before the run's start: a record whose update "
        "is still being committed is read by the next run.",
    )
    tax_rate: Decimal = Field(
        default=Decimal(10),
        ge=0,
        le=100,
        description="The shop's consumption tax rate in percent (税率設定): product prices "
        "(price02, before tax) are shown with it, unless a product has its own rule.",
    )
    history_start: dt.date | None = Field(
        default=None, description="Records updated before this date are not read."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The WebHook's secret (シークレット) set in the shop's admin: "
        "X-ECCUBE-Signature is checked with it; without it no webhook is accepted.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")
    retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a request that failed transiently."
    )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The shop's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    @property
    def api_url(self) -> str:
        """The GraphQL endpoint."""
        return f"{self.base}/api"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.base}/token"

    @property
    def authorize_url(self) -> str:
        """The authorisation screen (the operator logs in to the admin there)."""
        return f"{self.base}/{self.admin_path}/authorize"
