"""``[shops.ID.storefront]`` and ``[shops.ID.offers.NAME]`` of ``omnicrm.toml`` (with one
shop, ``[storefront]`` and ``[offers.NAME]``): how the shop's own site reaches omnicrm,
and the on-site offers an operator shows there.

```toml
[shops.my-shop.storefront]
domains = ["https://tokyo-tea.jp"]     # the origins the script may call from (CORS)
public_key = "pk-tokyo-tea-7f3a"       # EC-CUBE and other sites: names the shop, not secret
customer_connection = "my-ec-cube"     # whose customer ids the signed tokens carry
token_secret = { env = "OMNICRM_STOREFRONT_SECRET" }   # signs those tokens
shopify_connection = "my-shopify"      # a Shopify App Proxy: its shop and customers
app_proxy_secret = { env = "SHOPIFY_CLIENT_SECRET" }   # the app's client secret
conversion_days = 7                    # an order this long after an impression counts

[shops.my-shop.offers.second-visit]
kind = "popup"                         # or "banner"
text = "2回目のご来店ありがとうございます。10%OFFクーポンをどうぞ"
image = "https://tokyo-tea.jp/img/coupon.png"
coupon = "WELCOME10"
segment = "lifecycle_stage = 'prospect'"   # a segment's name or an expression
min_visits = 2
no_purchase_yet = true
page = "/products/*"                   # where it shows (a glob over the path)
max_impressions = 3
per = "total"                          # or "day" (the shop's day)
start = 2026-12-01T00:00:00+09:00
end = 2026-12-31T23:59:59+09:00
variants = [
  { name = "A", weight = 1 },
  { name = "B", weight = 1, coupon = "WELCOME15", text = "15%OFF" },
]
```
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")
_URL = re.compile(r"^(?:https?://|/)[^\s\"'<>]*$")
OFFER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _url(value: str | None) -> str | None:
    if value is not None and not _URL.match(value):
        raise ValueError(f"an http(s) URL or a path starting with '/', not {value!r}")
    return value


class OfferVariant(BaseModel):
    """One version of an offer; visitors are split by ``weight``. What it leaves out is
    the offer's own."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: float = Field(default=1.0, gt=0, le=1000)
    text: str | None = Field(default=None, min_length=1, max_length=1000)
    image: str | None = None
    link: str | None = None
    coupon: str | None = Field(default=None, min_length=1, max_length=64)

    _check_image = field_validator("image", "link")(_url)


class OfferSettings(BaseModel):
    """An on-site offer: what it shows, to whom, when, and how often."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["popup", "banner"]
    text: str = Field(min_length=1, max_length=1000)
    image: str | None = None
    link: str | None = None
    coupon: str | None = Field(default=None, min_length=1, max_length=64)
    segment: str | None = Field(
        default=None,
        min_length=1,
        description="A segment's name or an expression; only signed-in customers in it "
        "see the offer. None: every visitor.",
    )
    min_visits: int = Field(default=1, ge=1, le=10_000)
    no_purchase_yet: bool = False
    page: str | None = Field(default=None, min_length=1, max_length=300)
    max_impressions: int | None = Field(default=None, ge=1, le=10_000)
    per: Literal["day", "total"] = "total"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    variants: list[OfferVariant] = Field(default_factory=list, max_length=10)

    _check_image = field_validator("image", "link")(_url)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("give the time with its offset, e.g. 2026-12-01T00:00:00+09:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OfferSettings:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("'end' must come after 'start'")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        return self

    def all_variants(self) -> list[OfferVariant]:
        """The variants, or the offer itself as the one variant 'A'."""
        return self.variants or [OfferVariant(name="A")]


class StorefrontSettings(BaseModel):
    """How the shop's own site reaches omnicrm's storefront endpoint."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(default_factory=list, max_length=50)
    public_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,100}$")
    customer_connection: str | None = None
    token_secret: SecretStr | None = None
    shopify_connection: str | None = None
    app_proxy_secret: SecretStr | None = None
    conversion_days: int = Field(default=7, ge=1, le=365)
    recommendations: int = Field(default=6, ge=0, le=50)

    @field_validator("domains")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"a domain is written as an origin, e.g. 'https://tokyo-tea.jp', not {origin!r}"
                )
        return [origin.lower() for origin in value]

    @model_validator(mode="after")
    def _pairs(self) -> StorefrontSettings:
        if self.token_secret is not None and self.customer_connection is None:
            raise ValueError("token_secret signs customer ids of customer_connection: name it")
        if (self.shopify_connection is None) != (self.app_proxy_secret is None):
            raise ValueError("give shopify_connection and app_proxy_secret together")
        return self
