"""`omnicrm recommend`: usage errors exit 2 before anything loads (its output on real
shops is in tests/cli/test_shop_isolation.py, its workings in tests/engage/recommend)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from tests.engage.conftest import person
from tests.engage.recommend.test_recommend import CUP, MUG, TEA, order


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


def test_the_shops_weights_decide_what_is_printed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store.open(url)
    try:
        store.write_batch("web", Stream.CUSTOMERS, [person(i) for i in range(1, 5)])
        baskets = [order("C1", 20, TEA)]
        for i in (2, 3, 4):
            baskets += [order(f"C{i}", 60, TEA, CUP, MUG), order(f"C{i}", 30, TEA)]
        store.write_batch("web", Stream.ORDERS, baskets)
        refresh(store, CrmSettings())
        with store.engine.connect() as conn:
            one = profile_of(conn, "web", "C1", shop=DEFAULT_SHOP)
    finally:
        store.close()
    config = tmp_path / "omnicrm.toml"
    stored = f'[store]\nurl = "{url}"\n'

    def shown(weights: str, *args: str) -> str:
        config.write_text(stored + weights, encoding="utf-8")
        done = CliRunner().invoke(cli, ["-c", str(config), "recommend", *args])
        assert done.exit_code == 0, done.output
        return done.output

    assert "MUG-2" in shown("", "--product", "TEA-1")
    off = "[recommend]\nweights = { also-bought = 0, segment-popular = 0 }\n"
    assert "nothing to recommend for with TEA-1" in shown(off, "--product", "TEA-1")
    everyone = shown("", str(one))
    assert "MUG-2" in everyone and "TEA-1" in everyone
    only_reorder = shown(off, str(one))
    assert "TEA-1" in only_reorder and "MUG-2" not in only_reorder


def test_an_unknown_recommender_in_the_weights_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "omnicrm.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n'
        "[recommend]\nweights = { co-occurrence = 1.0 }\n",
        encoding="utf-8",
    )
    done = CliRunner().invoke(cli, ["-c", str(config), "recommend", "--product", "TEA-1"])
    assert done.exit_code == 2, done.output
    assert f"{config}:5 [recommend.weights.co-occurrence]" in " ".join(done.output.split())
    assert "unknown recommender 'co-occurrence' (installed: also-bought" in done.output
