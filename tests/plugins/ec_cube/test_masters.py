"""The master tables shipped in the plugin equal EC-CUBE's seed CSVs."""

from __future__ import annotations

import csv

import pytest

from omnicrm import Gender, OrderStatus
from omnicrm.plugins.ec_cube import masters
from tests.support.reference import REFERENCE, require

TABLES = {
    "mtb_pref.csv": masters.PREFECTURES,
    "mtb_sex.csv": masters.SEXES,
    "mtb_job.csv": masters.JOBS,
    "mtb_order_status.csv": masters.ORDER_STATUSES,
    "mtb_customer_status.csv": masters.CUSTOMER_STATUSES,
    "mtb_order_item_type.csv": masters.ORDER_ITEM_TYPES,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_equal_the_reference(name: str) -> None:
    path = require(REFERENCE / "eccube" / "masters" / name)
    with path.open(encoding="utf-8") as f:
        rows = {int(r["id"]): r["name"] for r in csv.DictReader(f)}
    assert TABLES[name] == rows


def test_lookups() -> None:
    assert masters.prefecture("13") == "東京都" and masters.prefecture(99) is None
    assert masters.prefecture(None) is None and masters.prefecture("x") is None
    assert masters.gender(2) is Gender.FEMALE and masters.gender("9") is Gender.UNKNOWN
    assert masters.customer_status(3) == "退会" and masters.is_withdrawn("3")
    assert masters.order_item_type(1) == "商品" and masters.is_product_line("1")
    assert not masters.is_product_line(2)
    assert masters.order_status("5") is OrderStatus.FULFILLED
    assert masters.order_status(9) is OrderStatus.RETURNED
    for unfinished in (7, 8, 42):
        with pytest.raises(KeyError):
            masters.order_status(unfinished)
    assert masters.SALES_STATUSES == (1, 3, 4, 5, 6, 9)
