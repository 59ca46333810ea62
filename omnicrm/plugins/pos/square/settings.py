"""Settings of one Square connection (one Square seller account)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

API_VERSION = "2025-08-20"
"""The Square-Version every request names (the spec the plugin is checked against)."""


class SquareSettings(BaseModel):
    """How to reach one Square seller, and how to verify its webhooks."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(
        description="An access token of the seller (personal or OAuth) with CUSTOMERS_READ, "
        "ORDERS_READ, MERCHANT_PROFILE_READ, PAYMENTS_READ and, with Square Loyalty, "
        "LOYALTY_READ.",
    )
    api_url: str = Field(
        default="https://connect.squareup.com",
        description="Where the API answers: connect.squareupsandbox.com for Square's own "
        "sandbox; the local emulator sets its address.",
    )
    location_ids: list[str] = Field(
        default_factory=list,
        description="The locations (stores) whose sales are imported; empty: every "
        "location of the seller.",
    )
    loyalty: bool | None = Field(
        default=None,
        description="Read Square Loyalty balances and point events: true, false, or unset "
        "to use them when the seller has a loyalty programme.",
    )
    customers_page_size: int = Field(
        default=100, ge=1, le=100, description="Customers per SearchCustomers page."
    )
    orders_page_size: int = Field(
        default=500, ge=1, le=1000, description="Orders per SearchOrders page."
    )
    customer_window_days: int = Field(
        default=31,
        ge=1,
        le=3660,
        description="SearchCustomers cannot sort by update time: customers are read in "
        "windows of this many days, each sorted here before it is yielded.",
    )
    search_lag: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="Seconds a changed customer may take to appear in SearchCustomers "
        "(Square: well under 30 s, at times a minute or more). A run reads customers "
        "changed up to this long before it began, so its cursor never passes one still "
        "on its way; the next run reads them.",
    )
    webhook_signature_key: SecretStr | None = Field(
        default=None, description="The signature key of the webhook subscription."
    )
    notification_url: str | None = Field(
        default=None,
        description="The subscription's notification URL exactly as registered with "
        "Square: it is part of what Square signs.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")

    @field_validator("api_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be an https:// address (http only on loopback)")
        return value

    @field_validator("location_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if any(not v.strip() for v in value):
            raise ValueError("a location id cannot be empty")
        return list(dict.fromkeys(v.strip() for v in value))
