"""The checkouts stream's storage: upserts by version, a profile queued per cart, and a
customer's carts exported with them, gone with their redaction and their connection."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from omnicrm import Checkout, Customer, Stream
from omnicrm.core.store import Store
from omnicrm.core.store.schema import checkouts

AT = dt.datetime(2026, 12, 1, 3, tzinfo=dt.UTC)


def cart(ident: str, customer: str | None, **changes: object) -> Checkout:
    values: dict[str, object] = {
        "id": ident,
        "customer_id": customer,
        "created_at": AT,
        "updated_at": AT,
        "total": Decimal(3240),
        "item_count": 2,
        "recovery_url": f"https://tea.example.jp/checkouts/{ident}/recover",
    }
    return Checkout.model_validate(values | changes)


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(checkouts)).scalar_one())


def test_carts_are_written_by_version_and_exported_with_their_customer(store: Store) -> None:
    store.write_batch("shop", Stream.CUSTOMERS, [Customer(id="c1", updated_at=AT)])
    assert store.write_batch("shop", Stream.CHECKOUTS, [cart("k1", "c1"), cart("k2", None)]) == 2
    assert store.write_batch("shop", Stream.CHECKOUTS, [cart("k1", "c1")]) == 0  # same version
    done = cart("k1", "c1", updated_at=AT + dt.timedelta(hours=1), completed_at=AT)
    assert store.write_batch("shop", Stream.CHECKOUTS, [done]) == 1
    exported = store.export_customer("shop", "c1")
    (held,) = exported["checkouts"]
    assert (held["id"], held["completed_at"]) == ("k1", AT.isoformat())
    assert Decimal(held["total"]) == 3240
    assert held["recovery_url"] == "https://tea.example.jp/checkouts/k1/recover"


def test_a_redaction_takes_the_customers_carts_and_an_erasure_all(store: Store) -> None:
    store.write_batch("shop", Stream.CUSTOMERS, [Customer(id="c1", updated_at=AT)])
    store.write_batch("shop", Stream.CHECKOUTS, [cart("k1", "c1"), cart("k2", None)])
    store.redact_customer("shop", "c1")
    assert _count(store) == 1
    # A later sync cannot bring the redacted customer's cart back.
    assert (
        store.write_batch(
            "shop", Stream.CHECKOUTS, [cart("k1", "c1", updated_at=AT + dt.timedelta(days=1))]
        )
        == 0
    )
    assert _count(store) == 1
    assert store.delete_records("shop", Stream.CHECKOUTS, ["k2"]) == 1
    store.write_batch("shop", Stream.CHECKOUTS, [cart("k3", None)])
    store.erase_connection("shop")
    assert _count(store) == 0
