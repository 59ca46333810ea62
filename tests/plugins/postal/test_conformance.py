"""The postal dispatcher runs the dispatcher conformance kit; its sandbox is a directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from omnicrm.plugins.postal import plugin
from omnicrm.testing import DispatcherConformance

ADDRESSES = {
    "〒1500001 東京都 渋谷区 神宮前1-2-3": {
        "postal_code": "1500001",
        "prefecture": "東京都",
        "city": "渋谷区",
        "line1": "神宮前1-2-3",
        "line2": None,
    },
    "〒15000 東京都 渋谷区": {"postal_code": "15000", "prefecture": "東京都", "city": "渋谷区"},
}


class TestPostalConformance(DispatcherConformance):
    dispatcher = "postal"
    plugin = plugin
    recipient = "〒1500001 東京都 渋谷区 神宮前1-2-3"
    refused_recipient = "〒15000 東京都 渋谷区"  # 5 digits: no label can be made

    def message_metadata(self, to: str) -> dict[str, Any]:
        return {**super().message_metadata(to), "postal_address": ADDRESSES[to]}

    @pytest.fixture
    def invalid_settings(self) -> Mapping[str, Any]:
        return {"encoding": "latin-1", "labels": {"columns": 5}}

    @pytest.fixture
    def unreachable_settings(self, tmp_path: Path) -> Mapping[str, Any]:
        blocker = tmp_path / "a-file"
        blocker.write_text("", encoding="utf-8")
        return {"directory": str(blocker / "dm")}  # a directory that cannot be made


class TestInstalledPostalConformance(DispatcherConformance):
    """The same, through the installed entry point."""

    dispatcher = "postal"
    recipient = "〒1500001 東京都 渋谷区 神宮前1-2-3"

    def message_metadata(self, to: str) -> dict[str, Any]:
        return {**super().message_metadata(to), "postal_address": ADDRESSES[to]}
