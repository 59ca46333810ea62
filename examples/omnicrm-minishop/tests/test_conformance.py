"""omnicrm's channel conformance kit, run against MiniShop.

The kit's default ``settings`` fixture enters the channel type's registered sandbox, the
same live shop the demo uses, so this also checks the sandbox as registered. It is only
made smaller here, through its own environment variable, to keep the suite quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import omnicrm_minishop.plugin
import pytest

testing = pytest.importorskip("omnicrm.testing")


class TestMiniShopConformance(testing.ChannelConformance):  # type: ignore[misc, name-defined]
    channel = "minishop"
    plugin = omnicrm_minishop.plugin

    @pytest.fixture(autouse=True)
    def _small_sandbox(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MINISHOP_CUSTOMERS", "300")

    @pytest.fixture
    def invalid_settings(self) -> Mapping[str, Any]:
        return {"base_url": "http://127.0.0.1:9", "api_key": "msk_test", "page_size": 0}
