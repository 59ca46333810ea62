"""Recommendation model fit over 1,000,000 order lines, beside mlxtend and implicit.

The lines are the UCI Online Retail ones (real baskets), replicated until there are
``--lines`` of them: each copy is a new set of customers and orders, a year later, on
the same products. Timed on the same data in the same run: each built-in model's fit
(bought together, re-order timing, segment popularity; goal: all three under 10 s),
the pair rules of the built-in co-occurrence against mlxtend's fpgrowth +
association_rules at the same thresholds (rules checked equal), and implicit's
item-item (cosine) and ALS fits on the customers x products matrix.

    pip install -e ".[bench]"
    python benchmarks/recommend_fit.py [--lines 1000000] [--skip-mlxtend]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit asks for it, before numpy loads

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._retail import Lines, load, mlxtend_rules, our_rules, same_rules
from omnicrm import PurchaseHistory
from omnicrm.plugins.recommenders.cooccurrence import (
    CoOccurrenceModel,
    CoOccurrenceParams,
)
from omnicrm.plugins.recommenders.popularity import PopularityModel, PopularityParams
from omnicrm.plugins.recommenders.reorder import ReorderModel, ReorderParams


def replicate(lines: Lines, total: int) -> PurchaseHistory:
    """``lines`` copied (new customers and orders, a year later each time) to ``total``."""
    copies = -(-total // len(lines))
    n_customers = len(lines.customers)
    span = int(lines.invoice.max()) + 1
    parts = []
    for k in range(copies):
        customer = np.where(lines.customer >= 0, lines.customer + k * n_customers, -1)
        parts.append(
            (customer, lines.stock, lines.invoice + k * span, lines.day + 365.0 * k, lines.quantity)
        )
    customer, product, basket, day, quantity = (
        np.concatenate(a)[:total] for a in zip(*parts, strict=True)
    )
    customers = [f"{c}#{k}" for k in range(copies) for c in lines.customers]
    segment_of = {f"{c}#{k}": s for k in range(copies) for c, s in lines.country.items()}
    return PurchaseHistory(
        customers=customers,
        products=lines.stocks,
        customer=customer,
        product=product,
        basket=basket,
        day=day,
        quantity=quantity,
        segment_of=segment_of,
        names=lines.names,
    )


def timed(label: str, run: object) -> float:
    """Run ``run``; print its wall seconds and this process's CPU seconds (the CPU figure
    moves less with other processes' load on a shared machine). Returns the wall time."""
    started, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    seconds, used = time.perf_counter() - started, time.process_time() - cpu
    print(f"  {label:46} {seconds:8.2f} s  (CPU {used:6.2f} s)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--min-support", type=float, default=0.01)
    parser.add_argument("--min-confidence", type=float, default=0.1)
    parser.add_argument("--skip-mlxtend", action="store_true")
    args = parser.parse_args()

    history = replicate(load(), args.lines)
    print(
        f"{len(history):,} order lines, {len(history.products):,} products, "
        f"{len(history.customers):,} customers, {len(np.unique(history.basket)):,} orders"
    )
    print("omnicrm (each model fitted once per shop history):")
    ours = sum(
        timed(label, run)
        for label, run in (
            (
                "bought together (per customer)",
                lambda: CoOccurrenceModel(history, CoOccurrenceParams()),
            ),
            ("re-order timing", lambda: ReorderModel(history, ReorderParams())),
            ("segment popularity", lambda: PopularityModel(history, PopularityParams())),
        )
    )
    print(
        f"  {'all three':46} {ours:8.2f} s  (goal under 10 s: {'met' if ours < 10 else 'NOT met'})"
    )
    rules_ours = timed(
        f"pair rules per order (support {args.min_support})",
        lambda: our_rules(history, args.min_support, args.min_confidence, "basket"),
    )

    known = history.customer >= 0
    user_items = sparse.csr_matrix(
        (
            np.ones(int(known.sum()), dtype=np.float32),
            (history.customer[known], history.product[known]),
        ),
        shape=(len(history.customers), len(history.products)),
    )
    user_items.sum_duplicates()
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    print("implicit (customers x products):")
    item_item = timed(
        "item-item (cosine, K=100) fit",
        lambda: CosineRecommender(K=100).fit(user_items, show_progress=False),
    )
    als = timed(
        "ALS (64 factors, 15 iterations) fit",
        lambda: AlternatingLeastSquares(factors=64, iterations=15, random_state=1).fit(
            user_items, show_progress=False
        ),
    )
    if args.skip_mlxtend:
        return
    print("mlxtend (one-hot orders frame, fpgrowth max_len=2 + association_rules):")
    found: dict[str, object] = {}
    rules_theirs = timed(
        f"pair rules per order (support {args.min_support})",
        lambda: found.update(
            rules=mlxtend_rules(history, args.min_support, args.min_confidence, "basket")
        ),
    )
    problems = same_rules(
        our_rules(history, args.min_support, args.min_confidence, "basket"),
        found["rules"],  # type: ignore[arg-type]
    )
    print(f"rules equal to mlxtend's: {'yes' if not problems else problems[:5]}")
    print(
        f"\nratios: mlxtend rules / omnicrm rules {rules_theirs / rules_ours:.1f}x; "
        f"implicit item-item / omnicrm all three {item_item / ours:.2f}x; "
        f"implicit ALS / omnicrm all three {als / ours:.2f}x"
    )


if __name__ == "__main__":
    main()
