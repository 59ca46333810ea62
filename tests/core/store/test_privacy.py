"""Deletions and redaction requests are honoured, for good, on both backends."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import select

from omnicrm import Customer, Order, OrderLine, Stream
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import orders as orders_table

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def customer(cid: str, at: dt.datetime = T0) -> Customer:
    return Customer(
        id=cid,
        family_name="佐藤",
        given_name="花子",
        email=f"{cid}@example.jp",
        phone="090-1111-2222",
        updated_at=at,
        raw={"email": f"{cid}@example.jp"},
    )


def order(oid: str, cid: str | None, at: dt.datetime = T0) -> Order:
    return Order(
        id=oid,
        customer_id=cid,
        placed_at=T0,
        updated_at=at,
        subtotal=Decimal(3000),
        total=Decimal(3300),
        raw={"email": f"{cid}@example.jp", "phone": "090"},
        lines=[OrderLine(product_name="抹茶", quantity=1, unit_price=Decimal(3000))],
    )


def seed(store: Store) -> None:
    store.write_batch("shop", Stream.CUSTOMERS, [customer("c1"), customer("c2")])
    store.write_batch(
        "shop",
        Stream.ORDERS,
        [order("o1", "c1"), order("o2", "c1"), order("o3", "c2"), order("o4", None)],
    )


def test_redaction_erases_the_customer_and_the_personal_data_of_their_orders(
    store: Store,
) -> None:
    seed(store)
    store.redact_customer("shop", "c1", order_ids=["o4"])
    assert [c.id for c in store.customers("shop")] == ["c2"]
    kept = {o.id: o for o in store.orders("shop")}
    assert set(kept) == {"o1", "o2", "o3", "o4"}  # sales stay for the shop's figures
    for oid in ("o1", "o2", "o4"):
        assert kept[oid].customer_id is None
        assert "example.jp" not in json.dumps(kept[oid].model_dump(mode="json"))
        assert kept[oid].total == Decimal(3300) and len(kept[oid].lines) == 1
    assert kept["o3"].customer_id == "c2" and kept["o3"].raw["email"] == "c2@example.jp"


def test_a_later_sync_cannot_bring_redacted_data_back(store: Store) -> None:
    seed(store)
    store.redact_customer("shop", "c1")
    later = T0 + dt.timedelta(days=1)
    written = store.write_batch(
        "shop", Stream.CUSTOMERS, [customer("c1", later), customer("c3", later)]
    )
    assert written == 1
    assert store.write_batch("shop", Stream.ORDERS, [order("o1", "c1", later)]) == 0
    assert [c.id for c in store.customers("shop")] == ["c2", "c3"]
    with store.engine.connect() as conn:
        assert conn.execute(
            select(orders_table.c.raw).where(orders_table.c.id == "o1")
        ).scalar_one()["redacted_at"]
    store.redact_customer("shop", "c1")  # a repeated request is harmless


def test_erasing_a_connection_leaves_other_shops_and_run_history(store: Store) -> None:
    seed(store)
    store.write_batch("other", Stream.CUSTOMERS, [customer("c1")])
    run = store.record_run("shop", RunStatus.COMPLETE, trigger="manual")
    store.record_webhook_event("shop", "e1", "customers/create")
    store.erase_connection("shop")
    assert store.count(Stream.CUSTOMERS, "shop") == 0 and store.count(Stream.ORDERS, "shop") == 0
    assert store.count(Stream.CUSTOMERS, "other") == 1
    assert [r.id for r in store.runs("shop")] == [run]
    assert not store.webhook_seen("shop", "e1")


def test_deleted_records_go_with_their_lines(store: Store) -> None:
    seed(store)
    assert store.delete_records("shop", Stream.ORDERS, ["o1", "missing"]) == 1
    assert store.delete_records("shop", Stream.CUSTOMERS, ["c2"]) == 1
    assert sorted(o.id for o in store.orders("shop")) == ["o2", "o3", "o4"]
    assert [c.id for c in store.customers("shop")] == ["c1"]


def test_a_data_request_exports_everything_held_about_the_customer(store: Store) -> None:
    seed(store)
    data = store.export_customer("shop", "c1")
    assert data["customer"]["email"] == "c1@example.jp"
    assert sorted(o["id"] for o in data["orders"]) == ["o1", "o2"]
    json.dumps(data)  # JSON-ready
    assert store.export_customer("shop", "nobody")["customer"] is None
