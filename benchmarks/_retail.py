"""The UCI Online Retail lines as purchase arrays (benchmarks and their tests).

Cancellations (invoice ``C...``), non-positive quantities and the non-product codes
(postage, fees, manual adjustments: stock codes not starting with a digit) are left
out; lines without a CustomerID stay, as anonymous baskets.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from omnicrm import PurchaseHistory
from omnicrm.plugins.recommenders.cooccurrence import Unit, rules, transactions

FILE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "online_retail"
FILE = FILE / "online_retail.csv.gz"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Lines:
    """The kept lines, one entry per line in each array."""

    invoice: npt.NDArray[np.int64]
    stock: npt.NDArray[np.int64]  # codes into ``stocks``
    customer: npt.NDArray[np.int64]  # codes into ``customers``, -1 when unknown
    day: npt.NDArray[np.float64]  # days since 1970
    quantity: npt.NDArray[np.int64]
    stocks: list[str]
    customers: list[str]
    country: dict[str, str]  # customer -> country
    names: dict[str, str]

    def __len__(self) -> int:
        return len(self.invoice)

    def select(self, keep: npt.NDArray[np.bool_]) -> Lines:
        """The lines where ``keep`` holds (codes unchanged)."""
        return Lines(
            self.invoice[keep],
            self.stock[keep],
            self.customer[keep],
            self.day[keep],
            self.quantity[keep],
            self.stocks,
            self.customers,
            self.country,
            self.names,
        )

    def history(self, now: dt.datetime | None = None) -> PurchaseHistory:
        """These lines as a :class:`PurchaseHistory` (all stock codes as products)."""
        return PurchaseHistory(
            customers=self.customers,
            products=self.stocks,
            customer=self.customer,
            product=self.stock,
            basket=self.invoice,
            day=self.day,
            quantity=self.quantity,
            now=now,
            segment_of=self.country,
            names=self.names,
        )


def day_of(moment: dt.datetime) -> float:
    """Days since 1970 of an aware moment."""
    return (moment - EPOCH).total_seconds() / 86400.0


def load(path: Path = FILE, *, limit: int | None = None) -> Lines:
    """Read the kept lines of the file (the first ``limit`` rows read, when given)."""
    invoices: list[int] = []
    stocks: list[str] = []
    customers: list[str] = []
    days: list[str] = []
    quantities: list[int] = []
    country: dict[str, str] = {}
    names: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            if limit is not None and n >= limit:
                break
            invoice, stock = row["InvoiceNo"], row["StockCode"].strip().upper()
            quantity = int(row["Quantity"])
            if invoice.startswith("C") or quantity <= 0 or not stock[:1].isdigit():
                continue
            customer = row["CustomerID"].strip()
            if customer.endswith(".0"):
                customer = customer[:-2]
            invoices.append(int(invoice))
            stocks.append(stock)
            customers.append(customer)
            days.append(row["InvoiceDate"])
            quantities.append(quantity)
            if customer:
                country[customer] = row["Country"]
            names.setdefault(stock, row["Description"].strip())
    stock_labels, stock_codes = np.unique(np.asarray(stocks), return_inverse=True)
    known = sorted({c for c in customers if c})
    index = {c: i for i, c in enumerate(known)}
    return Lines(
        invoice=np.asarray(invoices, dtype=np.int64),
        stock=stock_codes.astype(np.int64),
        customer=np.asarray([index.get(c, -1) for c in customers], dtype=np.int64),
        # Minutes since 1970 (the file's local time, taken as UTC) to days, in bulk.
        day=np.asarray(days, dtype="datetime64[m]").astype(np.int64) / 1440.0,
        quantity=np.asarray(quantities, dtype=np.int64),
        stocks=[str(s) for s in stock_labels],
        customers=known,
        country=country,
        names=names,
    )


Rule = tuple[str, str]


def our_rules(
    history: PurchaseHistory, min_support: float, min_confidence: float, unit: Unit
) -> dict[Rule, tuple[float, float, float]]:
    """The built-in pair rules: (antecedent, consequent) -> (support, confidence, lift)."""
    found = rules(history, min_support=min_support, min_confidence=min_confidence, unit=unit)
    names = history.products
    return {
        (names[a], names[c]): (s, k, lift)
        for a, c, s, k, lift in zip(
            found.antecedent.tolist(),
            found.consequent.tolist(),
            found.support.tolist(),
            found.confidence.tolist(),
            found.lift.tolist(),
            strict=True,
        )
    }


def mlxtend_rules(
    history: PurchaseHistory, min_support: float, min_confidence: float, unit: Unit
) -> dict[Rule, tuple[float, float, float]]:
    """mlxtend's fpgrowth + association_rules on the same transactions, pairs only."""
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    matrix, _ = transactions(history, unit)
    frame = pd.DataFrame(matrix.toarray().astype(bool), columns=history.products)
    frequent = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=2)
    if frequent["itemsets"].map(len).max() < 2:
        return {}
    table = association_rules(
        frequent, num_itemsets=len(frame), metric="confidence", min_threshold=min_confidence
    )
    return {
        (next(iter(row.antecedents)), next(iter(row.consequents))): (
            float(row.support),
            float(row.confidence),
            float(row.lift),
        )
        for row in table.itertuples()
    }


def same_rules(
    ours: dict[Rule, tuple[float, float, float]], theirs: dict[Rule, tuple[float, float, float]]
) -> list[str]:
    """What differs between two rule sets (empty when they are the same)."""
    problems = [f"only ours: {r}" for r in sorted(set(ours) - set(theirs))[:5]]
    problems += [f"only mlxtend: {r}" for r in sorted(set(theirs) - set(ours))[:5]]
    for rule in sorted(set(ours) & set(theirs)):
        if not np.allclose(ours[rule], theirs[rule], rtol=1e-9, atol=1e-12):
            problems.append(f"{rule}: ours {ours[rule]}, mlxtend {theirs[rule]}")
    return problems
