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


def order_row(connection: str, o: Order, synced_at: dt.datetime) -> dict[str, Any]:
    return {
        "connection": connection,
        "id": o.id,
        "updated_at": o.updated_at,
        "name": o.name,
        "customer_id": o.customer_id,
        "channel": o.channel,
        "location": o.location,
        "status": o.status.value,
        "placed_at": o.placed_at,
        "cancelled_at": o.cancelled_at,
        "currency": o.currency,
        "subtotal": o.subtotal,
        "discount_total": o.discount_total,
        "shipping_total": o.shipping_total,
        "tax_total": o.tax_total,
        "total": o.total,
        "points_earned": o.points_earned,
        "points_redeemed": o.points_redeemed,
        "raw": o.raw,
        "synced_at": synced_at,
    }


def line_rows(connection: str, o: Order) -> list[dict[str, Any]]:
    return [
        {
            "connection": connection,
            "order_id": o.id,
            "line_no": n,
            "sku": line.sku,
            "product_id": line.product_id,
            "variant_id": line.variant_id,
            "product_name": line.product_name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount": line.discount,
        }
        for n, line in enumerate(o.lines, start=1)
    ]


def customer_from_row(row: Mapping[Any, Any]) -> Customer:
    # Every Customer field is a column of its own; the extra columns are for queries.
    return Customer.model_validate({name: row[name] for name in Customer.model_fields})


def order_from_row(row: Mapping[Any, Any], lines: Sequence[Mapping[Any, Any]]) -> Order:
    fields = {name: row[name] for name in Order.model_fields if name != "lines"}
    fields["lines"] = [{name: line[name] for name in OrderLine.model_fields} for line in lines]
    return Order.model_validate(fields)
