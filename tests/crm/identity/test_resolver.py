"""The in-memory resolver: rules, cluster-level refusals, operator links and separations."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from omnicrm.crm.identity.normalize import NameMatch
from omnicrm.crm.identity.resolver import (
    LINK_RULE,
    RecordRef,
    Resolution,
    SourceIdentity,
    resolve,
)
from omnicrm.crm.identity.rules import IdentitySettings, KeyKind, MatchRule

DEFAULT = IdentitySettings()
MOBILE_A, MOBILE_B, LANDLINE = "090-1111-2222", "080-3333-4444", "03-5555-6666"


def rec(
    record_id: str, connection: str = "ec", settings: IdentitySettings = DEFAULT, **fields: Any
) -> SourceIdentity:
    return SourceIdentity.build(connection, record_id, settings=settings, **fields)


def together(result: Resolution, *ids: str, connection: str = "ec") -> bool:
    refs = [(connection, i) if isinstance(i, str) else i for i in ids]
    return len({result.cluster_of(r) for r in refs}) == 1


def test_a_shared_email_joins_and_says_why() -> None:
    result = resolve(
        [
            rec("1", email="Hanako@Example.jp", family_name="山田", given_name="花子"),
            rec(
                "P1",
                "store",
                email=" hanako@example.jp",
                family_name="山田",
                given_name="花子",
                family_name_kana="ﾔﾏﾀﾞ",
                given_name_kana="ﾊﾅｺ",
            ),
        ],
        DEFAULT,
    )
    assert result.clusters == [(("ec", "1"), ("store", "P1"))]
    (edge,) = result.edges
    assert (edge.a, edge.b, edge.rule) == (("ec", "1"), ("store", "P1"), "email")
    assert edge.evidence() == {
        "keys": {"email": "hanako@example.jp"},
        "names": "agree",
        "birth_date": "unknown",
        "gender": "unknown",
    }


def test_records_sharing_no_key_stay_apart_whatever_their_names() -> None:
    result = resolve(
        [
            rec("1", family_name="山田", given_name="花子"),
            rec("2", family_name="山田", given_name="花子"),
        ],
        DEFAULT,
    )
    assert len(result.clusters) == 2 and result.edges == []


def test_a_family_email_does_not_join_mother_and_son() -> None:
    family = "yamada.family@example.jp"
    result = resolve(
        [
            rec("1", email=family, family_name="山田", given_name="花子"),
            rec("2", email=family, family_name="山田", given_name="太郎"),
        ],
        DEFAULT,
    )
    assert not together(result, "1", "2")


def test_a_landline_needs_the_names_to_agree() -> None:
    agree = resolve(
        [
            rec("1", phone=LANDLINE, family_name="山田", given_name="花子"),
            rec(
                "2",
                phone="0355556666",
                family_name="ヤマダ",
                given_name="ハナコ",
                family_name_kana="ヤマダ",
                given_name_kana="ハナコ",
            ),
            rec(
                "3",
                phone=LANDLINE,
                family_name="山田",
                given_name="花子",
                family_name_kana="やまだ",
                given_name_kana="はなこ",
            ),
        ],
        DEFAULT,
    )
    assert together(agree, "1", "2", "3")
    assert {e.rule for e in agree.edges} == {"phone"}
    # Kanji only against kana only on a household's landline: mother or daughter?
    unknown = resolve(
        [
            rec("1", phone=LANDLINE, family_name="山田", given_name="花子"),
            rec("2", phone=LANDLINE, family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾕｲ"),
        ],
        DEFAULT,
    )
    assert not together(unknown, "1", "2")


def test_names_that_cannot_be_compared_need_a_birthday_or_a_personal_key() -> None:
    # 陽翔 is no word of the dictionary, and no reading of its kanji is はると: kanji
    # only against kana only, nothing to compare.
    kanji = {"family_name": "山田", "given_name": "陽翔"}
    kana = {"family_name_kana": "ﾔﾏﾀﾞ", "given_name_kana": "ﾊﾙﾄ"}
    family = "yamada.family@example.jp"
    email_only = resolve([rec("1", email=family, **kanji), rec("2", email=family, **kana)], DEFAULT)
    assert not together(email_only, "1", "2")
    # A reading the kanji has supports; one it cannot have refuses even a mobile.
    hanako = {"family_name": "山田", "given_name": "花子"}
    read = resolve(
        [
            rec("1", email=family, **hanako),
            rec("2", email=family, family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾊﾅｺ"),
        ],
        DEFAULT,
    )
    assert together(read, "1", "2") and read.edges[0].names is NameMatch.CLOSE
    son = resolve(
        [
            rec("1", phone=MOBILE_A, **hanako),
            rec("2", phone=MOBILE_A, family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾀﾛｳ"),
        ],
        DEFAULT,
    )
    assert not together(son, "1", "2")
    born = dt.date(1970, 4, 1)
    birthday = resolve(
        [
            rec("1", email=family, birth_date=born, **kanji),
            rec("2", email=family, birth_date=born, **kana),
        ],
        DEFAULT,
    )
    assert together(birthday, "1", "2")
    assert birthday.edges[0].evidence()["birth_date"] == "same"
    mobile = resolve(
        [
            rec("1", email=family, phone=MOBILE_A, **kanji),
            rec("2", email=family, phone=MOBILE_A, **kana),
        ],
        DEFAULT,
    )
    assert together(mobile, "1", "2")
    assert mobile.edges[0].rule == "email"
    landline = resolve(
        [
            rec("1", email=family, phone=LANDLINE, **kanji),
            rec("2", email=family, phone=LANDLINE, **kana),
        ],
        DEFAULT,
    )
    assert not together(landline, "1", "2")
    card = resolve(
        [rec("1", member_code="M-1", **kanji), rec("2", member_code="m1", **kana)], DEFAULT
    )
    assert together(card, "1", "2") and card.edges[0].rule == "member_code"


def test_a_chain_cannot_join_two_people_through_a_nameless_record() -> None:
    # Rules loose enough that each link of the chain passes on its own.
    loose = IdentitySettings(
        rules=[
            MatchRule(name="email", keys=[KeyKind.EMAIL], names="not_conflict"),
            MatchRule(name="phone", keys=[KeyKind.PHONE], names="not_conflict"),
        ],
        household_keys=[],
    )
    identities = [
        rec(
            "mother",
            email="family@example.jp",
            family_name="山田",
            given_name="花子",
            settings=loose,
        ),
        rec("nameless", email="family@example.jp", phone=MOBILE_A, settings=loose),
        rec("son", phone=MOBILE_A, family_name="山田", given_name="太郎", settings=loose),
    ]
    result = resolve(identities, loose)
    assert not together(result, "mother", "son")
    assert len(result.edges) <= 1
    # The same, whatever order the records come in.
    for seed in range(5):
        shuffled = identities[:]
        random.Random(seed).shuffle(shuffled)
        again = resolve(shuffled, loose)
        assert again.clusters == result.clusters and again.edges == result.edges


def test_a_chain_is_refused_when_the_clusters_conflict_as_wholes() -> None:
    # A~B (names agree), B~C (B kanji only, C kana only: nothing to compare), but A's
    # reading says はなこ and C's たろう: A, B and C are not one person.
    result = resolve(
        [
            rec(
                "A",
                email="hanako@example.jp",
                family_name="山田",
                given_name="花子",
                family_name_kana="やまだ",
                given_name_kana="はなこ",
            ),
            rec(
                "B",
                email="hanako@example.jp",
                phone=MOBILE_A,
                family_name="山田",
                given_name="花子",
            ),
            rec("C", phone=MOBILE_A, family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾀﾛｳ"),
        ],
        DEFAULT,
    )
    assert together(result, "A", "B")
    assert not together(result, "B", "C")
    # Without A, B and C are joined where their names cannot be compared (陽翔 is no
    # word of the dictionary): the mobile vouches.
    alone = resolve(
        [
            rec(
                "B",
                email="hanako@example.jp",
                phone=MOBILE_A,
                family_name="山田",
                given_name="陽翔",
            ),
            rec("C", phone=MOBILE_A, family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾊﾙﾄ"),
        ],
        DEFAULT,
    )
    assert together(alone, "B", "C") and alone.edges[0].rule == "phone_corroborated"


def test_a_nameless_record_reaching_two_people_joins_neither() -> None:
    mother = rec(
        "mother", email="family@example.jp", phone=MOBILE_A, family_name="山田", given_name="花子"
    )
    son = rec("son", email="taro@example.jp", phone=MOBILE_B, family_name="山田", given_name="太郎")
    guest = rec("guest", email="family@example.jp", phone=MOBILE_B)
    result = resolve([mother, son, guest], DEFAULT)
    assert len(result.clusters) == 3
    # With only the son's mobile, it is his.
    alone = rec("guest", phone=MOBILE_B)
    assert together(resolve([mother, son, alone], DEFAULT), "son", "guest")


def test_different_birth_dates_and_genders_keep_records_apart() -> None:
    same = {"email": "hanako@example.jp", "family_name": "山田", "given_name": "花子"}
    births = resolve(
        [
            rec("1", birth_date=dt.date(1970, 1, 1), **same),
            rec("2", birth_date=dt.date(1995, 1, 1), **same),
        ],
        DEFAULT,
    )
    assert not together(births, "1", "2")
    genders = [rec("1", gender="female", **same), rec("2", gender="male", **same)]
    assert not together(resolve(genders, DEFAULT), "1", "2")
    assert together(resolve(genders, IdentitySettings(gender_blocks=False)), "1", "2")
    unknown = [rec("1", gender="female", **same), rec("2", gender="unknown", **same)]
    assert together(resolve(unknown, DEFAULT), "1", "2")


def test_a_birth_date_conflict_inside_a_cluster_refuses_the_union() -> None:
    result = resolve(
        [
            rec(
                "1",
                email="a@example.jp",
                family_name="山田",
                given_name="花子",
                birth_date=dt.date(1970, 1, 1),
            ),
            rec("2", email="a@example.jp", phone=MOBILE_A, family_name="山田", given_name="花子"),
            rec(
                "3",
                phone=MOBILE_A,
                family_name="山田",
                given_name="花子",
                birth_date=dt.date(1990, 1, 1),
            ),
        ],
        DEFAULT,
    )
    assert not together(result, "1", "3")


def test_a_key_held_by_too_many_records_is_nobodys() -> None:
    shop_phone = [
        rec(str(i), phone="03-1234-0000", family_name="山田", given_name="花子") for i in range(11)
    ]
    assert len(resolve(shop_phone, DEFAULT).clusters) == 11
    assert len(resolve(shop_phone[:10], DEFAULT).clusters) == 1


def test_junk_values_are_no_keys() -> None:
    identities = [
        rec(
            str(i),
            email="TEST@test.com",
            phone="03-1234-5678",
            family_name="山田",
            given_name="花子",
        )
        for i in range(2)
    ]
    assert identities[0].keys == ()
    assert len(resolve(identities, DEFAULT).clusters) == 2


def test_a_link_joins_whatever_the_rules_say() -> None:
    a = rec("1", family_name="山田", given_name="花子", birth_date=dt.date(1970, 1, 1))
    b = rec("P9", "store", family_name="山田", given_name="華子", birth_date=dt.date(1971, 1, 1))
    result = resolve([a, b], DEFAULT, links=[(b.ref, a.ref)])
    assert together(result, a.ref, b.ref)
    assert [(e.rule, e.evidence()) for e in result.edges] == [(LINK_RULE, {"operator": "link"})]


def test_links_to_records_not_given_are_ignored() -> None:
    a = rec("1")
    assert resolve([a], DEFAULT, links=[(a.ref, ("ec", "gone"))]).clusters == [(a.ref,)]


def test_a_separation_holds_directly_and_through_others() -> None:
    same = {"family_name": "山田", "given_name": "花子"}
    identities = [
        rec("1", email="hanako@example.jp", **same),
        rec("2", email="hanako@example.jp", phone=MOBILE_A, **same),
        rec("3", phone=MOBILE_A, **same),
    ]
    assert together(resolve(identities, DEFAULT), "1", "2", "3")
    apart: list[tuple[RecordRef, RecordRef]] = [(("ec", "1"), ("ec", "3"))]
    result = resolve(identities, DEFAULT, separations=apart)
    assert not together(result, "1", "3")
    assert len(result.clusters) == 2
    # A separation outranks a link that would break it.
    linked = resolve(identities, DEFAULT, links=[(("ec", "1"), ("ec", "3"))], separations=apart)
    assert not together(linked, "1", "3")


def test_rules_apply_in_order_and_the_first_one_met_is_the_reason() -> None:
    both = {
        "email": "hanako@example.jp",
        "member_code": "M1",
        "family_name": "山田",
        "given_name": "花子",
    }
    result = resolve([rec("1", **both), rec("2", **both)], DEFAULT)
    (edge,) = result.edges
    assert edge.rule == "member_code"
    assert edge.keys == ((KeyKind.EMAIL, "hanako@example.jp"), (KeyKind.MEMBER_CODE, "1"))
    assert edge.names is NameMatch.AGREE
    strict = IdentitySettings(
        rules=[MatchRule(name="both", keys=["email", "member_code"], names="exact")]
    )
    assert [e.rule for e in resolve([rec("1", **both), rec("2", **both)], strict).edges] == ["both"]
    assert (
        resolve([rec("1", email="x@example.jp"), rec("2", email="x@example.jp")], strict).edges
        == []
    )


def test_the_same_record_twice_is_an_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="twice"):
        resolve([rec("1"), rec("1")], DEFAULT)
