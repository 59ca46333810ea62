"""Fixtures: real MiniShop sandbox servers on loopback, and a way to build a StreamContext."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from omnicrm_minishop.client import MiniShopClient
from omnicrm_minishop.plugin import MiniShopSettings
from omnicrm_minishop.sandbox import JST, MiniShopServer

from omnicrm import Stream, StreamContext

# A fixed end of history, so the seeded data is the same on every run and every day.
ANCHOR = dt.datetime(2025, 6, 1, tzinfo=JST)


@pytest.fixture(scope="session")
def anchor() -> dt.datetime:
    return ANCHOR


@pytest.fixture(scope="session")
def shop() -> Iterator[MiniShopServer]:
    """A 2000-customer shop shared by tests that neither change data nor switch faults."""
    with MiniShopServer(customers=2000, seed=7, anchor=ANCHOR) as server:
        yield server


@pytest.fixture
def small_shop() -> Iterator[MiniShopServer]:
    """A small shop of the test's own, to change and to break."""
    with MiniShopServer(customers=60, seed=11, anchor=ANCHOR) as server:
        yield server


@pytest.fixture
def client(small_shop: MiniShopServer) -> Iterator[MiniShopClient]:
    with MiniShopClient(small_shop.base_url, small_shop.api_key, page_size=25, timeout=5) as c:
        yield c


MakeCtx = Callable[..., StreamContext[MiniShopSettings]]


@pytest.fixture
def make_ctx() -> MakeCtx:
    """Build the StreamContext the engine would pass for one run of one stream."""

    def make(
        server: MiniShopServer,
        stream: Stream = Stream.CUSTOMERS,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        full: bool = False,
        sleep: Callable[[float], None] | None = None,
        **settings: Any,
    ) -> StreamContext[MiniShopSettings]:
        extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        return StreamContext(
            connection="test-shop",
            channel="minishop",
            stream=stream,
            settings=MiniShopSettings(**{**server.settings(), **settings}),
            since=since,
            until=until or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
            state={},
            full=full,
            logger=logging.getLogger("omnicrm.sync.test-shop"),
            **extra,
        )

    return make
