"""omnicrm's channel conformance kit, run per stream against the Square emulator.

The kit's default ``settings`` fixture enters the sandbox the channel type registers (the
one the demo runs), made smaller here through its environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

import omnicrm.plugins.pos.plugin
from omnicrm.testing import ChannelConformance


@pytest.fixture(autouse=True)
def _small_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUARE_SANDBOX_MEMBERS", "60")
    monkeypatch.setenv("SQUARE_SANDBOX_SALES", "300")


class TestSquareConformance(ChannelConformance):
    channel: ClassVar[str] = "square"
    plugin: ClassVar[object | None] = omnicrm.plugins.pos.plugin

    @pytest.fixture
    def invalid_settings(self) -> Mapping[str, Any]:
        return {"access_token": "EAAAtest", "orders_page_size": 5000}
