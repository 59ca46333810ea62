"""Records to table rows and back. One place knows how each field is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omnicrm.core.records import Customer, Order, OrderLine, Product, ProductVariant

Row = tuple[Any, ...]


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
        "withdrawn_at": c.withdrawn_at,
        "raw": c.raw,
        "synced_at": synced_at,
    }


# How each order column is read from an order ``o`` of ``connection`` (synced_at, one
# for a whole batch, apart). order_values and the store's bulk encoder
# (``TableWriter.encode_records``) are both generated from it: one place knows the fields.
ORDER_FIELDS: dict[str, str] = {
    "connection": "connection",
    "id": "o.id",
    "updated_at": "o.updated_at",
    "name": "o.name",
    "customer_id": "o.customer_id",
    "channel": "o.channel",
    "location": "o.location",
    "status": "o.status._value_",  # .value is a Python property: a call per order
    "placed_at": "o.placed_at",
    "cancelled_at": "o.cancelled_at",
    "currency": "o.currency",
    "subtotal": "o.subtotal",
    "discount_total": "o.discount_total",
    "shipping_total": "o.shipping_total",
    "tax_total": "o.tax_total",
    "total": "o.total",
    "points_earned": "o.points_earned",
    "points_redeemed": "o.points_redeemed",
    "discount_codes": "o.discount_codes or None",  # NULL for the many without one
    "raw": "o.raw",
}
ORDER_COLUMNS = tuple(ORDER_FIELDS)
# The orders of a batch (``records``), one row each.
ORDER_LOOP = "for o in records"

# How each line column is read from ``line``, the ``n``-th line of order ``o``.
LINE_FIELDS: dict[str, str] = {
    "connection": "connection",
    "order_id": "o.id",
    "line_no": "n",
    "sku": "line.sku",
    "product_id": "line.product_id",
    "variant_id": "line.variant_id",
    "product_name": "line.product_name",
    "quantity": "line.quantity",
    "unit_price": "line.unit_price",
    "discount": "line.discount",
}
LINE_COLUMNS = tuple(LINE_FIELDS)
# Every line of every order of a batch, numbered from 1 in each order.
LINE_LOOP = "for o in records for n, line in enumerate(o.lines, start=1)"


# How each product column is read from a product ``p`` of ``connection`` (shop and
# synced_at, one for a whole batch, apart); the bulk encoder is generated from it.
PRODUCT_FIELDS: dict[str, str] = {
    "connection": "connection",
    "id": "p.id",
    "updated_at": "p.updated_at",
    "created_at": "p.created_at",
    "title": "p.title",
    "handle": "p.handle",
    "url": "p.url",
    "image_url": "p.image_url",
    "product_type": "p.product_type",
    "vendor": "p.vendor",
    "tags": "p.tags",
    "status": "p.status._value_",
    "currency": "p.currency",
    "raw": "p.raw",
}
PRODUCT_LOOP = "for p in records"

# How each variant column is read from ``v``, the ``n``-th variant of product ``p``.
VARIANT_FIELDS: dict[str, str] = {
    "connection": "connection",
    "product_id": "p.id",
    "position": "n",
    "id": "v.id",
    "sku": "v.sku",
    "title": "v.title",
    "price": "v.price",
    "compare_at_price": "v.compare_at_price",
    "available": "v.available",
    "inventory": "v.inventory",
    "image_url": "v.image_url",
}
VARIANT_LOOP = "for p in records for n, v in enumerate(p.variants, start=1)"


def _rows_of(fields: Mapping[str, str], loop: str) -> Callable[[str, Sequence[Any]], list[Row]]:
    """A function from (connection, records) to their rows' values in ``fields`` order.

    Generated, as dataclasses generate theirs: one comprehension, no call per value. The
    source holds only the fixed expressions above.
    """
    source = f"lambda connection, records: [({', '.join(fields.values())},) {loop}]"
    built: Callable[[str, Sequence[Any]], list[Row]] = eval(source, {})
    return built


_order_rows = _rows_of(ORDER_FIELDS, ORDER_LOOP)
_line_rows = _rows_of(LINE_FIELDS, LINE_LOOP)


def order_values(connection: str, o: Order) -> Row:
    """An order's row as values in ``ORDER_COLUMNS`` order (bulk writes build no dict)."""
    return _order_rows(connection, [o])[0]


def order_row(connection: str, o: Order, synced_at: dt.datetime) -> dict[str, Any]:
    return {
        **dict(zip(ORDER_COLUMNS, order_values(connection, o), strict=True)),
        "synced_at": synced_at,
    }


def line_values(connection: str, o: Order) -> list[Row]:
    """An order's line rows as values in ``LINE_COLUMNS`` order."""
    return _line_rows(connection, [o])


def line_rows(connection: str, o: Order) -> list[dict[str, Any]]:
    return [dict(zip(LINE_COLUMNS, values, strict=True)) for values in line_values(connection, o)]


def customer_from_row(row: Mapping[Any, Any]) -> Customer:
    # Every Customer field is a column of its own; the extra columns are for queries.
    return Customer.model_validate({name: row[name] for name in Customer.model_fields})


def order_from_row(row: Mapping[Any, Any], lines: Sequence[Mapping[Any, Any]]) -> Order:
    fields = {name: row[name] for name in Order.model_fields if name != "lines"}
    fields["lines"] = [{name: line[name] for name in OrderLine.model_fields} for line in lines]
    return Order.model_validate(fields)


def product_from_row(row: Mapping[Any, Any], variants: Sequence[Mapping[Any, Any]]) -> Product:
    fields = {name: row[name] for name in Product.model_fields if name != "variants"}
    fields["variants"] = [{name: v[name] for name in ProductVariant.model_fields} for v in variants]
    return Product.model_validate(fields)
