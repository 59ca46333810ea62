"""The ``[identity]`` section of omnicrm.toml: which evidence makes two records one person.

::

    [identity]
    region = "JP"              # phone numbers without a country code are read as this
    max_key_group = 10         # a key held by more records than this is nobody's key
    junk_emails = ["none@example.com"]
    junk_phones = ["03-0000-0000"]

    [[identity.rules]]         # strongest first; the first rule a pair meets is its reason
    name = "member_code"
    keys = ["member_code"]
    names = "not_conflict"     # or "agree" (one typo allowed), "exact"
    same_birth_date = false    # true: both records must carry the same birth date

    [identity.member_codes]    # how member codes are read (M-00123 = No.123 = 123)
    prefixes = ["会員番号", "会員NO", "会員", "MEMBER", "NO", "M"]
    keep_leading_zeros = false

    [identity.connections.pos-shibuya.member_codes]   # one POS writes its own way
    pattern = '^S[0-9]{2}-(?P<code>[0-9]+)$'          # S01-000123: store 01, card 123

Birth dates that differ (and a known female against a known male) always keep two
records apart; only an operator's ``omnicrm customers link`` joins them anyway.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnicrm.crm.identity.normalize import (
    DEFAULT_CODE_PREFIXES,
    NameMatch,
    normalize_email,
    normalize_member_code,
    normalize_phone,
)


class KeyKind(StrEnum):
    """A deterministic match key of a source customer."""

    EMAIL = "email"
    PHONE = "phone"
    MEMBER_CODE = "member_code"


class NameRequirement(StrEnum):
    """What the names of two records must be for a rule to join them."""

    EXACT = "exact"  # the same full name (in kanji, kana or romaji), no typo
    AGREE = "agree"  # the same full name, or one typo apart (NameMatch.CLOSE)
    NOT_CONFLICT = "not_conflict"  # anything but two different names (one may be missing)

    def allows(self, verdict: NameMatch) -> bool:
        """Whether names compared as ``verdict`` meet this requirement."""
        if verdict is NameMatch.CONFLICT:
            return False
        if self is NameRequirement.EXACT:
            return verdict is NameMatch.AGREE
        if self is NameRequirement.AGREE:
            return verdict in (NameMatch.AGREE, NameMatch.CLOSE)
        return True


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchRule(_Model):
    """Two records are one person when they share every key in ``keys`` and their
    names are as ``names`` says."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    keys: Annotated[tuple[KeyKind, ...], Field(min_length=1)]
    names: NameRequirement = NameRequirement.NOT_CONFLICT
    same_birth_date: bool = Field(
        default=False, description="Both records must carry the same birth date, too."
    )

    @field_validator("keys")
    @classmethod
    def _distinct_keys(cls, keys: tuple[KeyKind, ...]) -> tuple[KeyKind, ...]:
        if len(set(keys)) != len(keys):
            raise ValueError("a key is listed twice")
        return tuple(sorted(keys))


def _default_rules() -> tuple[MatchRule, ...]:
    return (
        # A member card is issued to one person: the strongest evidence there is.
        MatchRule(name="member_code", keys=(KeyKind.MEMBER_CODE,), names="not_conflict"),
        # An email is personal, except a family's shared one: different names refuse it.
        MatchRule(name="email", keys=(KeyKind.EMAIL,), names="not_conflict"),
        # A phone is often a household's landline: the names must say it is this person,
        MatchRule(name="phone", keys=(KeyKind.PHONE,), names="agree"),
        # or, where names cannot be compared (kana against kanji), what household_keys
        # asks for: the same birth date, or a mobile number no one else is seen with.
        MatchRule(name="phone_corroborated", keys=(KeyKind.PHONE,), names="not_conflict"),
    )


class MemberCodeFormat(_Model):
    """How one connection writes member codes; every spelling of a card gives one key."""

    prefixes: tuple[str, ...] = Field(
        default=DEFAULT_CODE_PREFIXES,
        description="Written before a numeric code and dropped (M-00123, No.123, 会員123).",
    )
    keep_leading_zeros: bool = Field(
        default=False, description="false: 00123 and 123 are one card."
    )
    pattern: str | None = Field(
        default=None,
        max_length=500,
        description="A regular expression with a group 'code': a code it matches (upper "
        "case, after NFKC) is read as that group.",
    )

    @field_validator("pattern")
    @classmethod
    def _code_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if "code" not in compiled.groupindex:
            raise ValueError("the pattern needs a group named 'code': (?P<code>...)")
        return pattern

    def normalize(self, value: str | None) -> str | None:
        """``value`` as a member-code key (see :func:`normalize_member_code`)."""
        return normalize_member_code(
            value,
            prefixes=self.prefixes,
            keep_leading_zeros=self.keep_leading_zeros,
            pattern=None if self.pattern is None else _compiled(self.pattern),
        )


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class ConnectionIdentity(_Model):
    """What one connection's records need read their own way."""

    member_codes: MemberCodeFormat = Field(default_factory=MemberCodeFormat)


