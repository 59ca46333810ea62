"""A small seeded Smaregi contract on loopback, shared by the module's tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from omnicrm.plugins.pos.seed import JST, StoreData, generate
from omnicrm.plugins.pos.smaregi.sandbox.server import SmaregiSandbox
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings

END = dt.datetime(2026, 11, 30, 20, tzinfo=JST)


@pytest.fixture(scope="session")
def seeded() -> StoreData:
    return generate(
        5,
        members=60,
        sales=900,
        end=END,
        ec_customers=300,
        merged_share=0.05,
        offline_share=0.05,
        return_share=0.04,
        cancel_share=0.03,
    )


@pytest.fixture
def sandbox(seeded: StoreData) -> Iterator[SmaregiSandbox]:
    with SmaregiSandbox(seeded) as server:
        yield server


@pytest.fixture
def settings(sandbox: SmaregiSandbox) -> SmaregiSettings:
    return SmaregiSettings.model_validate({**sandbox.settings(), "retries": 3})
