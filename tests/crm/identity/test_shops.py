"""Two shops whose sources hold the same people: identity resolution, profiles, lookups,
the operator's overrides, the refresh and redactions never join or touch the other
shop's customers. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from omnicrm.core.channels import Stream
from omnicrm.core.records import Customer, Order, OrderLine, OrderStatus
from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers, profile_changes
from omnicrm.crm.identity import (
    IdentitySettings,
    OtherShopError,
    UnknownProfileError,
    UnknownRecordError,
    explain,
    link,
    recent_merges,
    unmerge,
)
from omnicrm.crm.interactions import add_interaction
from omnicrm.crm.profiles import find_profiles, load_profile, profile_of
from omnicrm.crm.refresh import _PG_LOCK_KEY, CrmSettings, refresh, shop_lock_key
from omnicrm.crm.schema import (
    identity_keys,
    identity_merges,
    identity_overrides,
    interactions,
    profile_members,
    profile_values,
    profiles,
)
from omnicrm.crm.segments._sql import get_state
from omnicrm.crm.segments.counts import SNAPSHOT_STATE
from omnicrm.errors import DataError

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
SETTINGS = IdentitySettings()
# Each shop has a web shop and a store register; the connection names differ (a
# connection belongs to one shop), the people do not.
SHOPS = {"a-ec": "a", "a-pos": "a", "b-ec": "b", "b-pos": "b"}

HANAKO = {
    "email": "hanako@example.jp",
    "phone": "090-1234-5678",
    "member_code": "M-0001",
    "family_name": "山田",
    "given_name": "花子",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "ハナコ",
}
TARO = {"email": "taro@example.jp", "family_name": "佐藤", "given_name": "太郎"}
JIRO = {"email": "jiro@example.jp", "family_name": "鈴木", "given_name": "次郎"}


def people(prefix: str) -> dict[str, list[Customer]]:
    """The same two people at one shop: Hanako online and in the store, Taro online."""
    return {
        f"{prefix}-ec": [
            Customer(id="1", updated_at=T0, **HANAKO),
            Customer(id="2", updated_at=T0, **TARO),
        ],
        f"{prefix}-pos": [
            Customer(
                id="P1",
                updated_at=T0,
                phone="+81 90 1234 5678",
                member_code="M-0001",
                family_name_kana="ﾔﾏﾀﾞ",
                given_name_kana="ﾊﾅｺ",
            )
        ],
    }


def order(oid: str, cid: str, total: int) -> Order:
    return Order(
        id=oid,
        customer_id=cid,
        channel="web",
        status=OrderStatus.PAID,
        placed_at=T0,
        updated_at=T0,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name="緑茶", quantity=1, unit_price=Decimal(total))],
    )


@pytest.fixture
def two(store_url: str) -> Iterator[Store]:
    """A store holding shops a and b, each with the same Hanako and Taro; not refreshed."""
    opened = Store.open(store_url, shops=SHOPS)
    for prefix, spent in (("a", 5000), ("b", 700)):
        for connection, records in people(prefix).items():
            opened.write_batch(connection, Stream.CUSTOMERS, records)
        opened.write_batch(f"{prefix}-ec", Stream.ORDERS, [order(f"{prefix}-O1", "1", spent)])
    yield opened
    opened.close()


def settings(shop: str) -> CrmSettings:
    return CrmSettings(shop=shop)


def members_by_profile(store: Store) -> dict[int, set[tuple[str, str, str]]]:
    """Each profile's members as (shop, connection, record)."""
    found: dict[int, set[tuple[str, str, str]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(select(profile_members)):
            found.setdefault(row.profile_id, set()).add((row.shop, row.connection, row.record_id))
    return found


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_the_same_people_in_two_shops_are_two_customer_bases(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    groups = members_by_profile(two)
    # Per shop: Hanako (web and store joined) and Taro; profiles number the sum.
    assert sorted(sorted(g) for g in groups.values()) == [
        [("a", "a-ec", "1"), ("a", "a-pos", "P1")],
        [("a", "a-ec", "2")],
        [("b", "b-ec", "1"), ("b", "b-pos", "P1")],
        [("b", "b-ec", "2")],
    ]
    assert count(two, profiles) == 4
    assert count(two, profiles, profiles.c.shop == "a") == 2
    with two.engine.connect() as conn:
        # Every profile's shop is its members' shop, and so are its values and merges.
        shop_of = dict(conn.execute(select(profiles.c.id, profiles.c.shop)).all())
        for pid, members in groups.items():
            assert {m[0] for m in members} == {shop_of[pid]}
        for row in conn.execute(select(profile_values)):
            assert row.shop == shop_of[row.profile_id]
        for row in conn.execute(select(identity_merges)):
            assert row.shop == shop_of[row.profile_id]
            assert SHOPS[row.a_connection] == SHOPS[row.b_connection] == row.shop
        for row in conn.execute(select(identity_keys)):
            assert SHOPS[row.connection] == row.shop
        # Each shop's Hanako bought what she bought there, and only that.
        a_hanako = profile_of(conn, "a-ec", "1", shop="a")
        b_hanako = profile_of(conn, "b-ec", "1", shop="b")
        assert a_hanako is not None and b_hanako is not None and a_hanako != b_hanako
        assert load_profile(conn, a_hanako, shop="a").amount_spent == 5000
        assert load_profile(conn, b_hanako, shop="b").amount_spent == 700
        # Lookups find the shop's own person only, by email, phone, member code or name.
        for query in ("hanako@example.jp", "090-1234-5678", "M-0001", "やまだ", "山田"):
            assert [m.id for m in find_profiles(conn, query, shop="a")] == [a_hanako], query
            assert [m.id for m in find_profiles(conn, query, shop="b")] == [b_hanako], query
        # Nor by its id (which may match digits of a's phone numbers).
        assert b_hanako not in {m.id for m in find_profiles(conn, str(b_hanako), shop="a")}
        # Another shop's profile is not there, whoever knows its id.
        assert profile_of(conn, "b-ec", "1", shop="a") is None
        with pytest.raises(DataError, match=f"no profile {b_hanako} in shop 'a'"):
            load_profile(conn, b_hanako, shop="a")
        with pytest.raises(UnknownProfileError, match=f"no profile {b_hanako} in shop 'a'"):
            explain(conn, b_hanako, shop="a")
        why = explain(conn, a_hanako, shop="a")
        assert {(m.connection, m.record_id) for m in why.members} == {
            ("a-ec", "1"),
            ("a-pos", "P1"),
        }
        merges = recent_merges(conn, shop="a")
        assert merges and {m.profile_id for m in merges} == {a_hanako}


def test_a_refresh_drains_its_own_shop_only(two: Store) -> None:
    queued_b = count(two, profile_changes, profile_changes.c.shop == "b")
    assert queued_b > 0
    result = refresh(two, settings("a"), now=NOW)
    assert result.profiles_touched == 2
    assert count(two, profiles, profiles.c.shop == "b") == 0
    # Shop b's changes wait for shop b's refresh, untouched.
    assert count(two, profile_changes, profile_changes.c.shop == "a") == 0
    assert count(two, profile_changes, profile_changes.c.shop == "b") == queued_b
    assert refresh(two, settings("b"), now=NOW).profiles_touched == 2
    assert count(two, profile_changes) == 0


def test_a_rebuild_of_one_shop_leaves_the_other_as_it_was(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)

    def shop_b() -> tuple[Any, ...]:
        with two.engine.connect() as conn:
            return (
                sorted(conn.execute(select(profiles.c.id, profiles.c.updated_at)).all()),
                sorted(
                    conn.execute(
                        select(identity_keys.c.connection, identity_keys.c.value).where(
                            identity_keys.c.shop == "b"
                        )
                    ).all()
                ),
                sorted(
                    conn.execute(
                        select(identity_merges.c.id).where(identity_merges.c.shop == "b")
                    ).all()
                ),
            )

    before = shop_b()
    later = NOW + dt.timedelta(days=1)
    refresh(two, settings("a"), rebuild=True, now=later)
    after = shop_b()
    # Shop a's profiles were rebuilt at `later`; shop b's rows are those of before.
    assert after[1:] == before[1:]
    with two.engine.connect() as conn:
        stamps = dict(conn.execute(select(profiles.c.shop, profiles.c.updated_at).distinct()).all())
    assert stamps == {"a": later, "b": NOW}
    assert len(members_by_profile(two)) == 4


def test_links_and_unmerges_across_shops_are_refused(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    with two.engine.begin() as conn, pytest.raises(OtherShopError) as refused:
        link(conn, ("a-ec", "2"), ("b-ec", "2"), shop="a", settings=SETTINGS)
    assert str(refused.value) == (
        "b-ec:2 belongs to shop 'b', not 'a': records of two shops are never one person"
    )
    with two.engine.begin() as conn, pytest.raises(OtherShopError, match="b-pos:P1 belongs"):
        unmerge(conn, "b-pos", "P1", shop="a", settings=SETTINGS)
    # Working in shop b, shop a's record is as foreign.
    with two.engine.begin() as conn, pytest.raises(OtherShopError, match="shop 'a', not 'b'"):
        link(conn, ("b-ec", "2"), ("a-ec", "2"), shop="b", settings=SETTINGS)
    # A connection no shop has is simply unknown.
    with two.engine.begin() as conn, pytest.raises(UnknownRecordError, match="in shop 'a'"):
        link(conn, ("a-ec", "2"), ("c-ec", "2"), shop="a", settings=SETTINGS)
    assert count(two, identity_overrides) == 0
    assert len(members_by_profile(two)) == 4


def test_an_operator_link_and_unmerge_stay_in_their_shop(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    before_b = {p: m for p, m in members_by_profile(two).items() if "b" in {x[0] for x in m}}
    with two.engine.begin() as conn:
        # (Unmerged first: once Taro is linked in, P1's ﾊﾅｺ conflicts with his 太郎 and
        # leaves the profile by itself.)
        unmerge(conn, "a-pos", "P1", shop="a", settings=SETTINGS)
        link(conn, ("a-ec", "1"), ("a-ec", "2"), "one household", shop="a", settings=SETTINGS)
    refresh(two, settings("a"), now=NOW)
    groups = members_by_profile(two)
    assert sorted(sorted(g) for g in groups.values() if "a" in {x[0] for x in g}) == [
        [("a", "a-ec", "1"), ("a", "a-ec", "2")],
        [("a", "a-pos", "P1")],
    ]
    assert {p: m for p, m in groups.items() if "b" in {x[0] for x in m}} == before_b
    with two.engine.connect() as conn:
        shops = set(conn.execute(select(identity_overrides.c.shop)).scalars())
    assert shops == {"a"}
    # Shop b's queue was not touched by shop a's overrides.
    assert count(two, profile_changes, profile_changes.c.shop == "b") == 0


def test_a_redaction_in_one_shop_keeps_the_other_shops_counts_snapshot(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    with two.engine.connect() as conn:
        a_before = get_state(conn, SNAPSHOT_STATE, shop="a")
        b_before = get_state(conn, SNAPSHOT_STATE, shop="b")
    assert a_before is not None and b_before is not None
    two.redact_customer("a-ec", "1")
    with two.engine.connect() as conn:
        # Shop a's profile lost her name and email outside a refresh: its snapshot goes,
        # and its next counts are full. Shop b's profiles did not change: its stays.
        assert get_state(conn, SNAPSHOT_STATE, shop="a") is None
        assert get_state(conn, SNAPSHOT_STATE, shop="b") == b_before
    later = NOW + dt.timedelta(minutes=5)
    two.write_batch("b-ec", Stream.CUSTOMERS, [Customer(id="3", updated_at=T0, **JIRO)])
    assert refresh(two, settings("b"), now=later).incremental_count
    assert not refresh(two, settings("a"), now=later).incremental_count


def test_a_redaction_in_one_shop_leaves_the_other_intact(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    note = "hanako@example.jp asked for gift wrapping"
    with two.engine.begin() as conn:
        # Each shop's own note about its own Hanako.
        for shop, connection in (("a", "a-ec"), ("b", "b-ec")):
            pid = profile_of(conn, connection, "1", shop=shop)
            assert pid is not None
            add_interaction(conn, pid, "inquiry", T0, "wrapping", note, shop=shop, now=T0)
    with two.engine.connect() as conn:
        b_before = load_profile(conn, profile_of(conn, "b-ec", "1", shop="b") or 0, shop="b")
        b_keys = count(two, identity_keys, identity_keys.c.shop == "b")
    two.redact_customer("a-ec", "1")
    with two.engine.connect() as conn:
        bodies = dict(conn.execute(select(interactions.c.shop, interactions.c.body)).all())
    # Her mention goes from shop a's notes; shop b's note is about its own customer.
    assert bodies == {"a": "[redacted] asked for gift wrapping", "b": note}
    # Shop b: nothing queued, nothing erased, the same email still there.
    assert count(two, profile_changes, profile_changes.c.shop == "b") == 0
    assert count(two, identity_keys, identity_keys.c.shop == "b") == b_keys
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    with two.engine.connect() as conn:
        b_after = load_profile(conn, b_before.id, shop="b")
        assert b_after.row == b_before.row
        assert b_after.email == "hanako@example.jp"
        assert [m.id for m in find_profiles(conn, "hanako@example.jp", shop="b")] == [b_before.id]
        # Shop a forgot her email: what is left of her there is the store's record.
        assert find_profiles(conn, "hanako@example.jp", shop="a") == []
        a_left = profile_of(conn, "a-pos", "P1", shop="a")
        assert a_left is not None and load_profile(conn, a_left, shop="a").email is None
        assert conn.execute(
            select(customers.c.id).where(customers.c.connection == "b-ec", customers.c.id == "1")
        ).first()


def test_a_data_request_exports_the_shop_s_profile_only(two: Store) -> None:
    refresh(two, settings("a"), now=NOW)
    refresh(two, settings("b"), now=NOW)
    data = two.export_customer("a-ec", "1")
    assert data["profile"]["shop"] == "a"
    assert {m["connection"] for m in data["profile"]["members"]} == {"a-ec", "a-pos"}
    assert {k["value"] for k in data["identity_keys"]} >= {"hanako@example.jp"}


def test_a_refresh_does_not_wait_for_another_shop_s(two: Store) -> None:
    if two.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: every refresh waits for the others")
    done: list[str] = []
    with two.engine.connect() as holder:
        # Shop b's refresh lock, held by a transaction that is "still refreshing".
        holder.begin()
        holder.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:k AS integer), CAST(:s AS integer))"),
            {"k": _PG_LOCK_KEY, "s": shop_lock_key("b")},
        )

        def run(shop: str) -> None:
            refresh(two, settings(shop), now=NOW)
            done.append(shop)

        other = threading.Thread(target=run, args=("a",))
        other.start()
        other.join(timeout=60)
        assert done == ["a"]  # shop a refreshed while shop b's lock was held
        waiting = threading.Thread(target=run, args=("b",))
        waiting.start()
        # Shop b's refresh waits for the lock; it ends once the holder lets go.
        waiting.join(timeout=0.5)
        assert done == ["a"]
        holder.rollback()
    waiting.join(timeout=60)
    assert done == ["a", "b"]


def test_lock_keys_are_stable_signed_32_bit_ints() -> None:
    keys = {shop_lock_key(s) for s in ("default", "a", "b", "tokyo-tea", "大阪")}
    assert len(keys) == 5
    assert all(-(2**31) <= k < 2**31 for k in keys)
    assert shop_lock_key("tokyo-tea") == shop_lock_key("tokyo-tea")


def test_two_shops_refreshed_at_once_end_as_one_after_the_other(two: Store) -> None:
    if two.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: refreshes never overlap")
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(shop: str) -> None:
        try:
            barrier.wait(timeout=30)
            refresh(two, settings(shop), rebuild=True, now=NOW)
        except BaseException as exc:  # reported below, with the shop's traceback
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(shop,)) for shop in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    groups = members_by_profile(two)
    assert sorted(sorted(g) for g in groups.values()) == [
        [("a", "a-ec", "1"), ("a", "a-pos", "P1")],
        [("a", "a-ec", "2")],
        [("b", "b-ec", "1"), ("b", "b-pos", "P1")],
        [("b", "b-ec", "2")],
    ]
    assert count(two, profile_changes) == 0
