"""Settings of one Shopify connection (one Shopify store)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
# Shopify's metafield namespace (3-255) and key (2-64): letters, digits, '-' and '_'.
_METAFIELD = re.compile(r"[A-Za-z0-9_-]{3,255}\.[A-Za-z0-9_-]{2,64}")


class ShopifySettings(BaseModel):
    """How to reach one shop. Give ``access_token``, or ``client_id`` + ``client_secret``."""

    model_config = ConfigDict(extra="forbid")

    # Keys of older configs, still read (with a warning from the config loader): `shop`
    # was the domain until a connection's `shop` came to name the client business.
    renamed_settings: ClassVar[dict[str, str]] = {"shop": "domain"}

    domain: str = Field(description="The store's myshopify domain, e.g. 'tokyo-tea.myshopify.com'.")
    access_token: SecretStr | None = Field(
        default=None, description="Admin API access token of a custom app."
    )
    client_id: str | None = Field(default=None, description="The app's client id.")
    client_secret: SecretStr | None = Field(
        default=None,
        description="The app's client secret: gets tokens (client credentials) and "
        "verifies webhooks.",
    )
    api_url: str | None = Field(
        default=None,
        description="Where the Admin API answers; default https://DOMAIN (sandboxes set it).",
    )
    page_size: int = Field(
        default=250,
        ge=1,
        le=250,
        description="Customers per page at most; fewer when the query's cost would not "
        "fit the bucket the shop reports.",
    )
    orders_page_size: int = Field(
        default=250,
        ge=1,
        le=250,
        description="Orders per page at most; fewer when the query's cost would not fit "
        "the bucket the shop reports.",
    )
    lines_page_size: int = Field(
        default=5,
        ge=1,
        le=250,
        description="Line items read with each order; an order with more has the rest "
        "read in follow-up requests.",
    )
    variants_page_size: int = Field(
        default=10,
        ge=1,
        le=250,
        description="Variants read with each product; a product with more has the rest "
        "read in follow-up requests.",
    )
    bulk_threshold: int = Field(
        default=0,
        ge=0,
        description="A full read (the first sync, or --full) is a bulk operation when the "
        "shop holds more records than this: 0, the default, means always. Paging a full "
        "read is far slower at Shopify's rate limits (a 3,000-customer shop: 30 minutes "
        "paged, seconds by bulk); a higher number is for testing the paged path.",
    )
    bulk_timeout: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Seconds one run waits for a bulk operation; a longer one is resumed "
        "by the next run.",
    )
    recent_orders_only: bool = Field(
        default=False,
        description="Without the read_all_orders scope Shopify shows only the last 60 days "
        "of orders: true accepts that (with a warning), false refuses to import a "
        "partial order history.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")
    line_user_id_metafield: str | None = Field(
        default=None,
        description="NAMESPACE.KEY of the customer metafield where the shop's LINE-connect "
        "app keeps the customer's LINE user id; each customer's is linked to them for LINE "
        "messages (no LINE consent by itself). None: not read.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for old, new in cls.renamed_settings.items():
            if old in data:
                if new in data:
                    raise ValueError(f"give {new!r} only: {old!r} is its old name")
                data = {new if k == old else k: v for k, v in data.items()}
        return data

    @field_validator("domain")
    @classmethod
    def _myshopify_domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").rstrip("/")
        if not _SHOP.match(value):
            raise ValueError("must be the shop's myshopify domain, e.g. 'tokyo-tea.myshopify.com'")
        return value

    @field_validator("line_user_id_metafield")
    @classmethod
    def _metafield(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _METAFIELD.fullmatch(value.strip()):
            raise ValueError(
                "must be NAMESPACE.KEY as Shopify names a metafield (letters, digits, '-' "
                "and '_'; a namespace of 3 to 255 characters, a key of 2 to 64), e.g. "
                "'line_connect.line_user_id'"
            )
        return value.strip()

    @property
    def line_metafield(self) -> tuple[str, str] | None:
        """(namespace, key) of :attr:`line_user_id_metafield`, if set."""
        if self.line_user_id_metafield is None:
            return None
        namespace, key = self.line_user_id_metafield.split(".")
        return namespace, key

    @model_validator(mode="after")
    def _credentials(self) -> ShopifySettings:
        if self.access_token is None and (self.client_id is None or self.client_secret is None):
            raise ValueError("give access_token, or client_id and client_secret")
        return self

    @property
    def base_url(self) -> str:
        """The Admin API's origin: the sandbox's when set, else the shop's own."""
        return (self.api_url or f"https://{self.domain}").rstrip("/")
