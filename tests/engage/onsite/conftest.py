"""A shop with a storefront, its people built into profiles (tests/support/storefront.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from omnicrm.app.runtime import Runtime
from tests.support.storefront import make_runtime, popup, seed

NOW = dt.datetime(2026, 12, 10, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    made = make_runtime(store_url, offers={"second": popup()}, domains=[])
    seed(made.store, NOW)
    yield made
    made.close()
