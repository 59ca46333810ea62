"""Suggestions in the store, and the operator's decisions on them, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import (
    IdentitySettings,
    NothingToSplitError,
    UnknownSuggestionError,
    decide,
    resolve_all,
    resolve_pending,
    suggestions,
)
from omnicrm.crm.schema import identity_overrides, identity_suggestions, profile_members

SETTINGS = IdentitySettings()
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HANAKO = {"family_name": "山田", "given_name": "花子"}
ICHIRO = {"family_name": "鈴木", "given_name": "一郎"}


def customer(record_id: str, at: dt.datetime = T0, **fields: Any) -> Customer:
    return Customer(id=record_id, updated_at=at, **fields)


@pytest.fixture
def seeded(store: Store) -> Store:
    """A day/month swap and a wareki slip, each between an EC and a register record."""
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            customer(
                "1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                birth_date=dt.date(1985, 3, 4),
                **HANAKO,
            ),
            customer("w", email="ichiro@example.jp", birth_date=dt.date(1985, 6, 1), **ICHIRO),
        ],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            customer(
                "P1",
                email="hanako@example.jp",
                phone="09011112222",
                birth_date=dt.date(1985, 4, 3),
                **HANAKO,
            ),
            customer("PW", email="ichiro@example.jp", birth_date=dt.date(2048, 6, 1), **ICHIRO),
        ],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, SETTINGS, T0, shop=DEFAULT_SHOP)
    return store


def listed(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        return [
            (s.a.ref[1], s.b.ref[1], s.evidence["birth_date"])
            for s in suggestions(conn, shop=DEFAULT_SHOP)
        ]


def profile(store: Store, connection: str, record_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(profile_members.c.profile_id).where(
                    profile_members.c.connection == connection,
                    profile_members.c.record_id == record_id,
                )
            ).scalar_one()
        )


def suggestion_id(store: Store, record_id: str) -> int:
    with store.engine.connect() as conn:
        (found,) = [s for s in suggestions(conn, shop=DEFAULT_SHOP) if s.a.ref[1] == record_id]
    return found.id


def test_a_refresh_keeps_the_pairs_refused_for_one_reason(seeded: Store) -> None:
    assert listed(seeded) == [("1", "P1", "day_month_swap"), ("w", "PW", "wareki_slip")]
    with seeded.engine.connect() as conn:
        first = suggestions(conn, shop=DEFAULT_SHOP)[0]
    assert (first.strength, first.conflict) == (100, "birth_date")
    assert (first.a.name, first.a.birth_date) == ("山田 花子", dt.date(1985, 3, 4))
    assert first.b.birth_date == dt.date(1985, 4, 3)
    assert first.evidence["keys"] == {"email": "hanako@example.jp", "phone": "+819011112222"}
    assert profile(seeded, "ec", "1") != profile(seeded, "pos", "P1")
    # Another shop sees none of them.
    with seeded.engine.connect() as conn:
        assert suggestions(conn, shop="other") == []


def test_a_suggestion_keeps_its_id_through_refreshes_that_reach_it(seeded: Store) -> None:
    before = suggestion_id(seeded, "1")
    later = T0 + dt.timedelta(days=1)
    seeded.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            customer(
                "1",
                later,
                email="hanako@example.jp",
                phone="090-1111-2222",
                birth_date=dt.date(1985, 3, 4),
                **HANAKO,
            )
        ],
    )
    with seeded.engine.begin() as conn:
        assert resolve_pending(conn, SETTINGS, later, shop=DEFAULT_SHOP).records
    assert suggestion_id(seeded, "1") == before


def test_a_link_joins_the_pair_and_holds_through_later_refreshes(seeded: Store) -> None:
    chosen = suggestion_id(seeded, "1")
    with seeded.engine.begin() as conn:
        pair, result = decide(conn, chosen, "link", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert (pair.a.ref, pair.b.ref) == (("ec", "1"), ("pos", "P1"))
    assert profile(seeded, "ec", "1") == profile(seeded, "pos", "P1") in result.touched
    assert listed(seeded) == [("w", "PW", "wareki_slip")]
    with seeded.engine.connect() as conn:
        (override,) = conn.execute(select(identity_overrides)).all()
    assert override.kind == "link" and override.note == f"suggestion {chosen}: birth_date"
    # A whole re-resolution, then a change to one of them: still one person, never
    # suggested again.
    with seeded.engine.begin() as conn:
        resolve_all(conn, SETTINGS, T0, shop=DEFAULT_SHOP)
    later = T0 + dt.timedelta(days=1)
    seeded.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            customer(
                "P1",
                later,
                email="hanako@example.jp",
                phone="09011112222",
                birth_date=dt.date(1985, 4, 3),
                **HANAKO,
            )
        ],
    )
    with seeded.engine.begin() as conn:
        resolve_pending(conn, SETTINGS, later, shop=DEFAULT_SHOP)
    assert profile(seeded, "ec", "1") == profile(seeded, "pos", "P1")
    assert listed(seeded) == [("w", "PW", "wareki_slip")]


def test_a_separation_keeps_the_pair_apart_and_unlisted_for_good(seeded: Store) -> None:
    chosen = suggestion_id(seeded, "w")
    with seeded.engine.begin() as conn:
        decide(conn, chosen, "separate", "two people", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert listed(seeded) == [("1", "P1", "day_month_swap")]
    # The register fixes its birth date to the EC's: the rules would now join them, but
    # the operator said two people.
    later = T0 + dt.timedelta(days=1)
    seeded.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            customer(
                "PW", later, email="ichiro@example.jp", birth_date=dt.date(1985, 6, 1), **ICHIRO
            )
        ],
    )
    with seeded.engine.begin() as conn:
        resolve_pending(conn, SETTINGS, later, shop=DEFAULT_SHOP)
        resolve_all(conn, SETTINGS, later, shop=DEFAULT_SHOP)
    assert profile(seeded, "ec", "w") != profile(seeded, "pos", "PW")
    assert listed(seeded) == [("1", "P1", "day_month_swap")]


def test_a_suggestion_decided_or_unknown_cannot_be_decided_again(seeded: Store) -> None:
    chosen = suggestion_id(seeded, "1")
    with seeded.engine.begin() as conn:
        decide(conn, chosen, "separate", shop=DEFAULT_SHOP, settings=SETTINGS)
    for missing in (chosen, 999):
        with seeded.engine.begin() as conn, pytest.raises(UnknownSuggestionError) as refused:
            decide(conn, missing, "link", shop=DEFAULT_SHOP, settings=SETTINGS)
        assert f"no suggestion {missing} in shop 'default'" in str(refused.value)
    other = suggestion_id(seeded, "w")
    with seeded.engine.begin() as conn, pytest.raises(UnknownSuggestionError):
        decide(conn, other, "link", shop="other", settings=SETTINGS)  # another shop's


def test_a_redaction_takes_the_suggestions_naming_the_record_at_once(seeded: Store) -> None:
    seeded.redact_customer("pos", "P1")
    with seeded.engine.connect() as conn:
        left = conn.execute(select(identity_suggestions.c.a_record)).scalars().all()
    assert left == ["w"]


# -- a pair blocked by a third record ----------------------------------------------------------

# 佐藤美咲: her EC account (kanji, email, mobile, no birth date), her register card (kana
# only, the same email, born 昭和60年6月1日) and the app (kanji, the same mobile, with
# 60年6月1日 read as 平成60: 2048-06-01). The app record agrees with the EC one, but the
# register record, one person with the EC one already, says another birth date.
MISAKI = {"family_name": "佐藤", "given_name": "美咲"}
MISAKI_KANA = {"family_name_kana": "サトウ", "given_name_kana": "ミサキ"}
EC = ("ec", "m1")
POS = ("pos", "PM")
APP = ("app", "A7")


@pytest.fixture
def blocked(store: Store) -> Store:
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [customer("m1", email="misaki.sato@example.jp", phone="080-2345-6789", **MISAKI)],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            customer(
                "PM", email="MISAKI.SATO@example.jp", birth_date=dt.date(1985, 6, 1), **MISAKI_KANA
            )
        ],
    )
    store.write_batch(
        "app",
        Stream.CUSTOMERS,
        [customer("A7", phone="+81 80 2345 6789", birth_date=dt.date(2048, 6, 1), **MISAKI)],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, SETTINGS, T0, shop=DEFAULT_SHOP)
    return store


def only_suggestion(store: Store) -> Any:
    with store.engine.connect() as conn:
        (found,) = suggestions(conn, shop=DEFAULT_SHOP)
    return found


def overrides(store: Store) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
    with store.engine.connect() as conn:
        return [
            (row.kind, (row.a_connection, row.a_record), (row.b_connection, row.b_record))
            for row in conn.execute(select(identity_overrides).order_by(identity_overrides.c.id))
        ]


def rebuild(store: Store, days: int) -> None:
    """A change to the app record (a later sync), then a whole re-resolution."""
    later = T0 + dt.timedelta(days=days)
    store.write_batch(
        "app",
        Stream.CUSTOMERS,
        [customer("A7", later, phone="08023456789", birth_date=dt.date(2048, 6, 1), **MISAKI)],
    )
    with store.engine.begin() as conn:
        assert resolve_pending(conn, SETTINGS, later, shop=DEFAULT_SHOP).records
        resolve_all(conn, SETTINGS, later, shop=DEFAULT_SHOP)


def test_a_pair_blocked_by_a_third_record_is_listed_naming_it(blocked: Store) -> None:
    found = only_suggestion(blocked)
    assert (found.a.ref, found.b.ref, found.conflict) == (APP, EC, "birth_date")
    assert found.blocked_by == [(APP, POS)]
    assert found.evidence["blocked_by"][0]["detail"] == (
        "app:A7 born 2048-06-01, pos:PM born 1985-06-01:"
        " the same era year read in another era (wareki)"
    )
    assert profile(blocked, *EC) == profile(blocked, *POS) != profile(blocked, *APP)


def test_linking_a_blocked_pair_joins_the_third_record_for_good(blocked: Store) -> None:
    chosen = only_suggestion(blocked)
    with blocked.engine.begin() as conn:
        _pair, result = decide(conn, chosen.id, "link", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert profile(blocked, *APP) == profile(blocked, *EC) == profile(blocked, *POS)
    assert profile(blocked, *EC) in result.touched
    assert overrides(blocked) == [("link", APP, EC), ("link", APP, POS)]
    rebuild(blocked, 1)
    assert profile(blocked, *APP) == profile(blocked, *EC) == profile(blocked, *POS)
    assert listed(blocked) == []


def test_splitting_a_blocked_pair_takes_the_third_record_out_for_good(blocked: Store) -> None:
    chosen = only_suggestion(blocked)
    with blocked.engine.begin() as conn:
        decide(conn, chosen.id, "split", "店頭の別人", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert profile(blocked, *APP) == profile(blocked, *EC) != profile(blocked, *POS)
    assert overrides(blocked) == [("link", APP, EC), ("separate", POS, APP), ("separate", POS, EC)]
    rebuild(blocked, 1)
    assert profile(blocked, *APP) == profile(blocked, *EC) != profile(blocked, *POS)
    assert listed(blocked) == []


def test_separating_a_blocked_pair_keeps_the_profile_as_it_was(blocked: Store) -> None:
    chosen = only_suggestion(blocked)
    with blocked.engine.begin() as conn:
        decide(conn, chosen.id, "separate", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert overrides(blocked) == [("separate", APP, EC)]
    rebuild(blocked, 1)
    assert profile(blocked, *EC) == profile(blocked, *POS) != profile(blocked, *APP)
    assert listed(blocked) == []


def test_a_split_needs_a_third_record(seeded: Store) -> None:
    chosen = suggestion_id(seeded, "1")
    with seeded.engine.begin() as conn, pytest.raises(NothingToSplitError) as refused:
        decide(conn, chosen, "split", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert f"suggestion {chosen}: no third record blocks the pair" in str(refused.value)
    assert listed(seeded)[0] == ("1", "P1", "day_month_swap")  # undecided
