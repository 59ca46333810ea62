# ruff: noqa: RUF001, RUF002, RUF003 (full-width and dash look-alikes are the subject here)
"""Normalised match keys and names: the same person written the way real data differs.

Japanese shop data writes one phone number as ``０９０－１２３４－５６７８``, ``09012345678``
and ``+81 90-1234-5678``, one email as `` Hanako@Example.JP`` and one name as ``山田 花子``,
``ﾔﾏﾀﾞ ﾊﾅｺ`` or ``やまだ　はなこ``. The functions here map such variants to one form so
they compare equal: keys (email, phone, member code) exactly, names as supporting
evidence only (:func:`compare_names`). And one way to show a name as written
(:func:`person_name`), for the profiles and the merge explanations alike.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from enum import StrEnum
from typing import NamedTuple

import jaconv
import phonenumbers

# -- keys --------------------------------------------------------------------------------

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalize_email(value: str | None) -> str | None:
    """An email as a match key: NFKC, trimmed, lower-cased; None if it is not an address."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :].strip()
    if not _EMAIL.fullmatch(text):
        return None
    return text


# Everything but digits goes: hyphens and their look-alikes (‐ ‑ – — ― − ー),
# spaces, parentheses, dots. A leading '+' (after NFKC, '＋' too) is kept.
_NOT_DIGIT = re.compile(r"[^0-9]")


def normalize_phone(value: str | None, region: str = "JP") -> str | None:
    """A phone number in E.164 (``+819012345678``); None if it is not a valid number.

    Full-width digits, any hyphen or dash, spaces and parentheses are accepted; a
    number without a country code is read as a number of ``region``.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    digits = _NOT_DIGIT.sub("", text)
    if not digits:
        return None
    return _e164(("+" if text.startswith("+") else "") + digits, region.upper())


@functools.lru_cache(maxsize=1 << 18)
def _e164(cleaned: str, region: str) -> str | None:
    # phonenumbers is exact but slow (tens of microseconds a number); the same family
    # or shop number comes back often, so its answer is cached on the cleaned digits.
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=1 << 18)
def is_mobile(e164: str) -> bool:
    """Whether an E.164 number (from :func:`normalize_phone`) is a mobile number: one
    person's, where a landline is the household's."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


_SPACE_OR_DASH = re.compile(r"[\s\-‐‑‒–—―−ー_]+")


def normalize_member_code(value: str | None) -> str | None:
    """A member or point-card code: NFKC, upper-case, without spaces or hyphens."""
    if value is None:
        return None
    text = _SPACE_OR_DASH.sub("", unicodedata.normalize("NFKC", value)).upper()
    return text or None


# -- names -------------------------------------------------------------------------------

# Whitespace of every width (U+3000 included), and the separators of foreign names
# written in kana (ジョン・スミス, ジョン＝スミス).
_NAME_GAPS = re.compile(r"[\s・･=＝.,]+")

# Variant kanji that stand for the same character in names (异体字): a customer types
# the common form, the store's register has the official one. Only pairs that are the
# same name by every reading; 斉/斎 (two distinct family names) are not folded.
_KANJI_VARIANTS = str.maketrans(
    {"髙": "高", "﨑": "崎", "嵜": "崎", "邊": "辺", "邉": "辺", "濵": "浜", "濱": "浜", "德": "徳"}
)


def person_name(
    family: str | None,
    given: str | None,
    family_kana: str | None,
    given_kana: str | None,
    *,
    reading: bool = False,
) -> str:
    """Family then given name, as Japanese write it; the kana when that is all there is.

    ``reading``: the kana after the written name too (``山田 花子 (ヤマダ ハナコ)``), as
    a merge explanation shows it: the resolver compares both.
    """
    written = " ".join(p for p in (family, given) if p)
    kana = " ".join(p for p in (family_kana, given_kana) if p)
    if reading and written and kana:
        return f"{written} ({kana})"
    return written or kana


def normalize_name(value: str | None) -> str | None:
    """A kanji or latin name for comparison: NFKC, no spaces, lower-case latin."""
    if value is None:
        return None
    text = _NAME_GAPS.sub("", unicodedata.normalize("NFKC", value)).lower()
    return text.translate(_KANJI_VARIANTS) or None


