"""A channel whose every connection holds the same people, marked as its own.

Two client shops that both know a person hold the same email, phone, member code, name,
reading, birth date and address for them; what differs is their own: the record ids,
order ids and names, amounts, products and tags, all carrying the connection's
``mark``. The shop isolation tests look for one shop's marks in the other's output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from pydantic import BaseModel

import omnicrm
from omnicrm import Address, Customer, Order, OrderLine, OrderStatus, StreamContext

BASE = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
PEOPLE = 6


class TwinsSettings(BaseModel):
    mark: str  # in every id, order name, product and tag of this connection
    amount: int = 1100  # each order's total, in yen
    channel: str = "online"  # the orders' channel (online, pos)
    orders_each: int = 2


def email(i: int) -> str:
    return f"twin{i}@example.jp"


def phone(i: int) -> str:
    return f"+8190{1234_0000 + i:08d}"


def member_code(i: int) -> str:
    return f"MEM{i:05d}"


def customer(i: int, s: TwinsSettings) -> Customer:
    return Customer(
        id=f"{s.mark}-cust-{i}",
        family_name="佐藤",
        given_name=f"美咲{i}",
        family_name_kana="サトウ",
        given_name_kana="ミサキ",
        email=email(i),
        phone=phone(i),
        member_code=member_code(i),
        birth_date=dt.date(1990, 1, 1 + i),
        address=Address(postal_code="150-0001", prefecture="東京都", city="渋谷区"),
        tags=[f"tag-{s.mark}"],
        created_at=BASE,
        updated_at=BASE + dt.timedelta(minutes=i),
        raw={"note": f"note-{s.mark}-{i}"},
    )


def order(i: int, k: int, s: TwinsSettings) -> Order:
    total = Decimal(s.amount)
    return Order(
        id=f"{s.mark}-order-{i}-{k}",
        name=f"#{s.mark}-{i}{k}",
        customer_id=f"{s.mark}-cust-{i}",
        channel=s.channel,
        status=OrderStatus.PAID,
        placed_at=BASE + dt.timedelta(days=40 * k + i),
        updated_at=BASE + dt.timedelta(days=40 * k + i, minutes=1),
        subtotal=total,
        total=total,
        lines=[
            OrderLine(
                sku=f"{s.mark}-sku",
                product_name=f"{s.mark}-product",
                quantity=1,
                unit_price=total,
            )
        ],
        raw={"note": f"order-note-{s.mark}"},
    )


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    register.channel_type(omnicrm.ChannelType(name="twins", settings=TwinsSettings))


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[TwinsSettings]) -> Iterator[Customer]:
    yield from (customer(i, ctx.settings) for i in range(PEOPLE))


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[TwinsSettings]) -> Iterator[Order]:
    s = ctx.settings
    found = [order(i, k, s) for i in range(PEOPLE) for k in range(s.orders_each)]
    yield from sorted(found, key=lambda o: (o.updated_at, o.id))
