"""Settings of one Smaregi connection (one contract, 契約)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SCOPES = ("pos.customers:read", "pos.transactions:read", "pos.stores:read", "pos.products:read")
"""What the plugin asks its token for: reading members, sales, stores and products."""


class SmaregiSettings(BaseModel):
    """How to reach one contract: its id and the app's client credentials."""

    model_config = ConfigDict(extra="forbid")

    contract_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The contract id (契約ID), e.g. 'skuv592u8'."
    )
    client_id: str = Field(min_length=1, description="The app's client id.")
    client_secret: SecretStr = Field(description="The app's client secret.")
    api_url: str = Field(
        default="https://api.smaregi.jp",
        description="Where the Platform API answers (the contract id and /pos follow).",
    )
    id_url: str = Field(
        default="https://id.smaregi.jp",
        description="Where tokens are issued: POST {id_url}/app/{contract_id}/token.",
    )
    page_size: int = Field(
        default=1000, ge=1, le=1000, description="Members per page (Smaregi allows 1000)."
    )
    orders_page_size: int = Field(
        default=100,
        ge=1,
        le=100,
        description="Sales per page: read with their details, Smaregi allows 100 a page.",
    )
    late_upload_days: float = Field(
        default=3.0,
        ge=0,
        le=31,
        description="How far back each incremental read of sales looks again: an offline "
        "register uploads its sales late, stamped with its own times.",
    )
    history_start: dt.date | None = Field(
        default=None,
        description="Sales before this date are not read; default five years back.",
    )
    webhook_token: SecretStr | None = Field(
        default=None,
        description="The secret webhooks must carry (Smaregi signs nothing): in the URL "
        "registered with Smaregi, /webhooks/smaregi/TOKEN, or in an X-Omnicrm-Webhook-Token "
        "header; without it the connection accepts no webhook.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")
    retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a request that failed transiently."
    )

    @property
    def base_url(self) -> str:
        """The contract's POS API: ``{api_url}/{contract_id}/pos``."""
        return f"{self.api_url.rstrip('/')}/{self.contract_id}/pos"

    @property
    def token_url(self) -> str:
        """The contract's token endpoint."""
        return f"{self.id_url.rstrip('/')}/app/{self.contract_id}/token"
