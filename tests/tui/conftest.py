"""Fixtures of the TUI tests: the synthetic channel's host and runtimes on the test store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.plugins.shopify import plugin as shopify_plugin
from tests import synthetic_plugin
from tests.tui.helpers import RuntimeFactory


@pytest.fixture(autouse=True)
def _fresh_faults() -> Iterator[None]:
    synthetic_plugin.reset_faults()
    yield
    synthetic_plugin.reset_faults()


@pytest.fixture
def host() -> Host:
    # Shopify too: its channel type says which shop a connection points at.
    extra = {"synthetic": synthetic_plugin, "shopify": shopify_plugin}
    host = Host.load(use_entry_points=False, extra=extra)
    assert not host.failures
    return host


@pytest.fixture
def make_runtime(host: Host) -> Iterator[RuntimeFactory]:
    """Runtimes on a given store URL; the CRM refresh after a sync is off (not tested here)."""
    made: list[Runtime] = []

    def make(store_url: str, *connections: Connection, **config: Any) -> Runtime:
        runtime = Runtime(
            host,
            Config(
                path=None,
                store_url=store_url,
                scheduler=SchedulerSection(),
                connections={c.name: c for c in connections},
                crm=CrmSection(refresh_after_sync=False),
                **config,
            ),
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