def normalize_kana(value: str | None) -> str | None:
    """A kana reading for comparison: full-width hiragana without spaces.

    ``ﾔﾏﾀﾞ ｷｮｳｺ`` and ``ヤマダ　キョウコ`` both become ``やまだきょうこ``. (A register
    without small kana, ``ｷﾖｳｺ``, is matched by :func:`compare_names`.)
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value)
    text = jaconv.h2z(text, kana=True, ascii=False, digit=False)
    text = jaconv.kata2hira(_NAME_GAPS.sub("", text))
    return text.lower() or None


_KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff]+")  # hiragana, katakana, ー
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff々〆ヶ]")


def _is_kana(text: str) -> bool:
    """Kana only (hiragana or full-width katakana), the long-vowel mark allowed."""
    return _KANA.fullmatch(text) is not None


def _is_latin(text: str) -> bool:
    return text.isascii()


class PersonName(NamedTuple):
    """A person's name, normalised, as one source record writes it.

    ``family``/``given`` are the written name (kanji or latin, after
    :func:`normalize_name`); ``family_kana``/``given_kana`` the reading (after
    :func:`normalize_kana`). A written name that is all kana (a register that only
    knows ｶﾅ) counts as the reading.
    """

    family: str | None = None
    given: str | None = None
    family_kana: str | None = None
    given_kana: str | None = None

    @classmethod
    def of(
        cls,
        family: str | None = None,
        given: str | None = None,
        family_kana: str | None = None,
        given_kana: str | None = None,
    ) -> PersonName:
        """Normalise raw fields into a :class:`PersonName`."""
        f, g = normalize_name(family), normalize_name(given)
        fk, gk = normalize_kana(family_kana), normalize_kana(given_kana)
        # A written name in kana is a reading: move it where it can be compared.
        if f is not None and _is_kana(f):
            fk, f = fk or normalize_kana(f), None
        if g is not None and _is_kana(g):
            kg = normalize_kana(g)
            assert kg is not None
            if gk is None and fk is not None and len(fk) > len(kg) and fk.endswith(kg):
                fk = fk[: -len(kg)]  # the reading held the whole name: ささきさゆり / さゆり
            gk, g = gk or kg, None
        return cls(f, g, fk, gk)

    @property
    def empty(self) -> bool:
        return not any(self)


class NameMatch(StrEnum):
    """How two names compare; names support a key match, they never make one."""

    AGREE = "agree"  # the full name is the same
    CLOSE = "close"  # the same but for one typo in a part long enough to be unmistakable
    UNKNOWN = "unknown"  # nothing comparable: a side has no name, or kana vs kanji only
    CONFLICT = "conflict"  # different people


class _Part(StrEnum):
    AGREE = "agree"
    CLOSE = "close"
    NEAR = "near"  # one edit apart but too short to call it a typo
    CONFLICT = "conflict"
    NONE = "none"


# Kanji that number siblings: 健一 and 健二, 雄一郎 and 雄二郎 are brothers, not a typo.
_ORDINALS = set("一二三四五六七八九十壱弐参")
# Voiced and plain kana: ざき/さき, ばし/はし are the same name written two ways.
_UNVOICE = str.maketrans(
    "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゔ",
    "かきくけこさしすせそたちつてとはひふへほはひふへほう",
)


def _one_edit(a: str, b: str) -> tuple[int, int] | None:
    """Where ``a`` and ``b`` differ if by exactly one edit (substitution, insertion,
    deletion, adjacent transposition): the differing index in each; None otherwise."""
    la, lb = len(a), len(b)
    if abs(la - lb) > 1 or a == b:
        return None
    i = 0
    while i < la and i < lb and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return (i, i)
        if i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]:
            return (i, i)
        return None
    if la > lb:
        return (i, i) if a[i + 1 :] == b[i:] else None
    return (i, i) if a[i:] == b[i + 1 :] else None


def _compare_written(a: str, b: str) -> _Part:
    if a == b:
        return _Part.AGREE
    where = _one_edit(a, b)
    if where is None:
        return _Part.CONFLICT
    shorter = min(len(a), len(b))
    if _KANJI.search(a) or _KANJI.search(b):
        i, j = where
        ordinal = (i < len(a) and a[i] in _ORDINALS) or (j < len(b) and b[j] in _ORDINALS)
        # Two-character kanji names one character apart are different names (健一/健二).
        return _Part.CLOSE if shorter >= 3 and not ordinal else _Part.NEAR
    # Latin: Yuki/Yuko, Kenta/Kenji differ by little; only long names take a typo.
    return _Part.CLOSE if shorter >= 6 else _Part.NEAR


def _compare_kana(a: str, b: str) -> _Part:
    if a == b:
        return _Part.AGREE
    # Old registers have no small kana: ｷﾖｳｺ is きょうこ.
    a, b = jaconv.enlarge_smallkana(a), jaconv.enlarge_smallkana(b)
    if a == b:
        return _Part.AGREE
    # One voicing mark apart (dakuten are often dropped by half-width registers).
    if (
        len(a) == len(b) >= 3
        and a.translate(_UNVOICE) == b.translate(_UNVOICE)
        and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    ):
        return _Part.CLOSE
    if _one_edit(a, b) is None:
        return _Part.CONFLICT
    # まさひろ/まさひこ, じゅんこ/じゅんや: four kana one apart are still two names.
    return _Part.CLOSE if min(len(a), len(b)) >= 5 else _Part.NEAR


_SOKUON = re.compile(r"xtsu([a-z])")
# Hepburn as people type it: long vowels dropped (Satō → sato, Ōno → ono), m before
# b/m/p (Homma), and the kunrei spellings some still use (si, ti, tu, hu, zi).
_ROMAJI_FOLDS = (
    ("tch", "cch"),
    ("ou", "o"),
    ("oo", "o"),
    ("oh", "o"),
    ("uu", "u"),
    ("mb", "nb"),
    ("mp", "np"),
    ("mm", "nm"),
    ("si", "shi"),
    ("ti", "chi"),
    ("tu", "tsu"),
    ("hu", "fu"),
    ("zi", "ji"),
)


def _romaji(text: str) -> str:
    """Romaji folded so that the usual spellings of one reading compare equal."""
    text = _SOKUON.sub(lambda m: m.group(1) * 2, text.lower())
    text = "".join(ch for ch in text if "a" <= ch <= "z")
    for old, new in _ROMAJI_FOLDS:
        text = text.replace(old, new)
    return text


def _compare_part(
    written_a: str | None, written_b: str | None, kana_a: str | None, kana_b: str | None
) -> _Part:
    """One part (family or given) compared in every script both sides have."""
    written = _Part.NONE
    if written_a is not None and written_b is not None:
        if _is_latin(written_a) == _is_latin(written_b):
            written = _compare_written(written_a, written_b)
        else:
            # Latin against kanji says nothing; latin against the other's reading can
            # agree (Yamada = やまだ), and only agreement counts.
            written = _Part.NONE
    kana = _Part.NONE
    if kana_a is not None and kana_b is not None:
        kana = _compare_kana(kana_a, kana_b)
    # Romaji on one side, a reading on the other: a positive match only.
    for latin, reading in ((written_a, kana_b), (written_b, kana_a)):
        if (
            written is _Part.NONE
            and latin
            and reading
            and _is_latin(latin)
            and _romaji(latin) == _romaji(jaconv.kana2alphabet(reading))
        ):
            written = _Part.AGREE
    verdicts = {written, kana} - {_Part.NONE}
    if not verdicts:
        return _Part.NONE
    if verdicts == {_Part.AGREE}:
        return _Part.AGREE
    if _Part.AGREE in verdicts and len(verdicts) == 2:
        # The same reading with a one-kanji difference is an IME slip (太郎/太朗); the
        # same kanji with a one-kana difference a mistyped reading (やまざき/やまさき).
        other = (verdicts - {_Part.AGREE}).pop()
        return _Part.CLOSE if other in (_Part.CLOSE, _Part.NEAR) else _Part.CONFLICT
    if _Part.CONFLICT in verdicts or _Part.NEAR in verdicts:
        return _Part.CONFLICT
    return _Part.CLOSE


def compare_names(a: PersonName, b: PersonName) -> NameMatch:
    """How the names of two source records compare.

    AGREE needs both the family and the given name to match in some script; a family
    name alone is shared by a whole household and decides nothing (UNKNOWN). One typo
    in one part long enough to be unmistakable is CLOSE; a second difference, or a
    difference in a short part, is CONFLICT.
    """
    if a == b:
        # The common case, decided without comparing part by part.
        known = (a.family or a.family_kana) and (a.given or a.given_kana)
        return NameMatch.AGREE if known else NameMatch.UNKNOWN
    a, b = _resplit(a, b), _resplit(b, a)
    family = _compare_part(a.family, b.family, a.family_kana, b.family_kana)
    given = _compare_part(a.given, b.given, a.given_kana, b.given_kana)
    parts = (family, given)
    if _Part.CONFLICT in parts or _Part.NEAR in parts:
        return NameMatch.CONFLICT
    if parts.count(_Part.CLOSE) == 2:
        return NameMatch.CONFLICT  # two typos make another person
    if _Part.NONE in parts:
        return NameMatch.UNKNOWN  # a family name alone is a household
    return NameMatch.CLOSE if _Part.CLOSE in parts else NameMatch.AGREE


def _resplit(name: PersonName, other: PersonName) -> PersonName:
    """``name`` with a whole name written into its family field (山田太郎, no given name)
    split where ``other``'s family name ends (山田 / 太郎)."""
    family, given = _split(name.family, name.given, other.family)
    family_kana, given_kana = _split(name.family_kana, name.given_kana, other.family_kana)
    if given is not None and name.given is None and given_kana is None:
        reading = normalize_kana(given)
        if reading is not None and _is_kana(reading):
            given, given_kana = None, reading  # 石川さゆり: the given name is a reading
    return PersonName(family, given, family_kana, given_kana)


def _split(
    family: str | None, given: str | None, other: str | None
) -> tuple[str | None, str | None]:
    if family and given is None and other and len(family) > len(other) and family.startswith(other):
        return other, family[len(other) :]
    return family, given
