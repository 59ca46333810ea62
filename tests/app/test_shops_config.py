"""``[shops.ID]`` in omnicrm.toml: each client business with its own settings, every
connection in one shop, and errors that say where and which shops there are."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from omnicrm.app.config import DEFAULT_SHOP, example_config, load_config
from omnicrm.errors import ConfigError
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.synthetic_plugin import SyntheticSettings

CHANNELS: dict[str, type[BaseModel]] = {"synthetic": SyntheticSettings, "shopify": ShopifySettings}

TWO_SHOPS = """\
[scheduler]
timezone = "Asia/Tokyo"

[identity]
region = "JP"
max_key_group = 7

[points]
earn_per = 100
earn_points = 1

[analytics]
f2_window_days = 60

[shops.tokyo-tea]
name = "東京茶舗"
currency = "JPY"

[shops.tokyo-tea.points]
earn_per = 200

[shops.hawaii-coffee]
name = "Hawaii Coffee"
timezone = "Pacific/Honolulu"
currency = "USD"
[shops.hawaii-coffee.identity]
region = "US"
[shops.hawaii-coffee.analytics]
retention_months = 24

[connections.tea-store]
channel = "synthetic"
shop = "tokyo-tea"

[connections.coffee-store]
channel = "synthetic"
shop = "hawaii-coffee"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shops_have_their_name_zone_currency_and_settings_merged_on_the_top_level(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, TWO_SHOPS), CHANNELS)
    assert sorted(config.all_shops()) == ["hawaii-coffee", "tokyo-tea"]
    tea, coffee = config.shop("tokyo-tea"), config.shop("hawaii-coffee")
    assert (tea.name, tea.timezone, tea.currency) == ("東京茶舗", "Asia/Tokyo", "JPY")
    assert (coffee.name, coffee.timezone, coffee.currency) == (
        "Hawaii Coffee",
        "Pacific/Honolulu",
        "USD",
    )
    # An override changes its key only: the shop keeps the top-level values of the rest.
    assert (tea.points.earn_per, tea.points.earn_points) == (200, 1)
    assert (coffee.points.earn_per, coffee.points.earn_points) == (100, 1)
    assert (coffee.identity.region, coffee.identity.max_key_group) == ("US", 7)
    assert (tea.identity.region, tea.identity.max_key_group) == ("JP", 7)
    assert (coffee.analytics.retention_months, coffee.analytics.f2_window_days) == (24, 60)
    assert tea.analytics.retention_months == 12 and tea.analytics.f2_window_days == 60
    assert config.connection("tea-store").shop == "tokyo-tea"
    assert list(config.connections_of("hawaii-coffee")) == ["coffee-store"]
    assert config.connection_shops() == {"tea-store": "tokyo-tea", "coffee-store": "hawaii-coffee"}


def test_without_shops_there_is_one_implicit_default_shop(tmp_path: Path) -> None:
    text = '[scheduler]\ntimezone = "Asia/Osaka"\n[connections.a]\nchannel = "synthetic"\n'
    text = text.replace("Asia/Osaka", "Asia/Seoul")
    config = load_config(write(tmp_path, text), CHANNELS)
    assert list(config.all_shops()) == [DEFAULT_SHOP] and not config.shops
    only = config.shop(None)
    assert (only.id, only.timezone, only.currency) == (DEFAULT_SHOP, "Asia/Seoul", "JPY")
    assert config.connection("a").shop == DEFAULT_SHOP and config.default_shop == DEFAULT_SHOP
    # Naming the implicit shop is allowed; any other name is not.
    named = text + 'shop = "default"\n'
    assert load_config(write(tmp_path, named), CHANNELS).connection("a").shop == DEFAULT_SHOP


def test_one_configured_shop_needs_no_naming(tmp_path: Path) -> None:
    text = '[shops.tokyo-tea]\n\n[connections.a]\nchannel = "synthetic"\n'
    config = load_config(write(tmp_path, text), CHANNELS)
    assert config.connection("a").shop == "tokyo-tea"
    assert config.shop(None).id == "tokyo-tea" and config.default_shop == "tokyo-tea"
    assert config.shop(None).name == "tokyo-tea"  # the id, when no name is given


def test_a_connection_naming_no_shop_among_several_is_invalid_with_where_and_the_shops(
    tmp_path: Path,
) -> None:
    text = TWO_SHOPS + '\n[connections.lost]\nchannel = "synthetic"\nevery = "15m"\n'
    path = write(tmp_path, text)
    config = load_config(path, CHANNELS)
    assert sorted(config.connections) == ["coffee-store", "tea-store"]
    error = config.invalid["lost"]
    line = text.splitlines().index("[connections.lost]") + 1
    assert (error.file, error.line, error.key) == (path, line, "connections.lost.shop")
    assert "hawaii-coffee, tokyo-tea" in error.reason and "names no shop" in error.reason
    assert str(error).startswith(f"{path}:{line} [connections.lost.shop]: ")


