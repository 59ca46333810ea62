"""What an offer's variants did: people, clicks, conversions from any channel within the
window after the first impression, revenue, and the differences from the control."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Stream
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.report import offer_report
from omnicrm.engage.onsite.visitors import Event
from omnicrm.engage.stats import rate_difference
from tests.engage.onsite.conftest import NOW
from tests.support.storefront import SHOP, customer, order, popup

DAY = dt.timedelta(days=1)


def see(runtime: Runtime, visitor: str, variant: str, at: dt.datetime, *more: Event) -> None:
    with runtime.store.engine.begin() as conn:
        visitors.touch(conn, SHOP, visitor, now=at, new_visit=True)
        visitors.record(
            conn, SHOP, visitor, [Event("impression", "second", variant), *more], now=at
        )


def test_conversions_are_the_profiles_orders_from_any_channel_within_the_window(
    runtime: Runtime,
) -> None:
    store = runtime.store
    # 花子 (C1 online) also buys in the Shopify shop under the same email: one profile.
    twin = customer("gid://shopify/Customer/501", "花子").model_copy(
        update={"email": "c1@example.jp"}
    )
    store.write_batch("shopify", Stream.CUSTOMERS, [twin])
    refresh(store, CrmSettings(shop=SHOP), now=NOW)
    click = Event("click", "second", "A")
    see(runtime, "visitor-hanako-laptop", "A", NOW, click)
    see(runtime, "visitor-hanako-phone1", "A", NOW + DAY)  # the same person again
    see(runtime, "visitor-anonymous-01", "A", NOW)
    see(runtime, "visitor-anonymous-01", "A", NOW + DAY)
    see(runtime, "visitor-misaki-00001", "B", NOW)
    with store.engine.begin() as conn:
        visitors.join(conn, SHOP, "visitor-hanako-laptop", "web", "C1")
        visitors.join(conn, SHOP, "visitor-hanako-phone1", "web", "C1")
        visitors.join(conn, SHOP, "visitor-misaki-00001", "web", "C3")
    store.write_batch(
        "shopify",
        Stream.ORDERS,
        [
            order("S-1", "gid://shopify/Customer/501", NOW + 2 * DAY, 5000),  # converts
            order("S-0", "gid://shopify/Customer/501", NOW - DAY, 9000),  # before: no
        ],
    )
    store.write_batch("web", Stream.ORDERS, [order("O-C3", "C3", NOW + 10 * DAY, 4000)])  # late
    refresh(store, CrmSettings(shop=SHOP), now=NOW + 11 * DAY)

    with store.engine.connect() as conn:
        found = offer_report(conn, SHOP, "second", popup(), days=7)
    a, b = found.variants
    assert found.control == "A"
    assert (a.variant, a.impressions, a.people, a.clicks, a.clickers) == ("A", 4, 2, 1, 1)
    assert (a.conversions, a.revenue) == (1, Decimal(5000))
    assert (b.variant, b.impressions, b.people, b.conversions, b.revenue) == ("B", 1, 1, 0, 0)
    assert a.ctr_difference is None
    assert b.cvr_difference == rate_difference(0, 1, 1, 2)
    assert b.revenue_difference is not None and b.revenue_difference.value == -2500

    with store.engine.connect() as conn:
        longer = offer_report(conn, SHOP, "second", popup(), days=14, control="B")
    b_first = {v.variant: v for v in longer.variants}
    assert b_first["B"].conversions == 1 and b_first["B"].revenue == Decimal(4000)
    assert b_first["B"].cvr_difference is None and b_first["A"].cvr_difference is not None


def test_an_unknown_control_is_refused(runtime: Runtime) -> None:
    with runtime.store.engine.connect() as conn, pytest.raises(ValueError, match="no variant"):
        offer_report(conn, SHOP, "second", popup(), days=7, control="Z")
