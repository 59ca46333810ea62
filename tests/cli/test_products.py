"""`omnicrm products`: a shop's offerable catalogue, its exclusions honoured, the
unavailable on request, and an unknown shop named."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm import Product, ProductStatus, ProductVariant, Stream
from omnicrm.cli import cli
from omnicrm.core.store import Store

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

CONFIG = """\
[store]
url = "sqlite:///{db}"

[shops.tea]
name = "東京茶舗"
[shops.tea.products]
exclude = ["BAG-*"]

[shops.sweets]
name = "大阪スイーツ"

[connections.web]
shop = "tea"
channel = "synthetic"
[connections.other]
shop = "sweets"
channel = "synthetic"
"""


def item(pid: str, title: str, sku: str, price: int, **fields: object) -> Product:
    available = bool(fields.pop("available", True))
    return Product(
        id=pid,
        title=title,
        url=f"https://tea.example.jp/products/{pid}",
        updated_at=T0,
        variants=[ProductVariant(id=pid, sku=sku, price=Decimal(price), available=available)],
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "160")
    db = tmp_path / "omnicrm.db"
    path = tmp_path / "omnicrm.toml"
    path.write_text(CONFIG.format(db=db), encoding="utf-8")
    store = Store.open(f"sqlite:///{db}", shops={"web": "tea", "other": "sweets"})
    store.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            item("m1", "宇治抹茶", "MAT-01", 1200),
            item("m2", "八女 玉露", "GYO-01", 3200, available=False),
            item("t1", "抹茶テリーヌ", "TRN-01", 1800, status=ProductStatus.ARCHIVED),
            item("b1", "紙袋", "BAG-S", 20),
        ],
    )
    store.write_batch("other", Stream.PRODUCTS, [item("d1", "どら焼き", "DOR-01", 300)])
    store.close()
    return path


def test_lists_what_may_be_offered_in_the_shop(config: Path) -> None:
    result = CliRunner().invoke(cli, ["-c", str(config), "products", "--shop", "tea"])
    assert result.exit_code == 0, result.output
    assert "MAT-01" in result.output and "1,200 JPY" in result.output
    assert "https://tea.example.jp/products/m1" in result.output
    for hidden in ("GYO-01", "TRN-01", "BAG-S", "DOR-01"):
        assert hidden not in result.output


def test_unavailable_on_request_but_never_what_the_shop_excludes(config: Path) -> None:
    result = CliRunner().invoke(
        cli, ["-c", str(config), "products", "--shop", "tea", "--unavailable"]
    )
    assert result.exit_code == 0, result.output
    assert "GYO-01" in result.output and "TRN-01" in result.output
    assert "BAG-S" not in result.output


def test_a_shop_must_be_named_among_several(config: Path) -> None:
    result = CliRunner().invoke(cli, ["-c", str(config), "products"])
    assert result.exit_code == 2
    assert "sweets" in result.output and "tea" in result.output
