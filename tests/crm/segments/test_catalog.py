"""Segment definitions: built-ins kept in line with the code, user segments checked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select, update

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
        ensure_builtin(conn, NOW)
        ensure_builtin(conn, NOW + dt.timedelta(hours=1))
        listed = list_segments(conn)
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
        ensure_builtin(conn, NOW)
        record_counts(conn, {"rfm:lost": 3, "lifecycle:new": 4}, NOW)
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
                name="rfm:gone", expression="age > 1", builtin=True, created_at=NOW
            )
        )
        ensure_builtin(conn, NOW)
        assert get_segment(conn, "rfm:lost").expression == "rfm_group = lost"
        assert history(conn, "rfm:lost") == []  # counted the old expression
        assert [p.count for p in history(conn, "lifecycle:new")] == [4]  # same expression
        assert get_segment(conn, "lifecycle:new").description == "One purchase, under 30 days ago."
        with pytest.raises(SegmentError):
            get_segment(conn, "rfm:gone")


def test_define_list_and_remove_a_user_segment(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW)
        made = define(
            conn,
            "tokyo-vip",
            "prefecture = '東京都' AND customer_tags CONTAINS 'vip'",
            description="VIPs in Tokyo",
            now=NOW,
        )
        define(conn, "a-first", "age > 20", now=NOW)
        listed = list_segments(conn)
        assert [s.name for s in listed[20:]] == ["a-first", "tokyo-vip"]
        assert listed[21] == made
        assert (made.builtin, made.title, made.description) == (False, "tokyo-vip", "VIPs in Tokyo")
        record_counts(conn, {"tokyo-vip": 5}, NOW)
        remove(conn, "tokyo-vip")
        assert [s.name for s in list_segments(conn)][20:] == ["a-first"]
        count = select(func.count()).select_from(segment_counts)
        assert conn.execute(count.where(segment_counts.c.segment == "tokyo-vip")).scalar() == 0


def test_a_bad_expression_is_not_defined(store: Store) -> None:
    with store.engine.begin() as conn:
        with pytest.raises(SegmentSyntaxError) as caught:
            define(conn, "big", "amount_spent >> 100")
        assert caught.value.position == 14
        assert list_segments(conn) == []


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
        define(conn, name, "age > 1")
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
        define(conn, "adults", "age >= 18", description=description)
    with store.engine.begin() as conn:
        kept = define(conn, "adults", "age >= 18", description="二行の\n説明\tです")
    assert kept.description == "二行の\n説明\tです"


def test_an_existing_segment_is_replaced_only_when_asked(store: Store) -> None:
    with store.engine.begin() as conn:
        define(conn, "adults", "age >= 18", now=NOW)
        record_counts(conn, {"adults": 7}, NOW)
        with pytest.raises(SegmentError, match="exists"):
            define(conn, "adults", "age >= 20")
        define(conn, "adults", "age >= 18", description="same rule", replace=True)
        assert [p.count for p in history(conn, "adults")] == [7]  # same expression: kept
        replaced = define(conn, "adults", "age >= 20", replace=True)
        assert replaced.expression == "age >= 20" and replaced.created_at == NOW
        assert get_segment(conn, "adults").expression == "age >= 20"
        assert history(conn, "adults") == []


def test_builtins_cannot_be_removed_and_unknown_names_get_a_hint(store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, NOW)
        with pytest.raises(SegmentError, match="built-in segment and cannot be removed"):
            remove(conn, "rfm:lost")
        with pytest.raises(SegmentError) as caught:
            remove(conn, "rfm:champion")
        assert str(caught.value) == "no segment named 'rfm:champion' (did you mean rfm:champions?)"
        with pytest.raises(SegmentError, match=r"^no segment named 'zzz'$"):
            get_segment(conn, "zzz")
