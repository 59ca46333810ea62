"""Popular in the customer's segment: for people with no history of their own.

A product's score in a segment is the recency-weighted number of the segment's
customers who bought it; a segment with fewer than ``min_buyers`` buyers falls back to
the whole shop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from omnicrm import PurchaseHistory, ScoredProduct
from omnicrm.plugins.recommenders.cooccurrence import top_codes

ALL = ""  # the whole shop's popularity


@dataclass(frozen=True)
class PopularityParams:
    """Recency weighting and how many buyers make a segment's own ranking."""

    half_life_days: float = 180.0
    min_buyers: int = 5


class PopularityModel:
    """Weighted buyer counts per segment and product."""

    def __init__(self, history: PurchaseHistory, params: PopularityParams) -> None:
        self.history = history
        self.params = params
        n_products = len(history.products)
        known = history.customer >= 0
        customer, product = history.customer[known], history.product[known]
        # Each customer counts once per product, weighted by their latest purchase of it.
        pair = customer * n_products + product
        uniq, inverse = np.unique(pair, return_inverse=True)
        last = np.full(len(uniq), -np.inf)
        np.maximum.at(last, inverse, history.day[known])
        weight = np.power(0.5, np.maximum(history.now_day - last, 0.0) / params.half_life_days)
        pair_customer, pair_product = uniq // n_products, uniq % n_products
        labels = [history.segment_of.get(c, ALL) for c in history.customers]
        self.segments = sorted({*labels, ALL})
        index = {s: i for i, s in enumerate(self.segments)}
        segment_code = np.asarray([index[s] for s in labels], dtype=np.int64)
        seg = segment_code[pair_customer] if len(pair_customer) else np.zeros(0, np.int64)
        shape = (len(self.segments), n_products)
        self.weighted = sparse.csr_matrix((weight, (seg, pair_product)), shape=shape).toarray()
        self.buyers = sparse.csr_matrix(
            (np.ones(len(seg)), (seg, pair_product)), shape=shape
        ).toarray()
        self.weighted[index[ALL]] = self.weighted.sum(axis=0)
        self.buyers[index[ALL]] = self.buyers.sum(axis=0)
        self.segment_buyers = np.bincount(segment_code, minlength=len(self.segments))
        self.segment_buyers[index[ALL]] = len(history.customers)
        self.index = index

    def _row(self, segment: str | None) -> tuple[str, npt.NDArray[np.float64], int]:
        code = self.index.get(segment or ALL)
        if code is None or self.segment_buyers[code] < self.params.min_buyers:
            code = self.index[ALL]
        return self.segments[code], self.weighted[code], code

    def for_segment(
        self, segment: str | None, limit: int, allowed: set[int] | None
    ) -> list[ScoredProduct]:
        """The products most bought in ``segment`` (or the shop), best first."""
        label, row, code = self._row(segment)
        scores = row.copy()
        if allowed is not None:
            mask = np.zeros(len(scores), dtype=bool)
            mask[list(allowed)] = True
            scores[~mask] = 0.0
        found = []
        where = f"セグメント「{label}」" if label else "ショップ全体"
        for j in top_codes(scores, limit):
            buyers = int(self.buyers[code, j])
            found.append(
                ScoredProduct(
                    float(scores[j]),
                    self.history.products[j],
                    f"{where}で {buyers} 人が購入",
                    {"buyers": float(buyers), "segment_size": float(self.segment_buyers[code])},
                )
            )
        return found
