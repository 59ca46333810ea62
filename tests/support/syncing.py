"""Helpers for tests that sync a plugin's sandbox into a real store and read what the
CRM made of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.crm.schema import profile_members, profiles


def engine_for(store: Store, name: str, plugin: object) -> SyncEngine:
    """A sync engine over ``store`` with only ``plugin`` loaded (as ``name``), retrying
    transient errors quickly."""
    host = Host.load(use_entry_points=False, extra={name: plugin})
    return SyncEngine(host, store, retry=RetryPolicy(attempts=3, base=0.01))


def abandoned_at(store: Store, customer: str) -> dt.datetime | None:
    """``abandoned_checkout_at`` of the profile source customer ``customer`` is in."""
    with store.engine.connect() as conn:
        value: dt.datetime | None = conn.execute(
            select(profiles.c.abandoned_checkout_at)
            .join(profile_members, profile_members.c.profile_id == profiles.c.id)
            .where(profile_members.c.record_id == customer)
        ).scalar_one()
    return value
