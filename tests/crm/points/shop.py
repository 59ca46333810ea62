"""A small shop for the points tests: orders and customers written through the store,
profiles inserted directly (identity resolution is not under test here)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer, Order, OrderStatus
from omnicrm.core.store import Store
from omnicrm.crm.schema import points_entries, profile_members, profiles

T0 = dt.datetime(2024, 4, 1, 3, 0, tzinfo=dt.UTC)


def order(
    id: str,
    customer: str | None,
    total: int | str,
    *,
    status: OrderStatus | str = OrderStatus.PAID,
    channel: str = "web",
    placed: dt.datetime = T0,
    updated: dt.datetime | None = None,
    shipping: int | str = 0,
    tax: int | str = 0,
    earned: int | None = None,
    redeemed: int | None = None,
    currency: str = "JPY",
    cancelled: dt.datetime | None = None,
) -> Order:
    return Order(
        id=id,
        customer_id=customer,
        channel=channel,
        status=OrderStatus(status),
        placed_at=placed,
        updated_at=updated or placed,
        cancelled_at=cancelled,
        currency=currency,
        subtotal=Decimal(total),
        shipping_total=Decimal(shipping),
        tax_total=Decimal(tax),
        total=Decimal(total),
        points_earned=earned,
        points_redeemed=redeemed,
    )


def customer(id: str, *, updated: dt.datetime = T0, points: int | None = None) -> Customer:
    return Customer(id=id, updated_at=updated, points=points)


def write(store: Store, connection: str, *records: Order | Customer) -> None:
    """Write records through the store, customers and orders each as one batch."""
    customers = [r for r in records if isinstance(r, Customer)]
    orders = [r for r in records if isinstance(r, Order)]
    if customers:
        store.write_batch(connection, Stream.CUSTOMERS, customers)
    if orders:
        store.write_batch(connection, Stream.ORDERS, orders)


def add_profile(
    store: Store, profile_id: int, *members: tuple[str, str], shop: str = DEFAULT_SHOP
) -> None:
    """A profile of ``shop`` holding ``members`` (connection, customer id)."""
    with store.engine.begin() as conn:
        conn.execute(insert(profiles).values(id=profile_id, shop=shop, updated_at=T0))
        for connection, record_id in members:
            conn.execute(
                insert(profile_members).values(
                    connection=connection,
                    record_id=record_id,
                    shop=shop,
                    profile_id=profile_id,
                    joined_at=T0,
                )
            )


def ledger(store: Store) -> dict[tuple[str, str], int]:
    """Every entry as {(source, event_id): points}."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(points_entries.c.source, points_entries.c.event_id, points_entries.c.points)
        ).all()
    return {(r.source, r.event_id): r.points for r in rows}


def rows(store: Store) -> list[dict[str, Any]]:
    """Every entry, in full, in id order."""
    with store.engine.connect() as conn:
        result = conn.execute(select(points_entries).order_by(points_entries.c.id)).mappings()
        return [dict(r) for r in result]


def stored_balance(store: Store, profile_id: int) -> int:
    """profiles.points_balance as written."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(profiles.c.points_balance).where(profiles.c.id == profile_id)
            ).scalar_one()
        )
