"""Records are made storable once, for every channel: their limits are the store's."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import String, Table

from omnicrm.core.records import (
    Address,
    Customer,
    Order,
    OrderLine,
    _plainly_storable,
    _storable,
)
from omnicrm.core.store.schema import customers, order_lines, orders
from omnicrm.crm.schema import profile_values

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def base(model: type[BaseModel]) -> dict[str, Any]:
    if model is Customer:
        return {"id": "C1", "updated_at": NOW}
    if model is Address:
        return {}
    if model is OrderLine:
        return {"product_name": "茶", "quantity": 1, "unit_price": Decimal(1)}
    return {"id": "O1", "placed_at": NOW, "updated_at": NOW, "subtotal": 1, "total": 1}


def limited_columns() -> list[tuple[type[BaseModel], str, int]]:
    """Every record field kept in a column of bounded length, with that length."""
    found = []
    pairs: list[tuple[type[BaseModel], Table]] = [
        (Customer, customers),
        (Address, customers),  # postal code and prefecture have columns of their own
        (Order, orders),
        (OrderLine, order_lines),
    ]
    for model, table in pairs:
        for name, info in model.model_fields.items():
            column = table.c.get(name)
            if column is None or not isinstance(column.type, String) or not column.type.length:
                continue
            if name == "connection" or isinstance(info.annotation, type(enum.Enum)):
                continue  # set by the engine / an enum of short words
            if name == "line_user_id":
                continue  # a fixed format: test_a_line_user_id_fits_its_column
            found.append((model, name, column.type.length))
    # Each tag is a value of the profile's segment attributes.
    found.append((Customer, "tags", profile_values.c.value.type.length))
    return found


@pytest.mark.parametrize(("model", "name", "length"), limited_columns())
def test_record_limits_agree_with_the_columns(
    model: type[BaseModel], name: str, length: int
) -> None:
    def make(value: str) -> Any:
        record = model.model_validate({**base(model), name: [value] if name == "tags" else value})
        got = getattr(record, name)
        return got[0] if name == "tags" else got

    fits = ("A" if name == "currency" else "a") * length
    assert make(fits) == fits
    try:
        longer = make(fits + "a")
    except ValidationError:
        return  # refused at the mapping (an id, the currency), never by the store
    assert longer is None or len(longer) <= length


def test_a_line_user_id_fits_its_column() -> None:
    user = "U" + "0123456789abcdef" * 2
    assert Customer.model_validate({**base(Customer), "line_user_id": user}).line_user_id == user
    length = customers.c.line_user_id.type.length
    assert length is not None and len(user) <= length
    with pytest.raises(ValidationError, match="line_user_id"):
        Customer.model_validate({**base(Customer), "line_user_id": user + "0"})


def test_the_changes_are_noted_by_field_never_by_value() -> None:
    c = Customer(
        id="C1",
        family_name="山\x00田\t",
        given_name="x" * 300,
        email="taro\n@example.jp",
        phone="0" * 65,
        tags=["vip\x07"],
        address={"line1": "1-2-3\r\n渋谷", "postal_code": "150-0002"},
        raw={"note\x00": ["a\x00b", float("inf"), "\ud800"]},
        updated_at=NOW,
    )
    assert (c.family_name, c.given_name, c.email, c.phone) == ("山田", "x" * 255, None, None)
    assert c.tags == ["vip"]
    assert c.address is not None and c.address.line1 == "1-2-3 渋谷"
    assert c.raw == {"note": ["ab", None, "\ufffd"]}
    notes = "\n".join(c.normalised)
    for field in ("family_name", "given_name", "email", "phone", "tags", "address.line1", "raw"):
        assert f"{field}:" in notes
    assert "taro" not in notes and "山" not in notes
    # The notes are not part of the record: read back from a store, it is equal.
    assert Customer.model_validate(c.model_dump()) == c


def test_a_clean_record_has_no_notes_and_an_order_notes_its_lines() -> None:
    assert Customer(id="C1", family_name="山田", updated_at=NOW).normalised == ()
    o = Order.model_validate(
        {**base(Order), "lines": [base(OrderLine), {**base(OrderLine), "sku": "S\x00"}]}
    )
    assert o.normalised == ("lines[1].sku: dropped: it holds control characters",)


def test_ids_are_never_changed_only_refused() -> None:
    for bad in ("C\x001", "C" * 256, ""):
        with pytest.raises(ValidationError) as info:
            Customer(id=bad, updated_at=NOW)
        assert "C\x001" not in str(info.value.errors(include_input=False))


_payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | st.text(alphabet=st.characters(codec=None, exclude_categories=())),  # NUL, surrogates
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=5), _payloads, max_size=5))
@settings(max_examples=400, deadline=None)
def test_the_quick_check_never_passes_a_payload_the_walk_would_change(
    payload: dict[str, Any],
) -> None:
    changed = [False]
    _storable(payload, changed)
    if _plainly_storable(payload):
        assert not changed[0], payload


def test_the_quick_check_passes_clean_japanese_payloads() -> None:
    clean = {"name": "山田 花子", "lines": [{"sku": "TEA-01", "price": 1080.0, "tags": ["抹茶"]}]}
    assert _plainly_storable(clean)
    assert not _plainly_storable({"name": "山田\x00"})
    assert not _plainly_storable({"total": float("inf")})
