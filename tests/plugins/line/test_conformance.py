"""The LINE dispatcher runs the dispatcher conformance kit against its emulator."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import pytest

from omnicrm.plugins.line import plugin
from omnicrm.plugins.line.sandbox import DEMO_FRIENDS, demo_user
from omnicrm.testing import DispatcherConformance


class TestLineConformance(DispatcherConformance):
    dispatcher = "line"
    plugin = plugin
    recipient = demo_user(0, 0)
    refused_recipient = demo_user(0, DEMO_FRIENDS)  # blocked the account

    @pytest.fixture
    def unreachable_settings(self) -> Mapping[str, Any]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {
            "api_url": f"http://127.0.0.1:{port}",
            "channel_access_token": "token",
            "channel_secret": "secret",
            "attempts": 2,
            "backoff": 0.01,
            "timeout": 2,
        }


class TestInstalledLineConformance(DispatcherConformance):
    """The same, through the installed entry point."""

    dispatcher = "line"
    recipient = demo_user(0, 1)
