"""A shop's purchase baskets from the store, across every connection of the shop.

People are CRM profiles (``profile_members`` maps each source customer to one), so a
customer who bought in the store and online is one person; an order no profile claims
is an anonymous basket. A product is its SKU where the line has one, else its product
id. Cancelled, refunded and returned orders are left out.
"""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
from sqlalchemy import Connection, Engine, and_, func, select

from omnicrm.core.recommend import PurchaseHistory
from omnicrm.core.records import OrderStatus
from omnicrm.core.store.schema import order_lines, orders
from omnicrm.crm.schema import profile_members, profiles

LEFT_OUT = (OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.RETURNED)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def segment_label(gender: str | None, birth: dt.date | None, today: dt.date) -> str | None:
    """A profile's segment for popularity: gender and age band ("female 30代")."""
    parts = []
    if gender and gender != "unknown":
        parts.append(gender)
    if birth is not None:
        age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        parts.append(f"{max(age, 0) // 10 * 10}代")
    return " ".join(parts) or None


def load_history(conn: Connection, shop: str, *, now: dt.datetime) -> PurchaseHistory:
    """Every kept order line of ``shop``'s connections, as one :class:`PurchaseHistory`."""
    member = profile_members
    query = (
        select(
            orders.c.connection,
            orders.c.id,
            orders.c.placed_at,
            member.c.profile_id,
            order_lines.c.sku,
            order_lines.c.product_id,
            order_lines.c.product_name,
            order_lines.c.quantity,
        )
        .join(
            order_lines,
            and_(
                order_lines.c.connection == orders.c.connection,
                order_lines.c.order_id == orders.c.id,
            ),
        )
        .outerjoin(
            member,
            and_(
                member.c.shop == shop,
                member.c.connection == orders.c.connection,
                member.c.record_id == orders.c.customer_id,
            ),
        )
        .where(
            orders.c.shop == shop,
            orders.c.status.not_in([s.value for s in LEFT_OUT]),
            orders.c.cancelled_at.is_(None),
            order_lines.c.quantity > 0,
        )
        .order_by(orders.c.placed_at.desc())
    )
    baskets: dict[tuple[str, str], int] = {}
    product_codes: dict[str, int] = {}
    customer_codes: dict[str, int] = {}
    names: dict[str, str] = {}
    basket, product, customer, day, quantity = [], [], [], [], []
    for row in conn.execute(query):
        key = (row.sku or "").strip() or (row.product_id or "").strip()
        if not key:
            continue  # a line naming no product (a fee, a manual line)
        names.setdefault(key, row.product_name)  # newest first: the current name
        basket.append(baskets.setdefault((row.connection, row.id), len(baskets)))
        product.append(product_codes.setdefault(key, len(product_codes)))
        if row.profile_id is None:
            customer.append(-1)
        else:
            person = str(row.profile_id)
            customer.append(customer_codes.setdefault(person, len(customer_codes)))
        placed = row.placed_at
        day.append((placed - _EPOCH).total_seconds() / 86400.0)
        quantity.append(row.quantity)
    today = now.date()
    segment_of: dict[str, str] = {}
    for pid, gender, birth in conn.execute(
        select(profiles.c.id, profiles.c.gender, profiles.c.birth_date).where(
            profiles.c.shop == shop
        )
    ):
        label = segment_label(gender, birth, today)
        if label is not None:
            segment_of[str(pid)] = label
    return PurchaseHistory(
        customers=list(customer_codes),
        products=list(product_codes),
        customer=np.asarray(customer, dtype=np.int64),
        product=np.asarray(product, dtype=np.int64),
        basket=np.asarray(basket, dtype=np.int64),
        day=np.asarray(day, dtype=np.float64),
        quantity=np.asarray(quantity, dtype=np.int64),
        now=now,
        segment_of=segment_of,
        names=names,
    )


def _version(conn: Connection, shop: str) -> tuple[object, ...]:
    """What changes when the shop's orders or people do (the cache's key)."""
    order_row = conn.execute(
        select(func.count(), func.max(orders.c.synced_at)).where(orders.c.shop == shop)
    ).one()
    member_row = conn.execute(
        select(func.count(), func.max(profile_members.c.joined_at)).where(
            profile_members.c.shop == shop
        )
    ).one()
    profile_row = conn.execute(
        select(func.count(), func.max(profiles.c.updated_at)).where(profiles.c.shop == shop)
    ).one()
    return (*order_row, *member_row, *profile_row)


_CACHE: dict[tuple[str, str], tuple[tuple[object, ...], dt.date, PurchaseHistory]] = {}
_LOCK = threading.Lock()


def shop_history(engine: Engine, shop: str, *, now: dt.datetime | None = None) -> PurchaseHistory:
    """``shop``'s history, read once and kept in this process while the shop's orders,
    people and the day stay the same (so each recommender fits once, then scores)."""
    now = now or dt.datetime.now(dt.UTC)
    key = (engine.url.render_as_string(hide_password=True), shop)
    with engine.connect() as conn:
        version = _version(conn, shop)
        with _LOCK:
            held = _CACHE.get(key)
            if held is not None and held[0] == version and held[1] == now.date():
                return held[2]
        history = load_history(conn, shop, now=now)
    with _LOCK:
        _CACHE[key] = (version, now.date(), history)
    return history
