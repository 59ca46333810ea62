"""A small seeded EC-CUBE shop on loopback, authorised, shared by the module's tests."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnicrm.app.config import Connection
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.sandbox import authorise
from omnicrm.plugins.ec_cube.sandbox.data import ShopData, generate
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox

END = dt.datetime(2026, 11, 30, 11, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def shop() -> ShopData:
    return generate(7, customers=120, orders=400, end=END)


@pytest.fixture
def sandbox(shop: ShopData) -> Iterator[EccubeSandbox]:
    with EccubeSandbox(copy.deepcopy(shop)) as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "tokens" / "shop.json"


@pytest.fixture
def settings(sandbox: EccubeSandbox, token_file: Path) -> EccubeSettings:
    values = authorise(sandbox, token_file, retries=3)
    return EccubeSettings.model_validate(values)


@pytest.fixture
def live_connection(settings: EccubeSettings) -> Connection:
    """The sandbox as a configured connection whose reads end at the run's start (no
    settling minute, no look-back): a change made before a run is read by it."""
    return Connection(
        name="shop",
        channel="ec_cube",
        settings=settings.model_copy(update={"settle_seconds": 0.0}),
        lookback=dt.timedelta(seconds=0),
    )
