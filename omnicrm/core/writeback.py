"""What omnicrm writes back to a platform: optional capabilities of a channel type.

A channel type may carry two small objects beside its streams (see
:class:`~omnicrm.core.channels.ChannelType`):

* ``coupons`` (a :class:`CouponIssuer`): creates a campaign's unique coupon codes as the
  platform's own discount codes, so the codes in the messages work at its checkout;
* ``recommendations`` (a :class:`RecommendationWriter`): stores recommendations on the
  platform's customers and products, where the shop's theme can show them without a
  script.

Both are called with a :class:`WriteContext`, never inside a store transaction, and
report what the platform refused item by item rather than failing the whole call; a
failure of the call itself leaves as one of :mod:`omnicrm.errors` (a
``TransientError`` is retried by the caller later: both calls must be safe to repeat).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from omnicrm.core._public import public

SettingsT = TypeVar("SettingsT", bound=BaseModel)


@dataclass
class WriteContext(Generic[SettingsT]):
    """What a write-back call gets: the connection, its settings, and how to wait.

    ``wait_for_rate_limit`` sleeps on the platform's budget and counts the time in
    ``rate_limit_wait``; ``sleep`` is how any other waiting (polling) is done.
    """

    connection: str
    channel: str
    settings: SettingsT
    logger: logging.Logger
    rate_limit_wait: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def wait_for_rate_limit(self, seconds: float) -> None:
        """Sleep to respect the platform's rate limit, counting the time."""
        if seconds <= 0:
            return
        self.sleep(seconds)
        self.rate_limit_wait += seconds


class DiscountKind(StrEnum):
    """How a coupon takes money off an order."""

    PERCENTAGE = "percentage"  # ``value`` per cent off the order
    FIXED_AMOUNT = "fixed_amount"  # ``value`` in the shop's currency off the order


@dataclass(frozen=True)
class CouponSpec:
    """One campaign's discount: every code of the campaign gives the same.

    ``title`` is what the platform shows the merchant (and the customer at checkout);
    ``usage_limit`` is how often each code can be used (1: a code is spent by one
    order); ``minimum_subtotal`` the order subtotal needed, if any.
    """

    title: str
    kind: DiscountKind
    value: Decimal
    currency: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    minimum_subtotal: Decimal | None = None
    usage_limit: int = 1
    prefix: str = ""


@dataclass(frozen=True)
class CouponsCreated:
    """What the platform made of one :meth:`CouponIssuer.create` call.

    ``discount_id`` is the platform's id of the discount the codes belong to (give it
    back as ``discount_id`` to add more codes to it); ``created`` the codes the
    platform now holds; ``refused`` the others, each with the platform's reason (a
    code already taken, say).
    """

    discount_id: str
    created: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)


class CouponIssuer(Protocol):
    """Creates coupon codes as the platform's discount codes (``ChannelType.coupons``)."""

    def create(
        self,
        ctx: WriteContext[Any],
        spec: CouponSpec,
        codes: Sequence[str],
        *,
        discount_id: str | None = None,
    ) -> CouponsCreated:
        """Create ``codes`` under one discount of ``spec``: a new discount when
        ``discount_id`` is None, else more codes for that one. A code the platform
        already holds under the same discount counts as created (the call is repeated
        after a crash)."""
        ...


class Owner(StrEnum):
    """What a written value hangs on."""

    CUSTOMER = "customer"
    PRODUCT = "product"


@dataclass(frozen=True)
class RecommendedItem:
    """One product recommended, as a theme shows it: the platform's product id, its
    handle, the merged score and the reason in words."""

    product_id: str
    handle: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class WriteTarget:
    """The recommendations to store on one customer or product (the platform's id)."""

    owner: Owner
    owner_id: str
    items: tuple[RecommendedItem, ...]


class RecommendationWriter(Protocol):
    """Stores recommendations on the platform (``ChannelType.recommendations``)."""

    def write(self, ctx: WriteContext[Any], targets: Sequence[WriteTarget]) -> Mapping[str, str]:
        """Store each target's items, replacing what was there; the owner ids the
        platform refused, each with its reason (an owner deleted since the last sync)."""
        ...


public(
    WriteContext,
    DiscountKind,
    CouponSpec,
    CouponsCreated,
    CouponIssuer,
    Owner,
    RecommendedItem,
    WriteTarget,
    RecommendationWriter,
)
