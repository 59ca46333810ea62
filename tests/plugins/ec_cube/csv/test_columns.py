"""The header sets and master tables against EC-CUBE's own data: 4.x's ``dtb_csv`` and
``mtb_*`` (../shared/reference/eccube/masters), and 2.13's header lines as its install
data writes them (data/eccube2_*.csv, transcribed from html/install/sql/insert_data.sql)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from omnicrm.csvfiles import header_name
from omnicrm.plugins.ec_cube.csv import masters_csv as masters
from omnicrm.plugins.ec_cube.csv.columns import (
    CUSTOMER_FIELDS,
    CUSTOMERS_2,
    CUSTOMERS_4,
    ORDER_FIELDS,
    ORDERS_2,
    ORDERS_4,
    is_orders,
)
from tests.support.reference import REFERENCE, require

MASTERS = REFERENCE / "eccube" / "masters"
DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with require(MASTERS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _dtb_csv(csv_type: str) -> list[str]:
    rows = [r for r in _rows("dtb_csv.csv") if r["csv_type_id"] == csv_type and r["enabled"] == "1"]
    return [r["disp_name"] for r in sorted(rows, key=lambda r: int(r["sort_no"]))]


def test_the_4x_customer_header_set_is_dtb_csv_type_2() -> None:
    assert list(CUSTOMERS_4) == _dtb_csv("2")


@pytest.mark.parametrize("csv_type", ["3", "4"], ids=["受注CSV", "配送CSV"])
def test_the_4x_order_header_set_is_dtb_csv_type_3_and_4(csv_type: str) -> None:
    assert list(ORDERS_4) == _dtb_csv(csv_type)


@pytest.mark.parametrize(
    ("master", "table"),
    [
        ("mtb_pref.csv", masters.PREFECTURES),
        ("mtb_sex.csv", masters.SEXES),
        ("mtb_job.csv", masters.JOBS),
        ("mtb_customer_status.csv", masters.CUSTOMER_STATUSES),
        ("mtb_order_item_type.csv", masters.ORDER_ITEM_TYPES),
    ],
)
def test_master_tables_are_ec_cubes(master: str, table: dict[int, str]) -> None:
    assert {int(r["id"]): r["name"] for r in _rows(master)} == dict(table)


def test_order_statuses_are_4xs_with_2xs_added() -> None:
    reference = {int(r["id"]): r["name"] for r in _rows("mtb_order_status.csv")}
    assert {k: v for k, v in masters.ORDER_STATUSES.items() if k in reference} == reference
    assert set(masters.ORDER_STATUSES) - set(reference) == {2}  # 2.x's 入金待ち
    names = {int(r["id"]): r["name"] for r in _rows("mtb_order_status.csv")}
    assert {names[i] for i in masters.UNFINISHED} == {"決済処理中", "購入処理中"}


def _header(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()[0].split(",")


@pytest.mark.parametrize(
    ("file", "ours", "orders"),
    [
        ("eccube2_customers_header.csv", CUSTOMERS_2, False),
        ("eccube2_orders_header.csv", ORDERS_2, True),
    ],
)
def test_2x_header_sets_are_what_213_writes(file: str, ours: tuple[str, ...], orders: bool) -> None:
    header = _header(file)
    assert list(ours) == header
    assert is_orders(header) is orders


def test_every_header_of_a_default_export_is_known_or_deliberately_unread() -> None:
    """A field's headers appear in some default set: no candidate is a guess that
    nothing writes (but the ones for columns shops add: mailmaga_flg, del_flg...)."""
    written = {header_name(h) for h in (*CUSTOMERS_4, *CUSTOMERS_2, *ORDERS_4, *ORDERS_2)}
    added = {"mailmaga", "deleted", "status", "family_name", "given_name"}
    added |= {"family_kana", "given_kana", "phone", "order_id", "quantity", "item_type"}
    for fields in (CUSTOMER_FIELDS, ORDER_FIELDS):
        for field, headers in fields.items():
            if field not in added:
                assert header_name(headers[0]) in written, (field, headers[0])
