"""`omnicrm recommend`: usage errors exit 2 before anything loads (its output on real
shops is in tests/cli/test_shop_isolation.py, its workings in tests/engage/recommend)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli


@pytest.mark.parametrize("args", [[], ["12", "--product", "TEA-1"]])
def test_a_customer_or_a_product_exactly(args: list[str], tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["-c", str(tmp_path / "none.toml"), "recommend", *args])
    assert done.exit_code == 2
    assert "give a CUSTOMER (profile id) or --product SKU, not both" in done.output


def test_an_unknown_customer_is_named(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    done = CliRunner().invoke(cli, ["-c", str(config), "recommend", "12"])
    assert done.exit_code == 2, done.output
    assert "no customer 12 in shop" in done.output
    done = CliRunner().invoke(cli, ["-c", str(config), "recommend", "--product", "TEA-1"])
    assert done.exit_code == 2, done.output
    assert "no purchase of product 'TEA-1'" in done.output


def test_write_back_takes_nothing_else(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        cli, ["-c", str(tmp_path / "none.toml"), "recommend", "--write-back", "12"]
    )
    assert done.exit_code == 2
    assert "--write-back writes every customer's and product's" in done.output


def test_write_back_without_a_platform_that_stores_them_says_so(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    done = CliRunner().invoke(cli, ["-c", str(config), "recommend", "--write-back"])
    assert done.exit_code == 2, done.output
    assert "no connection of the shop stores recommendations" in done.output
