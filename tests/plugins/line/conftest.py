"""A LINE Messaging API emulator on loopback for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omnicrm.plugins.line.client import close_all
from omnicrm.plugins.line.sandbox import LineEmulator, seed
from omnicrm.plugins.line.settings import LineSettings


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    close_all()
    yield
    close_all()


@pytest.fixture
def emulator() -> Iterator[LineEmulator]:
    with LineEmulator() as running:
        seed(running)
        yield running


@pytest.fixture
def settings(emulator: LineEmulator) -> LineSettings:
    return LineSettings.model_validate(emulator.settings())
