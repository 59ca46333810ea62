"""A live sandbox's changes keep the shop's history plausible over hours."""

from __future__ import annotations

import bisect
import collections
import datetime as dt

import pytest

from omnicrm.plugins.shopify.sandbox import DEFAULT_LIVE_INTERVAL, ShopifySandbox
from omnicrm.plugins.shopify.sandbox.data import EPOCH, SHIFT


@pytest.mark.parametrize("hours", [1, 8, 24])
def test_hours_of_live_changes_leave_the_current_month_a_plausible_month(hours: int) -> None:
    """The change generator is driven directly, tick by tick (no sleeping): after a
    working day of a demo, the current month holds about what a month of the seeded
    history sells, not every report's bulk."""
    shop = ShopifySandbox(customers=3000, seed=1)
    data = shop.data
    data.wait_for_orders()
    monthly = shop.monthly_orders()
    month_start = dt.datetime.fromtimestamp(EPOCH + data.end, dt.UTC).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    since = float((int(month_start.timestamp()) - EPOCH) * SHIFT)
    seeded_this_month = len(data.by_created) - bisect.bisect_left(data.by_created, since)

    ticks = int(hours * 3600 / DEFAULT_LIVE_INTERVAL)
    done = collections.Counter(shop.tick()[0] for _ in range(ticks))
    placed = done["orders/create"] + done["customers/create"]

    assert placed > 0, "a live shop sells"
    expected = monthly * hours / 24
    assert 0.5 * expected <= placed <= 1.6 * expected + 3, (placed, expected)
    # This month, seeded and live, stays within a busy month of the history.
    assert seeded_this_month + placed <= 2.2 * monthly, (seeded_this_month, placed, monthly)
    assert done["orders/updated"] <= 0.1 * placed + 3  # cancellations are rare
    assert done["customers/update"] > ticks / 2  # and the shop still changes every tick
