"""The 商品CSV: the emulator's catalogue written as EC-CUBE's product export (4.x and
2.x header sets, cp932 or UTF-8) reads back as the Web API mapping reads the same
nodes: names, prices with tax, availability (sold out, sold without stock, hidden,
非公開, 廃止 or deleted); every bad file is refused naming its file, line and column."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from omnicrm import Product, ProductStatus
from omnicrm.csvfiles import CsvImportError
from omnicrm.plugins.ec_cube.api.mapping import product_from_node
from omnicrm.plugins.ec_cube.csv import Kind, Pricing, read_export
from omnicrm.plugins.ec_cube.csv.columns import PRODUCTS_2, PRODUCTS_4, PRODUCTS_4_ALL
from omnicrm.plugins.ec_cube.csv.exports import write_products
from omnicrm.plugins.ec_cube.sandbox.data import generate

TOKYO = ZoneInfo("Asia/Tokyo")
BASE = "https://shop.example.jp"
NODES = [row.node for row in generate(7, customers=5, orders=5, products=80).products.values()]
API = {p.id: p for p in (product_from_node(n, base=BASE) for n in NODES)}


def _read(path: Path, pricing: Pricing | None = None) -> dict[str, Product]:
    with read_export(path, timezone=TOKYO, pricing=pricing or Pricing(url=BASE)) as export:
        assert export.kind is Kind.PRODUCTS
        found = [r for _, batch in export.batches() for r in batch]
    assert all(isinstance(p, Product) for p in found)
    return {p.id: p for p in found if isinstance(p, Product)}


def _variants(p: Product) -> list[tuple[Any, ...]]:
    return [
        (v.id, v.sku, v.title, v.price, v.compare_at_price, v.available, v.inventory)
        for v in p.variants
    ]


def _sale(p: Product, *, links: bool = True, tags: bool = True) -> tuple[Any, ...]:
    return (
        p.title,
        p.status,
        (p.url, p.image_url) if links else None,
        p.tags if tags else None,
        _variants(p),
    )


def _offered(p: Product) -> tuple[Any, ...]:
    """What recommendations may offer of a product: nothing unless it is on sale and
    has a class in stock."""
    on_sale = p.status is ProductStatus.ACTIVE and any(v.available for v in p.variants)
    return (p.title, on_sale, [(*v[:5], v[5] and on_sale) for v in _variants(p)])


def _own_rule(product: Product) -> bool:
    return any(c.get("TaxRule") for c in product.raw["ProductClasses"])


def test_the_seed_holds_every_case_availability_turns_on() -> None:
    variants = [v for p in API.values() for v in p.variants]
    assert {p.status for p in API.values()} == set(ProductStatus)  # 公開, 非公開, 廃止
    assert any(v.inventory == 0 and not v.available for v in variants)  # sold out
    assert any(v.inventory is None and v.available for v in variants)  # no stock kept
    hidden = [c for n in NODES for c in n["ProductClasses"] if c["visible"] is False]
    assert any(c["ClassCategory1"] for c in hidden)  # a hidden class that has a 規格
    assert any(not c["ClassCategory1"] for c in hidden)  # the class-less one, left out
    assert any(_own_rule(p) for p in API.values()) and not all(_own_rule(p) for p in API.values())


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_every_4x_column_reads_exactly_as_the_api(tmp_path: Path, encoding: str) -> None:
    path = write_products(tmp_path / "product.csv", NODES, header=PRODUCTS_4_ALL, encoding=encoding)
    from_csv = _read(path)
    assert set(from_csv) == set(API)
    differing = [i for i in API if _sale(from_csv[i]) != _sale(API[i])]
    assert differing == [], [(_sale(from_csv[i]), _sale(API[i])) for i in differing[:2]]
    assert all(p.raw["file"] == "product.csv" for p in from_csv.values())


def _hides(product: Product) -> bool:
    """Whether a product has a hidden class the API keeps (the class-less one of a
    product with classes is left out by its shape alone, with or without the flag)."""
    classes = product.raw["ProductClasses"]
    return any(
        c["visible"] is False and (c["ClassCategory1"] or len(classes) == 1) for c in classes
    )


def test_the_default_4x_columns_tax_every_class_at_the_shops_rate(tmp_path: Path) -> None:
    # dtb_csv leaves 税率 and 商品規格表示フラグ disabled: the shop's rate for every class,
    # and a hidden class reads as shown.
    path = write_products(tmp_path / "product.csv", NODES)
    assert path.read_bytes().decode("cp932").splitlines()[0] == ",".join(PRODUCTS_4)
    from_csv = _read(path)
    plain = [i for i in API if not _own_rule(API[i]) and not _hides(API[i])]
    assert plain and all(_sale(from_csv[i]) == _sale(API[i]) for i in plain)
    food = next(i for i in API if _own_rule(API[i]) and not _hides(API[i]) and API[i].variants)
    assert from_csv[food].variants[0].price != API[food].variants[0].price  # 10%, not 8%
    eight = _read(path, Pricing(tax_rate=Decimal(8), url=BASE))
    assert _sale(eight[food]) == _sale(API[food])
    hiding = next(i for i in API if _hides(API[i]))
    assert len(from_csv[hiding].variants) == len(API[hiding].variants)
    assert sum(v.available for v in from_csv[hiding].variants) >= sum(
        v.available for v in API[hiding].variants
    )


def test_a_2x_export_deletes_what_4x_hides_or_discontinues(tmp_path: Path) -> None:
    path = write_products(tmp_path / "product.csv", NODES, version=2)
    text = path.read_bytes().decode("cp932")
    assert text.startswith('"商品ID","商品規格ID",') and "\r\n" in text
    assert text.splitlines()[0].count(",") == len(PRODUCTS_2) - 1
    from_csv = _read(path)
    assert set(from_csv) == set(API)
    plain = [i for i in API if not _own_rule(API[i])]  # 2.x's export has no tax rule
    # 2.x has no 廃止 and no hidden class: it deletes them (削除フラグ), so what is
    # offered is the same, though a deleted class of a product on sale is not in stock.
    differing = [i for i in plain if _offered(from_csv[i]) != _offered(API[i])]
    assert differing == [], [(_offered(from_csv[i]), _offered(API[i])) for i in differing[:2]]
    first = from_csv[plain[0]]
    assert first.url == f"{BASE}/products/detail.php?product_id={first.id}"
    assert first.image_url is not None and "/upload/save_image/" in first.image_url
    assert "/html/" not in first.image_url  # 2.x keeps uploads under the document root


def test_no_base_url_no_links(tmp_path: Path) -> None:
    path = write_products(tmp_path / "product.csv", NODES[:3])
    found = _read(path, Pricing())
    assert all(p.url is None and p.image_url is None for p in found.values())


def test_a_hand_written_2x_export_with_deleted_and_unlimited_rows(tmp_path: Path) -> None:
    header = "商品ID,商品規格ID,規格分類名,商品名,表示ステータス(公開・非公開),削除フラグ,"
    header += "商品コード,在庫数,在庫無制限フラグ,販売価格"
    path = tmp_path / "商品.csv"
    path.write_text(
        "\n".join(
            [
                header,
                "1,10,,煎茶,1,0,SEN-1,,1,1000",  # sold without stock
                "2,20,,玉露,1,1,GYO-1,5,0,2000",  # deleted: archived
                "3,30,,抹茶,2,0,MAT-1,5,0,\uff13\uff0c\uff10\uff10\uff10",  # 非公開, full-width
                "4,40,,ほうじ茶,1,1,,0,0,500",  # the deleted class-less class
                "4,41,100g,ほうじ茶,1,0,HOJ-100,0,0,500",  # sold out
                "4,42,200g,ほうじ茶,1,0,HOJ-200,3,0,900",
            ]
        )
        + "\n",
        encoding="cp932",
    )
    found = _read(path)
    assert found["1"].status is ProductStatus.ACTIVE
    assert _variants(found["1"]) == [("10", "SEN-1", None, Decimal(1100), None, True, None)]
    assert found["2"].status is ProductStatus.ARCHIVED
    assert not found["2"].variants[0].available
    assert found["3"].status is ProductStatus.DRAFT
    assert found["3"].variants[0].price == Decimal(3300)
    assert [(v.id, v.title, v.available, v.inventory) for v in found["4"].variants] == [
        ("41", "100g", False, 0),
        ("42", "200g", True, 3),
    ]


def _problems(path: Path) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        read_export(path, timezone=TOKYO).close()
    return [str(p) for p in caught.value.problems]


def _lines(tmp_path: Path, header: Sequence[str] = PRODUCTS_4) -> tuple[Path, list[str]]:
    path = write_products(tmp_path / "product.csv", NODES[:5], header=header)
    return path, path.read_bytes().decode("cp932").split("\n")


def test_a_bad_number_and_a_bad_status_are_named_by_line_and_column(tmp_path: Path) -> None:
    path, lines = _lines(
        tmp_path, ("商品ID", "商品規格ID", "商品名", "公開ステータス(ID)", "在庫数", "販売価格")
    )
    cells = lines[2].split(",")
    cells[4] = "たくさん"
    lines[2] = ",".join(cells)
    cells = lines[3].split(",")
    cells[3], cells[5] = "9", "-100"
    lines[3] = ",".join(cells)
    path.write_bytes("\n".join(lines).encode("cp932"))
    problems = _problems(path)
    assert problems[0] == f"{path}:3:在庫数: not a whole number: 'たくさん'"
    assert problems[1].startswith(f"{path}:4:公開ステータス(ID): not a product status: '9'")
    assert problems[2] == f"{path}:4:販売価格: a negative price"
    assert len(problems) == 3


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write_products(
        tmp_path / "product.csv", NODES[:2], header=[h for h in PRODUCTS_4 if h != "販売価格"]
    )
    assert _problems(path) == [f"{path}:1:販売価格: required column is missing"]
    path = write_products(
        tmp_path / "status.csv",
        NODES[:2],
        header=[h for h in PRODUCTS_4 if not h.startswith("公開ステータス")],
    )
    assert _problems(path) == [
        f"{path}:1:公開ステータス(ID) or 表示ステータス(公開・非公開) or 表示ステータス or "
        "公開ステータス(名称): required column is missing"
    ]


def test_a_file_in_another_encoding_is_refused(tmp_path: Path) -> None:
    path, lines = _lines(tmp_path)
    path.write_bytes("\n".join(lines).encode("euc_jp"))
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:1: ") and "EUC-JP" in problem


def test_a_column_of_the_shops_own_is_read_by_the_connections_name_for_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "商品.csv"
    path.write_text(
        "商品ID,品番,商品名,公開ステータス(ID),在庫数,販売価格,メルマガ希望\n1,SEN-1,煎茶,1,4,1000,\n",
        encoding="utf-8",
    )
    # The connection's names for the other exports' columns do not get in the way.
    columns = {"品番": "code", "メルマガ希望": "mailmaga"}
    with read_export(path, timezone=TOKYO, columns=columns) as export:
        [(_, [product])] = list(export.batches())
    assert isinstance(product, Product)
    assert _variants(product) == [("SEN-1", "SEN-1", None, Decimal(1100), None, True, 4)]
    assert _problems(path) == [f"{path}:1:商品規格ID or 商品コード: required column is missing"]
