# ruff: noqa: RUF001 (the variants real data writes are the point of these tables)
"""Normalisation of keys and names, on the variants real Japanese shop data writes."""

from __future__ import annotations

import pytest

from omnicrm.crm.identity.normalize import (
    NameMatch,
    PersonName,
    compare_names,
    is_mobile,
    normalize_email,
    normalize_kana,
    normalize_member_code,
    normalize_name,
    normalize_phone,
    person_name,
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


def test_mobile_numbers_are_told_from_landlines() -> None:
    assert is_mobile("+819012345678")
    assert is_mobile("+817012345678")
    assert not is_mobile("+81312345678")
    assert not is_mobile("not a number")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("M0012345", "M0012345"),
        ("m001-2345", "M0012345"),
        ("ｍ００１　２３４５", "M0012345"),
        ("1234 5678", "12345678"),
        ("1234ー5678", "12345678"),
        (" - ", None),
        (None, None),
    ],
)
def test_member_code(written: str | None, expected: str | None) -> None:
    assert normalize_member_code(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("山田 太郎", "山田太郎"),
        ("山田　太郎", "山田太郎"),
        ("ＹＡＭＡＤＡ Taro", "yamadataro"),
        ("髙橋", "高橋"),  # a variant kanji folded
        ("", None),
    ],
)
def test_name(written: str, expected: str | None) -> None:
    assert normalize_name(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "やまだたろう"),
        ("ヤマダ　タロウ", "やまだたろう"),
        ("やまだ たろう", "やまだたろう"),
        ("ｷｮｳｺ", "きょうこ"),
        ("ジョン・スミス", "じょんすみす"),
        ("", None),
    ],
)
def test_kana(written: str, expected: str | None) -> None:
    assert normalize_kana(written) == expected


def test_a_written_name_in_kana_counts_as_the_reading() -> None:
    assert PersonName.of("ﾔﾏﾀﾞ", "ﾀﾛｳ") == PersonName(None, None, "やまだ", "たろう")
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
        (
            P(None, None, "たかはし", "ゆういちろう"),
            P(None, None, "たかはし", "ゆういちろお"),
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
        # Nothing to compare.
        (P("山田", "太郎"), P(None, None, "ﾔﾏﾀﾞ", "ﾀﾛｳ"), NameMatch.UNKNOWN),
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
