"""Members who withdrew (退会, ``Customer.withdrawn_at``): out of identity resolution, out
of every profile, wallet and segment, never a new person; their orders stay in the
shop's sales, attributed to nobody; back in when the withdrawal is cleared. On SQLite
and PostgreSQL, through the incremental refresh and the full re-resolution."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer, Order, OrderLine, OrderStatus
from omnicrm.core.store import Store
from omnicrm.core.store.schema import orders, profile_changes, redactions
from omnicrm.crm import identity
from omnicrm.crm.analytics.reports import average_order_value
from omnicrm.crm.identity import IdentitySettings, UnknownRecordError, link
from omnicrm.crm.points import PointsSettings, balance, reconcile
from omnicrm.crm.profiles import load_profile, load_record, profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.crm.schema import identity_keys, points_entries, profile_members, profiles
from omnicrm.crm.segments import count_segments

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LEFT = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
SHOP = DEFAULT_SHOP
HANAKO = {("ec", "E1"), ("pos", "P1")}  # her records, one person

HANAKO_EC = {
    "family_name": "山田",
    "given_name": "花子",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "ハナコ",
    "email": "hanako@example.jp",
    "phone": "+81 90 1234 5678",
}
HANAKO_POS = {
    "family_name_kana": "ﾔﾏﾀﾞ",
    "given_name_kana": "ﾊﾅｺ",
    "phone": "090-1234-5678",
    "member_code": "M-0001",
}
TARO = {"family_name": "佐藤", "given_name": "太郎", "email": "taro@example.jp"}


def order(oid: str, cid: str, total: int, channel: str = "web") -> Order:
    placed = NOW - dt.timedelta(days=20)
    return Order(
        id=oid,
        customer_id=cid,
        channel=channel,
        status=OrderStatus.PAID,
        placed_at=placed,
        updated_at=placed,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name="緑茶", quantity=1, unit_price=Decimal(total))],
    )


def write(store: Store, connection: str, cid: str, at: dt.datetime, **fields: object) -> None:
    store.write_batch(
        connection,
        Stream.CUSTOMERS,
        [Customer(id=cid, updated_at=at, **fields)],  # type: ignore[arg-type]
    )


def seed(store: Store, prefix: str = "") -> None:
    """Hanako online (E1) and in the store (P1), one person; Taro online (E2)."""
    ec, pos = f"{prefix}ec", f"{prefix}pos"
    write(store, pos, "P1", T0, **HANAKO_POS)
    write(store, ec, "E1", T0, **HANAKO_EC)
    write(store, ec, "E2", T0, **TARO)
    store.write_batch(pos, Stream.ORDERS, [order("PO1", "P1", 3000, "pos")])
    store.write_batch(ec, Stream.ORDERS, [order("EO1", "E1", 5000), order("EO2", "E2", 1200)])


@pytest.fixture
def shop(store: Store) -> Store:
    seed(store)
    refresh(store, now=NOW)
    return store


def members(store: Store, shop: str = SHOP) -> dict[int, set[tuple[str, str]]]:
    found: dict[int, set[tuple[str, str]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(select(profile_members).where(profile_members.c.shop == shop)):
            found.setdefault(row.profile_id, set()).add((row.connection, row.record_id))
    return found


def keys_of(store: Store, connection: str, cid: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(identity_keys)
                .where(identity_keys.c.connection == connection, identity_keys.c.record_id == cid)
            ).scalar_one()
        )


def test_a_member_who_withdraws_leaves_their_profile_and_keeps_their_sales(
    shop: Store,
) -> None:
    with shop.engine.connect() as conn:
        hanako = profile_of(conn, "ec", "E1", shop=SHOP)
        assert hanako is not None
        assert balance(conn, hanako, shop=SHOP).total == 80  # 50 online + 30 in the store
        both = count_segments(conn, {"both": "channel_mix = both"}, NOW, shop=SHOP)
        assert both == {"both": 1}
    assert sorted(members(shop).values(), key=len) == [
        {("ec", "E2")},
        {("ec", "E1"), ("pos", "P1")},
    ]

    # Hanako leaves the EC site (EC-CUBE replaces the email with a dummy address).
    write(shop, "ec", "E1", LATER, **{**HANAKO_EC, "email": "dummy@withdrawn"}, withdrawn_at=LEFT)
    result = refresh(shop, now=NOW)
    assert result.profiles_removed == 0  # the store's Hanako lives on
    assert sorted(members(shop).values(), key=len) == [{("ec", "E2")}, {("pos", "P1")}]
    assert keys_of(shop, "ec", "E1") == 0
    with shop.engine.connect() as conn:
        assert profile_of(conn, "ec", "E1", shop=SHOP) is None
        assert profile_of(conn, "pos", "P1", shop=SHOP) == hanako  # the profile was rebuilt
        person = load_profile(conn, hanako, shop=SHOP)
        assert person.email is None  # the EC record's address left with it
        assert person.number_of_orders == 1 and person.amount_spent == 3000
        assert person.channel_mix == "store_only"
        # Her online points are forfeit: the wallet holds the store's only.
        assert balance(conn, hanako, shop=SHOP).total == 30
        assert person.points_balance == 30
        assert count_segments(conn, {"both": "channel_mix = both"}, NOW, shop=SHOP) == {"both": 0}
        assert result.counts["channel:both"] == 0
        # The order is still a sale of the shop, attributed to nobody.
        notes = average_order_value(conn, shop=SHOP, now=NOW).notes
        assert any("1 purchase(s) without a known customer" in n for n in notes)
        record = load_record(conn, "ec", "E1", shop=SHOP)
        assert record is not None and record.profile_id is None
        assert record.customer.withdrawn_at == LEFT
        assert (record.orders, record.total) == (1, Decimal(5000))


def test_a_person_whose_only_record_withdraws_is_gone(shop: Store) -> None:
    buyers = {"buyers": "number_of_orders >= 1"}
    with shop.engine.connect() as conn:
        taro = profile_of(conn, "ec", "E2", shop=SHOP)
        assert count_segments(conn, buyers, NOW, shop=SHOP) == {"buyers": 2}
    before = refresh(shop, now=NOW).counts
    write(shop, "ec", "E2", LATER, **TARO, withdrawn_at=LEFT)
    result = refresh(shop, now=NOW)
    assert result.profiles_removed == 1
    # Taro was the shop's one EC-only customer: the built-in segment's count drops too.
    assert (before["channel:ec-only"], result.counts["channel:ec-only"]) == (1, 0)
    with shop.engine.connect() as conn:
        assert count_segments(conn, buyers, NOW, shop=SHOP) == {"buyers": 1}
        assert conn.execute(select(profiles.c.id).where(profiles.c.id == taro)).first() is None
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(profile_changes)).scalar_one() == 0


def test_a_withdrawn_record_never_becomes_a_new_person(shop: Store) -> None:
    write(shop, "ec", "E3", LATER, family_name="鈴木", email="jiro@example.jp", withdrawn_at=LEFT)
    shop.write_batch("ec", Stream.ORDERS, [order("EO3", "E3", 900)])
    result = refresh(shop, now=NOW)
    assert result.profiles_touched == 0
    with shop.engine.connect() as conn:
        assert profile_of(conn, "ec", "E3", shop=SHOP) is None
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 2
    assert keys_of(shop, "ec", "E3") == 0
    # Not through a full re-resolution either.
    refresh(shop, now=NOW, rebuild=True)
    with shop.engine.connect() as conn:
        assert profile_of(conn, "ec", "E3", shop=SHOP) is None
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 2


def test_a_member_who_comes_back_rejoins(shop: Store) -> None:
    write(shop, "ec", "E1", LATER, **HANAKO_EC, withdrawn_at=LEFT)
    refresh(shop, now=NOW)
    assert sorted(members(shop).values(), key=len) == [{("ec", "E2")}, {("pos", "P1")}]
    # Re-registered on the same record: the platform clears the withdrawal.
    write(shop, "ec", "E1", LATER + dt.timedelta(days=1), **HANAKO_EC)
    refresh(shop, now=NOW)
    assert sorted(members(shop).values(), key=len) == [
        {("ec", "E2")},
        {("ec", "E1"), ("pos", "P1")},
    ]
    with shop.engine.connect() as conn:
        hanako = profile_of(conn, "ec", "E1", shop=SHOP)
        assert hanako is not None
        assert load_profile(conn, hanako, shop=SHOP).amount_spent == 8000
        assert balance(conn, hanako, shop=SHOP).total == 80


def test_the_full_resolution_agrees_with_the_incremental_one(shop: Store) -> None:
    write(shop, "ec", "E1", LATER, **HANAKO_EC, withdrawn_at=LEFT)
    refresh(shop, now=NOW)
    incremental = sorted(sorted(m) for m in members(shop).values())
    with shop.engine.begin() as conn:
        identity.resolve_all(conn, IdentitySettings(), NOW, shop=SHOP)
    assert sorted(sorted(m) for m in members(shop).values()) == incremental
    refresh(shop, now=NOW, rebuild=True)
    assert (
        sorted(sorted(m) for m in members(shop).values())
        == incremental
        == [
            [("ec", "E2")],
            [("pos", "P1")],
        ]
    )


def test_a_first_full_run_leaves_withdrawn_records_out(store: Store) -> None:
    seed(store)
    write(store, "ec", "E1", LATER, **HANAKO_EC, withdrawn_at=LEFT)
    with store.engine.begin() as conn:
        identity.resolve_all(conn, IdentitySettings(), NOW, shop=SHOP)
    assert sorted(sorted(m) for m in members(store).values()) == [[("ec", "E2")], [("pos", "P1")]]
    assert keys_of(store, "ec", "E1") == 0


def test_an_operator_cannot_link_a_withdrawn_record(shop: Store) -> None:
    write(shop, "ec", "E2", LATER, **TARO, withdrawn_at=LEFT)
    refresh(shop, now=NOW)
    with shop.engine.begin() as conn, pytest.raises(UnknownRecordError, match="withdrew"):
        link(conn, ("ec", "E2"), ("pos", "P1"), shop=SHOP, settings=IdentitySettings())


def test_reconciliation_skips_a_withdrawn_members_balance(store: Store) -> None:
    write(store, "pos", "P1", T0, **HANAKO_POS, points=999)
    refresh(store, now=NOW)
    with store.engine.connect() as conn:
        assert [d.customer_id for d in reconcile(conn, PointsSettings(), shop=SHOP)] == ["P1"]
    write(store, "pos", "P1", LATER, **HANAKO_POS, points=999, withdrawn_at=LEFT)
    refresh(store, now=NOW)
    with store.engine.connect() as conn:
        assert reconcile(conn, PointsSettings(), shop=SHOP) == []


@pytest.fixture
def two(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, shops={"a-ec": "a", "a-pos": "a", "b-ec": "b", "b-pos": "b"})
    seed(opened, "a-")
    seed(opened, "b-")
    for name in ("a", "b"):
        refresh(opened, CrmSettings(shop=name), now=NOW)
    yield opened
    opened.close()


def test_a_withdrawal_in_one_shop_leaves_the_other_shop_alone(two: Store) -> None:
    write(two, "a-ec", "E1", LATER, **HANAKO_EC, withdrawn_at=LEFT)
    refresh(two, CrmSettings(shop="a"), now=NOW)
    refresh(two, CrmSettings(shop="b"), now=NOW)
    assert sorted(sorted(m) for m in members(two, "a").values()) == [
        [("a-ec", "E2")],
        [("a-pos", "P1")],
    ]
    assert sorted(sorted(m) for m in members(two, "b").values()) == [
        [("b-ec", "E1"), ("b-pos", "P1")],
        [("b-ec", "E2")],
    ]
    with two.engine.connect() as conn:
        hanako_b = profile_of(conn, "b-ec", "E1", shop="b")
        assert hanako_b is not None
        assert load_profile(conn, hanako_b, shop="b").amount_spent == 8000


def test_a_withdrawn_member_can_still_be_redacted(shop: Store) -> None:
    """Withdrawn is not erased: the record is personal data until a redaction, which
    takes it, its points and its orders' link to it as for anyone."""
    write(shop, "ec", "E1", LATER, **HANAKO_EC, withdrawn_at=LEFT)
    refresh(shop, now=NOW)
    with shop.engine.connect() as conn:
        assert conn.execute(
            select(func.count())
            .select_from(points_entries)
            .where(points_entries.c.connection == "ec", points_entries.c.customer_id == "E1")
        ).scalar_one()
    shop.redact_customer("ec", "E1")
    # A later sync of the withdrawn record does not bring it back.
    write(shop, "ec", "E1", LATER + dt.timedelta(days=1), **HANAKO_EC, withdrawn_at=LEFT)
    refresh(shop, now=NOW)
    with shop.engine.connect() as conn:
        assert load_record(conn, "ec", "E1", shop=SHOP) is None
        assert not conn.execute(
            select(func.count())
            .select_from(points_entries)
            .where(points_entries.c.connection == "ec", points_entries.c.customer_id == "E1")
        ).scalar_one()
        kept = conn.execute(
            select(orders.c.customer_id, orders.c.total).where(orders.c.id == "EO1")
        ).one()
        assert kept.customer_id is None and kept.total == 5000  # still a sale, of nobody
        assert conn.execute(
            select(redactions.c.stream, redactions.c.record_id)
            .where(redactions.c.connection == "ec")
            .order_by(redactions.c.stream)
        ).all() == [("customers", "E1"), ("orders", "EO1")]
    assert sorted(members(shop).values(), key=len) == [{("ec", "E2")}, {("pos", "P1")}]
