"""omnicrm.toml: loading, secrets from the environment, errors that say where."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from omnicrm.app.config import example_config, load_config, parse_duration
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


def test_a_secret_written_in_the_file_is_named_with_how_to_move_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSAKA_KEY", "ok-secret")
    text = GOOD.replace(
        'url = "sqlite:////tmp/x.db"', 'url = "postgresql://crm:p@ss@db:5432/crm"'
    ).replace(
        'api_key = { env = "TOKYO_KEY" }',
        'api_key = "tk-inline-secret"\nwebhook_token = "wt-inline"',
    )
    path = write(tmp_path, text)
    config = load_config(path, CHANNELS)
    shown = "\n".join(config.warnings)
    assert f"{path}:2 [store.url]: a secret is written in the file" in shown
    assert 'url = { env = "OMNICRM_STORE_URL" }' in shown
    assert f"{path}:13 [connections.tokyo.settings.api_key]" in shown
    assert 'api_key = { env = "TOKYO_API_KEY" }  and setting TOKYO_API_KEY' in shown
    # Named like a secret, whatever the model says.
    assert f"{path}:14 [connections.tokyo.settings.webhook_token]" in shown
    for secret in ("p@ss", "ss@db", "tk-inline-secret", "wt-inline"):
        assert secret not in shown
    # Read from the environment, nothing is said.
    monkeypatch.setenv("TOKYO_KEY", "tk-secret")
    assert load_config(write(tmp_path, GOOD), CHANNELS).warnings == ()


def test_the_cli_prints_the_warning(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from omnicrm.cli import cli

    path = write(tmp_path, '[store]\nurl = "sqlite://user:hunter2@/' + f'{tmp_path}/x.db"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "connections"])
    assert f"warning: {path}:2 [store.url]: a secret is written in the file" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"1000000000000d"', "out of range: 0s to 3650d"),
        ('"99999999999999999999999999999s"', "out of range"),
        ("1e308", "out of range"),
        ("nan", "out of range"),
        ("-5", "out of range"),
        ('"3651d"', "out of range"),
    ],
)
def test_a_duration_out_of_range_is_a_config_error(tmp_path: Path, value: str, reason: str) -> None:
    text = f'[connections.a]\nchannel = "synthetic"\nevery = {value}\n'
    config = load_config(write(tmp_path, text), CHANNELS)
    error = config.invalid["a"]
    assert (error.line, error.key) == (3, "connections.a.every") and reason in error.reason
    assert parse_duration("3650d") == dt.timedelta(days=3650)


def test_deep_nesting_is_a_config_error_naming_the_line(tmp_path: Path) -> None:
    for deep in ("[" * 5000 + "]" * 5000, "{ a = " * 3000 + "1" + " }" * 3000):
        path = write(tmp_path, f'[scheduler]\ntimezone = "Asia/Tokyo"\nx = {deep}\n')
        with pytest.raises(ConfigError) as caught:
            load_config(path, CHANNELS)
        assert str(caught.value) == f"{path}:3: arrays and tables nested more than 64 deep"
    # Brackets in strings and comments are not nesting; 64 levels are fine.
    text = (
        '# [[[[[[\n[identity]\njunk_emails = ["' + "[" * 70 + ']"]\n'
        'junk_member_codes = ["""\n' + "{" * 100 + '"""]\n[scheduler]\nx = ' + "[" * 63 + "]" * 63
    )
    with pytest.raises(ConfigError, match=r"\[scheduler\.x\]: unknown key"):
        load_config(write(tmp_path, text), CHANNELS)


def _fields(model: type[BaseModel], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [(*prefix, name) for name in model.model_fields]


def _every_key() -> list[tuple[str, ...]]:
    from omnicrm.app.config import ConnectionSection, _File
    from omnicrm.engage.onsite.settings import OfferSettings
    from omnicrm.plugins.shopify.settings import ShopifySettings

    keys: list[tuple[str, ...]] = []
    for section, info in _File.model_fields.items():
        if section == "offers":  # a table of tables: [offers.NAME]
            keys += _fields(OfferSettings, (section, "x"))
        elif section != "connections":
            assert isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            keys += _fields(info.annotation, (section,))
    keys += [k for k in _fields(ConnectionSection, ("connections", "a")) if k[-1] != "settings"]
    keys += _fields(ShopifySettings, ("connections", "a", "settings"))
    return keys


HOSTILE = [
    "99999999999999999999999999999",
    "-99999999999999999999999999999",
    "-1",
    "0",
    "1e308",
    "inf",
    "-inf",
    "nan",
    "true",
    '""',
    '"\\u0000"',
    '"\\u001b[31m"',
    '"' + "x" * 100_000 + '"',
    '"1000000000000d"',
    '"9' * 400 + 's"',
    '"* * * * * * * *"',
    '"99 99 99 99 99"',
    '"../../../etc/passwd"',
    "[]",
    "[[[1]]]",
    "[" * 5000 + "]" * 5000,
    "{ a = 1 }",
    '{ env = "" }',
    '{ env = "OMNICRM_NO_SUCH_VARIABLE" }',
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "07:32:00",
]


@pytest.mark.parametrize("key", _every_key(), ids=".".join)
def test_hostile_values_for_every_key_give_a_config_error_or_load(
    tmp_path: Path, key: tuple[str, ...]
) -> None:
    """Whatever a key is set to, loading either works or raises ConfigError."""
    from omnicrm.plugins.shopify.settings import ShopifySettings

    channels: dict[str, type[BaseModel]] = {"shopify": ShopifySettings}
    base = {"channel": '"shopify"', "settings.domain": '"x.myshopify.com"'}
    for value in HOSTILE:
        if key[0] == "connections":
            lines = dict(base)
            lines[".".join(key[2:])] = value
            body = "".join(f"{k} = {v}\n" for k, v in lines.items() if "." not in k)
            body += "[connections.a.settings]\n" + "".join(
                f"{k.split('.', 1)[1]} = {v}\n" for k, v in lines.items() if "." in k
            )
            text = "[connections.a]\n" + body
        else:
            text = f"[{'.'.join(key[:-1])}]\n{key[-1]} = {value}\n"
        path = write(tmp_path, text)
        try:
            config = load_config(path, channels)
        except ConfigError as exc:
            assert exc.file == path, (key, value[:40])
            continue
        if key[0] == "connections":
            try:
                connection = config.connection("a")
            except ConfigError:
                continue
            assert connection.every is None or connection.every <= dt.timedelta(days=3650)
            assert connection.lookback <= dt.timedelta(days=3650)


def test_web_takes_a_public_base_url_and_a_long_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_SECRET", "s" * 40)
    path = write(
        tmp_path,
        '[web]\nbase_url = "https://crm.example.jp/"\nsecret = { env = "WEB_SECRET" }\n',
    )
    config = load_config(path, CHANNELS)
    assert config.web.base_url == "https://crm.example.jp"
    assert config.web.secret is not None and config.web.secret.get_secret_value() == "s" * 40
    assert "s" * 40 not in repr(config) and not config.warnings
    monkeypatch.setenv("WEB_SECRET", "short")
    for text, problem in (
        ('[web]\nsecret = { env = "WEB_SECRET" }\n', "web.secret.*at least 32"),
        ('[web]\nbase_url = "http://crm.example.jp"\n', "web.base_url.*https"),
        ('[web]\nbase_url = "crm.example.jp"\n', "web.base_url"),
        ('[web]\nbase_url = "https://crm.example.jp/?a=1"\n', "web.base_url.*query"),
    ):
        with pytest.raises(ConfigError, match=problem):
            load_config(write(tmp_path, text), CHANNELS)
