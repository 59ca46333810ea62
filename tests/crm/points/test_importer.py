"""POS point events from CSV, on both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.points import (
    ImportResult,
    PointsImportError,
    PointsSettings,
    balance,
    import_point_events,
    plus_months,
)
from tests.crm.points.shop import add_profile, ledger, rows, stored_balance

JST = dt.timezone(dt.timedelta(hours=9))

GOOD = """\
connection,customer_id,event_id,kind,points,occurred_at,order_id,note
pos,m1,E-1,earn,120,2025-04-01T10:30:00+09:00,R-100,
pos,m1,E-2,redeem,50,2025/04/02 18:05,,
pos,m1,E-3,redeem,-20,2025-04-03 09:00:00,,written negative
pos,m2,E-4,adjust,-7,2025-04-04T00:00:00Z,,
pos,m2,E-5,earn,"1,200",2025-04-05 12:00,R-101,
pos,m2,E-6,expire,\uff13\uff10,2025-04-06 12:00,,full-width digits

pos,m1,E-1,earn,120,2025-04-01T10:30:00+09:00,R-100,
"""


def _file(tmp_path: Path, text: str, name: str = "events.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _import(store: Store, path: Path, settings: PointsSettings | None = None) -> ImportResult:
    with store.engine.begin() as conn:
        return import_point_events(conn, path, settings, shop=DEFAULT_SHOP)


def test_events_become_entries_and_a_re_import_writes_nothing(store: Store, tmp_path: Path) -> None:
    add_profile(store, 1, ("pos", "m1"), ("pos", "m2"))
    path = _file(tmp_path, GOOD)
    done = _import(store, path)
    # The last line repeats E-1 word for word: read, not written twice.
    assert (done.rows, done.inserted, done.skipped) == (7, 6, 1)
    assert ledger(store) == {
        ("pos", "event:E-1"): 120,
        ("pos", "event:E-2"): -50,
        ("pos", "event:E-3"): -20,
        ("pos", "event:E-4"): -7,
        ("pos", "event:E-5"): 1200,
        ("pos", "event:E-6"): -30,
    }
    by_event = {r["event_id"]: r for r in rows(store)}
    earn = by_event["event:E-1"]
    assert (earn["kind"], earn["customer_id"], earn["order_id"]) == ("earn", "m1", "R-100")
    assert earn["occurred_at"] == dt.datetime(2025, 4, 1, 10, 30, tzinfo=JST)
    assert earn["expires_at"] == plus_months(earn["occurred_at"], 12)
    # Times without an offset are Japan time.
    assert by_event["event:E-2"]["occurred_at"] == dt.datetime(2025, 4, 2, 18, 5, tzinfo=JST)
    assert by_event["event:E-4"]["occurred_at"] == dt.datetime(2025, 4, 4, tzinfo=dt.UTC)
    assert by_event["event:E-2"]["expires_at"] is None
    assert by_event["event:E-6"]["note"] == "full-width digits"
    assert stored_balance(store, 1) == 120 - 50 - 20 - 7 + 1200 - 30

    before = rows(store)
    again = _import(store, path)
    assert (again.inserted, again.skipped) == (0, 7)
    assert rows(store) == before


def test_shift_jis_files_and_settings_without_expiry(store: Store, tmp_path: Path) -> None:
    add_profile(store, 1, ("pos", "m1"))
    text = "connection,customer_id,event_id,kind,points,occurred_at,note\n"
    text += "pos,m1,E-1,earn,10,2025-04-01 10:00,来店ポイント\n"
    path = _file(tmp_path, text, encoding="cp932")
    _import(store, path, PointsSettings(expiry_months=None))
    (entry,) = rows(store)
    assert (entry["note"], entry["expires_at"]) == ("来店ポイント", None)


def test_bad_rows_are_all_named_by_file_line_and_field_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    text = (
        "connection,customer_id,event_id,kind,points,occurred_at\n"
        "pos,m1,E-1,earn,10,2025-04-01 10:00\n"  # fine, but not written either
        "pos,m1,E-2,earn,ten,2025-04-01 10:00\n"
        "pos,m1,E-3,gift,10,2025-04-01 10:00\n"
        "pos,m1,E-4,earn,10,yesterday\n"
        "pos,,E-5,earn,10,2025-04-01 10:00\n"
        "pos,m1,E-6,earn,-5,2025-04-01 10:00\n"
        "pos,m1,E-7,earn,10\n"
        "pos,m1,E-1,earn,11,2025-04-01 10:00\n"
    )
    path = _file(tmp_path, text)
    with pytest.raises(PointsImportError) as caught:
        _import(store, path)
    assert caught.value.problems == [
        f"{path}:3:points: 'ten' is not a whole number",
        f"{path}:4:kind: 'gift' is not one of earn, redeem, expire, adjust",
        f"{path}:5:occurred_at: 'yesterday' is not a date and time "
        "(e.g. 2025-04-01T10:30:00+09:00 or 2025/04/01 10:30)",
        f"{path}:6:customer_id: missing",
        f"{path}:7:points: an earn cannot be negative (-5)",
        f"{path}:8:occurred_at: 5 values, the header has 6",  # the first column it lacks
        f"{path}:9:event_id: 'E-1' of 'pos' is already on line 2, with different contents",
    ]
    assert str(caught.value).startswith(f"{path}: 7 problem(s), nothing imported:\n")
    assert ledger(store) == {}


def test_headers_are_checked_first(store: Store, tmp_path: Path) -> None:
    path = _file(tmp_path, "connection,customer,event_id,kind,points,when\npos,m1,E,earn,1,x\n")
    with pytest.raises(PointsImportError) as caught:
        _import(store, path)
    # The shared CSV reader's wording (one problem per missing column).
    assert caught.value.problems == [
        f"{path}:1:customer: unknown column; known: connection, customer_id, event_id, "
        "kind, points, occurred_at, order_id, note",
        f"{path}:1:when: unknown column; known: connection, customer_id, event_id, "
        "kind, points, occurred_at, order_id, note",
        f"{path}:1:customer_id: required column is missing",
        f"{path}:1:occurred_at: required column is missing",
    ]
    empty = _file(tmp_path, "", name="empty.csv")
    with pytest.raises(PointsImportError, match=r"empty\.csv:1: empty file"):
        _import(store, empty)
    assert ledger(store) == {}


def test_an_event_imported_before_with_other_contents_is_refused(
    store: Store, tmp_path: Path
) -> None:
    add_profile(store, 1, ("pos", "m1"))
    header = "connection,customer_id,event_id,kind,points,occurred_at\n"
    _import(store, _file(tmp_path, header + "pos,m1,E-1,earn,10,2025-04-01 10:00\n", "a.csv"))
    changed = _file(
        tmp_path,
        header + "pos,m1,E-2,earn,5,2025-04-02 10:00\npos,m1,E-1,earn,12,2025-04-01 10:00\n",
        "b.csv",
    )
    with pytest.raises(PointsImportError) as caught:
        _import(store, changed)
    assert caught.value.problems == [
        f"{changed}:3:event_id: 'E-1' of 'pos' was imported before as earn +10 for customer 'm1'"
    ]
    assert ledger(store) == {("pos", "event:E-1"): 10}
    with store.engine.connect() as conn:
        assert balance(conn, 1, shop=DEFAULT_SHOP).total == 10
