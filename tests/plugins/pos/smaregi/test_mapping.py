# ruff: noqa: RUF001 (full-width text is what registers write)
"""Smaregi records to omnicrm records: string numbers, returns, cancels, merged members."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from omnicrm import Gender, OrderStatus
from omnicrm.errors import DataError
from omnicrm.plugins.pos.smaregi.mapping import (
    MERGED,
    MERGED_TAG,
    WITHDRAWN,
    customer_from_record,
    order_from_transaction,
    store_names,
)

STORES = store_names(
    [{"storeId": "1", "storeName": "渋谷店"}, {"storeId": "2", "storeName": "梅田店"}]
)


def detail(n: int, division: str = "1", **over: str) -> dict[str, Any]:
    return {
        "transactionDetailId": str(n),
        "transactionDetailDivision": division,
        "productId": "8001",
        "productCode": "TEA-01",
        "productName": "静岡 深蒸し煎茶 50g",
        "price": "1200",
        "salesPrice": "1200",
        "quantity": "2",
        "unitDiscountSum": "0",
        **over,
    }


def transaction(**over: Any) -> dict[str, Any]:
    return {
        "transactionHeadId": "100123",
        "transactionDateTime": "2026-11-03T12:00:05+09:00",
        "transactionHeadDivision": "1",
        "cancelDivision": "0",
        "subtotal": "2400",
        "subtotalDiscountPrice": "0",
        "total": "2300",
        "taxInclude": "177",
        "taxExclude": "0",
        "storeId": "2",
        "terminalId": "1",
        "terminalTranId": "5123",
        "terminalTranDateTime": "2026-11-01T18:42:10+09:00",
        "customerId": "1042",
        "customerCode": "2000001565",
        "newPoint": "23",
        "spendPoint": "100",
        "point": "400",
        "totalPoint": "323",
        "updDateTime": "2026-11-03T12:00:05+09:00",
        "details": [detail(1)],
        **over,
    }


def member(**over: Any) -> dict[str, Any]:
    return {
        "customerId": "1042",
        "customerCode": "2000001565",
        "lastName": "ｼﾐｽﾞ",
        "firstName": "ﾓﾓｺ",
        "lastKana": "シミズ",
        "firstKana": "モモコ",
        "postCode": "１５０－００４１",
        "address": "東京都渋谷区神南１－１２－３",
        "phoneNumber": "03-5456-7801",
        "mobileNumber": None,
        "mailAddress": "momoko@example.jp",
        "mailReceiveFlag": "1",
        "sex": "2",
        "birthDate": "1981-11-14",
        "point": "255",
        "status": "0",
        "insDateTime": "2023-10-19T11:00:00+09:00",
        "updDateTime": "2026-11-21T11:24:10+09:00",
        **over,
    }


def test_a_sale_reads_its_string_numbers_and_the_registers_time() -> None:
    order = order_from_transaction(transaction(), STORES)
    assert order is not None
    assert order.status is OrderStatus.PAID and order.channel == "pos"
    assert order.placed_at == dt.datetime(2026, 11, 1, 9, 42, 10, tzinfo=dt.UTC)
    assert (order.subtotal, order.total, order.tax_total) == (
        Decimal(2400),
        Decimal(2300),
        Decimal(177),
    )
    assert (order.points_earned, order.points_redeemed) == (23, 100)
    assert order.location == "梅田店" and order.customer_id == "1042"
    assert order.name == "1-5123" and order.raw["storeId"] == "2"
    (line,) = order.lines
    assert (line.sku, line.quantity, line.unit_price) == ("TEA-01", 2, Decimal(1200))


def test_a_return_reduces_the_sale_and_is_not_a_line() -> None:
    record = transaction(
        details=[detail(1), detail(2, "2", quantity="1", price="3800", salesPrice="3800")],
        subtotal="-1400",
        total="-1400",
        newPoint="0",
        spendPoint="0",
    )
    order = order_from_transaction(record, STORES)
    assert order is not None and order.status is OrderStatus.PAID
    assert order.total == Decimal(-1400) and [li.sku for li in order.lines] == ["TEA-01"]
    only = order_from_transaction(
        transaction(details=[detail(1, "2")], subtotal="-2400", total="-2400"), STORES
    )
    assert only is not None and only.status is OrderStatus.RETURNED and only.lines == []


def test_a_cancelled_sale_is_not_a_purchase() -> None:
    order = order_from_transaction(
        transaction(cancelDivision="1", updDateTime="2026-11-01T18:50:00+09:00"), STORES
    )
    assert order is not None and order.status is OrderStatus.CANCELLED
    assert order.cancelled_at == order.updated_at


def test_only_sales_are_orders() -> None:
    for division in ("2", "3", "6", "7", "16"):
        assert order_from_transaction(transaction(transactionHeadDivision=division), STORES) is None


def test_a_sale_without_a_member_earns_nothing() -> None:
    order = order_from_transaction(transaction(customerId=None, customerCode=None), STORES)
    assert order is not None and order.customer_id is None and order.points_earned is None


def test_bad_numbers_and_times_name_the_record_and_field() -> None:
    with pytest.raises(DataError, match=r"transaction 100123: total is not a number"):
        order_from_transaction(transaction(total="12OO"), STORES)
    with pytest.raises(DataError, match=r"transaction 100123: quantity is not a whole number"):
        order_from_transaction(transaction(details=[detail(1, quantity="1.5")]), STORES)
    with pytest.raises(DataError, match=r"updDateTime has no time zone"):
        order_from_transaction(transaction(updDateTime="2026-11-03T12:00:05"), STORES)
    with pytest.raises(DataError, match=r"customer 1042: point is not a number"):
        customer_from_record(member(point="x"))


def test_a_member_as_a_customer() -> None:
    customer = customer_from_record(member())
    assert (customer.family_name, customer.given_name) == ("シミズ", "モモコ")  # NFKC
    assert customer.member_code == "2000001565" and customer.points == 255
    assert customer.gender is Gender.FEMALE and customer.birth_date == dt.date(1981, 11, 14)
    assert customer.address is not None
    assert (customer.address.postal_code, customer.address.prefecture) == ("150-0041", "東京都")
    assert customer.address.line1 == "渋谷区神南1-12-3"
    assert customer.phone == "03-5456-7801" and customer.raw["lastName"] == "ｼﾐｽﾞ"
    mobile = customer_from_record(member(mobileNumber="090-1234-5678"))
    assert mobile.phone == "090-1234-5678"  # the personal number first


def test_a_merged_member_carries_the_survivors_code_and_no_balance() -> None:
    customer = customer_from_record(
        member(
            customerId="1700",
            customerCode="3000000048",
            status=MERGED,
            mergedCustomerCode="2000001565",
        )
    )
    assert customer.member_code == "2000001565" and customer.points is None
    assert customer.tags == [MERGED_TAG]
    assert customer.raw["customerCode"] == "3000000048"


def test_a_withdrawn_member_is_marked_withdrawn_on_their_leave_date_with_no_balance() -> None:
    customer = customer_from_record(member(status=WITHDRAWN, leaveDate="2026-11-02"))
    # The leave date is a day in Japan: it starts at 15:00 UTC the day before.
    assert customer.withdrawn_at == dt.datetime(2026, 11, 1, 15, tzinfo=dt.UTC)
    assert customer.points is None and customer.member_code == "2000001565"
    assert customer.tags == []
    undated = customer_from_record(member(status=WITHDRAWN, leaveDate=None))
    assert undated.withdrawn_at == undated.updated_at  # when the record last changed


@pytest.mark.parametrize("status", ["0", "1", "2"])  # in use, suspended, card lost
def test_other_members_are_members_still(status: str) -> None:
    customer = customer_from_record(member(status=status, leaveDate=None))
    assert customer.withdrawn_at is None and customer.points == 255 and customer.tags == []


def test_a_bad_leave_date_names_the_member_and_the_field() -> None:
    with pytest.raises(DataError, match=r"Smaregi customer 1042: leaveDate is not a date"):
        customer_from_record(member(status=WITHDRAWN, leaveDate="2026-13-45"))
