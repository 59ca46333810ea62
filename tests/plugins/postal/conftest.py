"""The postal dispatcher loaded alone, writing into a fresh directory for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omnicrm import Consent, ConsentState, DispatchOutcome, Medium, Message
from omnicrm.plugins.postal import plugin, runs
from omnicrm.plugins.postal.settings import PostalSettings
from omnicrm.testing import load_host

ADDRESS = {
    "postal_code": "150-0001",
    "prefecture": "東京都",
    "city": "渋谷区",
    "line1": "神宮前1-2-3",
    "line2": "青山ハイツ101",
}
OPTED_IN = [Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN)]


def message(n: int, *, campaign: str = "winter", **metadata: Any) -> Message:
    """Message ``n`` of a campaign of shop tokyo-tea, to 山田 花子n at ADDRESS."""
    meta: dict[str, Any] = {
        "shop": "tokyo-tea",
        "campaign": campaign,
        "variant": "AB"[n % 2],
        "family_name": "山田",
        "given_name": f"花子{n}",
        "postal_address": ADDRESS,
    }
    meta.update(metadata)
    return Message(
        id=f"tokyo-tea.c1.p{n}.postal",
        medium=Medium.POSTAL,
        customer_id=str(n),
        to="〒1500001 東京都 渋谷区 神宮前1-2-3 青山ハイツ101",
        body="冬のご案内",
        metadata=meta,
    )


class Postal:
    """The dispatcher as the sender calls it: dispatch each message, then finish."""

    def __init__(self, settings: PostalSettings) -> None:
        self.host = load_host(plugin)
        self.settings = settings

    def send(self, *messages: Message) -> list[DispatchOutcome]:
        return [self.host.dispatch("postal", m, self.settings, consents=OPTED_IN) for m in messages]

    def finish(self, campaign: str = "winter") -> None:
        self.host.finish("postal", self.settings, shop="tokyo-tea", campaign=campaign)


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    # What one process remembers of a directory's journals, forgotten between tests.
    runs._stores.clear()
    yield
    runs._stores.clear()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "dm"


@pytest.fixture
def settings(directory: Path) -> PostalSettings:
    return PostalSettings(directory=directory)


@pytest.fixture
def postal(settings: PostalSettings) -> Postal:
    return Postal(settings)
