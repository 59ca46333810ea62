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

import contextlib
import functools
import re
import unicodedata
from collections.abc import Iterator
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, NamedTuple

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
    cleaned = ("+" if text.startswith("+") else "") + digits
    memo = _numbers.get()
    if memo is None:
        return _e164(cleaned, region.upper())
    key = (cleaned, region)
    if key in memo:
        return memo[key]
    memo[key] = found = _e164(cleaned, region.upper())
    return found


# A refresh validates every record's number for its keys, then again for its profile:
# a million-record shop holds more numbers than _e164's cache, whose answers were gone
# before either pass came back to them (benchmarks/README.md, the first refresh).
_numbers: ContextVar[dict[tuple[str, str], str | None] | None] = ContextVar(
    "_numbers", default=None
)


@contextlib.contextmanager
def numbers_remembered() -> Iterator[None]:
    """Within the block, every number :func:`normalize_phone` validates is validated once,
    however many there are (a refresh); the answers go when the block ends. Nested
    blocks share the outermost one's."""
    if _numbers.get() is not None:
        yield
        return
    token = _numbers.set({})
    try:
        yield
    finally:
        _numbers.reset(token)


# What a field holding only a phone number is written with (after NFKC): digits, '+',
# spaces, hyphens and their look-alikes, parentheses, dots.
_PHONE_ONLY = re.compile(r"[0-9+\s\-‐‑‒–—―−ー().]+")
_DASHES = re.compile(r"[‐‑‒–—―−ー]")


def phone_numbers(value: str | None, region: str = "JP") -> tuple[str, ...]:
    """Every valid phone number in a field, in E.164, in the order written, each once.

    A register's phone field holds more than a number: an extension
    (``03-1234-5678 内線12``), a note (``090-1234-5678 平日18時以降``), two numbers
    (``自宅03-3456-7890 携帯090-1234-5678``). A field that is just a number is read as
    :func:`normalize_phone` reads it; anything else is searched for numbers.
    """
    if value is None:
        return ()
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return ()
    if _PHONE_ONLY.fullmatch(text):
        single = normalize_phone(text, region)
        if single is not None:
            return (single,)
    return _numbers_in(_DASHES.sub("-", text), region.upper())


@functools.lru_cache(maxsize=1 << 16)
def _numbers_in(text: str, region: str) -> tuple[str, ...]:
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return tuple(found)


