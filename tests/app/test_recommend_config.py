"""``[recommend] weights`` in omnicrm.toml: the default merge, per-shop overrides, and
errors naming the file, the line, the key and the installed recommenders."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicrm.app.config import load_config
from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.engage.settings import DEFAULT_WEIGHTS
from omnicrm.errors import ConfigError
from omnicrm.plugins.recommenders import plugin as recommenders

INSTALLED = ("also-bought", "reorder", "segment-popular")

TWO_SHOPS = """\
[recommend]
items = 12
write_back = "0 4 * * *"
weights = { reorder = 0.8 }

[shops.tokyo-tea]
name = "東京茶舗"

[shops.osaka-sweets]
name = "大阪スイーツ"

[shops.osaka-sweets.recommend]
weights = { also-bought = 2.5, segment-popular = 0 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_weights_the_merge_is_as_before(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[recommend]\nitems = 5\n"), {}, recommenders=INSTALLED)
    settings = config.shop(None).recommend
    assert settings.weights == DEFAULT_WEIGHTS == {"segment-popular": 0.2}
    assert settings.weight("also-bought") == 1.0 and settings.items == 5


def test_a_shop_overrides_the_weights_it_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_SHOPS), {}, recommenders=INSTALLED)
    tea, sweets = config.shop("tokyo-tea").recommend, config.shop("osaka-sweets").recommend
    assert tea.weights == {"segment-popular": 0.2, "reorder": 0.8} and tea.items == 12
    assert sweets.weights == {"segment-popular": 0.0, "reorder": 0.8, "also-bought": 2.5}
    assert sweets.items == 12
    assert config.recommend.write_back == "0 4 * * *"


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        (
            "[recommend]\nitems = 3\nweights = { also-bought = 1, co-occurrence = 1.0 }\n",
            3,
            "recommend.weights.co-occurrence",
            "unknown recommender 'co-occurrence' (installed: also-bought, reorder, "
            "segment-popular; see `omnicrm plugins`)",
        ),
        (
            TWO_SHOPS + "\n[shops.tokyo-tea.recommend]\nweights = { popular = 1 }\n",
            16,
            "shops.tokyo-tea.recommend.weights.popular",
            "unknown recommender 'popular'",
        ),
        (
            "[recommend]\nweights = { reorder = -0.5 }\n",
            2,
            "recommend.weights.reorder",
            "greater than or equal to 0",
        ),
        ('[recommend]\nweights = { reorder = "0.5" }\n', 2, "recommend.weights.reorder", "number"),
        ("[recommend]\nweights = { reorder = nan }\n", 2, "recommend.weights.reorder", "finite"),
        ("[recommend]\nweights = { reorder = true }\n", 2, "recommend.weights.reorder", "number"),
        ("[recommend]\nweights = 1\n", 2, "recommend.weights", "dictionary"),
        (
            TWO_SHOPS + "\n[shops.tokyo-tea.recommend]\nweights = { reorder = -1 }\n",
            16,
            "shops.tokyo-tea.recommend.weights.reorder",
            "greater than or equal to 0",
        ),
        (
            TWO_SHOPS + '\n[shops.tokyo-tea.recommend]\nwrite_back = "off"\n',
            16,
            "shops.tokyo-tea.recommend.write_back",
            "unknown key",
        ),
    ],
    ids=[
        "unknown",
        "unknown-in-a-shop",
        "negative",
        "text",
        "nan",
        "boolean",
        "not-a-table",
        "negative-in-a-shop",
        "schedule-in-a-shop",
    ],
)
def test_a_bad_weight_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {}, recommenders=INSTALLED)
    error = caught.value
    assert (error.file, error.line, error.key) == (path, line, key), str(error)
    assert reason in error.reason


def test_the_installed_recommenders_are_known_where_plugins_load(tmp_path: Path) -> None:
    path = write(tmp_path, "[recommend]\nweights = { also-bought = 0, reorder = 2 }\n")
    host = Host.load(extra={"recommenders": recommenders}, use_entry_points=False)
    runtime = Runtime.load(path, host=host)
    assert runtime.config.shop(None).recommend.weight("reorder") == 2.0
    bare = Host.load(extra={}, use_entry_points=False)  # no recommender installed
    with pytest.raises(ConfigError, match=r"'also-bought' \(installed: none installed"):
        Runtime.load(path, host=bare)