def test_a_connection_naming_an_unknown_shop_is_invalid_with_where_and_the_shops(
    tmp_path: Path,
) -> None:
    text = TWO_SHOPS.replace('shop = "hawaii-coffee"', 'shop = "kyoto-sake"')
    path = write(tmp_path, text)
    error = load_config(path, CHANNELS).invalid["coffee-store"]
    line = text.splitlines().index('shop = "kyoto-sake"') + 1
    assert (error.file, error.line, error.key) == (path, line, "connections.coffee-store.shop")
    assert "'kyoto-sake'" in error.reason and "hawaii-coffee, tokyo-tea" in error.reason
    # Without [shops], the only name is the implicit one, and the error says how to add one.
    single = '[connections.a]\nchannel = "synthetic"\nshop = "kyoto-sake"\n'
    error = load_config(write(tmp_path, single), CHANNELS).invalid["a"]
    assert error.line == 3 and "(shops: default)" in error.reason
    assert "[shops.kyoto-sake]" in error.reason


def test_choosing_a_shop_names_the_shops_when_ambiguous_or_unknown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_SHOPS), CHANNELS)
    with pytest.raises(ConfigError, match=r"2 shops are configured.*hawaii-coffee, tokyo-tea"):
        config.shop(None)
    with pytest.raises(ConfigError, match=r"no shop named 'nara'.*hawaii-coffee, tokyo-tea"):
        config.shop("nara")


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('[shops."bad id!"]\n', "shops.bad id!", "shop ids use letters"),
        ('[shops.a]\ncurrency = "yen"\n', "shops.a.currency", "ISO 4217"),
        ('[shops.a]\ntimezone = "Mars/Olympus"\n', "shops.a.timezone", ""),
        ('[shops.a]\ncolour = "red"\n', "shops.a.colour", "unknown key"),
        ("[shops.a.points]\nearn_per = 0\n", "shops.a.points.earn_per", ""),
        ("shops = 3\n", "shops", "must be a table"),
    ],
)
def test_a_bad_shop_table_is_a_config_error_naming_file_line_and_key(
    tmp_path: Path, table: str, key: str, reason: str
) -> None:
    path = write(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        load_config(path, CHANNELS)
    assert caught.value.file == path and caught.value.key == key
    assert caught.value.line is not None and reason in caught.value.reason


def test_omnicrm_connections_shows_each_shop_and_exits_2_on_a_connection_without_one(
    tmp_path: Path, synthetic_installed: Path
) -> None:
    from omnicrm.cli import cli

    store = f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
    path = write(tmp_path, store + TWO_SHOPS)
    result = CliRunner().invoke(cli, ["--config", str(path), "connections"], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = dict(re.findall(r"^ (\S+)\s+(\S+)\s+synthetic ", result.output, re.MULTILINE))
    assert rows == {"coffee-store": "hawaii-coffee", "tea-store": "tokyo-tea"}

    write(tmp_path, store + TWO_SHOPS + '[connections.lost]\nchannel = "synthetic"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "connections"], terminal_width=200)
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "[connections.lost.shop]" in flat and "hawaii-coffee, tokyo-tea" in flat


def test_shopifys_old_shop_setting_is_read_with_a_warning_naming_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        '[connections.tea]\nchannel = "shopify"\n[connections.tea.settings]\n'
        'shop = "tokyo-tea.myshopify.com"\naccess_token = { env = "TEA_TOKEN" }\n'
    )
    path = write(tmp_path, text)
    monkeypatch.setenv("TEA_TOKEN", "shpat_x")
    config = load_config(path, CHANNELS)
    settings = config.connection("tea").settings
    assert isinstance(settings, ShopifySettings)
    assert settings.domain == "tokyo-tea.myshopify.com"
    assert config.warnings == (
        f"{path}:4 [connections.tea.settings.shop]: 'shop' is now called 'domain': "
        "rename it (the old name is read for now)",
    )
    # Renamed, nothing is said; both at once is ambiguous, so refused.
    renamed = load_config(write(tmp_path, text.replace("\nshop =", "\ndomain =")), CHANNELS)
    assert renamed.warnings == () and renamed.connection("tea").settings == settings
    both = text.replace("\nshop =", '\ndomain = "x.myshopify.com"\nshop =')
    error = load_config(write(tmp_path, both), CHANNELS).invalid["tea"]
    assert error.key == "connections.tea.settings" and "give 'domain' only" in error.reason


def test_the_example_config_is_one_shop_and_shows_how_to_add_a_second(tmp_path: Path) -> None:
    text = example_config(CHANNELS)
    config = load_config(write(tmp_path, text), CHANNELS)
    assert list(config.all_shops()) == ["my-shop"] and not config.connections
    # Uncommenting the second shop's lines (and filling its settings) gives two shops whose
    # connections each name theirs.
    lines = text.splitlines()
    start = lines.index("# [shops.osaka-sweets]")
    second = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        if line != "# ...":
            second.append(line[2:])
    assert 'shop = "osaka-sweets"' in second
    second = [line.replace('"shopify"', '"synthetic"') for line in second]
    two = load_config(write(tmp_path, text + "\n".join(second) + "\n"), CHANNELS)
    assert sorted(two.all_shops()) == ["my-shop", "osaka-sweets"]
    assert two.connection("osaka-sweets-shopify").shop == "osaka-sweets"
    tomllib.loads(text)