class IdentitySettings(_Model):
    """How source customers are resolved into profiles (the ``[identity]`` section)."""

    region: Annotated[str, Field(min_length=2, max_length=2)] = Field(
        default="JP",
        description="ISO 3166 region a phone number without a country code belongs to.",
    )
    rules: tuple[MatchRule, ...] = Field(
        default_factory=_default_rules,
        description="Match rules, strongest first; the first a pair meets is its reason.",
    )
    max_key_group: int = Field(
        default=10,
        ge=2,
        description="A key value held by more source customers than this (a shop's "
        "placeholder phone, a family's shared email used by many) is ignored.",
    )
    junk_emails: tuple[str, ...] = Field(
        default=(
            "none@none.com",
            "noemail@example.com",
            "no-reply@example.com",
            "test@test.com",
            "test@example.com",
            "dummy@example.com",
        ),
        description="Emails that identify nobody (placeholders typed at a register).",
    )
    junk_phones: tuple[str, ...] = Field(
        default=("0000000000", "00000000000", "0120000000", "0312345678", "09000000000"),
        description="Phones that identify nobody, in any format normalize_phone reads.",
    )
    junk_member_codes: tuple[str, ...] = Field(
        default=(),
        description="Member codes that identify nobody (a register's guest card).",
    )
    member_codes: MemberCodeFormat = Field(
        default_factory=MemberCodeFormat,
        description="How member codes are read, for every connection not listed in connections.",
    )
    connections: dict[str, ConnectionIdentity] = Field(
        default_factory=dict,
        description="Per connection (by name): how its member codes are read.",
    )
    household_keys: tuple[KeyKind, ...] = Field(
        default=(KeyKind.EMAIL, KeyKind.PHONE),
        description="Keys a household may share. Through them, two records whose names "
        "cannot be compared (one has none, or only a family name, or kana only against "
        "kanji only) are joined only if their birth dates are known and equal, or they "
        "also share a personal key (a member code, a mobile number).",
    )
    personal_mobiles: bool = Field(
        default=True,
        description="A mobile number is one person's: shared by two records (and seen "
        "with no other person), it vouches for a household key where names cannot be "
        "compared, as a birth date does. A landline never does.",
    )
    gender_blocks: bool = Field(
        default=True,
        description="A record known to be female and one known to be male are never joined.",
    )

    @field_validator("region")
    @classmethod
    def _upper_region(cls, region: str) -> str:
        return region.upper()

    @model_validator(mode="after")
    def _unique_rule_names(self) -> IdentitySettings:
        names = [rule.name for rule in self.rules]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"rules: duplicate rule name {', '.join(duplicated)}")
        return self

    def member_code_format(self, connection: str) -> MemberCodeFormat:
        """How ``connection`` writes member codes."""
        own = self.connections.get(connection)
        return self.member_codes if own is None else own.member_codes

    def junk(self) -> frozenset[tuple[KeyKind, str]]:
        """The junk values, normalised as keys are, so any spelling of them matches."""
        found: set[tuple[KeyKind, str]] = set()
        for email in self.junk_emails:
            if (value := normalize_email(email)) is not None:
                found.add((KeyKind.EMAIL, value))
        for phone in self.junk_phones:
            # An all-zero placeholder is no valid number and never a key anyway; kept in
            # the list because a register's '03-1234-5678' sample number is valid.
            if (value := normalize_phone(phone, self.region)) is not None:
                found.add((KeyKind.PHONE, value))
        formats = {self.member_codes} | {c.member_codes for c in self.connections.values()}
        for code in self.junk_member_codes:
            for fmt in formats:
                if (value := fmt.normalize(code)) is not None:
                    found.add((KeyKind.MEMBER_CODE, value))
        return frozenset(found)
