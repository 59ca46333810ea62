"""Re-order timing (単品リピート): who is due to buy a repeat-purchase product again.

For each product, the intervals between a customer's purchase days of it (distinct
days, so two lines of one order are one purchase); its typical interval is their
median. A product is a repeat product when at least ``min_repeaters`` of its buyers
and at least ``min_repeat_share`` of them bought it on two days or more. A customer is
due when the days since their last purchase of it, over its typical interval, is near
one: the score is the repeat share times a bell around that point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from omnicrm import PurchaseHistory, ScoredProduct


@dataclass(frozen=True)
class ReorderParams:
    """What makes a product a repeat product and a customer due."""

    min_repeaters: int = 3
    min_repeat_share: float = 0.1
    min_interval_days: float = 1.0
    spread: float = 0.5  # width of the bell around "due", in intervals
    due_from: float = 0.8  # due: elapsed / interval within [due_from, due_until]
    due_until: float = 1.5


@dataclass(frozen=True)
class Due:
    """A customer due to re-order a product."""

    customer_id: str
    product_id: str
    elapsed_days: float
    interval_days: float
    score: float


class ReorderModel:
    """Each product's typical interval and each customer's last purchase of it."""

    def __init__(self, history: PurchaseHistory, params: ReorderParams) -> None:
        self.history = history
        self.params = params
        n_products = len(history.products)
        known = history.customer >= 0
        customer = history.customer[known]
        product = history.product[known]
        day = np.floor(history.day[known])
        # One entry per (customer, product, day), sorted: intervals are neighbours' gaps.
        pair = customer * n_products + product
        order = np.lexsort((day, pair))
        pair, day = pair[order], day[order]
        fresh = np.ones(len(pair), dtype=bool)
        fresh[1:] = (pair[1:] != pair[:-1]) | (day[1:] != day[:-1])
        pair, day = pair[fresh], day[fresh]
        same = pair[1:] == pair[:-1]
        gaps = (day[1:] - day[:-1])[same]
        gap_product = (pair[1:] % n_products)[same]
        # Per (customer, product): the last day and the number of purchase days.
        ends = np.ones(len(pair), dtype=bool)
        ends[:-1] = pair[1:] != pair[:-1]
        starts = np.ones(len(pair), dtype=bool)
        starts[1:] = ~same
        self.pairs = pair[ends]
        self.last_day = day[ends]
        days = np.diff(np.append(np.flatnonzero(starts), len(pair)))
        pair_product = self.pairs % n_products
        self.buyers = np.bincount(pair_product, minlength=n_products)
        self.repeaters = np.bincount(pair_product[days >= 2], minlength=n_products)
        self.share = np.divide(
            self.repeaters, self.buyers, out=np.zeros(n_products), where=self.buyers > 0
        )
        self.interval = np.full(n_products, np.nan)
        by_product = np.argsort(gap_product, kind="stable")
        gap_product, gaps = gap_product[by_product], gaps[by_product]
        bounds = np.searchsorted(gap_product, np.arange(n_products + 1))
        for p in np.flatnonzero(self.repeaters >= params.min_repeaters):
            self.interval[p] = max(
                float(np.median(gaps[bounds[p] : bounds[p + 1]])), params.min_interval_days
            )
        self.repeat: npt.NDArray[np.bool_] = (
            (self.repeaters >= params.min_repeaters)
            & (self.share >= params.min_repeat_share)
            & ~np.isnan(self.interval)
        )

    def is_repeat(self, product: str) -> bool:
        """Whether ``product`` is bought repeatedly in this shop."""
        code = self.history.product_index.get(product)
        return code is not None and bool(self.repeat[code])

    def _score(
        self, ratio: npt.NDArray[np.float64], share: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        bell = np.exp(-0.5 * ((ratio - 1.0) / self.params.spread) ** 2)
        return np.asarray(share * bell, dtype=np.float64)

    def for_customer(
        self, customer: str, limit: int, allowed: set[int] | None
    ) -> list[ScoredProduct]:
        """The repeat products ``customer`` bought, by how due they are now."""
        code = self.history.customer_index.get(customer)
        if code is None:
            return []
        n_products = len(self.history.products)
        lo, hi = np.searchsorted(self.pairs, [code * n_products, (code + 1) * n_products])
        product = self.pairs[lo:hi] % n_products
        last = self.last_day[lo:hi]
        keep = self.repeat[product]
        if allowed is not None:
            keep &= np.isin(product, list(allowed))
        product, last = product[keep], last[keep]
        elapsed = np.maximum(self.history.now_day - last, 0.0)
        interval = self.interval[product]
        score = self._score(elapsed / interval, self.share[product])
        order = np.lexsort((product, -score))[:limit]
        found = []
        for k in order:
            p = int(product[k])
            name = self.history.names.get(self.history.products[p], self.history.products[p])
            reason = (
                f"「{name}」を平均 {interval[k]:.0f} 日ごとに購入する商品 "
                f"(リピート率 {self.share[p]:.0%}), 前回から {elapsed[k]:.0f} 日"
            )
            evidence = {
                "interval_days": float(interval[k]),
                "elapsed_days": float(elapsed[k]),
                "repeat_share": float(self.share[p]),
                "repeaters": float(self.repeaters[p]),
            }
            found.append(ScoredProduct(float(score[k]), self.history.products[p], reason, evidence))
        return [s for s in found if s.score > 0]

    def due(self, product: str | None = None) -> list[Due]:
        """Who is due now: customers whose elapsed time over the product's interval lies
        within ``[due_from, due_until]``, most due first."""
        n_products = len(self.history.products)
        pair_product = self.pairs % n_products
        keep = self.repeat[pair_product]
        if product is not None:
            code = self.history.product_index.get(product)
            if code is None:
                return []
            keep &= pair_product == code
        pairs, last = self.pairs[keep], self.last_day[keep]
        p = pairs % n_products
        elapsed = np.maximum(self.history.now_day - last, 0.0)
        ratio = elapsed / self.interval[p]
        inside = (ratio >= self.params.due_from) & (ratio <= self.params.due_until)
        score = self._score(ratio, self.share[p])
        rows = np.flatnonzero(inside)
        rows = rows[np.lexsort((pairs[rows], -score[rows]))]
        return [
            Due(
                customer_id=self.history.customers[int(pairs[k] // n_products)],
                product_id=self.history.products[int(p[k])],
                elapsed_days=float(elapsed[k]),
                interval_days=float(self.interval[p[k]]),
                score=float(score[k]),
            )
            for k in rows
        ]
