"""omnicrm's channel conformance kit, run against the Shopify sandbox.

The kit's default ``settings`` fixture enters the sandbox the channel type registers,
the same one the demo runs, made smaller here through its environment variables so the
suite stays quick. A second run of the kit reads the same shop by bulk operations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

import omnicrm.plugins.shopify.plugin
from omnicrm.core.channels import ChannelType
from omnicrm.testing import ChannelConformance


@pytest.fixture(autouse=True)
def _small_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_SANDBOX_CUSTOMERS", "60")


class TestShopifyConformance(ChannelConformance):
    channel: ClassVar[str] = "shopify"
    plugin: ClassVar[object | None] = omnicrm.plugins.shopify.plugin


class TestShopifyBulkConformance(ChannelConformance):
    """The same contract when every full read goes through a bulk operation."""

    channel: ClassVar[str] = "shopify"
    plugin: ClassVar[object | None] = omnicrm.plugins.shopify.plugin

    @pytest.fixture
    def settings(self, channel_type: ChannelType) -> Iterator[Mapping[str, Any]]:
        assert channel_type.sandbox is not None
        with channel_type.sandbox() as settings:
            yield {**settings, "bulk_threshold": 0}
