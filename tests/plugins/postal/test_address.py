# ruff: noqa: RUF001 (full-width digits and dashes are what people type)
"""A recipient from a message: postal codes checked and normalised, nothing guessed."""

from __future__ import annotations

from typing import Any

import pytest

from omnicrm import Medium, Message
from omnicrm.plugins.postal.address import (
    Unaddressable,
    check_encodable,
    given_address,
    postal_code,
    recipient_of,
)
from omnicrm.plugins.postal.settings import DEFAULT_COLUMNS

ADDRESS = {
    "postal_code": "150-0001",
    "prefecture": "東京都",
    "city": "渋谷区",
    "line1": "神宮前1-2-3",
    "line2": "青山ハイツ 101",
}


def message(to: str = "", **metadata: Any) -> Message:
    meta: dict[str, Any] = {
        "shop": "tokyo-tea",
        "campaign": "winter",
        "variant": "A",
        "family_name": "山田",
        "given_name": "花子",
        "postal_address": ADDRESS,
    }
    meta.update(metadata)
    return Message(id="m1", medium=Medium.POSTAL, customer_id="42", to=to, body="", metadata=meta)


@pytest.mark.parametrize(
    "given",
    [
        "150-0001",
        "1500001",
        "〒150-0001",
        "１５０－０００１",
        "〒１５０ー０００１",
        " 150 0001 ",
        "150‐0001",
    ],
)
def test_postal_codes_are_read_as_people_write_them(given: str) -> None:
    assert postal_code(given) == "1500001"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (None, "no postal code"),
        ("  ", "no postal code"),
        ("150-000", "has 6 digits, not 7"),
        ("15000012", "has 8 digits, not 7"),
        ("1500-001", "hyphen is misplaced"),
        ("東京都渋谷区", "characters other than digits"),
        ("ABC-DEFG", "characters other than digits"),
    ],
)
def test_a_bad_postal_code_is_refused_with_the_reason(given: str | None, reason: str) -> None:
    with pytest.raises(Unaddressable, match=reason) as caught:
        postal_code(given)
    if given and given.strip():
        assert given.strip() not in caught.value.reason  # the reason never repeats the value


def test_the_recipient_comes_from_the_stored_address_and_the_name() -> None:
    recipient = recipient_of(message(), "様")
    assert recipient.postal_code == "1500001"
    assert recipient.postal_code_display == "150-0001"
    assert recipient.address == "東京都渋谷区神宮前1-2-3"
    assert recipient.building == "青山ハイツ 101"
    assert recipient.addressed_name == "山田 花子 様"
    assert (recipient.customer_id, recipient.variant, recipient.campaign) == ("42", "A", "winter")
    assert [recipient.column(c) for c in DEFAULT_COLUMNS] == [
        "150-0001",
        "東京都",
        "渋谷区",
        "神宮前1-2-3",
        "青山ハイツ 101",
        "山田 花子 様",
        "42",
        "A",
        "m1",
    ]


def test_without_the_stored_address_the_line_the_sender_writes_is_read() -> None:
    bare = message("〒1500001 東京都 渋谷区 神宮前1-2-3", postal_address=None)
    recipient = recipient_of(bare, "様")
    assert recipient.postal_code == "1500001"
    assert recipient.street == "東京都 渋谷区 神宮前1-2-3"
    assert given_address(bare) == {"postal_code": "1500001", "address": "東京都 渋谷区 神宮前1-2-3"}


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"postal_address": {**ADDRESS, "postal_code": "150-00"}}, "5 digits"),
        ({"postal_address": {**ADDRESS, "postal_code": None}}, "no postal code"),
        (
            {"postal_address": {"postal_code": "1500001", "prefecture": "", "city": None}},
            "no street address",
        ),
        ({"family_name": None, "given_name": ""}, "no name"),
    ],
)
def test_what_cannot_make_a_label_is_unaddressable(metadata: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unaddressable, match=reason):
        recipient_of(message(**metadata), "様")


def test_a_character_cp932_lacks_is_named_by_column_and_code_point() -> None:
    recipient = recipient_of(message(family_name="𠮷田"), "様")
    check_encodable(recipient, "utf-8-sig", DEFAULT_COLUMNS)
    with pytest.raises(Unaddressable, match=r"the name .* cp932 .*U\+20BB7, character 1"):
        check_encodable(recipient, "cp932", DEFAULT_COLUMNS)
    # The NEC and IBM extensions of cp932 hold 髙 and 﨑: those are written.
    check_encodable(recipient_of(message(family_name="髙﨑"), "様"), "cp932", DEFAULT_COLUMNS)
