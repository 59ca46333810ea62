"""The webhook dispatchers run the dispatcher conformance kit against a loopback receiver."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import pytest

from omnicrm.plugins.webhook import plugin
from omnicrm.testing import DispatcherConformance


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestWebhookConformance(DispatcherConformance):
    dispatcher = "webhook-email"
    plugin = plugin
    recipient = "hanako@example.jp"
    refused_recipient = "refuse@example.jp"
    deferred_recipient = "defer@example.jp"

    @pytest.fixture
    def unreachable_settings(self) -> Mapping[str, Any]:
        return {
            "url": f"http://127.0.0.1:{closed_port()}/hook",
            "secret": "conformance-secret-0123456789",
            "attempts": 2,
            "backoff": 0.01,
            "timeout": 2,
        }


class TestInstalledWebhookConformance(DispatcherConformance):
    """Another medium's, through the installed entry point."""

    dispatcher = "webhook-sms"
    recipient = "+819012345678"
    refused_recipient = "refuse-+819000000000"
