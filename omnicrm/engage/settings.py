"""``[messaging]`` of ``omnicrm.toml`` (per shop: ``[shops.ID.messaging]``): which
dispatcher sends each medium, frequency caps, quiet hours and the default hold-out.

```toml
[shops.my-shop.messaging]
quiet_hours = "21:00-08:00"          # in the shop's timezone; sends wait until it ends
holdout = 0.05                       # default share of a campaign that receives nothing
tracking = true                      # email opens and clicks (default: on with [web] base_url)
attribution_days = 7                 # an order this many days after a message is its conversion
caps = [{ medium = "email", count = 2, per = "7d" }]

[shops.my-shop.messaging.dispatchers.email]
dispatcher = "smtp"                  # a dispatcher a plugin registered
settings = { host = "localhost", password = { env = "SMTP_PASSWORD" } }

[shops.my-shop.messaging.cart_recovery]   # see CartRecoverySettings
delay = "1h"
subject = "{{ name }}、カートに商品が残っています"
body = "{{ checkout.recovery_url }}"
```
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnicrm.core.records import Medium
from omnicrm.core.settings import CronOrOff, Duration
from omnicrm.core.writeback import CouponSpec
from omnicrm.engage.coupons import CouponError, parse_spec
from omnicrm.engage.templates import TemplateError, check_template

_UTC = ZoneInfo("UTC")

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Cap(BaseModel):
    """At most ``count`` messages to a person through ``medium`` per ``per``."""

    model_config = ConfigDict(extra="forbid")

    medium: Medium
    count: int = Field(ge=1, le=1000)
    per: Duration


class DispatcherChoice(BaseModel):
    """The dispatcher that sends a medium, and its settings (validated by its plugin)."""

    model_config = ConfigDict(extra="forbid")

    dispatcher: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict)


class QuietHours(BaseModel):
    """A daily window (local time) with no sends; it may span midnight."""

    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_window(value: str) -> QuietHours:
    """'21:00-08:00' as :class:`QuietHours`."""
    match = _WINDOW.match(value)
    if not match:
        raise ValueError(
            f"quiet hours are written 'HH:MM-HH:MM', e.g. '21:00-08:00', not {value!r}"
        )
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = dt.time(h1, m1), dt.time(h2, m2)
    except ValueError:
        raise ValueError(f"not a time of day in {value!r}") from None
    if start == end:
        raise ValueError(f"quiet hours {value!r} start and end at the same time")
    return QuietHours(start=start, end=end)


class CartRecoverySettings(BaseModel):
    """``[messaging.cart_recovery]``: one message for an abandoned checkout, sent once
    ``delay`` has passed since the cart was last touched, unless the person has ordered
    since or completed it (:mod:`omnicrm.engage.recovery`). Templates are Jinja2 as a
    campaign's, with ``checkout`` besides (``checkout.recovery_url`` and the like)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    name: str = Field(
        default="cart-recovery",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,91}$",
        description="The recovery's campaigns are named NAME-YYYY-MM, one a month.",
    )
    delay: Duration = Field(description="How long after the checkout was left to send.")
    expires: Duration = Field(
        default=dt.timedelta(days=2),
        description="A checkout not reached this long after its delay is left alone "
        "(checkouts older than the rule, a scheduler that was down for days).",
    )
    medium: Medium = Medium.EMAIL
    subject: str | None = None
    body: str = Field(min_length=1)
    html: str | None = None
    recovery_url: str | None = Field(
        default=None,
        description="For checkouts the platform gives no link back to (EC-CUBE): an "
        "https URL with {id}, the checkout's (order's) id.",
    )
    coupon: str | None = Field(
        default=None,
        description="A discount as `--coupon` writes it, without expires: '10%,min=3000'.",
    )
    coupon_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="A month's codes work until this many days after the month ends.",
    )
    coupon_connection: str | None = None

    @field_validator("delay", "expires")
    @classmethod
    def _at_least_a_minute(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(minutes=1):
            raise ValueError("at least 1m")
        return value

    @field_validator("recovery_url")
    @classmethod
    def _url_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("https://") or "{id}" not in value:
            raise ValueError(
                "an https URL with {id} where the checkout's id goes, e.g. "
                "'https://shop.example.jp/shopping/restore/{id}'"
            )
        try:
            value.format(id="1")
        except (KeyError, IndexError, ValueError):
            raise ValueError("only {id} may be written in braces") from None
        return value

    @model_validator(mode="after")
    def _templates(self) -> CartRecoverySettings:
        if self.medium == Medium.EMAIL and not self.subject:
            raise ValueError("subject: an email needs a subject")
        if self.medium == Medium.LINE and self.subject:
            raise ValueError("subject: a LINE message has no subject")
        if self.html is not None and self.medium != Medium.EMAIL:
            raise ValueError("html: only an email has an HTML body")
        if self.coupon is not None:
            if "expires" in self.coupon:
                raise ValueError("coupon: no expires= here; coupon_days says how long it works")
            try:
                self.coupon_spec(dt.datetime(2026, 2, 1, tzinfo=dt.UTC), _UTC, "JPY")
            except CouponError as exc:
                raise ValueError(str(exc).replace("--coupon", "coupon")) from None
        # Checked at load: a bad field is an error of the file, not of the first send.
        may = {"coupon": self.coupon is not None, "checkout": True}
        try:
            if self.subject:
                check_template(self.subject, what="subject", **may)
            check_template(self.body, what="body", **may)
            if self.html is not None:
                check_template(self.html, what="html", html=True, **may)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return self

    def coupon_spec(self, until: dt.datetime, tz: ZoneInfo, currency: str) -> CouponSpec | None:
        """The coupon of a recovery campaign whose messages go out before ``until`` (its
        codes work ``coupon_days`` after that, from a month before); None without one."""
        if self.coupon is None:
            return None
        last = (until.astimezone(tz) + dt.timedelta(days=self.coupon_days)).date()
        return parse_spec(
            f"{self.coupon},expires={last.isoformat()}",
            title=f"{self.name} (cart recovery)",
            currency=currency,
            tz=tz,
            now=until - dt.timedelta(days=31),
        )


class MessagingSettings(BaseModel):
    """What sending in one shop runs with."""

    model_config = ConfigDict(extra="forbid")

    quiet_hours: str | None = Field(
        default=None, description="'HH:MM-HH:MM' in the shop's timezone; no sends inside."
    )
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)
    tracking: bool | None = Field(
        default=None,
        description="Track email opens and clicks; unset: on where [web] base_url is set.",
    )
    attribution_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="An order within this many days after a message counts as its conversion.",
    )
    caps: list[Cap] = Field(default_factory=list)
    check_every: Duration = Field(
        default=dt.timedelta(seconds=15),
        description="How often `omnicrm run` looks for scheduled campaigns whose time has "
        "come (and ones waiting for the quiet hours to end), and sends them.",
    )
    dispatchers: dict[Medium, DispatcherChoice] = Field(default_factory=dict)
    cart_recovery: CartRecoverySettings | None = Field(
        default=None, description="The abandoned-checkout message, if the shop sends one."
    )

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @field_validator("check_every")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(seconds=1):
            raise ValueError("check_every: at least 1s")
        return value

    @property
    def quiet(self) -> QuietHours | None:
        return None if self.quiet_hours is None else parse_window(self.quiet_hours)

    def caps_for(self, medium: Medium) -> list[Cap]:
        return [cap for cap in self.caps if cap.medium == medium]


