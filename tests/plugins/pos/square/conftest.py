"""Fixtures for the Square tests: a small running sandbox and settings that reach it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omnicrm.plugins.pos.square.sandbox import SquareSandbox
from omnicrm.plugins.pos.square.settings import SquareSettings

MEMBERS, SALES = 60, 300


@pytest.fixture(scope="module")
def square() -> Iterator[SquareSandbox]:
    """One seller for the module's tests (each test clears the faults it set)."""
    with SquareSandbox(members=MEMBERS, sales=SALES) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(square: SquareSandbox) -> Iterator[SquareSandbox]:
    square.clear_faults()
    square.exchanges.clear()
    yield square
    square.clear_faults()


@pytest.fixture
def settings(sandbox: SquareSandbox) -> SquareSettings:
    return SquareSettings.model_validate({**sandbox.settings(), "timeout": 2.0})
