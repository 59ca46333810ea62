"""Segment definitions: built-ins kept in line with the code, user segments checked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select, update

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.schema import segment_counts, segments
from omnicrm.crm.segments.builtin import BUILTIN_SEGMENTS
from omnicrm.crm.segments.catalog import (
    define,
    ensure_builtin,
    get_segment,
    list_segments,
    remove,
)
from omnicrm.crm.segments.counts import history, record_counts
from omnicrm.crm.segments.language import SegmentError, SegmentSyntaxError
from tests.crm.segments.profiles import NOW


def test_ensure_builtin_inserts_the_twenty_once(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        ensure_builtin(conn, NOW + dt.timedelta(hours=1), shop=DEFAULT_SHOP)
        listed = list_segments(conn, shop=DEFAULT_SHOP)
    assert [s.name for s in listed] == [s.name for s in BUILTIN_SEGMENTS]
    assert all(s.builtin and s.created_at == NOW for s in listed)
    champions = listed[0]
    assert (champions.name, champions.title, champions.expression) == (
        "rfm:champions",
        "Champions",
        "rfm_group = champions",
    )
    assert champions.description and "R 5, FM 4-5" in champions.description


def test_ensure_builtin_repairs_changed_and_drops_stale_rows(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        record_counts(conn, {"rfm:lost": 3, "lifecycle:new": 4}, NOW, shop=DEFAULT_SHOP)
        conn.execute(
            update(segments)
            .where(segments.c.name == "rfm:lost")
            .values(expression="rfm_group = hibernating")
        )
        conn.execute(
            update(segments)
            .where(segments.c.name == "lifecycle:new")
            .values(description="an old wording")
        )
        conn.execute(
            insert(segments).values(
                shop=DEFAULT_SHOP,
                name="rfm:gone",
                expression="age > 1",
                builtin=True,
                created_at=NOW,
            )
        )
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        assert get_segment(conn, "rfm:lost", shop=DEFAULT_SHOP).expression == "rfm_group = lost"
        assert history(conn, "rfm:lost", shop=DEFAULT_SHOP) == []  # counted the old expression
        # The same expression: its history stays.
        assert [p.count for p in history(conn, "lifecycle:new", shop=DEFAULT_SHOP)] == [4]
        assert (
            get_segment(conn, "lifecycle:new", shop=DEFAULT_SHOP).description
            == "One purchase, under 30 days ago."
        )
        with pytest.raises(SegmentError):
            get_segment(conn, "rfm:gone", shop=DEFAULT_SHOP)


def test_define_list_and_remove_a_user_segment(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        made = define(
            conn,
            "tokyo-vip",
            "prefecture = '東京都' AND customer_tags CONTAINS 'vip'",
            description="VIPs in Tokyo",
            now=NOW,
            shop=DEFAULT_SHOP,
        )
        define(conn, "a-first", "age > 20", now=NOW, shop=DEFAULT_SHOP)
        listed = list_segments(conn, shop=DEFAULT_SHOP)
        assert [s.name for s in listed[20:]] == ["a-first", "tokyo-vip"]
        assert listed[21] == made
        assert (made.builtin, made.title, made.description) == (False, "tokyo-vip", "VIPs in Tokyo")
        record_counts(conn, {"tokyo-vip": 5}, NOW, shop=DEFAULT_SHOP)
        remove(conn, "tokyo-vip", shop=DEFAULT_SHOP)
        assert [s.name for s in list_segments(conn, shop=DEFAULT_SHOP)][20:] == ["a-first"]
        count = select(func.count()).select_from(segment_counts)
        assert conn.execute(count.where(segment_counts.c.segment == "tokyo-vip")).scalar() == 0


def test_a_bad_expression_is_not_defined(store: Store) -> None:
    with store.engine.begin() as conn:
        with pytest.raises(SegmentSyntaxError) as caught:
            define(conn, "big", "amount_spent >> 100", shop=DEFAULT_SHOP)
        assert caught.value.position == 14
        assert list_segments(conn, shop=DEFAULT_SHOP) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rfm:champions", "'rfm:champions' is a built-in segment: choose another name"),
        ("lifecycle:mine", "kept for built-ins"),
        ("channel:web", "kept for built-ins"),
        ("Tokyo VIP", "bad segment name 'Tokyo VIP'"),
        ("", "bad segment name ''"),
        ("-x", "bad segment name '-x'"),
        ("x" * 101, "at most 100 characters"),
    ],
)
def test_a_bad_or_reserved_name_is_refused(store: Store, name: str, message: str) -> None:
    with store.engine.begin() as conn, pytest.raises(SegmentError) as caught:
        define(conn, name, "age > 1", shop=DEFAULT_SHOP)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("description", "message"),
    [("line\nthen \x00", "U+0000"), ("\x1b[31mred", "U+001B"), ("x" * 1001, "longer than")],
)
def test_a_description_that_no_store_keeps_is_refused(
    store: Store, description: str, message: str
) -> None:
    with (
        store.engine.begin() as conn,
        pytest.raises(SegmentError, match=message.replace("+", r"\+")),
    ):
        define(conn, "adults", "age >= 18", description=description, shop=DEFAULT_SHOP)
    with store.engine.begin() as conn:
        kept = define(
            conn, "adults", "age >= 18", description="二行の\n説明\tです", shop=DEFAULT_SHOP
        )
    assert kept.description == "二行の\n説明\tです"


def test_an_existing_segment_is_replaced_only_when_asked(store: Store) -> None:
    with store.engine.begin() as conn:
        define(conn, "adults", "age >= 18", now=NOW, shop=DEFAULT_SHOP)
        record_counts(conn, {"adults": 7}, NOW, shop=DEFAULT_SHOP)
        with pytest.raises(SegmentError, match="exists"):
            define(conn, "adults", "age >= 20", shop=DEFAULT_SHOP)
        define(
            conn, "adults", "age >= 18", description="same rule", replace=True, shop=DEFAULT_SHOP
        )
        assert [p.count for p in history(conn, "adults", shop=DEFAULT_SHOP)] == [
            7
        ]  # same expression: kept
        replaced = define(conn, "adults", "age >= 20", replace=True, shop=DEFAULT_SHOP)
        assert replaced.expression == "age >= 20" and replaced.created_at == NOW
        assert get_segment(conn, "adults", shop=DEFAULT_SHOP).expression == "age >= 20"
        assert history(conn, "adults", shop=DEFAULT_SHOP) == []


def test_builtins_cannot_be_removed_and_unknown_names_get_a_hint(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW, shop=DEFAULT_SHOP)
        with pytest.raises(SegmentError, match="built-in segment and cannot be removed"):
            remove(conn, "rfm:lost", shop=DEFAULT_SHOP)
        with pytest.raises(SegmentError) as caught:
            remove(conn, "rfm:champion", shop=DEFAULT_SHOP)
        assert str(caught.value) == "no segment named 'rfm:champion' (did you mean rfm:champions?)"
        with pytest.raises(SegmentError, match=r"^no segment named 'zzz'$"):
            get_segment(conn, "zzz", shop=DEFAULT_SHOP)
