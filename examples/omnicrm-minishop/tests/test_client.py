"""The client's error mapping, against a real sandbox server on loopback with faults switched on."""

from __future__ import annotations

import email.utils
import time

import pytest
from omnicrm_minishop.client import MiniShopClient
from omnicrm_minishop.sandbox import MiniShopServer

from omnicrm.errors import (
    AuthError,
    ConfigError,
    DataError,
    RateLimitedError,
    SyncError,
    TransientError,
)


def test_reads_a_page(client: MiniShopClient, small_shop: MiniShopServer) -> None:
    page = client.get_page("customers", limit=10)
    assert [r["id"] for r in page.records] == [
        r["id"] for r in small_shop.records("customers")[:10]
    ]
    assert page.next_page_token


@pytest.mark.parametrize("key", ["msk_wrong", ""])
def test_bad_key_is_an_auth_error(small_shop: MiniShopServer, key: str) -> None:
    with MiniShopClient(small_shop.base_url, key) as bad, pytest.raises(AuthError) as caught:
        bad.get_page("customers")
    assert "401" in str(caught.value)
    assert not isinstance(caught.value, TransientError)  # retrying cannot help


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_and_pass(
    client: MiniShopClient, small_shop: MiniShopServer, status: int
) -> None:
    small_shop.fail_next(2, status=status)
    for _ in range(2):
        with pytest.raises(TransientError, match=str(status)) as caught:
            client.get_page("orders")
        assert not isinstance(caught.value, RateLimitedError)
    assert client.get_page("orders").records


def test_429_is_rate_limited_with_retry_after(
    client: MiniShopClient, small_shop: MiniShopServer
) -> None:
    small_shop.throttle_next(1, retry_after=7)
    with pytest.raises(RateLimitedError) as caught:
        client.get_page("customers")
    assert caught.value.retry_after == 7.0
    assert isinstance(caught.value, TransientError)
    assert client.get_page("customers").records


def test_retry_after_may_be_a_date(client: MiniShopClient, small_shop: MiniShopServer) -> None:
    small_shop.throttle_next(1, retry_after=email.utils.formatdate(time.time() + 30, usegmt=True))
    with pytest.raises(RateLimitedError) as caught:
        client.get_page("customers")
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


def test_short_rate_limits_are_waited_out_in_place(small_shop: MiniShopServer) -> None:
    waits: list[float] = []
    with MiniShopClient(small_shop.base_url, small_shop.api_key, on_rate_limit=waits.append) as c:
        small_shop.throttle_next(2, retry_after=1)
        assert c.get_page("customers").records
    assert waits == [1.0, 1.0]


def test_rate_limit_waits_are_bounded(small_shop: MiniShopServer) -> None:
    waits: list[float] = []
    with MiniShopClient(
        small_shop.base_url,
        small_shop.api_key,
        on_rate_limit=waits.append,
        rate_limit_retries=3,
        max_inline_wait=60,
    ) as c:
        small_shop.throttle_next(10, retry_after=1)
        with pytest.raises(RateLimitedError):
            c.get_page("customers")
        assert waits == [1.0, 1.0, 1.0]
        waits.clear()
        small_shop.throttle_next(1, retry_after=120)  # too long to hold a run: the engine's
        with pytest.raises(RateLimitedError) as caught:
            c.get_page("customers")
        assert waits == [] and caught.value.retry_after == 120.0


def test_malformed_json_is_transient(client: MiniShopClient, small_shop: MiniShopServer) -> None:
    small_shop.malform_next()
    with pytest.raises(TransientError, match="malformed JSON"):
        client.get_page("customers", limit=50)
    assert len(client.get_page("customers", limit=50).records) == 50


def test_timeout_is_transient(small_shop: MiniShopServer) -> None:
    with MiniShopClient(small_shop.base_url, small_shop.api_key, timeout=0.2) as c:
        small_shop.delay_next(1, seconds=1.0)
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"did not answer within 0\.2s"):
            c.get_page("customers")
        assert time.monotonic() - started < 0.9


def test_connection_refused_is_transient() -> None:
    server = MiniShopServer(customers=10, seed=1)
    with server:
        base_url, key = server.base_url, server.api_key
    with MiniShopClient(base_url, key) as c, pytest.raises(TransientError, match="cannot reach"):
        c.get_page("customers")


def test_wrong_base_url_is_a_config_error(small_shop: MiniShopServer) -> None:
    wrong = f"{small_shop.base_url}/shop"
    with MiniShopClient(wrong, small_shop.api_key) as c, pytest.raises(ConfigError) as caught:
        c.get_page("customers")
    assert caught.value.key == "base_url"


def test_a_request_minishop_rejects_is_not_retried(client: MiniShopClient) -> None:
    with pytest.raises(SyncError, match="400") as caught:
        client.get_page("customers", page_token="bm90LWEtdG9rZW4")
    assert not isinstance(caught.value, TransientError | DataError)


def test_a_record_that_does_not_map_names_record_and_field(
    client: MiniShopClient, small_shop: MiniShopServer
) -> None:
    victim = small_shop.records("customers")[30]["id"]
    small_shop.update("customers", victim, birthday="1990-02-30")
    with pytest.raises(DataError) as caught:
        list(client.customers())
    assert victim in str(caught.value)
    assert "'birthday'" in str(caught.value)


def test_an_order_that_does_not_map_names_record_and_field(
    client: MiniShopClient, small_shop: MiniShopServer
) -> None:
    victim = small_shop.records("orders")[5]
    items = [{**victim["items"][0], "price": "1,200"}]
    small_shop.update("orders", victim["id"], items=items)
    with pytest.raises(DataError, match=rf"{victim['id']}.*'items\[0\]\.price'"):
        list(client.orders())


def test_errors_and_repr_never_show_the_key(small_shop: MiniShopServer) -> None:
    with MiniShopClient(small_shop.base_url, small_shop.api_key) as c:
        messages = [repr(c)]
        for switch in (small_shop.fail_next, small_shop.throttle_next, small_shop.malform_next):
            switch(1)
            with pytest.raises(SyncError) as caught:
                c.get_page("customers")
            messages.append(str(caught.value))
    with MiniShopClient(small_shop.base_url, "msk_wrong_but_secret") as c:
        with pytest.raises(AuthError) as auth:
            c.get_page("customers")
        messages.append(str(auth.value))
    joined = "\n".join(messages)
    assert small_shop.api_key not in joined
    assert "msk_wrong_but_secret" not in joined
