"""The CRM refresh end to end: source records in, profiles, points and counts out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import (
    Consent,
    ConsentState,
    Customer,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
)
from omnicrm.core.store import Store
from omnicrm.core.store.schema import profile_changes
from omnicrm.crm.points import balance
from omnicrm.crm.profiles import find_profiles, load_profile, profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments import count_all, count_segments, latest_counts

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def customer(cid: str, **fields: object) -> Customer:
    fields.setdefault("updated_at", T0)
    return Customer(id=cid, **fields)  # type: ignore[arg-type]


def order(
    oid: str,
    cid: str | None,
    days_ago: int,
    total: int,
    *,
    channel: str = "web",
    status: OrderStatus = OrderStatus.PAID,
    updated: dt.datetime | None = None,
) -> Order:
    placed = NOW - dt.timedelta(days=days_ago)
    return Order(
        id=oid,
        customer_id=cid,
        channel=channel,
        location="渋谷店" if channel == "pos" else None,
        status=status,
        placed_at=placed,
        updated_at=updated or placed,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name="緑茶", quantity=1, unit_price=Decimal(total))],
    )


@pytest.fixture
def shop(store: Store) -> Store:
    """One person seen in the store (kana, hyphenated phone) and online (kanji, +81),
    and one online-only customer."""
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            customer(
                "P1",
                family_name_kana="ﾔﾏﾀﾞ",
                given_name_kana="ﾊﾅｺ",
                phone="090-1234-5678",
                member_code="M-0001",
                consents=[
                    Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN, updated_at=T0)
                ],
            )
        ],
    )
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            customer(
                "E1",
                family_name="山田",
                given_name="花子",
                family_name_kana="ヤマダ",
                given_name_kana="ハナコ",
                email=" Hanako@Example.JP ",
                phone="+81 90 1234 5678",
                tags=["vip"],
                consents=[Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN, updated_at=T0)],
            ),
            customer("E2", family_name="佐藤", given_name="一郎", email="ichiro@example.jp"),
        ],
    )
    store.write_batch("pos", Stream.ORDERS, [order("PO1", "P1", 40, 3000, channel="pos")])
    store.write_batch(
        "ec",
        Stream.ORDERS,
        [
            order("EO1", "E1", 10, 5000),
            order("EO2", "E2", 200, 1200),
            order("EO3", "E2", 5, 800, status=OrderStatus.CANCELLED),
        ],
    )
    return store


def test_first_refresh_builds_one_profile_per_person(shop: Store) -> None:
    result = refresh(shop, now=NOW)
    assert result.full is False
    with shop.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(profile_changes)).scalar_one() == 0
        hanako = profile_of(conn, "pos", "P1", shop=DEFAULT_SHOP)
        assert hanako is not None and hanako == profile_of(conn, "ec", "E1", shop=DEFAULT_SHOP)
        profile = load_profile(conn, hanako, shop=DEFAULT_SHOP)
        assert profile.email == "hanako@example.jp"
        assert profile.phone == "+819012345678"
        assert profile.number_of_orders == 2
        assert profile.amount_spent == 8000
        assert profile.channel_mix == "both"
        assert profile.consent_email == "opted_in"
        assert profile.consent_postal == "opted_in"
        assert profile.consent_line == "unknown"
        assert profile.values["store"] == ("渋谷店",)
        assert profile.values["tag"] == ("vip",)
        assert {m.connection for m in profile.members} == {"pos", "ec"}
        assert [o.id for o in profile.orders] == ["EO1", "PO1"]
        assert profile.lifecycle_stage == "repeat"
        assert profile.rfm_group is not None
        # 1 point per 100 yen by default, on every purchase, in one wallet.
        assert balance(conn, hanako, shop=DEFAULT_SHOP).total == 80
        assert profile.row["points_balance"] == 80  # written by the rebuild, from the ledger
        ichiro = profile_of(conn, "ec", "E2", shop=DEFAULT_SHOP)
        assert ichiro is not None
        # The cancelled order is not counted.
        assert load_profile(conn, ichiro, shop=DEFAULT_SHOP).number_of_orders == 1
        assert load_profile(conn, ichiro, shop=DEFAULT_SHOP).lifecycle_stage == "dormant"
        # Kana in any width finds her; so does her phone written the domestic way.
        assert [m.id for m in find_profiles(conn, "やまだ", shop=DEFAULT_SHOP)] == [hanako]
        assert [m.id for m in find_profiles(conn, "ﾔﾏﾀﾞ ﾊﾅｺ", shop=DEFAULT_SHOP)] == [hanako]
        assert [m.id for m in find_profiles(conn, "090-1234-5678", shop=DEFAULT_SHOP)] == [hanako]
        counts = {name: c.count for name, c in latest_counts(conn, shop=DEFAULT_SHOP).items()}
        assert counts == count_all(conn, NOW, shop=DEFAULT_SHOP)
        assert counts["channel:both"] == 1
        assert counts["lifecycle:dormant"] == 1


def test_a_refresh_gives_sqlite_connections_back_with_their_own_page_cache(shop: Store) -> None:
    if shop.dialect != "sqlite":
        pytest.skip("a SQLite setting")
    with shop.engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        raw = conn.connection.dbapi_connection
    refresh(shop, now=NOW)
    with shop.engine.connect() as conn:
        assert conn.connection.dbapi_connection is raw  # the pool's one connection
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before


def _ichiro_buys_in_the_store(shop: Store, *, email: str) -> None:
    """A store record of Ichiro (E2 online) and an order of 2,000 yen on it, today."""
    shop.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [customer("P2", family_name="佐藤", given_name="一郎", email=email)],
    )
    shop.write_batch("pos", Stream.ORDERS, [order("PO2", "P2", 0, 2000, channel="pos")])


def test_incremental_refresh_matches_a_full_count(shop: Store) -> None:
    refresh(shop, now=NOW)
    later = NOW + dt.timedelta(hours=1)
    # Ichiro comes back and buys in the store; a new customer appears.
    _ichiro_buys_in_the_store(shop, email="ICHIRO@example.jp")
    shop.write_batch("ec", Stream.CUSTOMERS, [customer("E3", email="new@example.jp")])
    result = refresh(shop, now=later)
    assert result.incremental_count
    with shop.engine.connect() as conn:
        ichiro = profile_of(conn, "ec", "E2", shop=DEFAULT_SHOP)
        assert ichiro is not None and profile_of(conn, "pos", "P2", shop=DEFAULT_SHOP) == ichiro
        assert load_profile(conn, ichiro, shop=DEFAULT_SHOP).channel_mix == "both"
        counts = {name: c.count for name, c in latest_counts(conn, shop=DEFAULT_SHOP).items()}
        assert counts == count_all(conn, later, shop=DEFAULT_SHOP)


def test_balances_follow_the_members_through_merges_and_rebuilds(shop: Store) -> None:
    refresh(shop, now=NOW)
    later = NOW + dt.timedelta(hours=1)
    # Ichiro's store record (20 points) joins his EC profile (12 points) in this refresh.
    _ichiro_buys_in_the_store(shop, email="ichiro@example.jp")
    refresh(shop, now=later)
    with shop.engine.connect() as conn:
        ichiro = profile_of(conn, "ec", "E2", shop=DEFAULT_SHOP)
        assert ichiro is not None
        assert load_profile(conn, ichiro, shop=DEFAULT_SHOP).row["points_balance"] == 32
    refresh(shop, now=later, rebuild=True)
    with shop.engine.connect() as conn:
        written = dict(conn.execute(select(profiles.c.id, profiles.c.points_balance)).all())
        assert sorted(written.values()) == [32, 80]
        assert all(
            balance(conn, pid, shop=DEFAULT_SHOP).total == total for pid, total in written.items()
        )


def test_a_redacted_customer_leaves_their_profile(shop: Store) -> None:
    refresh(shop, now=NOW)
    shop.redact_customer("ec", "E1")
    refresh(shop, now=NOW + dt.timedelta(minutes=5))
    with shop.engine.connect() as conn:
        hanako = profile_of(conn, "pos", "P1", shop=DEFAULT_SHOP)
        assert hanako is not None
        assert profile_of(conn, "ec", "E1", shop=DEFAULT_SHOP) is None
        profile = load_profile(conn, hanako, shop=DEFAULT_SHOP)
        # What only the erased record said is gone from the profile.
        assert profile.email is None
        assert profile.family_name is None
        assert "tag" not in profile.values
        assert [m.id for m in profile.members] == ["P1"]
        assert find_profiles(conn, "hanako@example.jp", shop=DEFAULT_SHOP) == []


def test_full_refresh_scores_everything_and_records_counts(shop: Store) -> None:
    refresh(shop, now=NOW)
    result = refresh(shop, CrmSettings(), full=True, now=NOW + dt.timedelta(days=1))
    assert result.full and not result.incremental_count
    with shop.engine.connect() as conn:
        counts = {name: c.count for name, c in latest_counts(conn, shop=DEFAULT_SHOP).items()}
        assert counts == count_all(conn, NOW + dt.timedelta(days=1), shop=DEFAULT_SHOP)
        assert all(c.previous is not None for c in latest_counts(conn, shop=DEFAULT_SHOP).values())


def test_a_first_import_never_shows_points_already_past_their_date(store: Store) -> None:
    """Orders of years ago earn points that expired long before the import: the refresh
    after the sync expires them (not only the nightly one), so every balance, the
    points_balance segment attribute included, leaves them out."""
    store.write_batch("ec", Stream.CUSTOMERS, [customer("E1", email="old@example.jp")])
    store.write_batch(
        "ec",
        Stream.ORDERS,
        [order("OLD", "E1", 800, 50_000), order("NEW", "E1", 30, 7_000)],
    )
    refresh(store, now=NOW)
    with store.engine.connect() as conn:
        pid = profile_of(conn, "ec", "E1", shop=DEFAULT_SHOP)
        assert pid is not None
        assert balance(conn, pid, shop=DEFAULT_SHOP).total == 70  # the 500 of 800 days ago are gone
        assert load_profile(conn, pid, shop=DEFAULT_SHOP).row["points_balance"] == 70
        assert count_segments(conn, {"p": "points_balance = 70"}, NOW, shop=DEFAULT_SHOP) == {
            "p": 1
        }


def test_customers_find_matches_part_of_an_email_as_it_matches_part_of_a_name(
    shop: Store,
) -> None:
    shop.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [customer("E3", family_name="山田", given_name="浩", email="yamada.h@shop.example.com")],
    )
    refresh(shop, now=NOW)
    with shop.engine.connect() as conn:
        hanako, ichiro, hiroshi = (
            profile_of(conn, "ec", c, shop=DEFAULT_SHOP) for c in ("E1", "E2", "E3")
        )

        def found(query: str) -> set[int | None]:
            return {m.id for m in find_profiles(conn, query, shop=DEFAULT_SHOP)}

        assert found("hanako@") == {hanako}
        assert found("@example.jp") == {hanako, ichiro}
        assert found("\uff25XAMPLE.jp") == {hanako, ichiro}  # a full-width E, upper case
        assert found("yamada.h") == {hiroshi}
        assert found("h@shop.example") == {hiroshi}
        assert found("やまだ") == {hanako}  # names as before (浩 has no reading here)
        assert found("山田") == {hanako, hiroshi}
        assert found("example.org") == set()
