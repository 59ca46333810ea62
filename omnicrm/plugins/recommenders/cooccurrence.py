"""Bought together: pairwise association rules over a shop's transactions.

A transaction is one known customer's whole history (so a customer who bought in the
store and online counts once), or one basket nobody is known to have bought; with
``unit="basket"`` every order is a transaction of its own. Support, confidence and
lift are the textbook ones (they equal mlxtend's ``association_rules`` on the same
transactions); the score adds recency weighting (a transaction's weight halves every
``half_life_days``) and popularity damping (divided by both products' weighted
popularity to the power ``damping``: 0 keeps raw co-occurrence, 0.5 is a cosine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from omnicrm import PurchaseHistory, ScoredProduct

Unit = Literal["customer", "basket"]


@dataclass(frozen=True)
class CoOccurrenceParams:
    """How transactions are formed and what a pair needs to be recommended."""

    unit: Unit = "customer"
    min_support: float = 0.0  # share of transactions holding both products
    min_count: int = 2  # and at least this many of them
    half_life_days: float = 365.0
    damping: float = 0.5


def transactions(
    history: PurchaseHistory, unit: Unit = "customer"
) -> tuple[sparse.csr_matrix, npt.NDArray[np.float64]]:
    """The 0/1 transactions x products matrix and each transaction's last day."""
    if unit == "basket":
        key = history.basket
    else:
        # Known customers are transactions 0..C-1; an anonymous basket one of its own.
        anonymous = history.customer < 0
        key = np.where(anonymous, len(history.customers) + history.basket, history.customer)
    uniq, row = np.unique(key, return_inverse=True)
    n_rows, n_cols = len(uniq), len(history.products)
    matrix = sparse.csr_matrix(
        (np.ones(len(row), dtype=np.float64), (row, history.product)), shape=(n_rows, n_cols)
    )
    matrix.data[:] = 1.0  # a product bought twice in a transaction counts once
    last = np.full(n_rows, -np.inf)
    np.maximum.at(last, row, history.day)
    return matrix, last


@dataclass(frozen=True)
class Rules:
    """Pairwise rules ``antecedent -> consequent`` (product codes) and their measures."""

    antecedent: npt.NDArray[np.int64]
    consequent: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]  # transactions holding both
    support: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    lift: npt.NDArray[np.float64]


