"""``[points]`` of omnicrm.toml: how orders earn points, when points expire, what the
nightly reconciliation compares."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EarnBase(StrEnum):
    """The amount of an order that earns points."""

    TOTAL = "total"  # what the customer paid, shipping and tax included
    TOTAL_EXCL_SHIPPING = "total_excl_shipping"
    TOTAL_EXCL_SHIPPING_AND_TAX = "total_excl_shipping_and_tax"


class Rounding(StrEnum):
    """How a fractional number of points becomes whole points."""

    DOWN = "down"  # 切り捨て: 199 yen at 1 per 100 earns 1
    NEAREST = "nearest"  # 四捨五入, halves up
    UP = "up"  # 切り上げ


class ReconcileAgainst(StrEnum):
    """What a platform's reported balance is compared with."""

    MEMBER = "member"  # the ledger balance of that source customer alone
    WALLET = "wallet"  # the whole wallet of the profile it belongs to


Multiplier = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


class PointsSettings(BaseModel):
    """The ``[points]`` section. Every field has a default: 1 point per 100 yen of the
    total without shipping, rounded down, expiring 12 months after it was earned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Whether orders earn points at all (by rule or by a master)."
    )
    earn_points: int = Field(
        default=1, ge=0, le=1000, description="Points earned for every `earn_per` yen."
    )
    earn_per: int = Field(default=100, ge=1, le=1_000_000, description="Yen per `earn_points`.")
    base: EarnBase = Field(
        default=EarnBase.TOTAL_EXCL_SHIPPING, description="The part of an order that earns."
    )
    rounding: Rounding = Rounding.DOWN
    currency: str = Field(
        default="JPY",
        pattern=r"^[A-Z]{3}$",
        description="Only orders in this currency earn by the rule.",
    )
    channel_multipliers: dict[str, Multiplier] = Field(
        default_factory=dict,
        description="Order channel -> multiplier, e.g. {pos = 2}: store purchases earn double.",
    )
    connection_multipliers: dict[str, Multiplier] = Field(
        default_factory=dict,
        description="Connection -> multiplier; applied on top of the channel's (they multiply).",
    )
    masters: list[str] = Field(
        default_factory=list,
        description="Connections that grant points themselves (a POS): their orders' "
        "points_earned become earn entries as reported, instead of the rule.",
    )
    start: AwareDatetime | None = Field(
        default=None,
        description="Orders placed before this earn nothing by the rule (the programme's start).",
    )
    delay_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="An order earns by the rule once it is this many days old (a return window).",
    )
    expiry_months: int | None = Field(
        default=12,
        ge=1,
        le=120,
        description="Earned points expire this many calendar months after they were earned; "
        "none: never.",
    )
    reconcile_against: ReconcileAgainst = ReconcileAgainst.MEMBER

    def rate(self, connection: str | None, channel: str | None) -> Fraction:
        """Points per yen for an order of ``connection`` on ``channel``."""
        rate = Fraction(self.earn_points, self.earn_per)
        if connection is not None and connection in self.connection_multipliers:
            rate *= Fraction(self.connection_multipliers[connection])
        if channel is not None and channel in self.channel_multipliers:
            rate *= Fraction(self.channel_multipliers[channel])
        return rate
