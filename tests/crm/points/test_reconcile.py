"""Reconciliation against the balances platforms report, on both backends."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.points import (
    Discrepancy,
    PointsSettings,
    ReconcileAgainst,
    adjust,
    apply_order_points,
    last_reconciliation,
    reconcile,
    run_reconciliation,
)
from omnicrm.crm.schema import crm_state
from tests.crm.points.shop import T0, add_profile, customer, order, write

NOW = T0 + dt.timedelta(days=1)


def _shop(store: Store) -> None:
    """Profile 1: EC c1 (ledger 10) + POS m1 (ledger 50); profile 2: POS m2 (ledger 20);
    POS m3 in no profile (ledger 0); EC c9 reports nothing."""
    write(
        store,
        "ec",
        customer("c1", points=10),  # agrees with its own entries
        customer("c9"),  # no points of its own: never compared
        order("o1", "c1", 1000),
        order("o9", "c9", 5000),
    )
    write(
        store,
        "pos",
        customer("m1", points=60),  # 10 more than its own entries; the wallet total
        customer("m2", points=15),  # 5 fewer
        customer("m3", points=8),  # unresolved, and the ledger knows nothing of it
        order("p1", "m1", 0, channel="pos", earned=50),
        order("p2", "m2", 0, channel="pos", earned=20),
    )
    add_profile(store, 1, ("ec", "c1"), ("pos", "m1"))
    add_profile(store, 2, ("pos", "m2"))
    with store.engine.begin() as conn:
        apply_order_points(conn, PointsSettings(masters=["pos"]), NOW, shop=DEFAULT_SHOP)


def test_each_member_against_its_own_entries(store: Store) -> None:
    _shop(store)
    with store.engine.connect() as conn:
        found = reconcile(conn, PointsSettings(), shop=DEFAULT_SHOP)
    assert found == [
        Discrepancy(1, "pos", "m1", 60, 50),
        Discrepancy(2, "pos", "m2", 15, 20),
        Discrepancy(None, "pos", "m3", 8, 0),
    ]
    assert [d.difference for d in found] == [10, -5, 8]


def test_each_member_against_its_wallet_total(store: Store) -> None:
    _shop(store)
    wallet = PointsSettings(reconcile_against=ReconcileAgainst.WALLET)
    with store.engine.connect() as conn:
        found = reconcile(conn, wallet, shop=DEFAULT_SHOP)
    # m1 reports the wallet (60 = 10 + 50): fine now; c1 reports only its own 10.
    assert found == [
        Discrepancy(1, "ec", "c1", 10, 60),
        Discrepancy(2, "pos", "m2", 15, 20),
        Discrepancy(None, "pos", "m3", 8, 0),
    ]
    with store.engine.begin() as conn:
        adjust(conn, 2, -5, "match the till", now=NOW, shop=DEFAULT_SHOP)
        assert [d.customer_id for d in reconcile(conn, wallet, shop=DEFAULT_SHOP)] == ["c1", "m3"]


def test_run_reconciliation_records_its_result_for_the_ui(store: Store) -> None:
    _shop(store)
    result = run_reconciliation(store, PointsSettings(), NOW, shop=DEFAULT_SHOP)
    assert (result.ran_at, result.checked, len(result.differences)) == (NOW, 4, 3)
    with store.engine.connect() as conn:
        recorded = last_reconciliation(conn, shop=DEFAULT_SHOP)
        updated = conn.execute(
            select(crm_state.c.updated_at).where(crm_state.c.key == "points_reconciliation")
        ).scalar_one()
    assert updated == NOW
    assert recorded == {
        "ran_at": NOW.isoformat(),
        "against": "member",
        "checked": 4,
        "count": 3,
        "truncated": False,
        "differences": [
            {
                "profile_id": 1,
                "connection": "pos",
                "customer_id": "m1",
                "platform_balance": 60,
                "ledger_balance": 50,
                "difference": 10,
            },
            {
                "profile_id": 2,
                "connection": "pos",
                "customer_id": "m2",
                "platform_balance": 15,
                "ledger_balance": 20,
                "difference": -5,
            },
            {
                "profile_id": None,
                "connection": "pos",
                "customer_id": "m3",
                "platform_balance": 8,
                "ledger_balance": 0,
                "difference": 8,
            },
        ],
    }
    # Fixed on the platform: the next run records no difference.
    write(
        store,
        "pos",
        customer("m1", points=50, updated=NOW),
        customer("m2", points=20, updated=NOW),
        customer("m3", points=0, updated=NOW),
    )
    later = NOW + dt.timedelta(days=1)
    assert run_reconciliation(store, PointsSettings(), later, shop=DEFAULT_SHOP).differences == []
    with store.engine.connect() as conn:
        recorded = last_reconciliation(conn, shop=DEFAULT_SHOP)
    assert recorded is not None
    assert (recorded["ran_at"], recorded["count"], recorded["differences"]) == (
        later.isoformat(),
        0,
        [],
    )


def test_nothing_reported_nothing_to_reconcile(store: Store) -> None:
    write(store, "ec", customer("c1"), order("o1", "c1", 1000))
    with store.engine.connect() as conn:
        assert reconcile(conn, PointsSettings(), shop=DEFAULT_SHOP) == []
        assert last_reconciliation(conn, shop=DEFAULT_SHOP) is None
