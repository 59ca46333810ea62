"""Re-order timing: each product's typical interval, and who is due now."""

from __future__ import annotations

import datetime as dt

import pytest

from omnicrm import Purchase, PurchaseHistory
from omnicrm.plugins.recommenders.reorder import ReorderModel, ReorderParams

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def bought(customer: str, product: str, *days_ago: float) -> list[Purchase]:
    return [
        Purchase(customer, product, placed_at=NOW - dt.timedelta(days=d), order_id=f"{customer}{d}")
        for d in days_ago
    ]


def shop() -> PurchaseHistory:
    rows = [
        # Tea: every 30 days, 3 of 4 buyers again.
        *bought("a", "tea", 90, 60, 30),  # last 30 days ago: due
        *bought("b", "tea", 100, 70, 40),  # 40 days: due, a little late
        *bought("c", "tea", 40, 10),  # 10 days: not yet
        *bought("d", "tea", 5),
        # Two lines of one day are one purchase; the kettle is never bought again.
        *bought("a", "kettle", 90, 90),
        *bought("b", "kettle", 300),
        *bought("c", "kettle", 200),
    ]
    return PurchaseHistory.from_purchases(rows, now=NOW, names={"tea": "煎茶"})


def test_a_repeat_products_interval_and_share() -> None:
    model = ReorderModel(shop(), ReorderParams())
    tea = model.history.product_index["tea"]
    assert model.interval[tea] == 30.0
    assert model.share[tea] == pytest.approx(3 / 4)
    assert model.is_repeat("tea") and not model.is_repeat("kettle")


def test_the_due_customer_ranks_first_with_the_interval_in_words() -> None:
    model = ReorderModel(shop(), ReorderParams())
    (tea,) = model.for_customer("a", 5, None)
    assert tea.product_id == "tea"
    assert tea.reason == "「煎茶」を平均 30 日ごとに購入する商品 (リピート率 75%), 前回から 30 日"
    assert tea.score == pytest.approx(0.75)  # exactly due: the full repeat share
    early = model.for_customer("c", 5, None)[0]
    assert early.score < model.for_customer("b", 5, None)[0].score < tea.score
    assert model.for_customer("nobody", 5, None) == []


def test_who_is_due_now() -> None:
    due = ReorderModel(shop(), ReorderParams()).due("tea")
    assert [(d.customer_id, d.elapsed_days) for d in due] == [("a", 30.0), ("b", 40.0)]
    assert ReorderModel(shop(), ReorderParams()).due("kettle") == []
