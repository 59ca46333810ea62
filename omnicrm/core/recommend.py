"""Recommendation: what a recommender plugin registers, receives and returns.

A shop's purchases reach a recommender as one :class:`PurchaseHistory`: columnar
(numpy arrays of integer codes), built once per shop and data version, and handed to
every request until the data changes. A recommender fits its model once per history
(:meth:`PurchaseHistory.model` keeps it there) and then scores each customer or product
cheaply. A :class:`ScoredProduct` carries its reason in words and the numbers behind
it (support, lift, interval), so merged results can still say why.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from omnicrm.core._public import public

M = TypeVar("M")


@dataclass(frozen=True)
class Recommender:
    """A named way to score products for a customer or alongside a product."""

    name: str
    title: str = ""


@dataclass(frozen=True)
class Purchase:
    """One product a customer bought: the evidence a recommender works from.

    ``order_id`` groups the lines of one basket; ``customer_id`` is empty for a basket
    nobody is known to have bought (it still counts for "bought together").
    """

    customer_id: str
    product_id: str
    quantity: int = 1
    placed_at: dt.datetime | None = None
    order_id: str | None = None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _codes(values: Sequence[str]) -> tuple[list[str], npt.NDArray[np.int64]]:
    labels, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return [str(x) for x in labels], codes.astype(np.int64)


class PurchaseHistory:
    """A shop's purchase lines as arrays of codes, one entry per line.

    ``customer[i]`` indexes :attr:`customers` (``-1``: no known customer),
    ``product[i]`` indexes :attr:`products`, ``basket[i]`` numbers the order,
    ``day[i]`` is days since 1970 (UTC, fractional), ``quantity[i]`` the units.
    ``segment_of`` maps a customer id to a segment label; ``names`` a product id to its
    name; ``now`` is the moment recency and due dates are measured from (``now_day`` in
    the unit of ``day``). Treat it as
    read-only: recommenders share it.
    """

    def __init__(
        self,
        *,
        customers: Sequence[str],
        products: Sequence[str],
        customer: npt.ArrayLike,
        product: npt.ArrayLike,
        basket: npt.ArrayLike,
        day: npt.ArrayLike,
        quantity: npt.ArrayLike | None = None,
        now: dt.datetime | None = None,
        segment_of: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.customers = list(customers)
        self.products = list(products)
        self.customer = np.asarray(customer, dtype=np.int64)
        self.product = np.asarray(product, dtype=np.int64)
        self.basket = np.asarray(basket, dtype=np.int64)
        self.day = np.asarray(day, dtype=np.float64)
        n = len(self.product)
        self.quantity = (
            np.ones(n, dtype=np.int64) if quantity is None else np.asarray(quantity, np.int64)
        )
        for label, arr in (("customer", self.customer), ("basket", self.basket)):
            if len(arr) != n:
                raise ValueError(f"PurchaseHistory: {label} has {len(arr)} entries, product {n}")
        if len(self.day) != n or len(self.quantity) != n:
            raise ValueError("PurchaseHistory: day and quantity need one entry per line")
        if n and (self.product.min() < 0 or self.product.max() >= len(self.products)):
            raise ValueError("PurchaseHistory: a product code is outside products")
        if n and self.customer.max() >= len(self.customers):
            raise ValueError("PurchaseHistory: a customer code is outside customers")
        self.now = now or (
            _EPOCH + dt.timedelta(days=float(self.day.max())) if n else dt.datetime.now(dt.UTC)
        )
        self.now_day = (self.now - _EPOCH).total_seconds() / 86400.0
        self.segment_of = dict(segment_of or {})
        self.names = dict(names or {})
        self.customer_index = {c: i for i, c in enumerate(self.customers)}
        self.product_index = {p: i for i, p in enumerate(self.products)}
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_purchases(
        cls,
        purchases: Iterable[Purchase],
        *,
        now: dt.datetime | None = None,
        segment_of: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> PurchaseHistory:
        """Build a history from :class:`Purchase` objects (small shops, tests).

        A purchase without ``order_id`` is a basket of its own with the customer's other
        lines of the same moment."""
        rows = list(purchases)
        products, product = _codes([p.product_id for p in rows])
        known = sorted({p.customer_id for p in rows if p.customer_id})
        index = {c: i for i, c in enumerate(known)}
        customer = [index.get(p.customer_id, -1) for p in rows]
        days = [((p.placed_at or _EPOCH) - _EPOCH).total_seconds() / 86400.0 for p in rows]
        keys = [p.order_id or f"{p.customer_id}\0{d}" for p, d in zip(rows, days, strict=True)]
        _, basket = _codes(keys) if rows else ([], np.zeros(0, np.int64))
        return cls(
            customers=known,
            products=products,
            customer=customer,
            product=product,
            basket=basket,
            day=days,
            quantity=[p.quantity for p in rows],
            now=now,
            segment_of=segment_of,
            names=names,
        )

    def __len__(self) -> int:
        return len(self.product)

    def __iter__(self) -> Iterator[Purchase]:
        """The lines as :class:`Purchase` objects (for a small shop or a simple model;
        a model meant for large shops reads the arrays)."""
        for c, p, q, d, b in zip(
            self.customer.tolist(),
            self.product.tolist(),
            self.quantity.tolist(),
            self.day.tolist(),
            self.basket.tolist(),
            strict=True,
        ):
            yield Purchase(
                self.customers[c] if c >= 0 else "",
                self.products[p],
                q,
                _EPOCH + dt.timedelta(days=d),
                str(b),
            )

    def model(self, key: str, fit: Callable[[PurchaseHistory], M]) -> M:
        """The model ``fit`` makes of this history, fitted once under ``key`` and kept."""
        with self._lock:
            if key not in self._models:
                self._models[key] = fit(self)
            return self._models[key]  # type: ignore[no-any-return]

    def bought_by(self, customer_id: str) -> set[str]:
        """The products ``customer_id`` bought."""
        code = self.customer_index.get(customer_id)
        if code is None:
            return set()
        return {self.products[i] for i in np.unique(self.product[self.customer == code])}


@dataclass(frozen=True)
class RecommendationRequest:
    """Score products for ``customer_id`` or alongside ``product_id`` (one is set).

    ``history`` holds the purchases the recommender learns from (a sequence of
    :class:`Purchase` is turned into a :class:`PurchaseHistory`); an empty
    ``candidates`` means any product seen in the history. ``segment`` is the customer's
    segment label when it is known outside the history (a customer with no purchases).
    """

    recommender: str
    history: PurchaseHistory | Sequence[Purchase]
    customer_id: str | None = None
    product_id: str | None = None
    candidates: Sequence[str] = field(default_factory=tuple)
    limit: int = 10
    segment: str | None = None

    def __post_init__(self) -> None:
        if (self.customer_id is None) == (self.product_id is None):
            raise ValueError("give exactly one of customer_id or product_id")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if not isinstance(self.history, PurchaseHistory):
            object.__setattr__(self, "history", PurchaseHistory.from_purchases(self.history))

    @property
    def purchases(self) -> PurchaseHistory:
        """``history`` as the :class:`PurchaseHistory` it always is after construction."""
        assert isinstance(self.history, PurchaseHistory)
        return self.history


@dataclass(frozen=True, order=True)
class ScoredProduct:
    """A product and how strongly it is recommended (higher is stronger).

    ``reason`` says why in words; ``evidence`` holds the numbers behind it (for
    example ``{"together": 23, "lift": 4.1}``). Neither takes part in ordering.
    """

    score: float
    product_id: str
    reason: str = field(default="", compare=False)
    evidence: Mapping[str, float] = field(default_factory=dict, compare=False, hash=False)


public(Recommender, Purchase, PurchaseHistory, RecommendationRequest, ScoredProduct)
