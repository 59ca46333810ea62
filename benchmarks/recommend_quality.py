"""Recommendation quality on real baskets: UCI Online Retail, a time split.

Train on every purchase up to 2011-09-30, predict each customer's purchases after it:
recall@10 and nDCG@10 of each built-in recommender (through the hook, as the app asks
them) and of their merge (omnicrm.engage.recommend), beside a plain popularity
baseline and the item-item and ALS models of the `implicit` package, on the same split
in the same run. Two targets: every product bought after the split ("all"), and only
products the customer had not bought before ("new"; every model's list is cleared of
what the customer bought before the split). Last, the pair association rules on all
baskets are checked equal to mlxtend's fpgrowth + association_rules.

    pip install -e ".[bench]"
    python benchmarks/recommend_quality.py [--customers N] [--rules-support 0.01]
    python benchmarks/recommend_quality.py --weights also-bought=1,reorder=0.5,segment-popular=0
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit asks for it, before numpy loads

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._retail import day_of, load, mlxtend_rules, our_rules, same_rules
from omnicrm import PurchaseHistory, RecommendationRequest

CUTOFF = dt.datetime(2011, 10, 1, tzinfo=dt.UTC)
K = 10
WIDE = 30  # lists asked this long, so clearing bought products still leaves K


def ndcg(ranked: Sequence[str], truth: set[str]) -> float:
    gains = sum(1.0 / np.log2(i + 2) for i, p in enumerate(ranked[:K]) if p in truth)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(truth), K)))
    return float(gains / ideal)


def recall(ranked: Sequence[str], truth: set[str]) -> float:
    return len(set(ranked[:K]) & truth) / len(truth)


def parse_weights(text: str, parser: argparse.ArgumentParser) -> dict[str, float]:
    """``also-bought=1,reorder=0.5`` as {name: weight}; a bad one stops with its reason."""
    found: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not weight >= 0 or weight == float("inf"):
            parser.error(f"--weights {text!r}: {part!r} is not NAME=WEIGHT (a number >= 0)")
        found[name.strip()] = weight
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=0, help="evaluate this many (0: all)")
    parser.add_argument("--rules-support", type=float, default=0.01)
    parser.add_argument("--rules-confidence", type=float, default=0.1)
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=W,...",
        help="also score the merge with these weights, as a shop's [recommend] weights "
        "(e.g. also-bought=1,reorder=0.5,segment-popular=0); may be given several times",
    )
    args = parser.parse_args()
    asked_weights = [parse_weights(text, parser) for text in args.weights]

    started = time.perf_counter()
    lines = load()
    print(
        f"online retail: {len(lines):,} kept lines, {len(lines.stocks):,} products, "
        f"{len(lines.customers):,} customers (read in {time.perf_counter() - started:.1f} s)"
    )
    cut = day_of(CUTOFF)
    train = lines.select(lines.day < cut)
    test = lines.select((lines.day >= cut) & (lines.customer >= 0))
    history = train.history(now=CUTOFF)
    truth: dict[str, set[str]] = {}
    for c, p in zip(test.customer.tolist(), test.stock.tolist(), strict=True):
        truth.setdefault(lines.customers[c], set()).add(lines.stocks[p])
    people = sorted(truth)
    if args.customers:
        people = people[: args.customers]
    before = {c: history.bought_by(c) for c in people}
    cold = sum(1 for c in people if not before[c])
    print(
        f"split at {CUTOFF:%Y-%m-%d}: {len(train):,} training lines; {len(people):,} customers "
        f"bought after it ({cold:,} with no purchase before)"
    )

    models: dict[str, Callable[[list[str]], list[list[str]]]] = {}

    buyers = np.bincount(
        np.unique(
            train.customer[train.customer >= 0] * len(lines.stocks)
            + train.stock[train.customer >= 0]
        )
        % len(lines.stocks),
        minlength=len(lines.stocks),
    )
    popular = [lines.stocks[i] for i in np.argsort(-buyers, kind="stable")[:WIDE]]
    models["popularity (baseline)"] = lambda who: [popular for _ in who]

    from omnicrm.core.host import Host
    from omnicrm.engage.recommend import for_customer

    host = Host.load()
    fit_times: dict[str, float] = {}
    for name in sorted(host.recommenders):
        t = time.perf_counter()
        host.recommend(RecommendationRequest(name, history, customer_id=people[0]))
        fit_times[name] = time.perf_counter() - t

        def ask(who: list[str], name: str = name) -> list[list[str]]:
            return [
                [
                    s.product_id
                    for s in host.recommend(
                        RecommendationRequest(name, history, customer_id=c, limit=WIDE)
                    )
                ]
                for c in who
            ]

        models[f"omnicrm {name}"] = ask
    models["omnicrm merged"] = lambda who: [
        [r.product_id for r in for_customer(host, history, c, limit=WIDE)] for c in who
    ]
    for weights in asked_weights:
        unknown = sorted(set(weights) - set(host.recommenders))
        if unknown:
            parser.error(
                f"--weights names {', '.join(unknown)}: installed are "
                f"{', '.join(sorted(host.recommenders))}"
            )
        label = ",".join(f"{n}={w:g}" for n, w in weights.items())
        models[f"omnicrm merged {label}"] = lambda who, w=weights: [
            [r.product_id for r in for_customer(host, history, c, limit=WIDE, weights=w)]
            for c in who
        ]
    models.update(implicit_models(history))

    print(
        f"\n{'model':28} {'recall@10 all':>14} {'nDCG@10 all':>12} "
        f"{'recall@10 new':>14} {'nDCG@10 new':>12} {'seconds':>8}"
    )
    for name, model in models.items():
        t = time.perf_counter()
        lists = model(people)
        seconds = time.perf_counter() - t + fit_times.get(name.removeprefix("omnicrm "), 0.0)
        scores = {"all": ([], []), "new": ([], [])}  # type: dict[str, tuple[list[float], list[float]]]
        for c, ranked in zip(people, lists, strict=True):
            for target, items, want in (
                ("all", ranked, truth[c]),
                ("new", [p for p in ranked if p not in before[c]], truth[c] - before[c]),
            ):
                if want:
                    scores[target][0].append(recall(items, want))
                    scores[target][1].append(ndcg(items, want))
        row = [float(np.mean(scores[t][m])) for t in ("all", "new") for m in (0, 1)]
        print(
            f"{name:28} {row[0]:14.4f} {row[1]:12.4f} {row[2]:14.4f} {row[3]:12.4f} {seconds:8.1f}"
        )
    print(f"(new: {len(scores['new'][0]):,} customers bought something new to them)")

    everything = lines.history()
    for unit, support in (("basket", args.rules_support), ("customer", 5 * args.rules_support)):
        t = time.perf_counter()
        ours = our_rules(everything, support, args.rules_confidence, unit)  # type: ignore[arg-type]
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        theirs = mlxtend_rules(everything, support, args.rules_confidence, unit)  # type: ignore[arg-type]
        t_theirs = time.perf_counter() - t
        problems = same_rules(ours, theirs)
        print(
            f"\nrules per {unit}, all {len(lines):,} lines, min support {support}, "
            f"min confidence {args.rules_confidence}: omnicrm {len(ours):,} rules in "
            f"{t_ours:.2f} s, mlxtend {len(theirs):,} in {t_theirs:.2f} s: "
            + ("SAME (support, confidence, lift)" if not problems else "DIFFERENT")
        )
        for problem in problems[:10]:
            print("  ", problem)


def implicit_models(
    history: PurchaseHistory,
) -> dict[str, Callable[[list[str]], list[list[str]]]]:
    """implicit's item-item (cosine) and ALS on the customers x products counts."""
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    known = history.customer >= 0
    baskets = np.unique(
        np.stack([history.customer[known], history.product[known], history.basket[known]]), axis=1
    )
    # Confidence: the number of orders holding the product.
    user_items = sparse.csr_matrix(
        (np.ones(baskets.shape[1], dtype=np.float32), (baskets[0], baskets[1])),
        shape=(len(history.customers), len(history.products)),
    )
    user_items.sum_duplicates()
    made: dict[str, Callable[[list[str]], list[list[str]]]] = {}
    for name, model in (
        ("implicit item-item (cosine)", CosineRecommender(K=100)),
        (
            "implicit ALS",
            AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, random_state=1),
        ),
    ):
        t = time.perf_counter()
        model.fit(user_items, show_progress=False)
        print(f"{name}: fit {time.perf_counter() - t:.1f} s")

        def ask(who: list[str], model: object = model) -> list[list[str]]:
            codes = np.asarray([history.customer_index.get(c, -1) for c in who])
            lists: list[list[str]] = [[] for _ in who]
            have = np.flatnonzero(codes >= 0)
            ids, _ = model.recommend(  # type: ignore[attr-defined]
                codes[have], user_items[codes[have]], N=WIDE, filter_already_liked_items=False
            )
            for row, k in zip(ids, have, strict=True):
                lists[k] = [history.products[int(i)] for i in row if i >= 0]
            return lists

        made[name] = ask
    return made


if __name__ == "__main__":
    main()
