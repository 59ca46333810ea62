"""Recommendation: what a recommender plugin registers, receives and returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from omnicrm.core._public import public


@dataclass(frozen=True)
class Recommender:
    """A named way to score products for a customer or alongside a product."""

    name: str
    title: str = ""


@dataclass(frozen=True)
class Purchase:
    """One product a customer bought: the evidence a recommender works from."""

    customer_id: str
    product_id: str
    quantity: int = 1


@dataclass(frozen=True)
class RecommendationRequest:
    """Score ``candidates`` for ``customer_id`` or alongside ``product_id`` (one is set).

    ``history`` holds the purchases the recommender may learn from; an empty
    ``candidates`` means any product seen in the history.
    """

    recommender: str
    history: Sequence[Purchase]
    customer_id: str | None = None
    product_id: str | None = None
    candidates: Sequence[str] = field(default_factory=tuple)
    limit: int = 10

    def __post_init__(self) -> None:
        if (self.customer_id is None) == (self.product_id is None):
            raise ValueError("give exactly one of customer_id or product_id")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")


@dataclass(frozen=True, order=True)
class ScoredProduct:
    """A product and how strongly it is recommended (higher is stronger)."""

    score: float
    product_id: str


public(Recommender, Purchase, RecommendationRequest, ScoredProduct)
