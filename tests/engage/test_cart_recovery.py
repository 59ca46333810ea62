"""Cart recovery as it stands: a campaign aimed at ``abandoned_checkout_date > -3d``
reaches the people who left a cart in the last three days, and a refresh after they
come back and buy takes them out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from omnicrm import Checkout, Order, OrderLine, Stream
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.schema import outbox
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_campaigns import make

SEGMENT = "abandoned_checkout_date > -3d"


def cart(owner: str, began: dt.timedelta, *, completed: bool = False) -> Checkout:
    at = NOW - began
    return Checkout(
        id=f"K-{owner}",
        customer_id=owner,
        created_at=at,
        updated_at=at + dt.timedelta(minutes=20),
        completed_at=at + dt.timedelta(hours=1) if completed else None,
        total=Decimal(2400),
        item_count=1,
    )


def recipients(store: Store, host: Host, drop: Path, name: str) -> set[str]:
    """The source customers a new campaign on SEGMENT would send to."""
    body = "{{ name }}様、カートに商品が残っています。"
    campaign = make(
        store,
        host,
        drop,
        name=name,
        segment=SEGMENT,
        variants=[Variant(name="A", subject="お忘れ物", body=body)],
    )
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
        planned = set(
            conn.execute(
                select(outbox.c.profile_id).where(
                    outbox.c.campaign_id == campaign.id, outbox.c.status == "planned"
                )
            ).scalars()
        )
        return {
            f"C{i}" for i in range(1, 5) if profile_of(conn, "web", f"C{i}", shop=SHOP) in planned
        }


def test_a_campaign_on_the_segment_reaches_who_left_a_cart_until_they_buy(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(i) for i in range(1, 5)])  # each bought 30 days ago
    store.write_batch(
        "web",
        Stream.CHECKOUTS,
        [
            cart("C1", dt.timedelta(days=1)),  # left yesterday: reached
            cart("C2", dt.timedelta(days=1), completed=True),  # came back and completed
            cart("C3", dt.timedelta(days=10)),  # too long ago for this campaign
            cart("C4", dt.timedelta(days=40)),  # an order (30 days ago) followed it
        ],
    )
    refresh(store, CrmSettings(), now=NOW)
    assert recipients(store, host, drop, "cart-1") == {"C1"}

    # C1 buys: the next refresh (after the sync that brought the order) takes them out.
    store.write_batch(
        "web",
        Stream.ORDERS,
        [
            Order(
                id="O-C1-again",
                customer_id="C1",
                status="paid",
                placed_at=NOW - dt.timedelta(hours=2),
                updated_at=NOW - dt.timedelta(hours=2),
                subtotal=Decimal(2400),
                total=Decimal(2400),
                lines=[OrderLine(product_name="玉露 50g", quantity=1, unit_price=Decimal(2400))],
            )
        ],
    )
    refresh(store, CrmSettings(), now=NOW)
    assert recipients(store, host, drop, "cart-2") == set()
