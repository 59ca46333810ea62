"""omnicrm's channel conformance kit, run against the EC-CUBE sandbox, per stream.

The kit's default ``settings`` fixture enters the sandbox the channel type registers
(the demo's: it authorises itself through the emulator's OAuth2 endpoints), made smaller
through its environment variables to keep the suite quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

import omnicrm.plugins.ec_cube.plugin
from omnicrm.testing import ChannelConformance


@pytest.fixture(autouse=True)
def _small_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECCUBE_SANDBOX_CUSTOMERS", "80")
    monkeypatch.setenv("ECCUBE_SANDBOX_ORDERS", "400")


class TestEccubeConformance(ChannelConformance):
    channel: ClassVar[str] = "ec_cube"
    plugin: ClassVar[object | None] = omnicrm.plugins.ec_cube.plugin

    @pytest.fixture
    def invalid_settings(self) -> Mapping[str, Any]:
        return {"url": "not a url", "client_id": "x", "client_secret": "y"}
