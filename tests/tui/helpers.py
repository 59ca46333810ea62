"""Helpers of the TUI tests: connections, run history seeded at fixed times, waiting."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert

from omnicrm.app.config import Connection
from omnicrm.app.runtime import Runtime
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import sync_runs
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.synthetic_plugin import SyntheticSettings

# 10:00 in Tokyo, the scheduler's default timezone.
NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return NOW


def synthetic(name: str = "shop", **options: Any) -> Connection:
    """A synthetic connection; ``every``/``cron``/``enabled`` go to the connection, the
    rest to its settings."""
    own = {k: options.pop(k) for k in ("every", "cron", "enabled") if k in options}
    return Connection(
        name=name,
        channel="synthetic",
        settings=SyntheticSettings(**options),
        lookback=dt.timedelta(minutes=5),
        batch_size=10,
        **own,
    )


def shopify(name: str, shop: str, **options: Any) -> Connection:
    """A Shopify connection that is only displayed (never synced: it reaches no shop)."""
    return Connection(
        name=name,
        channel="shopify",
        settings=ShopifySettings(domain=shop, access_token="shpat_test"),
        **options,
    )


def seed_run(
    store: Store,
    connection: str,
    status: RunStatus,
    started: dt.datetime,
    took: float | None,
    *,
    read: int = 0,
    errors: int = 0,
    error: str | None = None,
    error_kind: str | None = None,
    waited: float = 0.0,
    trigger: str = "schedule",
    full: bool = False,
) -> None:
    """A run in the history at a fixed time (the store stamps real ones with the clock)."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(sync_runs).values(
                connection=connection,
                trigger=trigger,
                full=full,
                status=status.value,
                started_at=started,
                ended_at=None if took is None else started + dt.timedelta(seconds=took),
                records_read=read,
                records_written=read,
                errors=errors,
                error=error,
                error_kind=error_kind,
                rate_limit_wait=waited,
                streams={},
            )
        )


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``predicate`` holds (its workers poll every 0.5 s)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await asyncio.sleep(0.02)


RuntimeFactory = Callable[..., Runtime]
