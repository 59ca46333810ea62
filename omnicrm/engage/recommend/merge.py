"""Ask every installed recommender and merge their answers by score.

Each recommender's scores are scaled so its best is 1, weighted by the shop's
``[recommend] weights`` (:class:`~omnicrm.engage.settings.RecommendSettings`; by default
the segment popularity that stands in for a history counts 0.2 beside a customer's own),
and summed per product. A recommender weighted 0 is not asked at all. What the customer
already bought is left out unless the shop's customers buy that product repeatedly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from sqlalchemy import Connection

from omnicrm.core.host import Host
from omnicrm.core.recommend import PurchaseHistory, RecommendationRequest, ScoredProduct
from omnicrm.crm.products import OfferableProduct, ProductSettings, available_products
from omnicrm.engage.settings import DEFAULT_WEIGHTS
from omnicrm.errors import OmnicrmError

WIDEN = 3  # ask each recommender for this many times the limit: exclusions thin it


class UnknownCustomerError(OmnicrmError):
    """The shop has no such customer (profile)."""


class UnknownProductError(OmnicrmError):
    """The shop has no purchase of such a product."""


@dataclass(frozen=True)
class Recommendation:
    """A product recommended, its merged score, and why (from its strongest source);
    its price and link when the shop's catalogue has them."""

    product_id: str
    name: str
    score: float
    reason: str
    recommenders: tuple[str, ...]
    evidence: Mapping[str, float] = field(default_factory=dict)
    price: Decimal | None = None
    currency: str | None = None
    url: str | None = None


Catalogue = Mapping[str, OfferableProduct]
"""What the shop may offer, by product key (:func:`omnicrm.crm.products.available_products`).
None where the shop syncs no catalogue (CSV-only channels): then any product bought may
be offered, by the name its order lines carry."""


def repeat_products(
    history: PurchaseHistory, *, min_share: float = 0.1, min_repeaters: int = 3
) -> frozenset[str]:
    """The products at least ``min_share`` (and ``min_repeaters``) of whose buyers bought
    them on two days or more."""

    def fit(h: PurchaseHistory) -> frozenset[str]:
        known = h.customer >= 0
        n = len(h.products)
        key = np.unique(
            np.stack([h.customer[known] * n + h.product[known], np.floor(h.day[known])]), axis=1
        )[0]
        pair, days = np.unique(key.astype(np.int64), return_counts=True)
        buyers = np.bincount(pair % n, minlength=n)
        repeaters = np.bincount(pair[days >= 2] % n, minlength=n)
        share = np.divide(repeaters, buyers, out=np.zeros(n), where=buyers > 0)
        chosen = np.flatnonzero((repeaters >= min_repeaters) & (share >= min_share))
        return frozenset(h.products[i] for i in chosen)

    return history.model(f"engage.repeat:{min_share}:{min_repeaters}", fit)


def shop_catalogue(
    conn: Connection, shop: str, settings: ProductSettings | None = None
) -> Catalogue | None:
    """What ``shop`` may offer (sold-out ones listed as unavailable, excluded ones not at
    all); None when the shop syncs no catalogue."""
    listed = available_products(conn, shop, settings, include_unavailable=True)
    return listed or None


def _asked(host: Host, weights: Mapping[str, float] | None) -> dict[str, float]:
    """The installed recommenders to ask, each with its weight: none weighted 0."""
    chosen = DEFAULT_WEIGHTS if weights is None else weights
    found = {name: chosen.get(name, 1.0) for name in host.recommenders}
    return {name: weight for name, weight in found.items() if weight > 0}


