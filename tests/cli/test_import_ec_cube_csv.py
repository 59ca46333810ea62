"""``omnicrm import ec_cube-csv``: a shop's 会員CSV, 受注CSV and 商品CSV as the
connection's customers, orders and products in its shop; the same exports again change
nothing; a bad file exits 1 naming file, line and column and nothing is written; both
backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from omnicrm.cli import cli
from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers, order_lines, orders, product_variants, products
from omnicrm.plugins.ec_cube.api.mapping import product_from_node
from omnicrm.plugins.ec_cube.csv.columns import PRODUCTS_4_ALL
from omnicrm.plugins.ec_cube.csv.exports import (
    seed_shop,
    write_customers,
    write_orders,
    write_products,
)
from omnicrm.plugins.ec_cube.sandbox.data import generate

CONFIG = """\
[store]
url = "{url}"

[shops.yamada-en]
name = "お茶の山田園"

[shops.other]
name = "別の店"

[connections.yamada-cube]
channel = "ec_cube_csv"
shop = "yamada-en"

[connections.yamada-cube.settings]
site_name = "お茶の山田園"
url = "https://yamada-en.example.jp"
"""

PEOPLE, ORDERS = seed_shop(customers=10, orders=20)
CATALOGUE = [row.node for row in generate(3, customers=2, orders=2, products=40).products.values()]


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    return path


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "import", "ec_cube-csv", *args])
    return result.exit_code, result.stdout, result.stderr


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the record tables, in a fixed order."""
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: sorted(
                    (tuple(str(v) for v in row) for row in conn.execute(select(table))),
                )
                for table in (customers, orders, order_lines, products, product_variants)
            }
    finally:
        store.close()


@pytest.mark.parametrize("version", [4, 2])
def test_both_exports_become_the_shops_records_and_again_change_nothing(
    config: Path, store_url: str, tmp_path: Path, version: int
) -> None:
    members = write_customers(tmp_path / "customer.csv", PEOPLE, version=version)
    sales = write_orders(tmp_path / "order.csv", ORDERS, version=version)
    # Given in either order: each is told by its header.
    code, out, err = _run(config, "yamada-cube", str(sales), str(members))
    assert code == 0, err
    finished = [o for o in ORDERS if o["OrderStatus"]["id"] not in ("7", "8")]
    n = len(PEOPLE)
    assert f"{n} member(s) of {n} row(s); {n} new or changed" in out
    assert f"{len(finished)} order(s)" in out and "unfinished checkout(s) left out" in out
    first = _tables(store_url)
    assert len(first["customers"]) == len(PEOPLE) and len(first["orders"]) == len(finished)
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            assert set(conn.execute(select(orders.c.shop)).scalars()) == {"yamada-en"}
        runs = store.runs("yamada-cube")
        assert [(r.trigger, r.status.value) for r in runs] == [("import", "complete")] * 2
    finally:
        store.close()

    code, out, err = _run(config, "yamada-cube", str(members), str(sales))
    assert code == 0, err
    assert out.count("; 0 new or changed") == 2
    assert _tables(store_url) == first


def test_one_export_alone(config: Path, store_url: str, tmp_path: Path) -> None:
    sales = write_orders(tmp_path / "order.csv", ORDERS, version=4)
    code, out, err = _run(config, "yamada-cube", str(sales))
    assert code == 0, err
    assert "member(s)" not in out and "order(s)" in out
    tables = _tables(store_url)
    assert tables["customers"] == [] and tables["orders"]


