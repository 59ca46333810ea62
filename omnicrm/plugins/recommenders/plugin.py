"""The built-in recommenders, registered through the recommendation hook.

This module is what the ``omnicrm`` entry point ``recommenders`` names. Each model is
fitted once per :class:`~omnicrm.PurchaseHistory` (kept on it) and scores from there:

- ``also-bought``: bought together (:mod:`.cooccurrence`), for a customer or a product;
- ``reorder``: repeat-purchase products the customer is due to buy again (:mod:`.reorder`);
- ``segment-popular``: popular in the customer's segment, for people with no history
  (:mod:`.popularity`).
"""

from __future__ import annotations

import omnicrm
from omnicrm import PurchaseHistory, RecommendationRequest, Recommender, ScoredProduct
from omnicrm.plugins.recommenders.cooccurrence import CoOccurrenceModel, CoOccurrenceParams
from omnicrm.plugins.recommenders.popularity import PopularityModel, PopularityParams
from omnicrm.plugins.recommenders.reorder import ReorderModel, ReorderParams

ALSO_BOUGHT = Recommender("also-bought", "Bought together (co-occurrence, lift)")
REORDER = Recommender("reorder", "Due to re-order (単品リピート)")
SEGMENT_POPULAR = Recommender("segment-popular", "Popular in the customer's segment")


def also_bought(history: PurchaseHistory) -> CoOccurrenceModel:
    """The fitted co-occurrence model of ``history``."""
    return history.model(ALSO_BOUGHT.name, lambda h: CoOccurrenceModel(h, CoOccurrenceParams()))


def reorder(history: PurchaseHistory) -> ReorderModel:
    """The fitted re-order model of ``history``."""
    return history.model(REORDER.name, lambda h: ReorderModel(h, ReorderParams()))


def segment_popular(history: PurchaseHistory) -> PopularityModel:
    """The fitted segment popularity model of ``history``."""
    return history.model(SEGMENT_POPULAR.name, lambda h: PopularityModel(h, PopularityParams()))


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the three built-in recommenders."""
    for recommender in (ALSO_BOUGHT, REORDER, SEGMENT_POPULAR):
        register.recommender(recommender)


def _allowed(request: RecommendationRequest) -> set[int] | None:
    if not request.candidates:
        return None
    index = request.purchases.product_index
    return {index[c] for c in request.candidates if c in index}


def _customer(request: RecommendationRequest) -> list[ScoredProduct]:
    history, allowed, customer = request.purchases, _allowed(request), request.customer_id
    assert customer is not None
    if request.recommender == ALSO_BOUGHT.name:
        return also_bought(history).for_customer(customer, request.limit, allowed)
    if request.recommender == REORDER.name:
        return reorder(history).for_customer(customer, request.limit, allowed)
    segment = request.segment or history.segment_of.get(customer)
    return segment_popular(history).for_segment(segment, request.limit, allowed)


@omnicrm.hookimpl
def omnicrm_recommend(request: RecommendationRequest) -> list[ScoredProduct]:
    """Score with the named built-in recommender; only ``also-bought`` answers for a
    product."""
    if request.customer_id is not None:
        return _customer(request)
    if request.recommender == ALSO_BOUGHT.name:
        assert request.product_id is not None
        return also_bought(request.purchases).for_product(
            request.product_id, request.limit, _allowed(request)
        )
    return []
