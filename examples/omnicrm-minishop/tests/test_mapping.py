"""MiniShop JSON -> omnicrm records: all the sandbox makes, and hand-written edge cases."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from omnicrm_minishop.mapping import customer_from_minishop, order_from_minishop
from omnicrm_minishop.sandbox import MiniShopServer

from omnicrm import ConsentState, Gender, Medium, OrderStatus
from omnicrm.errors import DataError

CUSTOMER: dict[str, Any] = {
    "id": "c_000042",
    "last_name": "山田",
    "first_name": "花子",
    "last_name_kana": "ヤマダ",
    "first_name_kana": "ハナコ",
    "email": "hanako.yamada@example.jp",
    "tel": "090-1234-5678",
    "birthday": "1988-04-01",
    "sex": "female",
    "zip": "150-0041",
    "pref": "東京都",
    "addr1": "渋谷区神南",
    "addr2": "1-2-3 神南コーポ 201号室",
    "company_name": "",
    "member_no": "2900000000421",
    "mail_magazine": True,
    "mail_magazine_updated_at": "2024-03-01T10:00:00+09:00",
    "tags": ["VIP"],
    "created_at": "2023-01-15T09:30:00+09:00",
    "updated_at": "2024-03-01T10:00:00+09:00",
}

ORDER: dict[str, Any] = {
    "id": "o_0000007",
    "order_no": 100007,
    "customer_id": "c_000042",
    "status": "shipped",
    "payment_method": "konbini",
    "ordered_at": "2024-03-02T21:15:00+09:00",
    "cancelled_at": None,
    "updated_at": "2024-03-04T11:00:00+09:00",
    "payment_total": 5330,
    "subtotal": 5170,
    "discount": 500,
    "delivery_fee": 660,
    "tax": 484,
    "currency": "JPY",
    "items": [
        {
            "product_code": "MS-0001",
            "product_id": "p_00001",
            "product_name": "有機ほうじ茶 ティーバッグ",
            "price": 1080,
            "quantity": 2,
            "discount": 0,
        },
        {
            "product_code": "MS-0010",
            "product_id": "p_00010",
            "product_name": "注染手ぬぐい",
            "price": 1650,
            "quantity": 2,
            "discount": 290,
        },
    ],
}


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(base), **changes}


# ----------------------------------------------------------------- what the sandbox makes


def test_every_sandbox_customer_maps(shop: MiniShopServer) -> None:
    for payload in shop.records("customers"):
        customer = customer_from_minishop(payload)
        assert customer.id == payload["id"]
        assert customer.raw == payload
        assert customer.updated_at == dt.datetime.fromisoformat(payload["updated_at"])
        assert customer.updated_at.tzinfo == dt.UTC
        assert customer.phone == payload["tel"]
        assert customer.family_name_kana == (payload["last_name_kana"] or None)
        [consent] = customer.consents
        assert consent.medium is Medium.EMAIL and consent.source == "minishop"
        expected = ConsentState.OPTED_IN if payload["mail_magazine"] else ConsentState.OPTED_OUT
        assert consent.state is expected


def test_every_sandbox_order_maps_and_adds_up(shop: MiniShopServer) -> None:
    for payload in shop.records("orders"):
        order = order_from_minishop(payload)
        assert order.id == payload["id"]
        assert order.name == str(payload["order_no"])
        assert order.raw == payload
        assert order.currency == "JPY"
        assert len(order.lines) == len(payload["items"])
        line_total = sum(line.unit_price * line.quantity - line.discount for line in order.lines)
        assert order.subtotal == line_total
        assert order.total == order.subtotal - order.discount_total + order.shipping_total
        assert all(isinstance(v, Decimal) for v in (order.total, order.tax_total))


# ----------------------------------------------------------------- hand-written cases


def test_customer_fields() -> None:
    customer = customer_from_minishop(CUSTOMER)
    assert (customer.family_name, customer.given_name) == ("山田", "花子")
    assert (customer.family_name_kana, customer.given_name_kana) == ("ヤマダ", "ハナコ")
    assert customer.gender is Gender.FEMALE
    assert customer.birth_date == dt.date(1988, 4, 1)
    assert customer.member_code == "2900000000421"
    assert customer.company is None  # "" means not given
    assert customer.address is not None
    assert customer.address.postal_code == "150-0041"
    assert customer.address.prefecture == "東京都"
    assert customer.address.line1 == "渋谷区神南"
    assert customer.created_at == dt.datetime(2023, 1, 15, 0, 30, tzinfo=dt.UTC)
    assert customer.consents[0].updated_at == dt.datetime(2024, 3, 1, 1, 0, tzinfo=dt.UTC)


def test_customer_with_nulls_and_blanks() -> None:
    payload = {
        "id": "c_000043",
        "last_name": "佐藤",
        "first_name": "",
        "last_name_kana": None,
        "first_name_kana": "",
        "email": None,
        "tel": None,
        "birthday": None,
        "sex": None,
        "zip": "",
        "pref": "",
        "addr1": "",
        "addr2": "",
        "company_name": None,
        "member_no": None,
        "mail_magazine": None,
        "mail_magazine_updated_at": None,
        "tags": None,
        "created_at": None,
        "updated_at": "2024-03-01T10:00:00+09:00",
    }
    customer = customer_from_minishop(payload)
    assert customer.given_name is None and customer.family_name_kana is None
    assert customer.email is None and customer.phone is None and customer.birth_date is None
    assert customer.gender is Gender.UNKNOWN
    assert customer.address is None
    assert customer.consents == []  # MiniShop does not know: claim nothing
    assert customer.tags == []
    assert customer.created_at is None


def test_opt_out_is_a_consent_too() -> None:
    customer = customer_from_minishop(with_changes(CUSTOMER, mail_magazine=False))
    assert customer.consents[0].state is ConsentState.OPTED_OUT


# Full-width digits, as typed on a Japanese IME: the mapping must not "fix" them.
FULL_WIDTH_TELS = ["０９０－１２３４－５６７８", "０９０１２３４５６７８"]  # noqa: RUF001


@pytest.mark.parametrize("tel", [*FULL_WIDTH_TELS, "09012345678"])
def test_phone_is_kept_as_given(tel: str) -> None:
    assert customer_from_minishop(with_changes(CUSTOMER, tel=tel)).phone == tel


def test_member_no_sent_as_a_number_becomes_a_string() -> None:
    assert customer_from_minishop(with_changes(CUSTOMER, member_no=1234)).member_code == "1234"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"birthday": "1990-02-30"}, "'birthday'"),
        ({"birthday": 19900201}, "'birthday'"),
        ({"updated_at": "2024-03-01T10:00:00"}, "'updated_at'"),  # no offset
        ({"updated_at": None}, "'updated_at'"),
        ({"created_at": "yesterday"}, "'created_at'"),
        ({"sex": "M"}, "'sex'"),
        ({"mail_magazine": "yes"}, "'mail_magazine'"),
        ({"tags": "VIP"}, "'tags'"),
        ({"email": 42}, "'email'"),
    ],
)
def test_bad_customer_field_names_record_and_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        customer_from_minishop(with_changes(CUSTOMER, **changes))
    assert "customer c_000042" in str(caught.value)
    assert field in str(caught.value)


def test_customer_without_id_says_so() -> None:
    with pytest.raises(DataError, match=r"\(no id\).*'id'"):
        customer_from_minishop(with_changes(CUSTOMER, id=""))


def test_order_fields() -> None:
    order = order_from_minishop(ORDER)
    assert order.name == "100007"
    assert order.status is OrderStatus.FULFILLED
    assert order.placed_at == dt.datetime(2024, 3, 2, 12, 15, tzinfo=dt.UTC)
    amounts = (order.subtotal, order.discount_total, order.shipping_total, order.tax_total)
    assert amounts == (Decimal(5170), Decimal(500), Decimal(660), Decimal(484))
    assert order.total == Decimal(5330)
    first, second = order.lines
    assert (first.sku, first.product_id, first.quantity) == ("MS-0001", "p_00001", 2)
    assert (second.unit_price, second.discount) == (Decimal(1650), Decimal(290))


@pytest.mark.parametrize(
    ("minishop", "omnicrm"),
    [
        ("new", OrderStatus.PENDING),
        ("paid", OrderStatus.PAID),
        ("shipped", OrderStatus.FULFILLED),
        ("cancelled", OrderStatus.CANCELLED),
        ("returned", OrderStatus.REFUNDED),
    ],
)
def test_order_statuses(minishop: str, omnicrm: OrderStatus) -> None:
    assert order_from_minishop(with_changes(ORDER, status=minishop)).status is omnicrm


def test_guest_order_and_cancellation() -> None:
    order = order_from_minishop(
        with_changes(
            ORDER,
            customer_id=None,
            status="cancelled",
            cancelled_at="2024-03-03T08:00:00+09:00",
            items=[],
        )
    )
    assert order.customer_id is None
    assert order.cancelled_at == dt.datetime(2024, 3, 2, 23, 0, tzinfo=dt.UTC)
    assert order.lines == []


def bad_item(**changes: Any) -> dict[str, Any]:
    items = copy.deepcopy(ORDER["items"])
    items[1].update(changes)
    return {"items": items}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "shipping"}, "'status'"),
        ({"payment_total": "5330"}, "'payment_total'"),  # a string is not whole yen
        ({"subtotal": 5170.5}, "'subtotal'"),
        ({"discount": True}, "'discount'"),
        ({"ordered_at": None}, "'ordered_at'"),
        ({"items": {"0": {}}}, "'items'"),
        (bad_item(price="1650"), "'items[1].price'"),
        (bad_item(quantity=-1), "'items[1].quantity'"),
        (bad_item(product_name=""), "'items[1].product_name'"),
        ({"currency": "yen"}, "Order.currency"),  # caught by omnicrm's own model
    ],
)
def test_bad_order_field_names_record_and_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        order_from_minishop(with_changes(ORDER, **changes))
    assert "order o_0000007" in str(caught.value)
    assert field in str(caught.value)
