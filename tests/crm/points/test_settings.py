"""The ``[points]`` section."""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import ValidationError

from omnicrm.crm.points import EarnBase, PointsSettings, ReconcileAgainst, Rounding


def test_defaults() -> None:
    settings = PointsSettings()
    assert (settings.earn_points, settings.earn_per) == (1, 100)
    assert settings.base is EarnBase.TOTAL_EXCL_SHIPPING
    assert settings.rounding is Rounding.DOWN
    assert settings.expiry_months == 12
    assert settings.masters == [] and settings.channel_multipliers == {}
    assert settings.reconcile_against is ReconcileAgainst.MEMBER
    assert settings.rate("any", "web") == Fraction(1, 100)


def test_a_toml_section() -> None:
    section = tomllib.loads(
        """
        earn_points = 5
        earn_per = 1000
        base = "total"
        rounding = "nearest"
        channel_multipliers = { pos = 2 }
        connection_multipliers = { tokyo-ec = 1.5 }
        masters = ["tokyo-pos"]
        start = 2025-04-01T00:00:00+09:00
        delay_days = 14
        expiry_months = 24
        reconcile_against = "wallet"
        """
    )
    settings = PointsSettings.model_validate(section)
    assert settings.channel_multipliers == {"pos": Decimal(2)}
    assert settings.rate("tokyo-ec", "pos") == Fraction(5, 1000) * 2 * Fraction(3, 2)
    assert settings.rate("tokyo-ec", "web") == Fraction(3, 400)
    assert settings.start == dt.datetime(2025, 3, 31, 15, 0, tzinfo=dt.UTC)
    assert settings.reconcile_against is ReconcileAgainst.WALLET


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"earn_rate": 1}, "earn_rate"),  # unknown key
        ({"earn_per": 0}, "earn_per"),
        ({"rounding": "bankers"}, "rounding"),
        ({"base": "subtotal"}, "base"),
        ({"channel_multipliers": {"pos": -1}}, "channel_multipliers.pos"),
        ({"channel_multipliers": {"pos": "1.005"}}, "channel_multipliers.pos"),
        ({"expiry_months": 0}, "expiry_months"),
        ({"currency": "yen"}, "currency"),
        ({"start": "2025-04-01T00:00:00"}, "start"),  # no offset: ambiguous
    ],
)
def test_bad_values_are_refused_naming_the_key(section: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PointsSettings.model_validate(section)
    assert [".".join(map(str, e["loc"])) for e in caught.value.errors()] == [field]
