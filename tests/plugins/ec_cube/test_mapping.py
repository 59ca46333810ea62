"""EC-CUBE nodes as omnicrm records: local dates, withdrawn members, product lines only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from omnicrm import Gender, OrderStatus
from omnicrm.errors import DataError
from omnicrm.plugins.ec_cube.api.mapping import customer_from_node, order_from_node


def customer(**changes: Any) -> dict[str, Any]:
    node = {
        "id": "42",
        "name01": "山田",
        "name02": "花子",
        "kana01": "ヤマダ",
        "kana02": "ハナコ",
        "company_name": None,
        "postal_code": "5300001",
        "addr01": "大阪市北区",
        "addr02": "梅田1-1-1",
        "email": "hanako@example.jp",
        "phone_number": "0612345678",
        "birth": "1990-05-12T00:00:00+09:00",
        "point": 1200.0,
        "create_date": "2024-01-05T10:00:00+09:00",
        "update_date": "2026-11-30T08:30:00+09:00",
        "Status": {"id": "2", "name": "本会員"},
        "Sex": {"id": "2", "name": "女性"},
        "Job": {"id": "17", "name": "主婦"},
        "Pref": {"id": "27", "name": "大阪府"},
    }
    return node | changes


def item(
    iid: int, kind: int, price: float, quantity: float = 1, tax: float = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(iid),
        "product_name": extra.get("name", "宇治抹茶"),
        "product_code": "SKU-1",
        "class_category_name1": extra.get("category"),
        "class_category_name2": None,
        "price": price,
        "quantity": quantity,
        "tax": tax,
        "tax_rate": 8.0,
        "OrderItemType": {"id": str(kind), "name": ""},
        "Product": {"id": "1"} if kind == 1 else None,
        "ProductClass": {"id": "3", "code": "SKU-1-A"} if kind == 1 else None,
    }


def order(**changes: Any) -> dict[str, Any]:
    node = {
        "id": "1001",
        "order_no": "1001",
        "subtotal": 4104.0,
        "discount": 800.0,
        "delivery_fee_total": 770.0,
        "charge": 330.0,
        "tax": 374.0,
        "total": 4404.0,
        "payment_total": 4404.0,
        "currency_code": "JPY",
        "create_date": "2026-11-29T23:50:00+09:00",
        "order_date": "2026-11-29T23:55:00+09:00",
        "update_date": "2026-11-30T09:00:00+09:00",
        "add_point": 41.0,
        "use_point": 300.0,
        "Customer": {"id": "42"},
        "OrderStatus": {"id": "5", "name": "発送済み"},
        "OrderItems": [
            item(1, 1, 1800.0, 2, 144.0, category="100g"),
            item(2, 2, 770.0, name="送料"),
            item(3, 3, 330.0, name="手数料"),
            item(4, 4, -500.0, name="割引"),
            item(5, 6, -300.0, name="ポイント"),
        ],
    }
    return node | changes


def test_birth_is_a_japanese_calendar_date() -> None:
    c = customer_from_node(customer())
    assert c.birth_date == dt.date(1990, 5, 12)
    # What a naive conversion to UTC would have made of it: the day before.
    naive = dt.datetime.fromisoformat("1990-05-12T00:00:00+09:00").astimezone(dt.UTC).date()
    assert naive == dt.date(1990, 5, 11) != c.birth_date
    # Without an offset the shop's zone is taken, and given in UTC it is still the 12th.
    assert customer_from_node(customer(birth="1990-05-12T00:00:00")).birth_date == c.birth_date
    assert customer_from_node(customer(birth="1990-05-11T15:00:00Z")).birth_date == c.birth_date


def test_a_customer() -> None:
    c = customer_from_node(customer())
    assert (c.family_name, c.given_name, c.family_name_kana, c.given_name_kana) == (
        "山田",
        "花子",
        "ヤマダ",
        "ハナコ",
    )
    assert c.email == "hanako@example.jp" and c.phone == "0612345678"
    assert c.gender is Gender.FEMALE and c.points == 1200
    assert c.address is not None
    assert (c.address.postal_code, c.address.prefecture, c.address.city, c.address.line1) == (
        "5300001",
        "大阪府",
        "大阪市北区",
        "梅田1-1-1",
    )
    assert c.updated_at == dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
    assert c.withdrawn_at is None and "職業:主婦" in c.tags


def test_a_withdrawn_member_keeps_no_dummy_email() -> None:
    node = customer(Status={"id": "3", "name": "退会"}, email="x" * 60 + "@dummy.dummy")
    c = customer_from_node(node)
    assert c.email is None  # never a match key
    assert c.withdrawn_at == c.updated_at
    assert c.id == "42" and c.raw["email"].endswith("@dummy.dummy")


def test_provisional_members_are_tagged() -> None:
    assert "仮会員" in customer_from_node(customer(Status={"id": "1", "name": "仮会員"})).tags


def test_only_product_lines_become_order_lines() -> None:
    o = order_from_node(order())
    assert o is not None
    (line,) = o.lines
    assert (line.sku, line.product_id, line.variant_id, line.quantity) == ("SKU-1-A", "1", "3", 2)
    assert line.unit_price == Decimal("1944") and line.product_name == "宇治抹茶 (100g)"
    assert (o.subtotal, o.shipping_total, o.discount_total, o.tax_total, o.total) == (
        Decimal("4104"),
        Decimal("770"),
        Decimal("800"),
        Decimal("374"),
        Decimal("4404"),
    )
    assert (o.points_redeemed, o.points_earned) == (300, 41)
    assert o.customer_id == "42" and o.status is OrderStatus.FULFILLED
    assert o.placed_at == dt.datetime(2026, 11, 29, 14, 55, tzinfo=dt.UTC)
    assert o.raw["charge"] == 330.0  # the charge stays on the order's totals


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("1", OrderStatus.PENDING),
        ("3", OrderStatus.CANCELLED),
        ("4", OrderStatus.PAID),
        ("5", OrderStatus.FULFILLED),
        ("6", OrderStatus.PAID),
        ("9", OrderStatus.RETURNED),
    ],
)
def test_order_statuses(status: str, expected: OrderStatus) -> None:
    o = order_from_node(order(OrderStatus={"id": status, "name": ""}))
    assert o is not None and o.status is expected
    assert (o.cancelled_at is not None) == (status == "3")


@pytest.mark.parametrize("status", ["7", "8"])
def test_unfinished_checkouts_are_no_orders(status: str) -> None:
    assert order_from_node(order(OrderStatus={"id": status, "name": ""}, order_date=None)) is None


def test_a_guest_order_has_no_customer() -> None:
    o = order_from_node(order(Customer=None))
    assert o is not None and o.customer_id is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"update_date": "yesterday"}, "update_date"),
        ({"update_date": None}, "update_date"),
        ({"payment_total": "many"}, "payment_total"),
        ({"OrderStatus": {"id": "77", "name": "独自"}}, "OrderStatus"),
        ({"OrderItems": "none"}, "OrderItems"),
    ],
)
def test_bad_nodes_name_the_order_and_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(DataError, match=rf"EC-CUBE order 1001: {named}"):
        order_from_node(order(**changes))
