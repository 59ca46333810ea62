"""pytest plugin of omnicrm (entry point ``pytest11``): fixtures for plugin authors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omnicrm.core.host import Host
from omnicrm.core.store import Store


@pytest.fixture
def omnicrm_host() -> Host:
    """The host with every installed plugin loaded."""
    return Host.load()


@pytest.fixture
def omnicrm_store(tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated SQLite store in a temporary directory."""
    store = Store.open(f"sqlite:///{tmp_path / 'omnicrm.db'}")
    yield store
    store.close()
