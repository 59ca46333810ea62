"""Records to table rows and back. One place knows how each field is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from omnicrm.core.records import Customer, Order, OrderLine


def customer_row(connection: str, c: Customer, synced_at: dt.datetime) -> dict[str, Any]:
    address = c.address
    return {
        "connection": connection,
        "id": c.id,
        "updated_at": c.updated_at,
        "created_at": c.created_at,
        "family_name": c.family_name,
        "given_name": c.given_name,
        "family_name_kana": c.family_name_kana,
        "given_name_kana": c.given_name_kana,
        "email": c.email,
        "phone": c.phone,
        "birth_date": c.birth_date,
        "gender": c.gender.value,
        "postal_code": address.postal_code if address else None,
        "prefecture": address.prefecture if address else None,
        "company": c.company,
        "member_code": c.member_code,
        "address": address.model_dump(mode="json") if address else None,
        "tags": list(c.tags),
        "consents": [consent.model_dump(mode="json") for consent in c.consents],
        "points": c.points,
        "raw": c.raw,
        "synced_at": synced_at,
    }


# The columns order_values gives, in its order (synced_at, one for a whole batch, apart).
ORDER_COLUMNS = (
    "connection",
    "id",
    "updated_at",
    "name",
    "customer_id",
    "channel",
    "location",
    "status",
    "placed_at",
    "cancelled_at",
    "currency",
    "subtotal",
    "discount_total",
    "shipping_total",
    "tax_total",
    "total",
    "points_earned",
    "points_redeemed",
    "raw",
)


def order_values(connection: str, o: Order) -> tuple[Any, ...]:
    """An order's row as values in ``ORDER_COLUMNS`` order (bulk writes build no dict)."""
    return (
        connection,
        o.id,
        o.updated_at,
        o.name,
        o.customer_id,
        o.channel,
        o.location,
        o.status._value_,  # .value is a Python property: a call per order
        o.placed_at,
        o.cancelled_at,
        o.currency,
        o.subtotal,
        o.discount_total,
        o.shipping_total,
        o.tax_total,
        o.total,
        o.points_earned,
        o.points_redeemed,
        o.raw,
    )


def order_row(connection: str, o: Order, synced_at: dt.datetime) -> dict[str, Any]:
    return {
        **dict(zip(ORDER_COLUMNS, order_values(connection, o), strict=True)),
        "synced_at": synced_at,
    }


# The columns of each of line_values' rows, in order.
LINE_COLUMNS = (
    "connection",
    "order_id",
    "line_no",
    "sku",
    "product_id",
    "variant_id",
    "product_name",
    "quantity",
    "unit_price",
    "discount",
)


def line_values(connection: str, o: Order) -> list[tuple[Any, ...]]:
    """An order's line rows as values in ``LINE_COLUMNS`` order."""
    oid = o.id
    return [
        (
            connection,
            oid,
            n,
            line.sku,
            line.product_id,
            line.variant_id,
            line.product_name,
            line.quantity,
            line.unit_price,
            line.discount,
        )
        for n, line in enumerate(o.lines, start=1)
    ]


def line_rows(connection: str, o: Order) -> list[dict[str, Any]]:
    return [dict(zip(LINE_COLUMNS, values, strict=True)) for values in line_values(connection, o)]


def customer_from_row(row: Mapping[Any, Any]) -> Customer:
    # Every Customer field is a column of its own; the extra columns are for queries.
    return Customer.model_validate({name: row[name] for name in Customer.model_fields})


def order_from_row(row: Mapping[Any, Any], lines: Sequence[Mapping[Any, Any]]) -> Order:
    fields = {name: row[name] for name in Order.model_fields if name != "lines"}
    fields["lines"] = [{name: line[name] for name in OrderLine.model_fields} for line in lines]
    return Order.model_validate(fields)