def _pair_counts(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    counts = (matrix.T @ matrix).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts


def rules(
    history: PurchaseHistory,
    *,
    min_support: float,
    min_confidence: float = 0.0,
    unit: Unit = "customer",
) -> Rules:
    """Every pair rule whose pair support is at least ``min_support`` (a share of the
    transactions) and confidence at least ``min_confidence``."""
    matrix, _ = transactions(history, unit)
    return _rules(matrix, _pair_counts(matrix), min_support, min_confidence)


def _rules(
    matrix: sparse.csr_matrix,
    counts: sparse.csr_matrix,
    min_support: float,
    min_confidence: float,
) -> Rules:
    n = matrix.shape[0]
    single = np.asarray(matrix.sum(axis=0)).ravel()
    coo = counts.tocoo()
    both = coo.data
    support = both / n
    confidence = both / single[coo.row]
    lift = confidence / (single[coo.col] / n)
    keep = (support >= min_support) & (confidence >= min_confidence)
    return Rules(
        antecedent=coo.row[keep].astype(np.int64),
        consequent=coo.col[keep].astype(np.int64),
        count=both[keep].astype(np.int64),
        support=support[keep],
        confidence=confidence[keep],
        lift=lift[keep],
    )


class CoOccurrenceModel:
    """Fitted pair counts and scores of one history."""

    def __init__(self, history: PurchaseHistory, params: CoOccurrenceParams) -> None:
        self.history = history
        self.params = params
        matrix, last = transactions(history, params.unit)
        age = np.maximum(history.now_day - last, 0.0)
        weight = np.power(0.5, age / params.half_life_days)
        self.n = matrix.shape[0]
        self.buyers = np.asarray(matrix.sum(axis=0)).ravel()
        popularity = np.asarray(matrix.T @ weight).ravel()
        # One product gives both counts: the real part counts the transactions holding
        # a pair, the imaginary part sums their recency weights.
        right = matrix.astype(np.complex128)
        right.data += 1j * np.repeat(weight, np.diff(matrix.indptr))
        both = (matrix.T.tocsr() @ right).tocsr()
        rows = np.repeat(np.arange(both.shape[0]), np.diff(both.indptr))
        count, weighted = both.data.real, both.data.imag
        # Pairs below the minimum support are no evidence: dropped, with each product's
        # pair with itself.
        floor = max(params.min_count, math.ceil(params.min_support * self.n - 1e-9))
        keep = (count >= floor) & (rows != both.indices)
        indices, rows = both.indices[keep], rows[keep]
        indptr = np.zeros(both.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=both.shape[0]), out=indptr[1:])
        shape = both.shape
        self.counts = sparse.csr_matrix((count[keep], indices, indptr), shape=shape)
        # Each customer's lines, found by slicing rather than scanning.
        self._by_customer = np.argsort(history.customer, kind="stable")
        self._bounds = np.searchsorted(
            history.customer[self._by_customer], np.arange(len(history.customers) + 1)
        )
        damp = np.power(np.maximum(popularity, 1e-12), -params.damping)
        self.scores: sparse.csr_matrix = sparse.csr_matrix(
            (weighted[keep] * damp[rows] * damp[indices], indices, indptr), shape=shape
        )

    def lift(self, a: int, b: int) -> float:
        """The lift of ``a -> b``."""
        return float(self._evidence(np.asarray([a]), np.asarray([b]))[1][0])

    def _evidence(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Transactions holding both, and the lift, of each pair ``a[k] -> b[k]``."""
        both = np.asarray(self.counts[a, b]).ravel().astype(np.float64)
        lift = both * self.n / (self.buyers[a] * self.buyers[b])
        return both, lift

    def _scored(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], score: npt.NDArray[np.float64]
    ) -> list[ScoredProduct]:
        if not len(b):
            return []
        both, lift = self._evidence(a, b)
        who = "人" if self.params.unit == "customer" else "件"
        products, names = self.history.products, self.history.names
        found = []
        for i, j, k, x, s in zip(
            a.tolist(), b.tolist(), both.tolist(), lift.tolist(), score.tolist(), strict=True
        ):
            name = names.get(products[i], products[i])
            reason = f"「{name}」を買った{who}の {k:.0f} {who}が一緒に購入, lift {x:.1f}"
            evidence = {
                "together": k,
                "buyers": float(self.buyers[i]),
                "confidence": k / float(self.buyers[i]),
                "lift": x,
            }
            found.append(ScoredProduct(s, products[j], reason, evidence))
        return found

    def for_product(
        self, product: str, limit: int, allowed: set[int] | None
    ) -> list[ScoredProduct]:
        """What is bought with ``product``, best first."""
        code = self.history.product_index.get(product)
        if code is None:
            return []
        row = np.asarray(self.scores.getrow(code).toarray()).ravel()
        _mask(row, allowed)
        top = top_codes(row, limit)
        return self._scored(np.full(len(top), code, dtype=np.int64), top, row[top])

    def for_customer(
        self, customer: str, limit: int, allowed: set[int] | None
    ) -> list[ScoredProduct]:
        """What people who bought what ``customer`` bought also bought, best first; each
        bought product counts by how recently the customer bought it."""
        code = self.history.customer_index.get(customer)
        if code is None:
            return []
        mine = self._by_customer[self._bounds[code] : self._bounds[code + 1]]
        owned, where = np.unique(self.history.product[mine], return_inverse=True)
        if not len(owned):
            return []
        last = np.full(len(owned), -np.inf)
        np.maximum.at(last, where, self.history.day[mine])
        recency = np.power(
            0.5, np.maximum(self.history.now_day - last, 0.0) / self.params.half_life_days
        )
        total = np.asarray(self.scores[owned].T @ recency).ravel()
        total[owned] = 0.0  # what they bought is not "bought together" for them
        _mask(total, allowed)
        top = top_codes(total, limit)
        # Each candidate's reason: the bought product contributing most to its score
        # (the scores are symmetric: a candidate's row holds its column).
        contribution = self.scores[top][:, owned].toarray() * recency
        strongest = owned[contribution.argmax(axis=1)] if len(top) else top
        return self._scored(strongest.astype(np.int64), top, total[top])


def _mask(scores: npt.NDArray[np.float64], allowed: set[int] | None) -> None:
    if allowed is not None:
        keep = np.zeros(len(scores), dtype=bool)
        keep[list(allowed)] = True
        scores[~keep] = 0.0


def top_codes(scores: npt.NDArray[np.float64], limit: int) -> npt.NDArray[np.int64]:
    """The codes of the ``limit`` highest positive scores, best first (ties by code)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > limit:
        cut = np.argpartition(-scores[positive], limit - 1)[:limit]
        positive = positive[cut]
    order = np.lexsort((positive, -scores[positive]))
    return positive[order].astype(np.int64)
