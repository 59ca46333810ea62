"""The [identity] settings: defaults, validation, junk values, name requirements."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from omnicrm.crm.identity.normalize import NameMatch
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind, MatchRule, NameRequirement


def test_defaults() -> None:
    settings = IdentitySettings()
    assert settings.region == "JP"
    assert [(r.name, r.keys, r.names) for r in settings.rules] == [
        ("member_code", (KeyKind.MEMBER_CODE,), NameRequirement.NOT_CONFLICT),
        ("email", (KeyKind.EMAIL,), NameRequirement.NOT_CONFLICT),
        ("phone", (KeyKind.PHONE,), NameRequirement.AGREE),
        ("phone_corroborated", (KeyKind.PHONE,), NameRequirement.NOT_CONFLICT),
    ]
    assert settings.max_key_group == 10
    assert settings.household_keys == (KeyKind.EMAIL, KeyKind.PHONE)


def test_settings_read_from_toml_shaped_data() -> None:
    settings = IdentitySettings.model_validate(
        {
            "region": "us",
            "max_key_group": 4,
            "rules": [{"name": "email_and_phone", "keys": ["phone", "email"], "names": "exact"}],
            "junk_emails": ["None@Example.com"],
        }
    )
    assert settings.region == "US"
    (rule,) = settings.rules
    assert rule.keys == (KeyKind.EMAIL, KeyKind.PHONE)
    assert (KeyKind.EMAIL, "none@example.com") in settings.junk()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"regoin": "JP"}, "Extra inputs are not permitted"),
        ({"max_key_group": 1}, "greater than or equal to 2"),
        ({"rules": [{"name": "x", "keys": ["fax"]}]}, "keys"),
        ({"rules": [{"name": "x", "keys": []}]}, "at least 1"),
        ({"rules": [{"name": "x", "keys": ["email", "email"]}]}, "listed twice"),
        ({"rules": [{"name": "x", "keys": ["email"], "names": "maybe"}]}, "names"),
        (
            {"rules": [{"name": "x", "keys": ["email"]}, {"name": "x", "keys": ["phone"]}]},
            "duplicate rule name x",
        ),
    ],
)
def test_bad_settings_are_refused_saying_where(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IdentitySettings.model_validate(data)


def test_junk_values_are_normalised_as_keys_are() -> None:
    full_width = "０３－１２３４－５６７８"  # noqa: RUF001
    junk = IdentitySettings(junk_phones=[full_width], junk_member_codes=["guest-0"]).junk()
    assert junk == {
        (KeyKind.PHONE, "+81312345678"),
        (KeyKind.MEMBER_CODE, "GUEST0"),
        *((KeyKind.EMAIL, e) for e in IdentitySettings().junk_emails),
    }


@pytest.mark.parametrize(
    ("requirement", "allowed"),
    [
        (NameRequirement.EXACT, {NameMatch.AGREE}),
        (NameRequirement.AGREE, {NameMatch.AGREE, NameMatch.CLOSE}),
        (NameRequirement.NOT_CONFLICT, {NameMatch.AGREE, NameMatch.CLOSE, NameMatch.UNKNOWN}),
    ],
)
def test_name_requirements(requirement: NameRequirement, allowed: set[NameMatch]) -> None:
    assert {v for v in NameMatch if requirement.allows(v)} == allowed


def test_a_rule_is_frozen() -> None:
    rule = MatchRule(name="email", keys=["email"])
    with pytest.raises(ValidationError):
        rule.name = "other"  # type: ignore[misc]
