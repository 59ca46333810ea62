"""update_rows: many rows' updates in one go, the same on SQLite and PostgreSQL (where
they are copied into a temporary table and applied by one UPDATE ... FROM)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Float, select

from omnicrm.core.store import Store
from omnicrm.crm.bulk import insert_rows, update_rows
from omnicrm.crm.schema import profile_values, profiles
from tests.crm.segments.profiles import NOW, add_profile

LATER = NOW + dt.timedelta(days=3)


def test_rows_set_their_columns_and_leave_the_others(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [add_profile(conn, family_name=f"n{i}", number_of_orders=i) for i in range(5)]
        update_rows(
            conn,
            profiles,
            [
                {"pid": ids[1], "family_name": "山田", "last_order_at": LATER, "email": None},
                {
                    "pid": ids[3],
                    "family_name": "O'Brien\t\\",
                    "last_order_at": None,
                    "email": "a@b",
                },
            ],
            key="pid",
            column="id",
        )
        # A second update of the same kind in the same transaction.
        update_rows(conn, profiles, [{"id": ids[4], "family_name": "佐藤"}])
        # Rows the WHERE leaves out stay as they were.
        update_rows(
            conn,
            profiles,
            [{"id": ids[0], "family_name": "x"}],
            where=profiles.c.shop == "another shop",
        )
        update_rows(conn, profiles, [])
        rows = conn.execute(
            select(
                profiles.c.family_name,
                profiles.c.last_order_at,
                profiles.c.email,
                profiles.c.number_of_orders,
            ).order_by(profiles.c.id)
        ).all()
    assert [r.family_name for r in rows] == ["n0", "山田", "n2", "O'Brien\t\\", "佐藤"]
    assert rows[1].last_order_at == LATER and rows[3].last_order_at is None
    assert [r.email for r in rows] == [None, None, None, "a@b", None]
    assert [r.number_of_orders for r in rows] == [0, 1, 2, 3, 4]  # not among the fields


def test_values_may_compute_from_the_row_and_the_staged_fields(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [add_profile(conn, number_of_orders=2, amount_spent=1000.0) for _ in range(3)]
        c = profiles.c
        update_rows(
            conn,
            profiles,
            [{"id": ids[0], "spent": 500.5}, {"id": ids[2], "spent": 20.0}],
            types={"spent": Float()},
            values=lambda s: {
                "number_of_orders": c.number_of_orders + 1,
                "amount_spent": c.amount_spent + s["spent"],
            },
        )
        rows = conn.execute(select(c.number_of_orders, c.amount_spent).order_by(c.id)).all()
    assert [tuple(r) for r in rows] == [(3, 1500.5), (2, 1000.0), (3, 1020.0)]


def test_a_field_that_is_no_column_needs_its_type(store: Store) -> None:
    with store.engine.begin() as conn:
        pid = add_profile(conn)
        with pytest.raises(ValueError, match="field 'spent' is not a column of profiles"):
            update_rows(conn, profiles, [{"id": pid, "spent": 1.0}], values=lambda s: {})
        with pytest.raises(ValueError, match="no key field 'id'"):
            update_rows(conn, profiles, [{"pid": pid, "email": "x"}])


def test_insert_rows_inserts_every_row_once(store: Store) -> None:
    with store.engine.begin() as conn:
        ids = [add_profile(conn) for _ in range(3)]
        rows = [
            {"profile_id": pid, "shop": "default", "attr": "tag", "value": f"キャンペーン{n}"}
            for pid in ids
            for n in range(2)
        ]
        insert_rows(conn, profile_values, rows)
        insert_rows(conn, profile_values, [])
        found = conn.execute(
            select(profile_values.c.profile_id, profile_values.c.value).order_by(
                profile_values.c.profile_id, profile_values.c.value
            )
        ).all()
    assert [tuple(r) for r in found] == [(r["profile_id"], r["value"]) for r in rows]


def test_insert_rows_gives_the_columns_left_out_their_defaults(store: Store) -> None:
    """As Core's INSERT does: a profile inserted with a few columns is complete."""
    with store.engine.begin() as conn:
        insert_rows(
            conn,
            profiles,
            [
                {"id": 41, "shop": "default", "email": "a@example.jp", "updated_at": NOW},
                {"id": 42, "shop": "default", "email": "b@example.jp", "updated_at": NOW},
            ],
        )
        found = conn.execute(
            select(
                profiles.c.id,
                profiles.c.gender,
                profiles.c.consent_email,
                profiles.c.lifecycle_stage,
                profiles.c.points_balance,
                profiles.c.rfm_group,
            ).order_by(profiles.c.id)
        ).all()
    assert [tuple(r) for r in found] == [
        (41, "unknown", "unknown", "prospect", 0, None),
        (42, "unknown", "unknown", "prospect", 0, None),
    ]