def _merge(
    history: PurchaseHistory,
    answers: Mapping[str, list[ScoredProduct]],
    weights: Mapping[str, float],
    leave_out: frozenset[str] | set[str],
    limit: int,
    catalogue: Catalogue | None,
) -> list[Recommendation]:
    if catalogue is not None:  # never offer what is sold out, withdrawn or excluded
        leave_out = set(leave_out) | {
            s.product_id
            for scored in answers.values()
            for s in scored
            if s.product_id not in catalogue or not catalogue[s.product_id].available
        }
    total: dict[str, float] = {}
    best: dict[str, tuple[float, ScoredProduct]] = {}
    sources: dict[str, list[str]] = {}
    for name in sorted(answers):
        scored = [s for s in answers[name] if s.score > 0 and s.product_id not in leave_out]
        if not scored:
            continue
        top = max(s.score for s in scored)
        for s in scored:
            part = weights.get(name, 1.0) * s.score / top
            total[s.product_id] = total.get(s.product_id, 0.0) + part
            sources.setdefault(s.product_id, []).append(name)
            if s.product_id not in best or part > best[s.product_id][0]:
                best[s.product_id] = (part, s)
    ranked = sorted(total, key=lambda p: (-total[p], p))[:limit]
    shown = catalogue or {}
    return [
        Recommendation(
            product_id=p,
            name=shown[p].name if p in shown else history.names.get(p, p),
            score=total[p],
            reason=best[p][1].reason,
            recommenders=tuple(sources[p]),
            evidence=dict(best[p][1].evidence),
            price=shown[p].price if p in shown else None,
            currency=shown[p].currency if p in shown else None,
            url=shown[p].url if p in shown else None,
        )
        for p in ranked
    ]


def for_customer(
    host: Host,
    history: PurchaseHistory,
    customer_id: str,
    *,
    limit: int = 10,
    known: bool = True,
    catalogue: Catalogue | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Recommendation]:
    """The merged recommendations for ``customer_id`` (a profile id as text).

    ``weights``: how much each recommender counts (the shop's ``[recommend] weights``;
    None: the defaults). For a customer with no purchases of their own every recommender
    left on counts fully: there is no history to weigh popularity against.
    ``known=False`` when the caller has not checked the customer belongs to the shop:
    then one with neither purchases nor a segment is an :class:`UnknownCustomerError`."""
    unseen = customer_id not in history.customer_index and customer_id not in history.segment_of
    if not known and unseen:
        raise UnknownCustomerError(f"no customer {customer_id!r} in this shop")
    bought = history.bought_by(customer_id)
    asked = _asked(host, weights)
    answers = {
        name: host.recommend(
            RecommendationRequest(
                recommender=name,
                history=history,
                customer_id=customer_id,
                limit=limit * WIDEN,
                segment=history.segment_of.get(customer_id),
            )
        )
        for name in asked
    }
    leave_out = bought - repeat_products(history)
    return _merge(history, answers, asked if bought else {}, leave_out, limit, catalogue)


def for_product(
    host: Host,
    history: PurchaseHistory,
    product_id: str,
    *,
    limit: int = 10,
    catalogue: Catalogue | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Recommendation]:
    """The merged recommendations alongside ``product_id`` (a SKU or product id),
    ``weights`` as :func:`for_customer`'s."""
    if product_id not in history.product_index:
        raise UnknownProductError(f"no purchase of product {product_id!r} in this shop")
    asked = _asked(host, weights)
    answers = {
        name: host.recommend(
            RecommendationRequest(
                recommender=name, history=history, product_id=product_id, limit=limit * WIDEN
            )
        )
        for name in asked
    }
    return _merge(history, answers, asked, {product_id}, limit, catalogue)


@dataclass(frozen=True)
class DueCustomer:
    """A customer due to buy a product again, and why."""

    customer_id: str
    product_id: str
    name: str
    score: float
    reason: str


def due_now(
    host: Host,
    history: PurchaseHistory,
    *,
    product_id: str | None = None,
    recommender: str = "reorder",
    due_from: float = 0.8,
    limit: int = 50,
) -> list[DueCustomer]:
    """Who is due now: the customers ``recommender`` (one answering with
    ``elapsed_days`` and ``interval_days`` evidence) finds at least ``due_from`` of a
    product's typical interval past their last purchase of it; most due first."""
    if product_id is not None and product_id not in history.product_index:
        raise UnknownProductError(f"no purchase of product {product_id!r} in this shop")
    candidates = (product_id,) if product_id is not None else ()
    found = []
    for customer in history.customers:
        request = RecommendationRequest(
            recommender=recommender, history=history, customer_id=customer, candidates=candidates
        )
        for scored in host.recommend(request):
            elapsed = scored.evidence.get("elapsed_days")
            interval = scored.evidence.get("interval_days")
            if elapsed is None or not interval or elapsed / interval < due_from:
                continue
            found.append(
                DueCustomer(
                    customer,
                    scored.product_id,
                    history.names.get(scored.product_id, scored.product_id),
                    scored.score,
                    scored.reason,
                )
            )
    found.sort(key=lambda d: (-d.score, d.customer_id, d.product_id))
    return found[:limit]
