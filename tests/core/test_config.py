"""omnicrm.toml: loading, secrets from the environment, errors that say where."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from omnicrm.core.config import example_config, load_config, parse_duration
from omnicrm.errors import ConfigError
from tests.synthetic_plugin import SyntheticSettings


class ShopSettings(BaseModel):
    base_url: str
    api_key: SecretStr
    page_size: int = 100


CHANNELS: dict[str, type[BaseModel]] = {"shop": ShopSettings, "synthetic": SyntheticSettings}

GOOD = """\
[store]
url = "sqlite:////tmp/x.db"

[scheduler]
timezone = "Asia/Tokyo"

[connections.tokyo]
channel = "shop"
every = "15m"
lookback = "1h30m"
[connections.tokyo.settings]
base_url = "https://tokyo.example.jp"
api_key = { env = "TOKYO_KEY" }

[connections.osaka]
channel = "shop"
cron = "0 3 * * *"
[connections.osaka.settings]
base_url = "https://osaka.example.jp"
api_key = { env = "OSAKA_KEY" }
page_size = "many"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_connections_load_with_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKYO_KEY", "tk-secret")
    monkeypatch.setenv("OSAKA_KEY", "ok-secret")
    config = load_config(write(tmp_path, GOOD), CHANNELS)
    tokyo = config.connection("tokyo")
    assert isinstance(tokyo.settings, ShopSettings)
    assert tokyo.settings.api_key.get_secret_value() == "tk-secret"
    assert "tk-secret" not in repr(tokyo) + str(tokyo)
    assert tokyo.every == dt.timedelta(minutes=15) and tokyo.schedule == "every 15m"
    assert tokyo.lookback == dt.timedelta(hours=1, minutes=30)
    assert config.store_url == "sqlite:////tmp/x.db"


def test_one_bad_connection_leaves_the_others_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKYO_KEY", "tk")
    monkeypatch.setenv("OSAKA_KEY", "ok")
    path = write(tmp_path, GOOD)
    config = load_config(path, CHANNELS)
    assert list(config.connections) == ["tokyo"]
    error = config.invalid["osaka"]
    assert (error.file, error.line, error.key) == (path, 21, "connections.osaka.settings.page_size")
    assert str(error).startswith(f"{path}:21 [connections.osaka.settings.page_size]: ")
    with pytest.raises(ConfigError, match="page_size"):
        config.connection("osaka")


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), CHANNELS)
    error = config.invalid["tokyo"]
    assert error.key == "connections.tokyo.settings.api_key" and error.line == 13
    assert error.reason == "environment variable TOKYO_KEY is not set"


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        (
            "[store]\nurl = 'x'\n[scheduler]\ntimezone = 'Mars/Base'\n",
            4,
            "scheduler.timezone",
            "unknown timezone",
        ),
        ("[scheduler]\nmax_worker = 3\n", 2, "scheduler.max_worker", "unknown key"),
        ("[store\nurl = 1\n", 1, None, "not valid TOML"),
        (
            "[connections.a]\nchannel = 'shopify'\n",
            2,
            "connections.a.channel",
            "unknown channel 'shopify' (installed: shop, synthetic",
        ),
        (
            "[connections.a]\nchannel = 'synthetic'\nevery = 'often'\n",
            3,
            "connections.a.every",
            "not a duration",
        ),
        (
            "[connections.a]\nchannel = 'synthetic'\ncron = '61 * * * *'\n",
            3,
            "connections.a.cron",
            "bad cron expression",
        ),
        (
            "[connections.a]\nchannel = 'synthetic'\nevery = '1m'\ncron = '* * * * *'\n",
            1,
            "connections.a",
            "either 'every' or 'cron'",
        ),
        ("[connections.a]\nevery = '1m'\n", 1, "connections.a.channel", "required key"),
        ("[connections.'a b']\nchannel = 'synthetic'\n", 1, "connections.a b", "letters"),
    ],
)
def test_errors_name_the_line_the_key_and_the_reason(
    tmp_path: Path, text: str, line: int, key: str | None, reason: str
) -> None:
    path = write(tmp_path, text)
    try:
        config = load_config(path, CHANNELS)
    except ConfigError as exc:
        error = exc
    else:
        assert len(config.invalid) == 1
        error = next(iter(config.invalid.values()))
    assert error.file == path and error.line == line and error.key == key
    assert reason in error.reason


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="omnicrm init"):
        load_config(tmp_path / "nope.toml", CHANNELS)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), (30, 30)]
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_the_example_config_is_valid_and_documents_each_channel(tmp_path: Path) -> None:
    text = example_config(CHANNELS)
    config = load_config(write(tmp_path, text), CHANNELS)
    assert not config.connections and not config.invalid  # examples are commented out
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and "my-shop-shop" in text else line
        for line in text.splitlines()
    )
    assert "[connections.my-shop-shop.settings]" in uncommented
    assert 'api_key = { env = "MY_SHOP_SHOP_API_KEY" }' in uncommented
    tomllib.loads(text)


def test_crm_section_reads_nightly_cron_and_off(tmp_path: Path) -> None:
    path = tmp_path / "omnicrm.toml"
    path.write_text('[crm]\nnightly = "0 4 * * *"\nrefresh_after_sync = false\n', "utf-8")
    config = load_config(path, {})
    assert config.crm.nightly == "0 4 * * *" and not config.crm.refresh_after_sync
    path.write_text('[crm]\nnightly = "off"\n', "utf-8")
    assert load_config(path, {}).crm.nightly is None


def test_crm_section_bad_cron_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "omnicrm.toml"
    path.write_text('[store]\n\n[crm]\nnightly = "every night"\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.line == 4 and caught.value.key == "crm.nightly"
