"""Square orders and customers as omnicrm records: who a sale belongs to, money, states,
refunds and returns, loyalty points, and clear errors on bad payloads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from omnicrm import OrderStatus
from omnicrm.errors import DataError
from omnicrm.plugins.pos.square.mapping import (
    customer_from_square,
    money,
    order_from_square,
    points_of_events,
)

LOCATIONS = {"LSHIBUYA": "渋谷店", "LUMEDA": "梅田店"}


def yen(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "JPY"}


def sale(**changes: Any) -> dict[str, Any]:
    """A register sale of two items, paid by card, with nobody attached."""
    order: dict[str, Any] = {
        "id": "ORDER1",
        "location_id": "LSHIBUYA",
        "source": {"name": "Square Point of Sale"},
        "line_items": [
            {
                "uid": "a",
                "name": "宇治抹茶",
                "variation_name": "200g",
                "quantity": "2",
                "catalog_object_id": "VAR1",
                "base_price_money": yen(2200),
                "gross_sales_money": yen(4400),
                "total_discount_money": yen(400),
                "total_money": yen(4000),
            },
            {
                "uid": "b",
                "name": "紙袋(小)",
                "quantity": "1",
                "base_price_money": yen(20),
                "gross_sales_money": yen(20),
                "total_money": yen(20),
            },
        ],
        "tenders": [{"id": "T1", "type": "CARD", "amount_money": yen(4020), "payment_id": "T1"}],
        "created_at": "2026-11-30T03:15:00.000Z",
        "updated_at": "2026-11-30T03:15:02Z",
        "state": "COMPLETED",
        "total_money": yen(4020),
        "total_tax_money": yen(298),
        "total_discount_money": yen(400),
    }
    order.update(changes)
    return order


def test_a_sale_with_nobody_attached_is_a_store_sale() -> None:
    order = order_from_square(sale(), locations=LOCATIONS)
    assert order.customer_id is None
    assert (order.channel, order.location, order.status) == ("pos", "渋谷店", OrderStatus.FULFILLED)
    assert order.total == Decimal(4020) and order.tax_total == Decimal(298)
    assert order.discount_total == Decimal(400) and order.subtotal == Decimal(4420)
    first = order.lines[0]
    assert (first.product_name, first.quantity, first.unit_price, first.discount) == (
        "宇治抹茶 (200g)",
        2,
        Decimal(2200),
        Decimal(400),
    )
    assert order.placed_at == dt.datetime(2026, 11, 30, 3, 15, tzinfo=dt.UTC)


def test_the_customer_comes_from_the_order_the_tender_or_the_payment() -> None:
    tenders = [{"id": "T1", "type": "CARD", "customer_id": "CUST-T"}]
    assert order_from_square(sale(customer_id="CUST-O", tenders=tenders)).customer_id == "CUST-O"
    assert order_from_square(sale(tenders=tenders)).customer_id == "CUST-T"
    assert order_from_square(sale(), customer_id="CUST-P").customer_id == "CUST-P"
    assert order_from_square(sale(tenders=tenders), customer_id="CUST-P").customer_id == "CUST-T"


def test_money_is_in_the_currencys_smallest_unit() -> None:
    assert money(1200, "JPY") == Decimal(1200)
    assert money(1234, "USD") == Decimal("12.34")
    assert money(1234, "KWD") == Decimal("1.234")
    usd = sale(total_money={"amount": 4020, "currency": "USD"})
    order = order_from_square(usd)
    assert (order.total, order.currency) == (Decimal("40.20"), "USD")


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("COMPLETED", OrderStatus.FULFILLED),
        ("OPEN", OrderStatus.PENDING),
        ("DRAFT", OrderStatus.PENDING),
        ("CANCELED", OrderStatus.CANCELLED),
    ],
)
def test_states(state: str, status: OrderStatus) -> None:
    order = order_from_square(sale(state=state))
    assert order.status is status
    assert (order.cancelled_at is not None) == (status is OrderStatus.CANCELLED)


def test_refunds_make_a_sale_refunded_only_when_whole() -> None:
    refund = {"id": "R1", "location_id": "LSHIBUYA", "reason": "返金", "status": "APPROVED"}
    partial = order_from_square(sale(refunds=[{**refund, "amount_money": yen(2000)}]))
    assert partial.status is OrderStatus.FULFILLED and partial.total == Decimal(4020)
    whole = order_from_square(sale(refunds=[{**refund, "amount_money": yen(4020)}]))
    assert whole.status is OrderStatus.REFUNDED
    pending = order_from_square(
        sale(refunds=[{**refund, "status": "PENDING", "amount_money": yen(4020)}])
    )
    assert pending.status is OrderStatus.FULFILLED


def returns(amount: int) -> list[dict[str, Any]]:
    return [
        {
            "uid": "r",
            "source_order_id": "EARLIER",
            "return_line_items": [
                {
                    "uid": "r1",
                    "name": "ほうじ茶",
                    "quantity": "1",
                    "base_price_money": yen(amount),
                    "gross_return_money": yen(amount),
                    "total_money": yen(amount),
                }
            ],
        }
    ]


def test_a_return_nets_below_zero_and_an_exchange_stays_a_sale() -> None:
    back = order_from_square(
        sale(
            line_items=[],
            tenders=[],
            total_money=yen(0),
            returns=returns(1500),
            net_amounts={"total_money": yen(-1500), "tax_money": yen(-111)},
        )
    )
    assert back.status is OrderStatus.RETURNED
    assert back.total == Decimal(-1500) and back.subtotal == Decimal(-1500)
    assert [line.product_name for line in back.lines] == ["ほうじ茶"]
    exchange = order_from_square(
        sale(returns=returns(1500), net_amounts={"total_money": yen(2520), "tax_money": yen(187)})
    )
    assert exchange.status is OrderStatus.FULFILLED
    assert exchange.total == Decimal(2520) and exchange.subtotal == Decimal(4420 - 1500)


def test_goods_sold_by_weight_are_one_line_at_their_price() -> None:
    weighed = sale(
        line_items=[
            {
                "name": "量り売り 煎茶",
                "quantity": "0.35",
                "base_price_money": yen(12000),
                "gross_sales_money": yen(4200),
            }
        ]
    )
    (line,) = order_from_square(weighed).lines
    assert (line.quantity, line.unit_price) == (1, Decimal(4200))


def test_loyalty_events_give_points_earned_and_redeemed() -> None:
    events = [
        {"type": "ACCUMULATE_POINTS", "accumulate_points": {"points": 40, "order_id": "ORDER1"}},
        {"type": "REDEEM_REWARD", "redeem_reward": {"reward_id": "RW1", "order_id": "ORDER1"}},
    ]
    assert points_of_events(events, {"RW1": 100}) == (40, 100)
    assert points_of_events([], {}) == (None, None)
    order = order_from_square(sale(), points_earned=40, points_redeemed=100)
    assert (order.points_earned, order.points_redeemed) == (40, 100)


def test_customers() -> None:
    customer = customer_from_square(
        {
            "id": "CUST1",
            "created_at": "2024-01-05T01:00:00Z",
            "updated_at": "2026-11-01T10:00:00+09:00",
            "given_name": "花子",
            "family_name": "山田",
            "email_address": "hanako@example.jp",
            "phone_number": "090-1234-5678",
            "birthday": "0000-04-01",
            "reference_id": "2000000011",
            "address": {
                "postal_code": "150-0041",
                "administrative_district_level_1": "東京都",
                "locality": "渋谷区",
                "address_line_1": "神南1-12-3",
                "country": "JP",
            },
            "preferences": {"email_unsubscribed": True},
        },
        points=320,
    )
    assert (customer.family_name, customer.given_name, customer.member_code) == (
        "山田",
        "花子",
        "2000000011",
    )
    assert customer.birth_date is None  # year 0000: Square does not know it
    assert customer.address is not None and customer.address.prefecture == "東京都"
    assert customer.updated_at == dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)
    assert customer.points == 320
    assert [c.state.value for c in customer.consents] == ["opted_out"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"updated_at": "yesterday"}, "updated_at"),
        ({"updated_at": None}, "updated_at"),
        ({"state": "LOST"}, "state"),
        ({"total_money": {"amount": "4020", "currency": "JPY"}}, "total_money.amount"),
        ({"line_items": [{"name": "x", "quantity": "two"}]}, "line_items[0].quantity"),
    ],
)
def test_bad_orders_fail_naming_the_record_and_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as error:
        order_from_square(sale(**changes))
    assert "ORDER1" in str(error.value) and repr(field) in str(error.value)