@functools.lru_cache(maxsize=1 << 18)
def _e164(cleaned: str, region: str) -> str | None:
    # phonenumbers is exact but slow (tens of microseconds a number); the same family
    # or shop number comes back often, so its answer is cached on the cleaned digits.
    national = _jp_national(cleaned) if region == "JP" else None
    if national is not None:
        return f"+81{national}" if _jp_valid(national) else None
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A Japanese number as written at home: the trunk 0, then 9 or 10 digits (not 010,
# the international call prefix); or with Japan's country code, +81, and no trunk 0
# (parse strips a national prefix only when it begins with 0).
_JP_WRITTEN = re.compile(r"0(?!10)([1-9][0-9]{8,9})|\+81([1-9][0-9]{8,9})")


@functools.cache
def _jp_pattern() -> re.Pattern[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("JP")
    general = None if metadata is None else metadata.general_desc
    assert general is not None and general.national_number_pattern
    return re.compile(general.national_number_pattern)


def _jp_valid(national: str) -> bool:
    """``phonenumbers.is_valid_number`` of a Japanese national number, from the same
    metadata in one match (tests/crm/identity/test_normalize.py compares the two)."""
    by_length = _jp_types()
    pattern = by_length.get(len(national))
    return pattern is not None and pattern.fullmatch(national) is not None


@functools.cache
def _jp_types() -> dict[int, re.Pattern[str]]:
    """Per length of a national number, one pattern for every type of Japanese number
    of that length: a number is valid when it fits the general description (its lengths
    and pattern) and the description of some type (phonenumbers' number type helper)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("JP")
    assert metadata is not None and metadata.general_desc is not None
    general = metadata.general_desc
    assert general.possible_length and general.national_number_pattern
    types = [
        desc
        for desc in (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
            metadata.fixed_line,
            metadata.mobile,
        )
        if desc is not None and desc.national_number_pattern
    ]
    by_length: dict[int, re.Pattern[str]] = {}
    for length in general.possible_length:
        # A type without lengths of its own takes the general description's.
        fitting = [d for d in types if not d.possible_length or length in d.possible_length]
        if fitting:
            alternatives = "|".join(f"(?:{d.national_number_pattern})" for d in fitting)
            by_length[length] = re.compile(
                f"(?=(?:{general.national_number_pattern})$)(?:{alternatives})"
            )
    return by_length


def _jp_national(cleaned: str) -> str | None:
    """The national number of a Japanese number written with its trunk 0 or with +81, as
    ``phonenumbers.parse`` reads it (it strips the 0 or the country code when what
    follows fits Japan's numbering); None for anything else, which goes to ``parse``.
    Parsing was most of a number's cost (tests/crm/identity/test_normalize.py compares
    the two)."""
    written = _JP_WRITTEN.fullmatch(cleaned)
    if written is None:
        return None
    national = written.group(1) or written.group(2)
    return national if _jp_pattern().fullmatch(national) is not None else None


@functools.lru_cache(maxsize=1 << 18)
def is_mobile(e164: str) -> bool:
    """Whether an E.164 number (from :func:`normalize_phone`) is a mobile number: one
    person's, where a landline is the household's."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


# Spaces, hyphens and their look-alikes, and the marks written between a prefix and
# the number (No.123, 会員#123, 会員番号:123).
_CODE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー_.:#]+")
_DIGITS = re.compile(r"[0-9]+")

DEFAULT_CODE_PREFIXES = ("会員番号", "会員NO", "会員", "MEMBER", "NO", "M")
"""Prefixes a register writes before a member number (M-00123, No.123, 会員123)."""


def normalize_member_code(
    value: str | None,
    *,
    prefixes: tuple[str, ...] = DEFAULT_CODE_PREFIXES,
    keep_leading_zeros: bool = False,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    """A member or point-card code as a match key: one card, however it is written.

    NFKC (full-width digits), upper case, without spaces, hyphens or dots. A numeric
    code loses one of ``prefixes`` (``M-00123``, ``No.123``, ``会員123``) and, unless
    ``keep_leading_zeros``, its leading zeros: ``00123`` and ``123`` are one card. A
    ``pattern`` whose group ``code`` matches the upper-cased code takes that group
    first (a POS writing ``S01-000123``: store 01, card 123).
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip().upper()
    if pattern is not None and (found := pattern.fullmatch(text)) is not None:
        text = found.group("code") or ""
    text = _CODE_SEPARATORS.sub("", text)
    if not text:
        return None
    if not _DIGITS.fullmatch(text):
        for prefix in sorted(prefixes, key=len, reverse=True):
            clean = _CODE_SEPARATORS.sub("", unicodedata.normalize("NFKC", prefix).upper())
            rest = text[len(clean) :]
            if clean and text.startswith(clean) and _DIGITS.fullmatch(rest):
                text = rest
                break
    if not keep_leading_zeros and _DIGITS.fullmatch(text):
        text = text.lstrip("0") or "0"
    return text


# -- names -------------------------------------------------------------------------------

# Whitespace of every width (U+3000 included), and the separators of foreign names
# written in kana (ジョン・スミス, ジョン＝スミス).
_NAME_GAPS = re.compile(r"[\s・･=＝.,]+")

# Variants neither table folds: 斉 and 斎 (both さい in 斉藤/斎藤, which customers and
# registers write for each other), and two kanji outside the BMP that names are
# registered with (𠮷田, 𡈽屋), whose everyday form customers type.
_ALSO_ONE = {"斉": "斎", "\U00020bb7": "吉", "\U0002123d": "土"}
# Variation selectors (IVS, U+E0100-U+E01EF, and U+FE00-U+FE0F): one glyph of a kanji.
_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


@functools.cache
def _kanji_variants() -> dict[int, str]:
    """Variant kanji (異体字) mapped to the form in everyday use: 澤→沢, 櫻→桜, 國→国,
    齋→斎, 齊→斉→斎, 惠→恵, 邉/邊→辺 (kakasi's table, as pykakasi ships it), and a
    kanji outside JIS X 0208 (髙, 﨑: a register's extended set) to its variant inside
    it (ja-itaiji's families).

    ja-itaiji's families are too wide to fold kanji that are both in JIS X 0208 (田 and
    佃, 井 and 丼 are variants there, and different names): only the outside ones are
    taken from it, to the most common member of their family.
    """
    from ja_itaiji import Itaiji
    from pykakasi.kanji import Itaiji as KakasiItaiji

    table: dict[int, str] = {}
    for kanji, family in Itaiji.dictionary.items():
        if len(kanji) != 1 or _in_jis(kanji):
            continue
        inside = [c for c in family if c != kanji and len(c) == 1 and _in_jis(c)]
        if inside:
            # The most general form: the one with the widest family (崎 for 﨑).
            table[ord(kanji)] = max(inside, key=lambda c: (len(Itaiji.get_family(c)), -ord(c)))
    # It also drops the variation selectors (to None).
    kakasi: dict[int, str | None] = KakasiItaiji()._itaijidict  # type: ignore[no-untyped-call]
    table.update({code: form for code, form in kakasi.items() if form is not None})
    table.update({ord(c): form for c, form in _ALSO_ONE.items()})
    # Chains (齊→斉→斎) end in one form.
    for code, form in list(table.items()):
        seen = {code}
        while len(form) == 1 and ord(form) in table and ord(form) not in seen:
            seen.add(ord(form))
            form = table[ord(form)]
        table[code] = form
    return table


def _in_jis(c: str) -> bool:
    """Whether ``c`` is in JIS X 0208, the set every Japanese register can store."""
    try:
        c.encode("shift_jis")
    except UnicodeEncodeError:
        return False
    return True


def _kanji_form(text: str) -> str:
    return text.translate(_kanji_variants())


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


# Names repeat (a shop's family names, a person's records, a profile rebuilt from
# them): the two name normalisations are pure and cached on the text.
@functools.lru_cache(maxsize=1 << 17)
def normalize_name(value: str | None) -> str | None:
    """A kanji or latin name for comparison: NFKC, no spaces, lower-case latin, every
    variant kanji in one form (齋藤, 斉藤 and 斎藤 compare equal)."""
    if value is None:
        return None
    text = _NAME_GAPS.sub("", unicodedata.normalize("NFKC", _SELECTORS.sub("", value))).lower()
    return _kanji_form(text) or None


@functools.lru_cache(maxsize=1 << 17)
def normalize_kana(value: str | None) -> str | None:
    """A kana reading for comparison: full-width hiragana without spaces.

    ``ﾔﾏﾀﾞ ｷｮｳｺ`` and ``ヤマダ　キョウコ`` both become ``やまだきょうこ``. (A register
    without small kana, ``ｷﾖｳｺ``, is matched by :func:`compare_names`.)
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value)
    text = jaconv.h2z(text, kana=True, ascii=False, digit=False)
    text = jaconv.kata2hira(_NAME_GAPS.sub("", text)).lower()
    return _fold_kana(text) or None


# The characters typed for the long-vowel mark (ｰ is ー after NFKC): hyphens, dashes,
# minus signs, the wave dash.
_LONG_MARKS = re.compile("[\\-‐‑‒–—―−－～〜]")
_V_SOUNDS = (("ゔぁ", "ば"), ("ゔぃ", "び"), ("ゔぇ", "べ"), ("ゔぉ", "ぼ"), ("ゔ", "ぶ"))
_VOWEL_OF = {
    **dict.fromkeys("あかさたなはまやらわがざだばぱぁゃゎ", "あ"),
    **dict.fromkeys("いきしちにひみりぎじぢびぴぃ", "い"),
    **dict.fromkeys("うくすつぬふむゆるぐずづぶぷぅゅ", "う"),
    **dict.fromkeys("えけせてねへめれげぜでべぺぇ", "え"),
    **dict.fromkeys("おこそとのほもよろをごぞどぼぽぉょ", "お"),
}


def _fold_kana(text: str) -> str:
    """One spelling of a reading: ヴ as ブ (ヴァ as バ), any dash as the long-vowel mark,
    and a long vowel however it is spelt (こう, こお, こー; ゆう, ゆー; ねえ, ねー) as
    the mark."""
    text = _LONG_MARKS.sub("ー", text)
    for old, new in _V_SOUNDS:
        text = text.replace(old, new)
    out: list[str] = []
    for ch in text:
        vowel = _VOWEL_OF.get(out[-1]) if out else None
        if vowel is not None and (
            ch == vowel or (vowel == "お" and ch == "う") or (vowel == "え" and ch == "い")
        ):
            ch = "ー"
        out.append(ch)
    return "".join(out)


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
    READING = "reading"  # the kanji of one side can be read as the other's reading
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


_MAX_READINGS = 64


@functools.cache
def _sudachi() -> Any:
    from sudachipy import Dictionary

    return Dictionary(dict="core")


@functools.lru_cache(maxsize=1 << 16)
def readings(written: str) -> tuple[frozenset[str], frozenset[str]]:
    """The candidate readings of a name part in kanji (folded as :func:`normalize_kana`
    folds a reading), from SudachiDict; and those the dictionary gives for the part as
    a word (a reading none of these matches is another name).

    Name readings vary (裕子 is ゆうこ or ひろこ, 山崎 やまざき or やまさき): every
    reading the dictionary lists counts, and a part it does not know whole (陽翔) gets
    the readings of its pieces put together, which can support but never refuse.
    """
    if not _KANJI.search(written):
        return frozenset(), frozenset()
    dictionary = _sudachi()
    found = {m.reading_form() for m in dictionary.lookup(written)}
    pieces = [
        {m.reading_form() for m in dictionary.lookup(morpheme.surface())}
        | {morpheme.reading_form()}
        for morpheme in dictionary.tokenizer().tokenize(written)
    ]
    known = _folded(found)
    found |= _joined(pieces)
    if len(written) <= 4:
        # Character by character too: a given name read in a way the dictionary does
        # not list as a word (陽菜 is はるな there, ひな as often).
        found |= _joined([{m.reading_form() for m in dictionary.lookup(c)} for c in written])
    return _folded(found) | known, known


def _folded(found: set[str]) -> frozenset[str]:
    folded = {normalize_kana(r) for r in found if r}
    return frozenset(r for r in folded if r is not None and _is_kana(r))


def _joined(pieces: list[set[str]]) -> set[str]:
    """Every reading of the pieces put together in order (at most _MAX_READINGS)."""
    combined: set[str] = {""}
    for options in pieces:
        if not options:
            return set()
        combined = {head + tail for head in combined for tail in options}
        if len(combined) > _MAX_READINGS:
            combined = set(sorted(combined)[:_MAX_READINGS])
    return combined


def _compare_reading(written: str, kana: str) -> _Part:
    """A part written in kanji on one side, its reading on the other."""
    candidates, known = readings(written)
    if not candidates:
        return _Part.NONE
    if kana in candidates or jaconv.enlarge_smallkana(kana) in {
        jaconv.enlarge_smallkana(c) for c in candidates
    }:
        return _Part.READING
    if known and all(_compare_kana(kana, c) in (_Part.CONFLICT, _Part.NEAR) for c in known):
        return _Part.CONFLICT
    return _Part.NONE


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
    if written is _Part.NONE and kana is _Part.NONE:
        # Kanji on one side, only its reading on the other: what the kanji can be read as.
        for kanji, reading in ((written_a, kana_b), (written_b, kana_a)):
            if kanji and reading and not _is_latin(kanji) and written is _Part.NONE:
                written = _compare_reading(kanji, reading)
        if written is not _Part.NONE:
            return written
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
    verdict = _by_parts(a, b)
    if verdict is NameMatch.AGREE:
        return verdict
    # Family and given name swapped, the whole name in one field, a western order: only
    # agreement found that way counts; it never hides a conflict it does not resolve.
    for found in (_by_parts(a, _swapped(b)), _by_parts(_swapped(a), b)):
        if found in (NameMatch.AGREE, NameMatch.CLOSE) and _RANK[found] < _RANK[verdict]:
            verdict = found
    whole = _compare_whole(a, b)
    if whole is not None and _RANK[whole] < _RANK[verdict]:
        verdict = whole
    return verdict


_RANK = {NameMatch.AGREE: 0, NameMatch.CLOSE: 1, NameMatch.UNKNOWN: 2, NameMatch.CONFLICT: 3}


def _swapped(name: PersonName) -> PersonName:
    return PersonName(name.given, name.family, name.given_kana, name.family_kana)


def _wholes(first: str | None, second: str | None) -> tuple[set[str], bool]:
    """The whole name in either order, and whether both parts are known."""
    if first and second:
        return {first + second, second + first}, True
    one = first or second
    return ({one} if one and len(one) >= 2 else set()), False


def _unvoiced(text: str) -> str:
    return jaconv.enlarge_smallkana(text).translate(_UNVOICE)


def _compare_whole(a: PersonName, b: PersonName) -> NameMatch | None:
    """The whole names compared, whatever their order and split: AGREE (or CLOSE, a
    reading whose voicing marks a register dropped) when some script has the same whole
    name and every script both sides have agrees; None otherwise."""
    written_a, full_wa = _wholes(a.family, a.given)
    written_b, full_wb = _wholes(b.family, b.given)
    kana_a, full_ka = _wholes(a.family_kana, a.given_kana)
    kana_b, full_kb = _wholes(b.family_kana, b.given_kana)
    found: list[NameMatch] = []
    latin_a = bool(written_a) and all(_is_latin(w) for w in written_a)
    latin_b = bool(written_b) and all(_is_latin(w) for w in written_b)
    if written_a and written_b and latin_a == latin_b:
        same = {_romaji(w) if _is_latin(w) else w for w in written_a} & {
            _romaji(w) if _is_latin(w) else w for w in written_b
        }
        if not same:
            return None
        if full_wa or full_wb:
            found.append(NameMatch.AGREE)
    if kana_a and kana_b:
        if kana_a & kana_b:
            verdict = NameMatch.AGREE
        elif _dropped_marks(kana_a, kana_b) or _dropped_marks(kana_b, kana_a):
            verdict = NameMatch.CLOSE
        else:
            return None
        if full_ka or full_kb:
            found.append(verdict)
    # Romaji on one side, a reading on the other.
    for latin, full_l, kana, full_k in (
        (written_a, full_wa, kana_b, full_kb),
        (written_b, full_wb, kana_a, full_ka),
    ):
        if latin and kana and all(_is_latin(w) for w in latin) and (full_l or full_k):
            romaji = {_romaji(w) for w in latin}
            if romaji & {_romaji(jaconv.kana2alphabet(k)) for k in kana}:
                found.append(NameMatch.AGREE)
    # Kanji on one side, only the reading on the other: one of its readings.
    for written, kana, full in ((written_a, kana_b, full_kb), (written_b, kana_a, full_ka)):
        if (
            written
            and kana
            and not kana_a & kana_b
            and not any(map(_is_latin, written))
            and any(kana & readings(w)[0] for w in written)
            and (full or len(written) == 2)
        ):
            found.append(NameMatch.CLOSE)
    if not found:
        return None
    return max(found, key=lambda v: _RANK[v])


def _dropped_marks(plain: set[str], voiced: set[str]) -> bool:
    """Whether ``plain`` is ``voiced`` written by a register that has no voicing marks."""
    marked = {v for v in voiced if _unvoiced(v) != jaconv.enlarge_smallkana(v)}
    if not marked:
        return False
    bare = {p for p in plain if _unvoiced(p) == jaconv.enlarge_smallkana(p)}
    return bool(bare & {_unvoiced(v) for v in marked})


def _by_parts(a: PersonName, b: PersonName) -> NameMatch:
    a, b = _resplit(a, b), _resplit(b, a)
    family = _compare_part(a.family, b.family, a.family_kana, b.family_kana)
    given = _compare_part(a.given, b.given, a.given_kana, b.given_kana)
    parts = (family, given)
    if _Part.CONFLICT in parts or _Part.NEAR in parts:
        return NameMatch.CONFLICT
    if _Part.READING in parts:
        # A reading the kanji may have supports, but is not the name written twice.
        plain = [_Part.AGREE if p is _Part.READING else p for p in parts]
        if _Part.NONE in plain:
            return NameMatch.UNKNOWN
        return NameMatch.CLOSE if plain.count(_Part.CLOSE) < 2 else NameMatch.CONFLICT
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
