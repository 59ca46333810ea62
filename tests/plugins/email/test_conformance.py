"""The email dispatcher runs the dispatcher conformance kit, as a third party's would."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import pytest

from omnicrm.plugins.email import plugin
from omnicrm.plugins.email.sandbox import DEMO_SENDER
from omnicrm.testing import DispatcherConformance


class TestEmailConformance(DispatcherConformance):
    dispatcher = "email"
    plugin = plugin
    recipient = "hanako@example.jp"
    refused_recipient = "bounce@example.jp"
    deferred_recipient = "defer@example.jp"

    @pytest.fixture
    def unreachable_settings(self) -> Mapping[str, Any]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {"host": "127.0.0.1", "port": port, "tls": "none", "timeout": 2, **DEMO_SENDER}


class TestInstalledEmailConformance(DispatcherConformance):
    """The same, through the installed entry point."""

    dispatcher = "email"
    recipient = "hanako@example.jp"
