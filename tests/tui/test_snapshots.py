"""Snapshots of the connections screens with seeded history and a fixed clock.

Update them after a deliberate change with ``pytest tests/tui --snapshot-update`` and
look at the SVGs (``__snapshots__/``) before committing them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from omnicrm.core.store import RunStatus, Store
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionScreen
from tests.tui.helpers import (
    NOW,
    RuntimeFactory,
    fixed_clock,
    seed_run,
    shopify,
    synthetic,
    wait_until,
)

Snap = Callable[..., bool]


@pytest.fixture
def seeded(tmp_path: Path, make_runtime: RuntimeFactory) -> Iterator[OmnicrmApp]:
    """Six connections in every state, Japanese names among them, on SQLite."""
    url = f"sqlite:///{tmp_path / 'omnicrm.db'}"
    store = Store.open(url)
    minutes = dt.timedelta(minutes=1)
    seed_run(store, "本店", RunStatus.COMPLETE, NOW - 50 * minutes, 95.0, read=12_345, waited=3.2)
    seed_run(store, "本店", RunStatus.COMPLETE, NOW - 20 * minutes, 42.0, read=310, waited=1.5)
    seed_run(store, "pos", RunStatus.RUNNING, NOW - 2 * minutes, None, read=4_210)
    seed_run(
        store,
        "outlet",
        RunStatus.RATE_LIMITED,
        NOW - 30 * minutes,
        300.0,
        read=800,
        errors=3,
        waited=287.0,
        error="RateLimitedError: HTTP 429 from shopify (retry after 600s)",
        error_kind="rate_limited",
    )
    seed_run(
        store,
        "楽天市場店",
        RunStatus.FAILED,
        NOW - 65 * minutes,
        1.2,
        errors=1,
        error="AuthError: HTTP 401: token rejected",
        error_kind="auth",
    )
    seed_run(store, "archive", RunStatus.SKIPPED, NOW - 15 * minutes, 0.0, errors=1)
    store.set_paused("archive", True)
    store.close()
    runtime = make_runtime(
        url,
        shopify("本店", "tokyo-tea.myshopify.com", every=dt.timedelta(minutes=15)),
        shopify("outlet", "tokyo-tea-outlet.myshopify.com", cron="0 * * * *"),
        synthetic("pos", every=dt.timedelta(minutes=5)),
        synthetic("楽天市場店", cron="*/30 * * * *"),
        synthetic("archive", every=dt.timedelta(hours=1)),
        synthetic("csv"),
    )
    # A running run's process holds its connection's lock (else it is stale, and failed).
    holder = Store(url)
    with holder.lock("pos"):
        yield OmnicrmApp(runtime, clock=fixed_clock)
    holder.close()


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_until(
        lambda: (
            bool(app.screen.query("#connections"))
            and app.screen.query_one("#connections", DataTable).row_count == 6
        )
    )
    await pilot.pause()


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_connections_screen(seeded: OmnicrmApp, snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(seeded, terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_connection_detail_screen(
    seeded: OmnicrmApp, snap_compare: Snap, size: tuple[int, int]
) -> None:
    async def open_outlet(pilot: Pilot[Any]) -> None:
        await _loaded(pilot)
        await pilot.press("down", "down")  # archive, csv, outlet: by name
        await pilot.press("enter")
        await wait_until(lambda: isinstance(pilot.app.screen, ConnectionScreen))
        await wait_until(lambda: pilot.app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.pause()

    assert snap_compare(seeded, terminal_size=size, run_before=open_outlet)
