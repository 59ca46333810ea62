"""Deletions and redaction requests are honoured, for good, on both backends."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Text, func, select

from omnicrm import Customer, Order, OrderLine, Stream
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import RunStatus, Store, inbox
from omnicrm.core.store.schema import metadata
from omnicrm.core.store.schema import orders as orders_table
from omnicrm.crm.profiles import find_profiles, profile_of
from omnicrm.crm.refresh import refresh
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments import count_all, latest_counts
from omnicrm.errors import DataError, StoreError

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
    inbox.enqueue(store, "shop", "e1", "customers/create", b"{}")
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


# -- erasure beyond the source records ------------------------------------------------------


def test_a_redaction_clears_the_profile_at_once_and_counts_stay_exact(store: Store) -> None:
    seed(store)
    refresh(store, now=T0)
    store.redact_customer("shop", "c1")
    # Before any refresh (refresh_after_sync may be off): the profile forgot them.
    with store.engine.connect() as conn:
        assert find_profiles(conn, "c1@example.jp", shop=DEFAULT_SHOP) == []
        assert (
            conn.execute(
                select(func.count())
                .select_from(profiles)
                .where(profiles.c.email == "c1@example.jp")
            ).scalar_one()
            == 0
        )
    refresh(store, now=T0 + dt.timedelta(minutes=1))
    with store.engine.connect() as conn:
        assert profile_of(conn, "shop", "c1", shop=DEFAULT_SHOP) is None
        assert {n: c.count for n, c in latest_counts(conn, shop=DEFAULT_SHOP).items()} == (
            count_all(conn, T0 + dt.timedelta(minutes=1), shop=DEFAULT_SHOP)
        )


def test_every_mention_in_free_text_is_redacted_and_others_are_kept(store: Store) -> None:
    seed(store)
    run = store.start_run("shop", trigger="manual")
    store.finish_run(
        run,
        RunStatus.FAILED,
        error="DataError: ('c1@example.jp', '+81 90 1111 2222') and 'c2@example.jp'",
    )
    store.redact_customer("shop", "c1")
    (error,) = [r.error for r in store.runs("shop")]
    assert error == "DataError: ('[redacted]', '[redacted]') and 'c2@example.jp'"


def test_every_free_text_column_is_one_a_redaction_rewrites() -> None:
    """A new Text column is free text unless it says why not: a redaction must know it."""
    from omnicrm.core.store.personal import free_text_columns

    marked = {f"{c.table.name}.{c.name}" for c in free_text_columns()}
    texts = {
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Text)
    }
    not_free = {
        "order_lines.product_name",
        "segments.expression",
        "campaigns.segment",  # a segment's name or expression, as segments.expression
        "profiles.search_text",
    }
    assert texts - not_free <= marked


# -- export files -----------------------------------------------------------------------------


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Permissions must come with creation: any later chmod fails the test, and with no
    umask a file created readable would stay readable."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a file's mode was changed after it was created")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(os, "fchmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_store_files_and_exports_are_owner_only_from_the_start(
    tmp_path: Path, no_chmod: None
) -> None:
    folder = tmp_path / "new" / "omnicrm"
    store = Store.open(f"sqlite:///{folder / 'omnicrm.db'}", exports_dir=folder / "exports")
    try:
        seed(store)
        with store.lock("shop"):
            pass
        path = store.write_export("shop", "c1", "r1")
        files = [folder / "omnicrm.db", folder / "omnicrm.db-wal", folder / "omnicrm.db-shm"]
        files.append(path)
        files.extend((folder / "omnicrm.db.locks").iterdir())
        assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
        folders = [tmp_path / "new", folder, folder / "omnicrm.db.locks", folder / "exports"]
        folders.append(path.parent)
        assert {str(f): mode(f) for f in folders} == {str(f): 0o700 for f in folders}
    finally:
        store.close()


HOSTILE = [
    "../../../../tmp/x",
    "/tmp/x",
    "..",
    "",
    "c1/../../../../x",
    "c1\x00x",
    "c1\nx",
    " c1",
    "x" * 300,
    "gid://shopify/Customer/1/../../../../../x",
]


@pytest.mark.parametrize("customer_id", HOSTILE)
def test_export_paths_come_from_checked_ids_only(tmp_path: Path, customer_id: str) -> None:
    exports_dir = tmp_path / "data" / "exports"
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'omnicrm.db'}", exports_dir=exports_dir)
    try:
        seed(store)
        try:
            path = store.write_export("shop", customer_id, request_id="../../../../tmp/x")
        except DataError as exc:
            assert customer_id not in str(exc) or not customer_id  # never echoes it
            path = None
        with pytest.raises(DataError):
            store.write_export("../../x", "c1")
        written = [p for p in tmp_path.rglob("*") if p.is_file() and "exports" in p.parts]
        assert written == ([] if path is None else [path])
        if path is not None:
            assert path.parent == exports_dir / "shop" and path.name.endswith(".json")
            assert ".." not in path.name and "/" not in path.name
        assert not (tmp_path.parent / "x.json").exists()
    finally:
        store.close()


def test_redaction_deletes_every_export_of_the_customer_and_no_other(tmp_path: Path) -> None:
    exports_dir = tmp_path / "exports"
    store = Store.open(f"sqlite:///{tmp_path / 'omnicrm.db'}", exports_dir=exports_dir)
    try:
        seed(store)
        mine = [store.write_export("shop", "c1", "r1"), store.write_export("shop", "c1", "r2")]
        theirs = store.write_export("shop", "c2", "r3")
        # Written by an older version, named from the request.
        legacy = exports_dir / "shop" / "c1-r0.json"
        legacy.write_text(json.dumps({"connection": "shop", "customer_id": "c1"}))
        store.redact_customer("shop", "c1")
        assert [p.exists() for p in [*mine, legacy]] == [False, False, False]
        assert theirs.exists()
        store.erase_connection("shop")
        assert not theirs.exists()
    finally:
        store.close()


def test_a_store_that_cannot_be_created_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot open the store") as info:
        Store(f"sqlite:///{tmp_path / 'file' / 'omnicrm.db'}")
    assert info.value.opening


def test_an_existing_database_behind_a_link_opens(tmp_path: Path) -> None:
    Store.open(f"sqlite:///{tmp_path / 'real.db'}").close()
    (tmp_path / "link.db").symlink_to(tmp_path / "real.db")
    Store.open(f"sqlite:///{tmp_path / 'link.db'}").close()


def test_the_person_is_found_however_text_writes_them() -> None:
    from omnicrm.core.store.personal import person_pattern, person_terms

    row = {
        "email": "Mio@Example.jp",
        "phone": "+819077312468",
        "family_name": "鵜飼野",
        "given_name": "澪音",
        "member_code": "0012",
        "address": {"line1": "神泉町9-97", "postal_code": "150-7731"},
        "raw": {"defaultAddress": {"address2": "メゾン 909", "city": "渋谷区"}},
    }
    terms = person_terms(row)
    assert "0012" not in terms and "渋谷区" not in terms  # nobody in particular
    pattern = person_pattern(terms)
    assert pattern is not None
    text = (
        "mio@example.JP 090-7731-2468 +81 90 7731 2468 09077312468 鵜飼野 澪音 "
        "メゾン909 〒150-7731 会員0012 渋谷区"
    )
    assert pattern.sub("*", text) == "* * * * * * * 〒* 会員0012 渋谷区"