DEFAULT_WEIGHTS: dict[str, float] = {"segment-popular": 0.2}
"""How much each recommender counts when none is configured (others count 1): segment
popularity, standing in for a history, counts less beside a customer's own."""

Weight = Annotated[float, Field(ge=0.0, le=1000.0, allow_inf_nan=False, strict=True)]


class RecommendSettings(BaseModel):
    """What one shop's recommendations run with (``[recommend]``, and per shop
    ``[shops.ID.recommend]``)."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(
        default=10, ge=1, le=50, description="Products stored per customer and per product."
    )
    weights: dict[str, Weight] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="How much each recommender counts in the merge, by name (unnamed: 1; "
        "0 leaves it out, not even asked).",
    )

    @field_validator("weights", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # A shop names the recommenders it changes; the rest keep their default.
        return {**DEFAULT_WEIGHTS, **value} if isinstance(value, dict) else value

    def weight(self, recommender: str) -> float:
        """How much ``recommender`` counts (0: left out)."""
        return self.weights.get(recommender, 1.0)


class RecommendSection(RecommendSettings):
    """``[recommend]`` of ``omnicrm.toml``: the merge of the installed recommenders and
    the write-back of recommendations to the platforms that store them (Shopify
    metafields; ``omnicrm recommend --write-back``).

    ```toml
    [recommend]
    write_back = "0 4 * * *"   # nightly, in the scheduler's timezone; "off" (the default)
    items = 10                 # products stored per customer and per product
    weights = { also-bought = 1.0, reorder = 0.8, segment-popular = 0.2 }
    ```
    """

    write_back: CronOrOff = Field(
        default=None,
        description="Cron (scheduler timezone) of the nightly write-back of every shop's "
        'recommendations to its platforms; "off" (the default) for none.',
    )
