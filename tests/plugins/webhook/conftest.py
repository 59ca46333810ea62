"""A webhook receiver on loopback for each test, checking every signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omnicrm.plugins.webhook.client import close_all
from omnicrm.plugins.webhook.sandbox import Receiver


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    close_all()
    yield
    close_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running