def test_a_bad_file_names_line_and_column_and_nothing_is_written(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    members = write_customers(tmp_path / "customer.csv", PEOPLE, version=4)
    sales = write_orders(tmp_path / "order.csv", ORDERS, version=4)
    lines = sales.read_bytes().decode("cp932").split("\n")
    lines[6] = lines[6].replace(":", "時", 1)  # a 受注日 no one can read
    sales.write_bytes("\n".join(lines).encode("cp932"))
    code, _, err = _run(config, "yamada-cube", str(members), str(sales))
    assert code == 1
    assert f"{sales}:7:受注日: not a date or time" in err.replace("\n", "")
    assert f"{sales}: not imported" in err.replace("\n", "")
    # Every file is checked before any is written: the good member file waits too.
    assert not any(_tables(store_url).values())


def test_two_exports_of_one_kind_are_refused(config: Path, tmp_path: Path) -> None:
    one = write_customers(tmp_path / "customer.csv", PEOPLE, version=4)
    two = write_customers(tmp_path / "customer2.csv", PEOPLE, version=2)
    code, _, err = _run(config, "yamada-cube", str(one), str(two))
    assert code == 2
    assert "both customers exports" in err


def test_a_connection_of_another_channel_is_refused(config: Path, tmp_path: Path) -> None:
    text = CONFIG.format(url="sqlite:///" + str(tmp_path / "x.db")) + (
        '\n[connections.register]\nchannel = "pos_csv"\nshop = "yamada-en"\n'
    )
    config.write_text(text, encoding="utf-8")
    members = write_customers(tmp_path / "customer.csv", PEOPLE)
    code, _, err = _run(config, "register", str(members))
    assert code == 2
    assert "`import ec_cube-csv` takes a ec_cube_csv one" in err


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("version", [4, 2])
def test_the_product_export_becomes_the_shops_catalogue(
    config: Path, store_url: str, tmp_path: Path, version: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the products table whole, links and all
    header = PRODUCTS_4_ALL if version == 4 else None
    catalogue = write_products(tmp_path / "product.csv", CATALOGUE, version=version, header=header)
    members = write_customers(tmp_path / "customer.csv", PEOPLE, version=version)
    code, out, err = _run(config, "yamada-cube", str(members), str(catalogue))
    assert code == 0, err
    rows = sum(len(n["ProductClasses"]) for n in CATALOGUE)
    n = len(CATALOGUE)
    assert f"product.csv: {n} product(s) of {rows} row(s); {n} new or changed" in out
    first = _tables(store_url)
    assert len(first["products"]) == n and len(first["customers"]) == len(PEOPLE)

    # What recommendations may offer: what the shop sells now, with its price and link.
    code, out, err = _cli(config, "products", "--shop", "yamada-en")
    assert code == 0, err
    base = "https://yamada-en.example.jp"
    mapped = [product_from_node(node, base=base) for node in CATALOGUE]
    on_sale = [
        (p, v)
        for p in mapped
        if p.status.value == "active" and not any(c.get("TaxRule") for c in p.raw["ProductClasses"])
        for v in p.variants
        if v.available and v.sku
    ]
    assert on_sale
    for _, variant in on_sale[:5]:
        assert variant.sku in out and f"{variant.price:,.0f} JPY" in out
    sold_out = [v.sku for p in mapped for v in p.variants if v.sku and not v.available]
    assert sold_out and not any(f" {sku} " in out for sku in sold_out)
    link = "detail/" if version == 4 else "detail.php"
    assert f"{base}/products/{link}" in out

    code, out, err = _run(config, "yamada-cube", str(catalogue))
    assert code == 0, err
    assert "; 0 new or changed" in out
    assert _tables(store_url) == first


@pytest.mark.parametrize(
    ("cell", "value", "problem"),
    [
        ("在庫数", "many", "在庫数: not a whole number: 'many'"),
        ("販売価格", "", "販売価格: a value is required"),
        ("在庫数無制限フラグ", "2", "在庫数無制限フラグ: not a flag: '2' (0 or 1)"),
    ],
)
def test_a_bad_product_file_is_named_and_nothing_is_written(
    config: Path, store_url: str, tmp_path: Path, cell: str, value: str, problem: str
) -> None:
    members = write_customers(tmp_path / "customer.csv", PEOPLE, version=4)
    catalogue = write_products(tmp_path / "product.csv", CATALOGUE)
    lines = catalogue.read_bytes().decode("cp932").split("\n")
    column = lines[0].split(",").index(cell)
    cells = lines[3].split(",")
    cells[column] = value
    lines[3] = ",".join(cells)
    catalogue.write_bytes("\n".join(lines).encode("cp932"))
    code, _, err = _run(config, "yamada-cube", str(members), str(catalogue))
    assert code == 1
    said = err.replace("\n", "")
    assert f"{catalogue}:4:{problem}" in said
    assert f"{catalogue}: not imported" in said
    assert not any(_tables(store_url).values())


def test_a_product_file_in_another_encoding_is_refused(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    catalogue = write_products(tmp_path / "product.csv", CATALOGUE, encoding="utf-16")
    code, _, err = _run(config, "yamada-cube", str(catalogue))
    assert code == 1
    said = err.replace("\n", "")
    assert f"{catalogue}:1: " in said and "UTF-16" in said
    assert not any(_tables(store_url).values())
