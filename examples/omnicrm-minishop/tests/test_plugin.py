"""The plugin as omnicrm sees it: registration, settings, and the two stream hooks."""

from __future__ import annotations

import datetime as dt
import logging
from importlib.metadata import entry_points
from typing import Any

import omnicrm_minishop.plugin as plugin
import pytest
from omnicrm_minishop.plugin import MiniShopSettings
from omnicrm_minishop.sandbox import MiniShopServer, sandbox
from pydantic import ValidationError

from omnicrm import ChannelType, Customer, Order, Stream
from omnicrm.errors import AuthError, TransientError
from omnicrm.testing import load_host


def registered() -> list[ChannelType]:
    return list(load_host(plugin).channel_types.values())


def test_registers_the_minishop_channel_type() -> None:
    [channel] = registered()
    assert channel.name == "minishop"
    assert channel.title == "MiniShop"
    assert channel.settings is MiniShopSettings
    assert channel.sandbox is sandbox
    assert set(channel.streams) == {Stream.CUSTOMERS, Stream.ORDERS}


def test_describes_where_a_connection_points() -> None:
    [channel] = registered()
    assert channel.describe is not None
    shop = MiniShopSettings(base_url="https://tea.minishop.jp/", api_key="k")
    local = MiniShopSettings(base_url="http://127.0.0.1:8731", api_key="k")
    assert channel.describe(shop) == "tea.minishop.jp"
    assert channel.describe(local) == "127.0.0.1:8731"


def test_is_found_through_its_entry_point() -> None:
    [ep] = [ep for ep in entry_points(group="omnicrm") if ep.name == "minishop"]
    assert ep.value == "omnicrm_minishop.plugin"
    assert ep.load() is plugin
    assert ep.dist is not None and ep.dist.name == "omnicrm-minishop"


def test_omnicrm_host_loads_it_and_runs_a_stream(small_shop: MiniShopServer, make_ctx: Any) -> None:
    host = load_host(plugin)
    assert host.channel_type("minishop").settings is MiniShopSettings
    records = list(host.open_stream(make_ctx(small_shop)))
    assert len(records) == len(small_shop.records("customers"))


VALID = {"base_url": "https://example.minishop.jp", "api_key": "msk_live_123"}


def test_settings_defaults() -> None:
    settings = MiniShopSettings.model_validate(VALID)
    assert (settings.page_size, settings.timeout) == (100, 30.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"page_size": 0},
        {"page_size": 251},
        {"timeout": 0},
        {"api_key": ""},
        {"base_url": "example.minishop.jp"},
        {"base_url": "ftp://example.minishop.jp"},
        {"shop_id": "x"},  # a typo of a key must not pass silently
    ],
)
def test_settings_reject(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MiniShopSettings.model_validate({**VALID, **changes})


def test_settings_never_show_the_key() -> None:
    settings = MiniShopSettings.model_validate(VALID)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "msk_live_123" not in shown


def test_customers_stream_yields_everything_ascending(
    small_shop: MiniShopServer, make_ctx: Any
) -> None:
    ctx = make_ctx(small_shop, page_size=7)
    records = list(plugin.omnicrm_sync_customers(ctx))
    assert all(isinstance(r, Customer) for r in records)
    assert [r.id for r in records] == [r["id"] for r in small_shop.records("customers")]
    stamps = [r.updated_at for r in records]
    assert stamps == sorted(stamps)


def test_orders_stream_yields_orders_with_lines(small_shop: MiniShopServer, make_ctx: Any) -> None:
    records = list(plugin.omnicrm_import_orders(make_ctx(small_shop, Stream.ORDERS)))
    assert all(isinstance(r, Order) and r.lines for r in records)
    assert len(records) == len(small_shop.records("orders"))


def test_since_is_inclusive(small_shop: MiniShopServer, make_ctx: Any) -> None:
    all_orders = small_shop.records("orders")
    pivot = all_orders[40]
    since = dt.datetime.fromisoformat(pivot["updated_at"])
    records = list(plugin.omnicrm_import_orders(make_ctx(small_shop, Stream.ORDERS, since=since)))
    assert records[0].updated_at == since
    assert pivot["id"] in {r.id for r in records}
    assert all(r.updated_at >= since for r in records)
    assert len(records) == sum(1 for o in all_orders if o["updated_at"] >= pivot["updated_at"])


def test_full_run_ignores_since(small_shop: MiniShopServer, make_ctx: Any) -> None:
    since = dt.datetime.now(dt.UTC)
    ctx = make_ctx(small_shop, since=since, full=True)
    assert len(list(plugin.omnicrm_sync_customers(ctx))) == 60


def test_stops_at_until(small_shop: MiniShopServer, make_ctx: Any) -> None:
    stamps = [dt.datetime.fromisoformat(c["updated_at"]) for c in small_shop.records("customers")]
    until = stamps[-10]
    records = list(plugin.omnicrm_sync_customers(make_ctx(small_shop, until=until)))
    assert records and all(r.updated_at < until for r in records)
    assert len(records) == sum(1 for stamp in stamps if stamp < until)


def test_a_change_during_the_run_is_left_for_the_next(
    small_shop: MiniShopServer, make_ctx: Any
) -> None:
    ctx = make_ctx(small_shop, page_size=10, until=dt.datetime.now(dt.UTC))
    stream = plugin.omnicrm_sync_customers(ctx)
    first = [next(stream) for _ in range(10)]
    small_shop.update("customers", first[0].id, tags=["VIP"])  # after the run began
    rest = list(stream)
    assert first[0].id not in {r.id for r in rest}
    cursor = max(r.updated_at for r in first + rest)
    later = list(plugin.omnicrm_sync_customers(make_ctx(small_shop, since=cursor)))
    assert first[0].id in {r.id for r in later}
    assert next(r for r in later if r.id == first[0].id).tags == ["VIP"]


def test_short_rate_limits_are_waited_through_the_context(
    small_shop: MiniShopServer, make_ctx: Any
) -> None:
    slept: list[float] = []
    ctx = make_ctx(small_shop, page_size=25, sleep=slept.append)
    small_shop.throttle_next(2, retry_after=1)
    assert len(list(plugin.omnicrm_sync_customers(ctx))) == 60
    assert slept == [1.0, 1.0]
    assert ctx.rate_limit_wait == 2.0


def test_errors_reach_the_engine(small_shop: MiniShopServer, make_ctx: Any) -> None:
    small_shop.fail_next(1)
    with pytest.raises(TransientError):
        list(plugin.omnicrm_sync_customers(make_ctx(small_shop)))
    with pytest.raises(AuthError):
        list(plugin.omnicrm_import_orders(make_ctx(small_shop, Stream.ORDERS, api_key="nope")))


def test_the_key_is_never_logged(
    small_shop: MiniShopServer, make_ctx: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the omnicrm CLI quiets it
    list(plugin.omnicrm_sync_customers(make_ctx(small_shop, page_size=20)))
    small_shop.throttle_next(1, retry_after=1)
    list(plugin.omnicrm_import_orders(make_ctx(small_shop, Stream.ORDERS, sleep=lambda s: None)))
    small_shop.fail_next(1)
    with pytest.raises(TransientError) as caught:
        list(plugin.omnicrm_import_orders(make_ctx(small_shop, Stream.ORDERS)))
    assert "minishop: read" in caplog.text  # something was logged: the check means something
    assert "HTTP Request" in caplog.text  # httpx's own request lines too
    assert small_shop.api_key not in caplog.text
    assert small_shop.api_key not in str(caught.value)
