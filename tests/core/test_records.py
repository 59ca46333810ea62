"""Records: ids stay strings, datetimes carry a zone and land in UTC, money stays exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from omnicrm import Consent, ConsentState, Customer, Medium, Order, OrderLine

JST = dt.timezone(dt.timedelta(hours=9))


def test_datetimes_are_normalised_to_utc() -> None:
    c = Customer(id="1", updated_at=dt.datetime(2026, 4, 1, 9, 0, tzinfo=JST))
    assert c.updated_at == dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)
    assert c.updated_at.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Customer(id="1", updated_at=dt.datetime(2026, 4, 1, 9, 0))


def test_ids_must_be_strings_not_json_numbers() -> None:
    # 7708015493424 survives, but Shopify's larger ids lose digits as JSON numbers.
    with pytest.raises(ValidationError, match="string"):
        Customer(id=7708015493424, updated_at=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Customer(id="", updated_at=dt.datetime.now(dt.UTC))


def test_money_is_exact_and_currency_is_iso_4217() -> None:
    order = Order(
        id="o1",
        placed_at=dt.datetime.now(dt.UTC),
        updated_at=dt.datetime.now(dt.UTC),
        subtotal="0.10",
        total=Decimal("0.3"),  # type: ignore[arg-type]
        lines=[OrderLine(product_name="緑茶", quantity=3, unit_price="0.10")],  # type: ignore[arg-type]
    )
    assert sum(line.unit_price * line.quantity for line in order.lines) == order.total
    with pytest.raises(ValidationError, match="currency"):
        Order.model_validate({**order.model_dump(), "currency": "yen"})


def test_unknown_fields_are_refused_so_mapping_typos_surface() -> None:
    with pytest.raises(ValidationError, match="emial"):
        Customer.model_validate({"id": "1", "updated_at": dt.datetime.now(dt.UTC), "emial": "x"})


def test_consent_keeps_medium_state_time_and_source() -> None:
    consent = Consent(
        medium=Medium.LINE,
        state=ConsentState.OPTED_IN,
        updated_at=dt.datetime(2026, 1, 1, tzinfo=JST),
        source="pos",
    )
    c = Customer(id="1", updated_at=dt.datetime.now(dt.UTC), consents=[consent])
    assert Customer.model_validate(c.model_dump(mode="json")) == c


def test_money_beyond_four_decimal_places_is_refused_not_rounded() -> None:
    with pytest.raises(ValidationError, match="decimal places"):
        OrderLine(product_name="端数", quantity=1, unit_price=Decimal("0.12345"))
