"""The [identity] settings: defaults, validation, junk values, name requirements."""

from __future__ import annotations

from pathlib import Path

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


def test_member_codes_are_read_per_connection() -> None:
    settings = IdentitySettings.model_validate(
        {
            "member_codes": {"keep_leading_zeros": True},
            "connections": {
                "pos-shibuya": {"member_codes": {"pattern": "S[0-9]{2}-(?P<code>[0-9]+)"}}
            },
            "junk_member_codes": ["M-0000"],
        }
    )
    assert settings.member_code_format("ec").normalize("M-00123") == "00123"
    assert settings.member_code_format("pos-shibuya").normalize("S01-000123") == "123"
    # A junk code is junk however any connection reads it.
    assert {(KeyKind.MEMBER_CODE, "0000"), (KeyKind.MEMBER_CODE, "0")} <= settings.junk()


def test_a_member_code_pattern_needs_a_code_group() -> None:
    with pytest.raises(ValidationError, match="group named 'code'"):
        IdentitySettings.model_validate(
            {"connections": {"pos": {"member_codes": {"pattern": "S[0-9]+"}}}}
        )
    with pytest.raises(ValidationError, match="not a regular expression"):
        IdentitySettings.model_validate({"member_codes": {"pattern": "(?P<code>[0-9]+"}})


def test_member_code_formats_come_from_the_file_and_a_shop_overrides_them(
    tmp_path: Path,
) -> None:
    from omnicrm.app.config import load_config
    from tests.synthetic_plugin import SyntheticSettings

    path = tmp_path / "omnicrm.toml"
    path.write_text(
        """\
[identity.member_codes]
prefixes = ["CARD"]

[shops.tokyo]
[shops.osaka]
[shops.osaka.identity.connections.osaka-pos.member_codes]
pattern = 'S[0-9]{2}-(?P<code>[0-9]+)'

[connections.tokyo-pos]
channel = "synthetic"
shop = "tokyo"
[connections.osaka-pos]
channel = "synthetic"
shop = "osaka"
""",
        encoding="utf-8",
    )
    config = load_config(path, {"synthetic": SyntheticSettings})
    tokyo, osaka = config.shops["tokyo"].identity, config.shops["osaka"].identity
    assert tokyo.member_code_format("tokyo-pos").normalize("CARD-0042") == "42"
    assert tokyo.member_code_format("tokyo-pos").normalize("M-0042") == "M0042"
    assert osaka.member_code_format("osaka-pos").normalize("S07-0042") == "42"
    # The shop's table is merged onto the top level: its other connections read CARD.
    assert osaka.member_code_format("osaka-ec").normalize("CARD0042") == "42"


def test_a_bad_member_code_pattern_names_the_file_and_key(tmp_path: Path) -> None:
    from omnicrm.app.config import load_config
    from omnicrm.errors import ConfigError

    path = tmp_path / "omnicrm.toml"
    path.write_text('[identity.member_codes]\npattern = "S[0-9]+"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    message = str(raised.value)
    assert "omnicrm.toml" in message
    assert "member_codes" in message
    assert "group named 'code'" in message
