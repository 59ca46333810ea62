"""The ec_cube plugin as omnicrm sees it: the channel types it registers (declared
through the ``omnicrm`` entry-point group), and stream calls routed by channel."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError

from omnicrm import Stream
from omnicrm.errors import PluginError
from omnicrm.plugins.ec_cube import plugin
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.csv import EcCubeCsvSettings
from omnicrm.testing import load_host, stream_context


def test_it_is_declared_as_a_built_in_plugin() -> None:
    [found] = [e for e in entry_points(group="omnicrm") if e.name == "ec_cube"]
    assert found.value == "omnicrm.plugins.ec_cube.plugin"


def test_registers_the_web_api_channel_type() -> None:
    channel = load_host(plugin).channel_type("ec_cube")
    assert channel.settings is EccubeSettings and channel.sandbox is not None
    assert channel.webhooks is not None


def test_registers_the_csv_channel_type() -> None:
    host = load_host(plugin)
    channel = host.channel_type("ec_cube_csv")
    assert channel.settings is EcCubeCsvSettings
    assert set(channel.streams) == {Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS}
    described = channel.describe(EcCubeCsvSettings(site_name="お茶の山田園"))  # type: ignore[misc]
    assert described == "EC-CUBE admin CSV exports (お茶の山田園)"


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS, Stream.PRODUCTS])
def test_a_sync_reads_nothing_the_imports_write_the_records(stream: Stream) -> None:
    host = load_host(plugin)
    ctx = stream_context("ec_cube_csv", EcCubeCsvSettings(), stream)
    assert list(host.open_stream(ctx)) == []


def test_a_channel_it_does_not_know_is_an_error() -> None:
    ctx = stream_context("ec_cube_api_v9", EcCubeCsvSettings(), Stream.CUSTOMERS)
    with pytest.raises(PluginError, match="ec_cube has no channel type 'ec_cube_api_v9'"):
        list(plugin.omnicrm_sync_customers(ctx))


def test_settings_refuse_unknown_fields_and_zones() -> None:
    with pytest.raises(ValidationError, match="'会員番号': 'member' is no field"):
        EcCubeCsvSettings(columns={"会員番号": "member"})
    with pytest.raises(ValidationError, match="unknown timezone 'Asia/Edo'"):
        EcCubeCsvSettings(timezone="Asia/Edo")
    assert EcCubeCsvSettings(columns={"メルマガ希望": "mailmaga"}).columns
    assert EcCubeCsvSettings(columns={"品番": "code"}).columns  # a product export's field
    with pytest.raises(ValidationError, match="tax_rounding"):
        EcCubeCsvSettings.model_validate({"tax_rounding": 4})
    with pytest.raises(ValidationError, match="url"):
        EcCubeCsvSettings(url="yamada-en.example.jp")
