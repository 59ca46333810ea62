"""Hand-built shop data for the analytics tests: profiles, members and their orders.

Orders go in through ``Store.write_batch`` as a sync would write them; profiles and
profile_members are inserted directly, standing in for the CRM's profile builder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection, insert

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Order, OrderStatus
from omnicrm.core.store import Store
from omnicrm.crm.schema import profile_members, profiles

JST = dt.timezone(dt.timedelta(hours=9))
CONNECTION = "shop"


def jst(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A moment in shop time (Tokyo)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST)


def add_profile(
    conn: Connection,
    *members: str,
    email: str | None = None,
    phone: str | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    connection: str = CONNECTION,
    shop: str = DEFAULT_SHOP,
    **columns: object,
) -> int:
    """A profile of ``shop`` whose source customers are ``members`` (record ids in
    ``connection``); ``columns`` sets further profiles columns (prefecture=...)."""
    now = dt.datetime.now(dt.UTC)
    profile_id: int = conn.execute(
        insert(profiles)
        .values(
            shop=shop,
            email=email,
            phone=phone,
            family_name=family_name,
            given_name=given_name,
            updated_at=now,
            **columns,
        )
        .returning(profiles.c.id)
    ).scalar_one()
    if members:
        conn.execute(
            insert(profile_members),
            [
                {
                    "connection": connection,
                    "record_id": m,
                    "shop": shop,
                    "profile_id": profile_id,
                    "joined_at": now,
                }
                for m in members
            ],
        )
    return profile_id


def order(
    order_id: str,
    customer: str | None,
    placed_at: dt.datetime,
    total: str | int,
    *,
    status: OrderStatus = OrderStatus.PAID,
    channel: str = "web",
    currency: str = "JPY",
) -> Order:
    amount = Decimal(str(total))
    return Order(
        id=order_id,
        customer_id=customer,
        channel=channel,
        status=status,
        placed_at=placed_at,
        updated_at=placed_at,
        currency=currency,
        subtotal=amount,
        total=amount,
    )


def write_orders(store: Store, records: Sequence[Order], connection: str = CONNECTION) -> None:
    store.write_batch(connection, Stream.ORDERS, list(records))
