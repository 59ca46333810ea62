"""omnicrm's channel conformance kit, run against the Smaregi sandbox, per stream.

The kit's default ``settings`` fixture enters the sandbox the channel type registers
(the demo's), made smaller through its environment variables to keep the suite quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

import omnicrm.plugins.pos.plugin
from omnicrm.testing import ChannelConformance


@pytest.fixture(autouse=True)
def _small_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMAREGI_SANDBOX_MEMBERS", "80")
    monkeypatch.setenv("SMAREGI_SANDBOX_SALES", "600")


class TestSmaregiConformance(ChannelConformance):
    channel: ClassVar[str] = "smaregi"
    plugin: ClassVar[object | None] = omnicrm.plugins.pos.plugin

    @pytest.fixture
    def invalid_settings(self) -> Mapping[str, Any]:
        return {"contract_id": "bad contract", "client_id": "x", "client_secret": "y"}
