# ruff: noqa: RUF001 (the variants real data writes are the point of these tables)
"""Normalisation of keys and names, on the variants real Japanese shop data writes."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from omnicrm.crm.identity.normalize import (
    NameMatch,
    PersonName,
    _e164,
    _jp_national,
    compare_names,
    is_mobile,
    normalize_email,
    normalize_kana,
    normalize_member_code,
    normalize_name,
    normalize_phone,
    numbers_remembered,
    person_name,
    phone_numbers,
)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("hanako@example.jp", "hanako@example.jp"),
        ("  Hanako@Example.JP ", "hanako@example.jp"),
        ("HANAKO@EXAMPLE.JP", "hanako@example.jp"),
        ("ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", "hanako@example.jp"),
        ("mailto:hanako@example.jp", "hanako@example.jp"),
        ("hanako.yamada+shop@docomo.ne.jp", "hanako.yamada+shop@docomo.ne.jp"),
        ("", None),
        ("   ", None),
        (None, None),
        ("hanako", None),
        ("hanako@localhost", None),
        ("hanako@@example.jp", None),
        ("hanako @example.jp", None),
        ("@example.jp", None),
    ],
)
def test_email(written: str | None, expected: str | None) -> None:
    assert normalize_email(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("090-1234-5678", "+819012345678"),
        ("09012345678", "+819012345678"),
        ("０９０－１２３４－５６７８", "+819012345678"),
        ("０９０ー１２３４ー５６７８", "+819012345678"),  # the long-vowel mark as a dash
        ("090‐1234‐5678", "+819012345678"),  # U+2010 hyphen
        ("090–1234–5678", "+819012345678"),  # en dash
        ("090−1234−5678", "+819012345678"),  # minus sign
        ("090 1234 5678", "+819012345678"),
        ("(090)1234-5678", "+819012345678"),
        ("+81 90-1234-5678", "+819012345678"),
        ("+819012345678", "+819012345678"),
        ("＋８１　９０－１２３４－５６７８", "+819012345678"),
        ("+81-03-1234-5678", "+81312345678"),  # the trunk 0 kept after +81
        ("03-1234-5678", "+81312345678"),
        ("(03)1234-5678", "+81312345678"),
        ("0120-123-456", "+81120123456"),
        ("050-1234-5678", "+815012345678"),
        ("+1 650-253-0000", "+16502530000"),
        ("03-0000-0000", None),  # not in the numbering plan
        ("090-1234-567", None),  # a digit short
        ("12345", None),
        ("なし", None),
        ("", None),
        (None, None),
    ],
)
def test_phone(written: str | None, expected: str | None) -> None:
    assert normalize_phone(written) == expected


def test_phone_region_reads_national_numbers() -> None:
    assert normalize_phone("(650) 253-0000", region="US") == "+16502530000"
    assert normalize_phone("(650) 253-0000", region="JP") is None


def test_japanese_numbers_read_without_parsing_as_phonenumbers_parses_them() -> None:
    # The trunk-0 and +81 numbers are read without phonenumbers.parse (most of their cost)
    # and validated by one pattern from its metadata; every answer must be the one parse
    # and is_valid_number give, the invalid and the non-Japanese too.
    rng = random.Random(14)
    written = [
        rng.choice(("0", "00", "010", "0120", "090", "03", "81", "", "+81", "+810", "+8190", "+1"))
        + digits
        for digits in (
            "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
            for _ in range(20_000)
        )
    ]
    # And numbers as Japanese records hold them: mobiles, Tokyo and Osaka, regional
    # codes, free dial, navi dial, IP phones, some a digit short or long.
    written += [
        rng.choice(("090", "080", "070", "060", "050", "03", "06", "011", "0467", "0120", "0570"))
        + "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 9)))
        for _ in range(20_000)
    ]
    read_directly = with_code = valid_read_directly = 0
    for cleaned in written:
        try:
            number = phonenumbers.parse(cleaned, "JP")
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if valid
            else None
        )
        read_directly += _jp_national(cleaned) is not None
        with_code += cleaned.startswith("+81") and _jp_national(cleaned) is not None
        valid_read_directly += valid and _jp_national(cleaned) is not None
        assert _e164.__wrapped__(cleaned, "JP") == expected, cleaned
    assert read_directly > 1_000 and with_code > 100 and valid_read_directly > 3_000


def test_within_numbers_remembered_each_number_is_validated_once() -> None:
    numbers = [f"0901{n:07d}" for n in range(0, 5_000_000, 1000)]
    expected = [f"+81901{n:07d}" for n in range(0, 5_000_000, 1000)]
    _e164.cache_clear()
    with numbers_remembered():
        assert [normalize_phone(n) for n in numbers] == expected
        with numbers_remembered():  # nested: the same answers, validated before
            assert [normalize_phone(f"{n[:3]}-{n[3:7]}-{n[7:]}") for n in numbers] == expected
        assert phone_numbers("携帯 " + numbers[0]) == (expected[0],)
        assert normalize_phone("0120") is None and normalize_phone("0120") is None
    info = _e164.cache_info()  # the second reads never reached _e164's own cache
    assert info.misses == len(numbers) + 1 and info.hits == 0
    # Outside the block the answers come from _e164's own cache.
    assert normalize_phone(numbers[-1]) == expected[-1]
    assert normalize_phone(numbers[0]) == expected[0]
    info = _e164.cache_info()
    assert (info.hits, info.misses) == (2, len(numbers) + 1)


def test_mobile_numbers_are_told_from_landlines() -> None:
    assert is_mobile("+819012345678")
    assert is_mobile("+817012345678")
    assert not is_mobile("+81312345678")
    assert not is_mobile("not a number")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # One card, however a register writes it: prefixes, zeros, hyphens, full width.
        ("M0012345", "12345"),
        ("m001-2345", "12345"),
        ("ｍ００１　２３４５", "12345"),
        ("M-0012345", "12345"),
        ("No.12345", "12345"),
        ("NO：１２３４５", "12345"),
        ("会員No.0012345", "12345"),
        ("会員番号 ０１２３４５", "12345"),
        ("会員12345", "12345"),
        ("0012345", "12345"),
        ("1234 5678", "12345678"),
        ("1234ー5678", "12345678"),
        ("1234‐5678", "12345678"),
        # Letters that are part of the code stay: only a prefix before digits goes.
        ("AB-1234", "AB1234"),
        ("M12A", "M12A"),
        ("NOZOMI", "NOZOMI"),
        ("0000", "0"),
        (" - ", None),
        ("No.", "NO"),
        (None, None),
    ],
)
def test_member_code(written: str | None, expected: str | None) -> None:
    assert normalize_member_code(written) == expected


def test_member_code_keeps_zeros_and_reads_a_pattern_when_told() -> None:
    import re

    assert normalize_member_code("M-00123", keep_leading_zeros=True) == "00123"
    assert normalize_member_code("M-00123", prefixes=()) == "M00123"
    store_card = re.compile(r"S[0-9]{2}-(?P<code>[0-9]+)")
    assert normalize_member_code("s01-000123", pattern=store_card) == "123"
    assert normalize_member_code("000123", pattern=store_card) == "123"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("090-1234-5678", ("+819012345678",)),
        ("０９０－１２３４－５６７８", ("+819012345678",)),
        ("03-1234-5678 内線12", ("+81312345678",)),
        ("03-1234-5678（内線 123）", ("+81312345678",)),
        ("03-1234-5678 ext. 12", ("+81312345678",)),
        ("０３ー１２３４ー５６７８　内線１２", ("+81312345678",)),
        ("090-1234-5678 平日18時以降", ("+819012345678",)),
        ("090-1234-5678（夜のみ）", ("+819012345678",)),
        ("TEL:0312345678", ("+81312345678",)),
        ("090-1234-5678 / 03-3456-7890", ("+819012345678", "+81334567890")),
        ("自宅03-3456-7890 携帯090-1234-5678", ("+81334567890", "+819012345678")),
        ("090-1234-5678 090-1234-5678", ("+819012345678",)),
        ("09012345678 0334567890", ("+819012345678", "+81334567890")),
        ("なし", ()),
        ("平日18時以降", ()),
        ("", ()),
        (None, ()),
    ],
)
def test_every_number_of_a_phone_field(written: str | None, expected: tuple[str, ...]) -> None:
    assert phone_numbers(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("山田 太郎", "山田太郎"),
        ("山田　太郎", "山田太郎"),
        ("ＹＡＭＡＤＡ Taro", "yamadataro"),
        ("髙橋", "高橋"),  # a variant kanji folded
        ("澤田", "沢田"),
        ("櫻井", "桜井"),
        ("國分", "国分"),
        ("齋藤", "斎藤"),
        ("齊藤", "斎藤"),
        ("斉藤", "斎藤"),
        ("惠子", "恵子"),
        ("山﨑", "山崎"),
        ("渡邉", "渡辺"),
        ("渡邊", "渡辺"),
        ("\U00020bb7田", "吉田"),  # 𠮷, outside the BMP
        ("\U0002123d屋", "土屋"),  # 𡈽
        ("葛\U000e0100城", "葛城"),  # an ideographic variation selector
        ("辻\ufe00", "辻"),
        # Variants in some tables that are different names here.
        ("田中", "田中"),
        ("佃", "佃"),
        ("井上", "井上"),
        ("", None),
    ],
)
def test_name(written: str, expected: str | None) -> None:
    assert normalize_name(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # A long vowel is one mark however it is spelt: たろう = たろー.
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "やまだたろー"),
        ("ヤマダ　タロウ", "やまだたろー"),
        ("やまだ たろう", "やまだたろー"),
        ("ヤマダ タロー", "やまだたろー"),
        ("ﾔﾏﾀﾞ ﾀﾛｰ", "やまだたろー"),
        ("ヤマダ タロ−", "やまだたろー"),  # the minus sign typed for it
        ("ヤマダ タロ－", "やまだたろー"),
        ("ヤマダ タロ‐", "やまだたろー"),
        ("オオノ", "おーの"),
        ("オウノ", "おーの"),
        ("ユウコ", "ゆーこ"),
        ("ケイコ", "けーこ"),
        ("ｷｮｳｺ", "きょーこ"),
        ("ヴィクトリア", "びくとりあ"),
        ("ビクトリア", "びくとりあ"),
        ("ジョン・スミス", "じょんすみす"),
        ("アイ", "あい"),
        ("", None),
    ],
)
def test_kana(written: str, expected: str | None) -> None:
    assert normalize_kana(written) == expected


def test_a_written_name_in_kana_counts_as_the_reading() -> None:
    assert PersonName.of("ﾔﾏﾀﾞ", "ﾀﾛｳ") == PersonName(None, None, "やまだ", "たろー")
    assert PersonName.of("Yamada", "Taro") == PersonName("yamada", "taro", None, None)


P = PersonName.of


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # The same person written differently.
        (P("山田", "太郎", "ヤマダ", "タロウ"), P("山田", "太郎"), NameMatch.AGREE),
        (P("ﾔﾏﾀﾞ", "ﾀﾛｳ"), P("山田", "太郎", "やまだ", "たろう"), NameMatch.AGREE),
        (P("山田 太郎"), P("山田", "太郎"), NameMatch.AGREE),  # a whole name in one field
        (P(None, None, "ヤマダ タロウ"), P(None, None, "やまだ", "たろう"), NameMatch.AGREE),
        (P("YAMADA", "TARO"), P("yamada", "taro"), NameMatch.AGREE),
        (P("Yamada", "Taro"), P(None, None, "やまだ", "たろう"), NameMatch.AGREE),
        (P("Sato", "Kyoko"), P("佐藤", "恭子", "サトウ", "キョウコ"), NameMatch.AGREE),
        (P("Homma", "Jiro"), P(None, None, "ほんま", "じろう"), NameMatch.AGREE),
        (P(None, None, "ｻﾄｳ", "ｷﾖｳｺ"), P(None, None, "サトウ", "キョウコ"), NameMatch.AGREE),
        (P("髙橋", "一郎"), P("高橋", "一郎"), NameMatch.AGREE),
        # One typo in a part long enough to be unmistakable.
        (P("長谷川", "由美子"), P("長谷川", "由実子"), NameMatch.CLOSE),
        (
            P("山田", "太郎", "やまだ", "たろう"),
            P("山田", "太朗", "ヤマダ", "タロウ"),
            NameMatch.CLOSE,
        ),
        (
            P("山崎", "花子", "やまざき", "はなこ"),
            P("山崎", "花子", "ヤマサキ", "ハナコ"),
            NameMatch.CLOSE,
        ),
        # A long vowel spelt two ways is one reading.
        (
            P(None, None, "たかはし", "ゆういちろう"),
            P(None, None, "たかはし", "ゆういちろお"),
            NameMatch.AGREE,
        ),
        (
            P(None, None, "たかはし", "ゆういちろう"),
            P(None, None, "たかはし", "ゆういちろ"),
            NameMatch.CLOSE,
        ),
        (P("Yamaguchi", "Kazuhiro"), P("Yamaguchi", "Kazuhito"), NameMatch.CLOSE),
        # Different people.
        (P("山田", "健一"), P("山田", "健二"), NameMatch.CONFLICT),  # brothers
        (P("山田", "健一郎"), P("山田", "健二郎"), NameMatch.CONFLICT),  # brothers too
        (P("山田", "太郎"), P("山田", "太朗"), NameMatch.CONFLICT),  # two kanji, no reading
        (P("山田", "花子"), P("山田", "太郎"), NameMatch.CONFLICT),
        (
            P(None, None, "たかはし", "まさひろ"),
            P(None, None, "たかはし", "まさひこ"),
            NameMatch.CONFLICT,
        ),
        (P("Sato", "Yuki"), P("Sato", "Yuko"), NameMatch.CONFLICT),
        # The same kanji read two ways: 恵 is めぐみ or けい, two people.
        (
            P("山田", "恵", "やまだ", "めぐみ"),
            P("山田", "恵", "やまだ", "けい"),
            NameMatch.CONFLICT,
        ),
        (P("長谷川", "由美子"), P("長谷山", "由実子"), NameMatch.CONFLICT),  # two typos
        # Kanji against a reading: one of its readings supports (CLOSE, never AGREE), a
        # reading the dictionary does not give the name is another person.
        (P("山田", "太郎"), P(None, None, "ﾔﾏﾀﾞ", "ﾀﾛｳ"), NameMatch.CLOSE),
        (P("佐藤", "翔太"), P(None, None, "ｻﾄｳ", "ｼｮｳﾍｲ"), NameMatch.CONFLICT),
        (P("鈴木", "恵子"), P(None, None, "スズキ", "ハルト"), NameMatch.CONFLICT),
        (P("中島", "裕子"), P(None, None, "ナカシマ", "ヒロコ"), NameMatch.CLOSE),
        (P("田中", "陽菜"), P(None, None, "タナカ", "ヒナ"), NameMatch.CLOSE),
        # A name the dictionary does not know whole supports at most.
        (P("鈴木", "陽翔"), P(None, None, "スズキ", "ハルト"), NameMatch.UNKNOWN),
        # Nothing to compare.
        (P("山田"), P("山田", "太郎"), NameMatch.UNKNOWN),  # a family name is a household
        (P("山田"), P("山田"), NameMatch.UNKNOWN),
        (P(), P("山田", "太郎"), NameMatch.UNKNOWN),
        (P("Yamada", "Hanako"), P("山田", "花子"), NameMatch.UNKNOWN),
    ],
)
def test_compare_names(a: PersonName, b: PersonName, expected: NameMatch) -> None:
    assert compare_names(a, b) is expected
    assert compare_names(b, a) is expected


@pytest.mark.parametrize(
    ("parts", "shown", "with_reading"),
    [
        (("山田", "花子", "ヤマダ", "ハナコ"), "山田 花子", "山田 花子 (ヤマダ ハナコ)"),
        (("山田", None, None, None), "山田", "山田"),
        ((None, None, "ﾔﾏﾀﾞ", "ﾊﾅｺ"), "ﾔﾏﾀﾞ ﾊﾅｺ", "ﾔﾏﾀﾞ ﾊﾅｺ"),  # the kana is all there is
        (("", "", None, "ハナコ"), "ハナコ", "ハナコ"),
        ((None, None, None, None), "", ""),
    ],
)
def test_person_name(
    parts: tuple[str | None, str | None, str | None, str | None], shown: str, with_reading: str
) -> None:
    """Profiles show the written name; explanations add the reading the resolver compared."""
    assert person_name(*parts) == shown
    assert person_name(*parts, reading=True) == with_reading


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Family and given name swapped, in kanji, kana or romaji.
        (PersonName.of("太郎", "山田"), PersonName.of("山田", "太郎"), NameMatch.AGREE),
        (
            PersonName.of(None, None, "タロウ", "ヤマダ"),
            PersonName.of(None, None, "ヤマダ", "タロウ"),
            NameMatch.AGREE,
        ),
        # The whole name in one field, either one.
        (PersonName.of("山田太郎"), PersonName.of("山田", "太郎"), NameMatch.AGREE),
        (PersonName.of(None, "山田太郎"), PersonName.of("山田", "太郎"), NameMatch.AGREE),
        (PersonName.of(None, "山田　太郎"), PersonName.of("太郎", "山田"), NameMatch.AGREE),
        # Western order and romaji in one field, against a reading.
        (
            PersonName.of("Taro Yamada"),
            PersonName.of("山田", "太郎", "ヤマダ", "タロウ"),
            NameMatch.AGREE,
        ),
        (
            PersonName.of("TARO", "YAMADA"),
            PersonName.of(None, None, "やまだ", "たろう"),
            NameMatch.AGREE,
        ),
        # Variant kanji of one name.
        (PersonName.of("齋藤", "惠"), PersonName.of("斉藤", "恵"), NameMatch.AGREE),
        (PersonName.of("𠮷田", "髙志"), PersonName.of("吉田", "高志"), NameMatch.AGREE),
        # ヴ and ブ, and the long vowel however it is typed.
        (
            PersonName.of(None, None, "サトウ", "ヴィクトル"),
            PersonName.of(None, None, "サトー", "ビクトル"),
            NameMatch.AGREE,
        ),
        # A register that has no voicing marks, in both parts.
        (
            PersonName.of(None, None, "ﾔﾏｻｷ", "ｼﾝｼ"),
            PersonName.of(None, None, "ヤマザキ", "シンジ"),
            NameMatch.CLOSE,
        ),
        # Reordering never hides a difference.
        (PersonName.of("佐藤", "翔太"), PersonName.of("翔平", "佐藤"), NameMatch.CONFLICT),
        (PersonName.of("佐藤翔太"), PersonName.of("佐藤", "翔平"), NameMatch.CONFLICT),
        (
            PersonName.of("Shota Sato"),
            PersonName.of(None, None, "さとう", "しょうへい"),
            NameMatch.UNKNOWN,
        ),
        (PersonName.of("山田"), PersonName.of(None, "山田"), NameMatch.UNKNOWN),
    ],
)
def test_names_compare_whatever_their_order_and_split(
    a: PersonName, b: PersonName, expected: NameMatch
) -> None:
    assert compare_names(a, b) is expected
    assert compare_names(b, a) is expected
