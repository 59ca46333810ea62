"""Waiting for the webhook inbox, for tests: events are applied behind the answer."""

from __future__ import annotations

import time

from omnicrm.core.store import Store
from omnicrm.core.store.inbox import pending


def settled(store: Store, timeout: float = 20.0) -> None:
    """Return once every queued webhook event was applied (its inbox row is gone)."""
    deadline = time.monotonic() + timeout
    while pending(store):
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending(store)} webhook event(s) still queued")
        time.sleep(0.02)
