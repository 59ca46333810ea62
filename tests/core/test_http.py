"""error_for_status and retry_after, against real answers from a loopback server."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnicrm import error_for_status, retry_after
from omnicrm.errors import (
    AuthError,
    ConfigError,
    RateLimitedError,
    SyncError,
    TransientError,
)
from omnicrm.testing import Emulator

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class Statuses(Emulator):
    """``GET /status/CODE?retry_after=...`` answers CODE, with that header if given."""

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(routes=[Route("/status/{code:int}", self._answer)])

    async def _answer(self, request: Request) -> Response:
        headers = {}
        if "retry_after" in request.query_params:
            headers["Retry-After"] = request.query_params["retry_after"]
        return JSONResponse({"ok": False}, request.path_params["code"], headers=headers)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with Statuses() as server, httpx.Client(base_url=server.url) as client:
        yield client


def _get(http: httpx.Client, status: int, retry: str | None = None) -> httpx.Response:
    params = {} if retry is None else {"retry_after": retry}
    return http.get(f"/status/{status}", params={**params, "key": "sekret-in-the-query"})


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, ConfigError),
        (408, TransientError),
        (429, RateLimitedError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (400, SyncError),
        (422, SyncError),
    ],
)
def test_each_status_maps_to_its_error(http: httpx.Client, status: int, kind: type) -> None:
    error = error_for_status(_get(http, status), "MiniShop", action="the customers page")
    assert type(error) is kind
    assert str(status) in str(error) and "MiniShop" in str(error)
    assert "sekret" not in str(error), "the query (which may hold a key) is never shown"


def test_success_is_no_error(http: httpx.Client) -> None:
    assert error_for_status(_get(http, 200), "MiniShop") is None
    assert error_for_status(_get(http, 201), "MiniShop") is None


def test_the_kinds_tell_the_engine_what_to_do(http: httpx.Client) -> None:
    """Retried (transient), waited out (rate limited) or failed at once (the rest)."""
    assert not isinstance(error_for_status(_get(http, 401), "X"), TransientError)
    assert not isinstance(error_for_status(_get(http, 400), "X"), TransientError)
    assert isinstance(error_for_status(_get(http, 429), "X"), TransientError)


def test_a_404_names_the_address_and_the_setting(http: httpx.Client) -> None:
    error = error_for_status(_get(http, 404), "MiniShop", config_key="base_url")
    assert isinstance(error, ConfigError) and error.key == "base_url"
    assert "/status/404 does not exist" in str(error)


def test_a_429_carries_its_retry_after(http: httpx.Client) -> None:
    error = error_for_status(_get(http, 429, "7"), "MiniShop")
    assert isinstance(error, RateLimitedError) and error.retry_after == 7.0
    bare = error_for_status(_get(http, 429), "MiniShop")
    assert isinstance(bare, RateLimitedError) and bare.retry_after is None


def test_the_platforms_own_message_is_the_detail(http: httpx.Client) -> None:
    error = error_for_status(_get(http, 503), "Shopify", detail="Service down for upgrade")
    assert "HTTP 503: Service down for upgrade" in str(error)
    assert "HTTP 503: Service Unavailable" in str(error_for_status(_get(http, 503), "Shopify"))


def test_retry_after_reads_a_response(http: httpx.Client) -> None:
    assert retry_after(_get(http, 429, "2.5")) == 2.5
    assert retry_after(_get(http, 429)) is None
    when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90), True)
    assert 0 < (retry_after(_get(http, 429, when)) or 0) <= 90


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 30 ", 30.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("-5", 0.0),  # nonsense, read as "no wait"
        ("86400", 3600.0),  # bounded
        ("inf", 3600.0),
        ("Sun, 01 Mar 2026 12:01:30 GMT", 90.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # already past
        ("Sun, 01 Mar 2026 12:01:30 -0000", 90.0),
        ("nan", None),
        ("soon", None),
        ("Sun, 99 Foo 2026", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, now=NOW) == seconds


def test_retry_after_bound_can_be_chosen() -> None:
    assert retry_after("600", maximum=60) == 60.0
