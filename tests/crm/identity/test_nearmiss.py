"""Near misses: the pairs the resolver refused for one reason only, in memory."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from omnicrm.crm.identity.nearmiss import birth_date_slip
from omnicrm.crm.identity.resolver import SourceIdentity, resolve
from omnicrm.crm.identity.rules import IdentitySettings

SETTINGS = IdentitySettings()
HANAKO = {"family_name": "山田", "given_name": "花子"}


def person(connection: str, record_id: str, **fields: Any) -> SourceIdentity:
    return SourceIdentity.build(connection, record_id, settings=SETTINGS, **fields)


@pytest.mark.parametrize(
    ("a", "b", "slip"),
    [
        (dt.date(1985, 3, 4), dt.date(1985, 4, 3), "day_month_swap"),
        (dt.date(1985, 6, 1), dt.date(2048, 6, 1), "wareki_slip"),  # 昭和60 read as 平成60
        (dt.date(1990, 6, 1), dt.date(2020, 6, 1), "wareki_slip"),  # 平成2 read as 令和2
        (dt.date(1985, 6, 1), dt.date(1985, 6, 7), "one_digit"),
        (dt.date(1985, 6, 1), dt.date(1962, 11, 20), "differs"),
        (dt.date(1985, 6, 1), dt.date(1986, 6, 1), "one_digit"),
        (dt.date(1985, 6, 1), dt.date(1987, 6, 1), "one_digit"),
        (dt.date(1985, 6, 1), dt.date(1995, 6, 1), "one_digit"),
        (dt.date(1985, 6, 1), dt.date(1999, 6, 1), "wareki_slip"),  # 14: 大正/昭和
    ],
)
def test_how_two_birth_dates_differ(a: dt.date, b: dt.date, slip: str) -> None:
    assert birth_date_slip(a, b) == slip
    assert birth_date_slip(b, a) == slip


def test_a_birth_date_slip_with_the_same_mobile_email_and_name_is_suggested_not_merged() -> None:
    result = resolve(
        [
            person(
                "ec",
                "1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                **HANAKO,
                birth_date=dt.date(1985, 3, 4),
            ),
            person(
                "pos",
                "1",
                email="Hanako@Example.jp",
                phone="09011112222",
                **HANAKO,
                birth_date=dt.date(1985, 4, 3),
            ),
        ],
        SETTINGS,
    )
    assert len(result.clusters) == 2  # never merged automatically
    (suggestion,) = result.suggestions
    assert (suggestion.a, suggestion.b) == (("ec", "1"), ("pos", "1"))
    assert suggestion.evidence() == {
        "keys": {"email": "hanako@example.jp", "phone": "+819011112222"},
        "names": "agree",
        "birth_date": "day_month_swap",
        "gender": "unknown",
        "conflict": "birth_date",
        "detail": "birth dates 1985-03-04 and 1985-04-03: day and month swapped",
        "rule": "email",
    }


def test_suggestions_come_strongest_first() -> None:
    result = resolve(
        [
            # A wareki slip on an email and an agreeing name.
            person(
                "ec",
                "w",
                email="ichiro@example.jp",
                family_name="鈴木",
                given_name="一郎",
                birth_date=dt.date(1985, 6, 1),
            ),
            person(
                "pos",
                "w",
                email="ichiro@example.jp",
                family_name="鈴木",
                given_name="一郎",
                birth_date=dt.date(2048, 6, 1),
            ),
            # A swap on an email, a mobile and the name: more agrees.
            person(
                "ec",
                "1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                **HANAKO,
                birth_date=dt.date(1985, 3, 4),
            ),
            person(
                "pos",
                "1",
                email="hanako@example.jp",
                phone="09011112222",
                **HANAKO,
                birth_date=dt.date(1985, 4, 3),
            ),
            # Birth dates far apart on an email and a name: weaker, still worth a look.
            person(
                "ec",
                "x",
                email="kenji@example.jp",
                family_name="田中",
                given_name="健司",
                birth_date=dt.date(1962, 11, 20),
            ),
            person(
                "pos",
                "x",
                email="kenji@example.jp",
                family_name="田中",
                given_name="健司",
                birth_date=dt.date(1985, 6, 1),
            ),
        ],
        SETTINGS,
    )
    assert [(s.a[1], s.birth_date, s.strength) for s in result.suggestions] == [
        ("1", "day_month_swap", 100),
        ("w", "wareki_slip", 70),
        ("x", "differs", 30),
    ]


def test_a_household_key_blocking_a_pair_is_suggested_once_per_person() -> None:
    """A nameless register record on a family's landline: it may be the mother or the
    son. Both pairs are suggested; once the operator links it to one, the other goes."""
    records = [
        person(
            "ec",
            "m",
            email="sato@example.jp",
            phone="03-3456-7890",
            family_name="佐藤",
            given_name="直子",
        ),
        person(
            "ec",
            "s",
            email="sato@example.jp",
            phone="03-3456-7890",
            family_name="佐藤",
            given_name="翔太",
        ),
        person("pos", "n", phone="03-3456-7890"),
    ]
    result = resolve(records, SETTINGS)
    assert len(result.clusters) == 3
    pairs = {(s.a, s.b): s for s in result.suggestions}
    assert set(pairs) == {(("ec", "m"), ("pos", "n")), (("ec", "s"), ("pos", "n"))}
    suggestion = pairs[(("ec", "m"), ("pos", "n"))]
    assert suggestion.conflict == "household"
    assert "phone +81334567890 (held by two different people)" in suggestion.detail
    # The mother and the son themselves are no suggestion: their names conflict and
    # nothing of one person (a card, a mobile) says otherwise.
    linked = resolve(records, SETTINGS, links=[(("ec", "m"), ("pos", "n"))])
    assert linked.suggestions == []
    separated = resolve(records, SETTINGS, separations=[(("ec", "m"), ("pos", "n"))])
    assert [(s.a, s.b) for s in separated.suggestions] == [(("ec", "s"), ("pos", "n"))]


def test_twins_on_a_landline_and_a_birth_date_are_no_suggestion() -> None:
    """Names that conflict are suggested only where a key of one person says otherwise."""
    twins = [
        person(
            "ec",
            "1",
            family_name="佐藤",
            given_name="翔太",
            phone="03-3456-7890",
            birth_date=dt.date(2004, 5, 5),
        ),
        person(
            "ec",
            "2",
            family_name="佐藤",
            given_name="翔平",
            phone="03-3456-7890",
            birth_date=dt.date(2004, 5, 5),
        ),
    ]
    assert resolve(twins, SETTINGS).suggestions == []
    card = [
        person(
            "ec",
            "1",
            family_name="佐藤",
            given_name="翔太",
            member_code="M-123",
            phone="090-5555-6666",
        ),
        person(
            "pos",
            "1",
            family_name="佐藤",
            given_name="翔平",
            member_code="123",
            phone="09055556666",
        ),
    ]
    (suggestion,) = resolve(card, SETTINGS).suggestions
    assert (suggestion.conflict, suggestion.rule) == ("names", "member_code")


def test_a_gender_typed_wrong_is_suggested() -> None:
    result = resolve(
        [
            person("ec", "1", email="hanako@example.jp", **HANAKO, gender="female"),
            person("pos", "1", email="hanako@example.jp", **HANAKO, gender="male"),
        ],
        SETTINGS,
    )
    (suggestion,) = result.suggestions
    assert (suggestion.conflict, suggestion.detail) == ("gender", "genders female and male")


def test_a_pair_with_two_conflicts_or_a_separation_is_no_suggestion() -> None:
    mother_and_son = [
        person(
            "ec",
            "1",
            email="sato@example.jp",
            family_name="佐藤",
            given_name="直子",
            birth_date=dt.date(1965, 1, 1),
        ),
        person(
            "ec",
            "2",
            email="sato@example.jp",
            family_name="佐藤",
            given_name="翔太",
            birth_date=dt.date(1995, 1, 1),
        ),
    ]
    assert resolve(mother_and_son, SETTINGS).suggestions == []
    slip = [
        person("ec", "1", email="hanako@example.jp", **HANAKO, birth_date=dt.date(1985, 3, 4)),
        person("pos", "1", email="hanako@example.jp", **HANAKO, birth_date=dt.date(1985, 4, 3)),
    ]
    assert len(resolve(slip, SETTINGS).suggestions) == 1
    apart = resolve(slip, SETTINGS, separations=[(("ec", "1"), ("pos", "1"))])
    assert apart.suggestions == []
    joined = resolve(slip, SETTINGS, links=[(("pos", "1"), ("ec", "1"))])
    assert joined.suggestions == [] and len(joined.clusters) == 1


def test_suggestions_do_not_depend_on_the_input_order() -> None:
    records = [
        person(
            "ec",
            "m",
            email="sato@example.jp",
            phone="03-3456-7890",
            family_name="佐藤",
            given_name="直子",
        ),
        person(
            "ec",
            "s",
            email="sato@example.jp",
            phone="03-3456-7890",
            family_name="佐藤",
            given_name="翔太",
        ),
        person("pos", "n", phone="03-3456-7890"),
        person("ec", "1", email="hanako@example.jp", **HANAKO, birth_date=dt.date(1985, 3, 4)),
        person("pos", "1", email="hanako@example.jp", **HANAKO, birth_date=dt.date(1985, 4, 3)),
    ]
    first = resolve(records, SETTINGS).suggestions
    assert resolve(list(reversed(records)), SETTINGS).suggestions == first


# -- pairs blocked by a third record of a cluster ------------------------------------------

# 山田花子 three times: on the EC site (kanji, her email and mobile, no birth date), at
# the register (kana only, the same email, born 昭和60年3月4日) and in the app (kanji, the
# same mobile, born 1985-04-03: day and month swapped by one of the two).
EC = person("ec", "1", **HANAKO, email="hanako.yamada@example.jp", phone="090-1234-5678")
REGISTER = person(
    "pos",
    "P1",
    family_name_kana="ヤマダ",
    given_name_kana="ハナコ",
    email="Hanako.Yamada@example.jp",
    birth_date=dt.date(1985, 3, 4),
)
APP = person("app", "9", **HANAKO, phone="09012345678", birth_date=dt.date(1985, 4, 3))


def test_a_pair_blocked_by_a_third_records_birth_date_is_suggested_naming_it() -> None:
    result = resolve([EC, REGISTER, APP], SETTINGS)
    # The register record joined the EC one on the email; the app record agrees with the
    # EC one (mobile, name), but its birth date conflicts with the register's.
    assert result.clusters == [(("app", "9"),), (("ec", "1"), ("pos", "P1"))]
    (suggestion,) = result.suggestions
    assert (suggestion.a, suggestion.b) == (("app", "9"), ("ec", "1"))
    assert (suggestion.conflict, suggestion.rule, suggestion.birth_date) == (
        "birth_date",
        "phone",
        "unknown",  # the pair itself: the EC record has no birth date
    )
    assert suggestion.evidence()["blocked_by"] == [
        {
            "records": [["app", "9"], ["pos", "P1"]],
            "field": "birth_date",
            "detail": "app:9 born 1985-04-03, pos:P1 born 1985-03-04: day and month swapped",
        }
    ]
    assert suggestion.detail == (
        "blocked by a record already one person with one of them: "
        "app:9 born 1985-04-03, pos:P1 born 1985-03-04: day and month swapped"
    )
    # A mobile (30) and names that agree (30), less the swap of the third record (10).
    assert suggestion.strength == 50


def test_a_link_of_a_blocked_pair_holds_only_with_its_third_record() -> None:
    pair = (("app", "9"), ("ec", "1"))
    third = (("app", "9"), ("pos", "P1"))
    # The pair alone: the register record, refused by the linked pair, would drop out.
    alone = resolve([EC, REGISTER, APP], SETTINGS, links=[pair])
    assert alone.clusters == [(("app", "9"), ("ec", "1")), (("pos", "P1"),)]
    # With the third record (what deciding the suggestion records): one person of three.
    linked = resolve([EC, REGISTER, APP], SETTINGS, links=[pair, third])
    assert linked.clusters == [(("app", "9"), ("ec", "1"), ("pos", "P1"))]
    assert linked.suggestions == []
    # Two people: nothing is suggested again.
    apart = resolve([EC, REGISTER, APP], SETTINGS, separations=[pair])
    assert apart.clusters == [(("app", "9"),), (("ec", "1"), ("pos", "P1"))]
    assert apart.suggestions == []
    # The register record is someone else: split out, it is not suggested with them.
    split = resolve(
        [EC, REGISTER, APP],
        SETTINGS,
        links=[pair],
        separations=[(("pos", "P1"), ("app", "9")), (("pos", "P1"), ("ec", "1"))],
    )
    assert split.clusters == [(("app", "9"), ("ec", "1")), (("pos", "P1"),)]
    assert split.suggestions == []


def test_a_pair_refused_itself_lists_the_third_records_a_link_would_join() -> None:
    """The app record shares the email too: its own birth date conflicts with the EC
    record's, and with the register's, which is one person with the EC record."""
    ec = person(
        "ec", "1", **HANAKO, email="hanako.yamada@example.jp", birth_date=dt.date(1985, 3, 4)
    )
    app = person(
        "app", "9", **HANAKO, email="hanako.yamada@example.jp", birth_date=dt.date(1985, 4, 3)
    )
    result = resolve([ec, REGISTER, app], SETTINGS)
    assert len(result.clusters) == 2
    (suggestion,) = result.suggestions  # one per two clusters
    assert (suggestion.a, suggestion.b, suggestion.birth_date) == (
        ("app", "9"),
        ("ec", "1"),
        "day_month_swap",
    )
    assert [b.as_json()["records"] for b in suggestion.blocked_by] == [
        [["app", "9"], ["pos", "P1"]]
    ]
    # Its own conflict is counted once: the swap of the third record costs nothing more.
    assert suggestion.strength == 30 + 30 + 10


def test_a_third_record_conflicting_on_two_fields_is_no_suggestion() -> None:
    """The register's record says male and another birth date: two reasons, not one."""
    register = person(
        "pos",
        "P1",
        family_name_kana="ヤマダ",
        given_name_kana="ハナコ",
        email="hanako.yamada@example.jp",
        birth_date=dt.date(1985, 3, 4),
        gender="male",
    )
    app = person(
        "app", "9", **HANAKO, phone="09012345678", birth_date=dt.date(1985, 4, 3), gender="female"
    )
    result = resolve([EC, register, app], SETTINGS)
    assert result.clusters == [(("app", "9"),), (("ec", "1"), ("pos", "P1"))]
    assert result.suggestions == []


def test_a_third_record_with_the_same_birth_date_blocks_nothing() -> None:
    app = person("app", "9", **HANAKO, phone="09012345678", birth_date=dt.date(1985, 3, 4))
    result = resolve([EC, REGISTER, app], SETTINGS)
    assert result.clusters == [(("app", "9"), ("ec", "1"), ("pos", "P1"))]
    assert result.suggestions == []


def test_a_blocked_pair_is_suggested_whatever_the_input_order() -> None:
    records = [EC, REGISTER, APP]
    first = resolve(records, SETTINGS).suggestions
    assert len(first) == 1
    assert resolve(list(reversed(records)), SETTINGS).suggestions == first
    assert resolve([REGISTER, APP, EC], SETTINGS).suggestions == first
