"""A postal recipient from a message: the postal code checked, the name, the label's parts.

A campaign's sender gives the address as stored (``metadata["postal_address"]``: postal
code, prefecture, city, line1, line2) and the name (``family_name``, ``given_name``);
without the structured address, ``message.to`` is read in the form the sender writes it
(``〒1500001 東京都 渋谷区 ...``). Whatever cannot make a label is :class:`Unaddressable`,
with a reason that names the field and never repeats its value (the reason is kept in
the outbox and shown in reports).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jaconv

from omnicrm import Message

# What people type for the hyphen of 150-0001: hyphens, dashes, the minus sign, the
# katakana long vowel mark and their full- and half-width forms.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\uff70"
_CODE = re.compile(r"(\d{3})-?(\d{4})")
_TO = re.compile(r"\s*〒?\s*(\S+)\s*(.*)", re.DOTALL)


class Unaddressable(ValueError):
    """A message that cannot become a label; ``reason`` says why, naming the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def postal_code(text: str | None) -> str:
    """``text`` as a 7-digit postal code (``1500001``), from full-width digits, with or
    without 〒 and a hyphen; :class:`Unaddressable` saying what is wrong otherwise."""
    if text is None or not text.strip():
        raise Unaddressable("no postal code")
    plain = jaconv.z2h(text.strip(), kana=False, ascii=True, digit=True)
    plain = plain.removeprefix("〒").strip()
    for dash in _DASHES:
        plain = plain.replace(dash, "-")
    plain = plain.replace(" ", "")
    found = _CODE.fullmatch(plain) if plain.isascii() else None
    if found is not None:
        return found.group(1) + found.group(2)
    digits = plain.replace("-", "")
    if not (digits.isascii() and digits.isdigit()):
        raise Unaddressable("the postal code has characters other than digits (NNN-NNNN)")
    if len(digits) != 7:
        raise Unaddressable(f"the postal code has {len(digits)} digits, not 7 (NNN-NNNN)")
    raise Unaddressable("the postal code's hyphen is misplaced (NNN-NNNN)")


def _text(value: object) -> str:
    """A stored value as one line of a label: NFC, whitespace runs made one space."""
    if value is None:
        return ""
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


@dataclass(frozen=True)
class Recipient:
    """One label's worth: who, where, and which message it was."""

    message_id: str
    customer_id: str
    campaign: str
    variant: str
    postal_code: str  # 7 digits
    prefecture: str
    city: str
    street: str
    building: str
    family_name: str
    given_name: str
    honorific: str

    @property
    def postal_code_display(self) -> str:
        """``150-0001``."""
        return f"{self.postal_code[:3]}-{self.postal_code[3:]}"

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.family_name, self.given_name) if p)

    @property
    def addressed_name(self) -> str:
        """The name with the honorific: ``山田 花子 様``."""
        return f"{self.name} {self.honorific}".strip()

    @property
    def address(self) -> str:
        """Prefecture, city and street as one line, in Japanese order."""
        return "".join(p for p in (self.prefecture, self.city, self.street) if p)

    def column(self, key: str) -> str:
        """The value of the recipient CSV's column ``key`` (see settings.HEADERS)."""
        computed = {
            "postal_code": self.postal_code_display,
            "street": self.street,
            "building": self.building,
            "address": self.address,
            "name": self.addressed_name,
        }
        if key in computed:
            return computed[key]
        value = getattr(self, key)
        assert isinstance(value, str), key
        return value

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipient:
        return cls(**{k: str(data.get(k) or "") for k in cls.__dataclass_fields__})


def given_address(message: Message) -> dict[str, str]:
    """What the message says of the address, as given (for the unaddressable list)."""
    stored = message.metadata.get("postal_address")
    if isinstance(stored, Mapping):
        parts = [_text(stored.get(k)) for k in ("prefecture", "city", "line1", "line2")]
        return {
            "postal_code": _text(stored.get("postal_code")),
            "address": " ".join(p for p in parts if p),
        }
    found = _TO.fullmatch(message.to)
    if found is None:
        return {"postal_code": "", "address": ""}
    return {"postal_code": _text(found.group(1)), "address": _text(found.group(2))}


def recipient_of(message: Message, honorific: str) -> Recipient:
    """The recipient ``message`` is for; :class:`Unaddressable` when no label can be made."""
    meta = message.metadata
    stored = meta.get("postal_address")
    if isinstance(stored, Mapping):
        code = postal_code(_text(stored.get("postal_code")) or None)
        prefecture = _text(stored.get("prefecture"))
        city = _text(stored.get("city"))
        street = _text(stored.get("line1"))
        building = _text(stored.get("line2"))
    else:
        found = _TO.fullmatch(message.to)
        if found is None:
            raise Unaddressable("no address")
        code = postal_code(found.group(1))
        prefecture = city = building = ""
        street = _text(found.group(2))
    if not (prefecture or city or street):
        raise Unaddressable("no street address besides the postal code")
    family, given = _text(meta.get("family_name")), _text(meta.get("given_name"))
    if not (family or given):
        raise Unaddressable("no name to address the label to")
    return Recipient(
        message_id=message.id,
        customer_id=message.customer_id,
        campaign=_text(meta.get("campaign")),
        variant=_text(meta.get("variant")),
        postal_code=code,
        prefecture=prefecture,
        city=city,
        street=street,
        building=building,
        family_name=family,
        given_name=given,
        honorific=honorific,
    )


def check_encodable(recipient: Recipient, encoding: str, columns: tuple[str, ...]) -> None:
    """:class:`Unaddressable` if a column of the recipient cannot be written in
    ``encoding`` (cp932 lacks many rare kanji and every emoji): it names the column and
    the character's code point, never the value."""
    for column in columns:
        value = recipient.column(column)
        try:
            value.encode(encoding)
        except UnicodeEncodeError as exc:
            char = value[exc.start]
            raise Unaddressable(
                f"the {column} has a character {encoding} cannot write "
                f"(U+{ord(char):04X}, character {exc.start + 1}); correct the record or "
                "set encoding = 'utf-8-sig'"
            ) from None
