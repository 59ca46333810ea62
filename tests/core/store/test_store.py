"""The store: records round-trip exactly, write_batch upserts by updated_at in one transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from omnicrm.core.channels import Stream
from omnicrm.core.records import (
    Address,
    Consent,
    ConsentState,
    Customer,
    Gender,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
)
from omnicrm.core.store import RunStatus, Store, StreamState, inbox
from omnicrm.core.store.schema import order_lines, profile_changes
from omnicrm.errors import ConfigError, DataError

JST = dt.timezone(dt.timedelta(hours=9), "JST")
T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=JST)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def customer(id_: str, updated: int = 0, **fields: Any) -> Customer:
    values: dict[str, Any] = {"family_name": "山田", "given_name": "花子"}
    values["updated_at"] = at(updated)
    values.update(fields)
    return Customer(id=id_, **values)


def line(n: int, **fields: Any) -> OrderLine:
    values: dict[str, Any] = {
        "sku": f"SKU-{n:03d}",
        "product_name": f"抹茶ラテ {n}",
        "quantity": n,
        "unit_price": Decimal("540"),
    }
    values.update(fields)
    return OrderLine(**values)


def order(id_: str, updated: int = 0, n_lines: int = 2, **fields: Any) -> Order:
    values: dict[str, Any] = {
        "name": f"#{id_[-4:]}",
        "customer_id": "gid://shopify/Customer/1",
        "placed_at": at(-60),
        "updated_at": at(updated),
        "subtotal": Decimal("1080"),
        "total": Decimal("1188"),
        "lines": [line(n) for n in range(1, n_lines + 1)],
    }
    values.update(fields)
    return Order(id=id_, **values)


def stored(store: Store, connection: str = "shop") -> dict[str, Order]:
    return {o.id: o for o in store.orders(connection)}


def stored_customers(store: Store, connection: str = "shop") -> dict[str, Customer]:
    return {c.id: c for c in store.customers(connection)}


def as_stored(record: Order | Customer, connection: str = "shop") -> Any:
    """What the store gives back: the record, from the connection it was written under."""
    return record.model_copy(update={"connection": connection})


# -- round trips ------------------------------------------------------------------------


def test_customer_round_trips_exactly(store: Store) -> None:
    c = Customer(
        id="gid://shopify/Customer/7390123456789",
        family_name="山田",
        given_name="花子",
        family_name_kana="ヤマダ",
        given_name_kana="ハナコ",
        email="hanako@example.jp",
        phone="+81 90-1234-5678",
        birth_date=dt.date(1990, 4, 1),
        gender=Gender.FEMALE,
        address=Address(
            postal_code="150-0001",
            prefecture="東京都",
            city="渋谷区",
            line1="神宮前1-2-3",
            line2="ハイツ原宿 101",
        ),
        company="株式会社サンプル",
        member_code="M-000123",
        tags=["VIP", "リピーター"],
        consents=[
            Consent(
                medium=Medium.EMAIL,
                state=ConsentState.OPTED_IN,
                updated_at=dt.datetime(2024, 1, 2, 9, 0, tzinfo=JST),
                source="checkout",
                opt_in_level="single_opt_in",
            ),
            Consent(medium=Medium.LINE, state=ConsentState.UNKNOWN),
        ],
        created_at=dt.datetime(2023, 12, 31, 23, 59, 59, 123456, tzinfo=JST),
        updated_at=dt.datetime(2024, 5, 1, 8, 30, tzinfo=JST),
        raw={
            "id": "gid://shopify/Customer/7390123456789",
            "note": "ギフト包装希望「のし」付き",
            "legacyResourceId": "7390123456789",
            "nested": {"list": [1, 2.5, None, True, "二"], "empty": {}},
        },
    )
    assert store.write_batch("shop", Stream.CUSTOMERS, [c]) == 1

    [got] = store.customers()
    assert got == as_stored(c)
    assert got.id == "gid://shopify/Customer/7390123456789"
    assert got.raw == c.raw
    for value in (got.updated_at, got.created_at, got.consents[0].updated_at):
        assert value is not None
        assert value.tzinfo is dt.UTC
    assert got.updated_at == dt.datetime(2024, 4, 30, 23, 30, tzinfo=dt.UTC)
    assert got.created_at == dt.datetime(2023, 12, 31, 14, 59, 59, 123456, tzinfo=dt.UTC)


def test_minimal_customer_round_trips(store: Store) -> None:
    c = Customer(id="1", updated_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    store.write_batch("shop", Stream.CUSTOMERS, [c])
    assert list(store.customers()) == [as_stored(c)]


def test_order_round_trips_exactly(store: Store) -> None:
    o = Order(
        id="gid://shopify/Order/5551234567890",
        name="#1001",
        customer_id="gid://shopify/Customer/7390123456789",
        channel="pos",
        location="渋谷店",
        status=OrderStatus.REFUNDED,
        placed_at=dt.datetime(2024, 3, 1, 0, 30, tzinfo=JST),  # the day before, in UTC
        cancelled_at=dt.datetime(2024, 3, 2, 12, 0, 0, 1, tzinfo=JST),
        updated_at=dt.datetime(2024, 3, 2, 12, 0, 0, 1, tzinfo=JST),
        currency="JPY",
        # Digits a float would lose: NUMERIC(18, 4) holds them all.
        subtotal=Decimal("99999999999999.9999"),
        discount_total=Decimal("0.0001"),
        shipping_total=Decimal("-12.5"),
        tax_total=Decimal("0.1"),
        total=Decimal("12345678901234.5678"),
        lines=[
            OrderLine(
                sku="MATCHA-001",
                product_id="gid://shopify/Product/8001",
                variant_id="gid://shopify/ProductVariant/9001",
                product_name="宇治抹茶 100g【限定】",
                quantity=3,
                unit_price=Decimal("1234.5678"),
                discount=Decimal("0.3"),
            ),
            OrderLine(product_name="送料無料 サンプル", quantity=0, unit_price=Decimal("0")),
            OrderLine(product_name="ほうじ茶", quantity=1, unit_price=Decimal("0.0001")),
        ],
        raw={"id": "gid://shopify/Order/5551234567890", "note": "のし紙希望", "n": [1, 2]},
    )
    assert store.write_batch("shop", Stream.ORDERS, [o]) == 1

    [got] = store.orders()
    assert got == as_stored(o)
    assert [line.product_name for line in got.lines] == [line.product_name for line in o.lines]
    for name in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
        value = getattr(got, name)
        assert isinstance(value, Decimal)
        assert value == getattr(o, name)
    assert got.subtotal == Decimal("99999999999999.9999")
    assert got.lines[0].unit_price == Decimal("1234.5678")
    assert got.placed_at == dt.datetime(2024, 2, 29, 15, 30, tzinfo=dt.UTC)
    for value in (got.placed_at, got.updated_at, got.cancelled_at):
        assert value is not None
        assert value.tzinfo is dt.UTC
    assert got.cancelled_at is not None and got.cancelled_at.microsecond == 1


def test_text_the_bulk_formats_escape_round_trips(store: Store) -> None:
    # Tabs, newlines, backslashes and a literal \\N are what COPY's text format escapes.
    awkward = "タブ\tと改行\nと\\バックスラッシュ \\N 'quote' \"dq\" ,;|"
    o = order(
        "gid://shopify/Order/\\N",
        name="\\N",
        location=awkward,
        lines=[line(1, product_name=awkward, sku="\\N"), line(2, product_name="\\N")],
        raw={"note": awkward, awkward: [awkward, None]},
    )
    c = customer("\\N", family_name=awkward, given_name="\\N", tags=[awkward], raw={"k": awkward})
    store.write_batch("shop", Stream.ORDERS, [o])
    store.write_batch("shop", Stream.CUSTOMERS, [c])
    assert list(store.orders()) == [as_stored(o)]
    assert list(store.customers()) == [as_stored(c)]
    newer = o.model_copy(update={"updated_at": at(5), "location": "\\N"})
    assert store.write_batch("shop", Stream.ORDERS, [newer]) == 1
    assert list(store.orders()) == [as_stored(newer)]


def test_raw_values_json_cannot_hold_are_stored_as_text(store: Store) -> None:
    # The store's JSON serializer writes str() of what JSON has no type for.
    when = dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=dt.UTC)
    raw = {"price": Decimal("12.50"), "at": when, "ok": [1, "一"]}
    store.write_batch("shop", Stream.ORDERS, [order("1", raw=raw)])
    store.write_batch("shop", Stream.CUSTOMERS, [customer("1", raw=raw)])
    expected = {"price": "12.50", "at": str(when), "ok": [1, "一"]}
    assert stored(store)["1"].raw == expected
    assert stored_customers(store)["1"].raw == expected


def test_orders_keep_their_own_lines(store: Store) -> None:
    batch = [
        order("gid://shopify/Order/1", n_lines=2),
        order("gid://shopify/Order/2", n_lines=0),
        order("gid://shopify/Order/3", n_lines=3),
        order("gid://shopify/Order/10", n_lines=1),
    ]
    store.write_batch("shop", Stream.ORDERS, batch)
    store.write_batch("other", Stream.ORDERS, [order("gid://shopify/Order/2", n_lines=4)])

    assert stored(store) == {o.id: as_stored(o) for o in batch}
    assert [len(o.lines) for o in store.orders()] == [4, 2, 1, 0, 3]
    assert [(o.connection, o.id) for o in store.orders()] == sorted(
        [("shop", o.id) for o in batch] + [("other", "gid://shopify/Order/2")]
    )


# -- write_batch semantics ---------------------------------------------------------------


def test_new_records_are_written_and_counted(store: Store) -> None:
    assert store.write_batch("shop", Stream.CUSTOMERS, [customer("1"), customer("2")]) == 2
    assert store.write_batch("shop", Stream.ORDERS, [order("a"), order("b"), order("c")]) == 3
    assert store.count(Stream.CUSTOMERS) == 2
    assert store.count(Stream.ORDERS) == 3
    assert store.count(Stream.ORDERS, "shop") == 3
    assert store.count(Stream.ORDERS, "other") == 0


def test_an_empty_batch_writes_nothing(store: Store) -> None:
    assert store.write_batch("shop", Stream.ORDERS, []) == 0
    assert store.write_batch("shop", Stream.CUSTOMERS, []) == 0
    assert store.count(Stream.ORDERS) == 0


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS])
def test_the_same_updated_at_again_is_a_duplicate(store: Store, stream: Stream) -> None:
    make: Any = customer if stream is Stream.CUSTOMERS else order
    first = [make("1", 5), make("2", 5)]
    assert store.write_batch("shop", stream, first) == 2
    # Same ids and updated_at, different content: skipped, the stored version stays.
    again = (
        [customer("1", 5, family_name="別人"), customer("2", 5)]
        if stream is Stream.CUSTOMERS
        else [order("1", 5, n_lines=5), order("2", 5, total=Decimal(1))]
    )
    assert store.write_batch("shop", stream, again) == 0
    got = stored_customers(store) if stream is Stream.CUSTOMERS else stored(store)
    assert got == {r.id: as_stored(r) for r in first}


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS])
def test_an_older_version_never_overwrites_a_newer(store: Store, stream: Stream) -> None:
    newer: Any
    older: Any
    if stream is Stream.CUSTOMERS:
        newer, older = customer("1", 10, email="new@example.jp"), customer("1", 9, email="old@x")
    else:
        newer, older = order("1", 10, n_lines=1), order("1", 9, n_lines=3)
    assert store.write_batch("shop", stream, [newer]) == 1
    assert store.write_batch("shop", stream, [older]) == 0
    got = stored_customers(store) if stream is Stream.CUSTOMERS else stored(store)
    assert got == {"1": as_stored(newer)}


def test_a_newer_customer_replaces_the_stored_one(store: Store) -> None:
    store.write_batch(
        "shop",
        Stream.CUSTOMERS,
        [customer("1", 0, email="a@example.jp", tags=["x"], address=Address(city="京都市"))],
    )
    newer = customer("1", 1, email=None, tags=[], family_name="佐藤", address=None)
    assert store.write_batch("shop", Stream.CUSTOMERS, [newer]) == 1
    assert stored_customers(store) == {"1": as_stored(newer)}
    assert store.count(Stream.CUSTOMERS) == 1


def test_a_newer_order_replaces_the_stored_one_and_its_lines(store: Store) -> None:
    store.write_batch("shop", Stream.ORDERS, [order("1", 0, n_lines=3), order("2", 0, n_lines=2)])
    newer = order(
        "1",
        1,
        status=OrderStatus.CANCELLED,
        cancelled_at=at(1),
        total=Decimal("0"),
        lines=[line(9, product_name="差し替え", unit_price=Decimal("9.99"))],
    )
    assert store.write_batch("shop", Stream.ORDERS, [newer]) == 1

    got = stored(store)
    assert got["1"] == as_stored(newer)
    assert len(got["2"].lines) == 2  # untouched
    with store.engine.connect() as conn:
        per_order: dict[str, int] = dict(
            conn.execute(
                select(order_lines.c.order_id, func.count()).group_by(order_lines.c.order_id)
            ).all()
        )
    assert per_order == {"1": 1, "2": 2}  # replaced, not appended


def test_a_newer_order_without_lines_drops_the_stored_lines(store: Store) -> None:
    store.write_batch("shop", Stream.ORDERS, [order("1", 0, n_lines=3)])
    assert store.write_batch("shop", Stream.ORDERS, [order("1", 1, n_lines=0)]) == 1
    assert stored(store)["1"].lines == []


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS])
def test_duplicates_within_a_batch_keep_the_latest(store: Store, stream: Stream) -> None:
    make: Any = customer if stream is Stream.CUSTOMERS else order
    v1, v2, v3 = make("1", 1), make("1", 3), make("1", 2)
    assert store.write_batch("shop", stream, [v1, v2, v3, make("2", 0)]) == 2
    got = stored_customers(store) if stream is Stream.CUSTOMERS else stored(store)
    assert got["1"].updated_at == at(3)
    assert store.count(stream) == 2


def test_a_mixed_batch_counts_only_what_it_wrote(store: Store) -> None:
    store.write_batch("shop", Stream.ORDERS, [order("same", 5), order("stale", 5), order("chg", 5)])
    batch = [
        order("same", 5, n_lines=9),  # duplicate
        order("stale", 4, n_lines=9),  # older
        order("chg", 6, n_lines=1),  # newer
        order("new", 0, n_lines=2),  # new
        order("new", 1, n_lines=3),  # newer again within the batch
    ]
    assert store.write_batch("shop", Stream.ORDERS, batch) == 2
    got = stored(store)
    assert [len(got[i].lines) for i in ("same", "stale", "chg", "new")] == [2, 2, 1, 3]


def test_connections_are_kept_apart(store: Store) -> None:
    store.write_batch("shop", Stream.ORDERS, [order("1", 5, n_lines=1)])
    # The same id under another connection is another record, even when older.
    assert store.write_batch("pos", Stream.ORDERS, [order("1", 1, n_lines=3)]) == 1
    assert len(stored(store, "shop")["1"].lines) == 1
    assert len(stored(store, "pos")["1"].lines) == 3
    assert store.write_batch("pos", Stream.ORDERS, [order("1", 2, n_lines=2)]) == 1
    assert len(stored(store, "shop")["1"].lines) == 1
    assert len(stored(store, "pos")["1"].lines) == 2


def test_a_large_batch_round_trips(store: Store) -> None:
    # More ids than one lookup chunk (5,000) and than SQLite's old variable limit.
    batch = [order(f"gid://shopify/Order/{n}", n % 7, n_lines=n % 4) for n in range(6000)]
    assert store.write_batch("shop", Stream.ORDERS, batch) == 6000
    newer = [order(f"gid://shopify/Order/{n}", 10, n_lines=1) for n in range(0, 6000, 2)]
    assert store.write_batch("shop", Stream.ORDERS, batch + newer) == 3000
    got = stored(store)
    assert len(got) == 6000
    assert got["gid://shopify/Order/4"] == as_stored(newer[2])
    assert got["gid://shopify/Order/5"] == as_stored(batch[5])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar() == (
            3000 + sum(n % 4 for n in range(1, 6000, 2))
        )


# -- checkpoints and transactions ----------------------------------------------------------


def test_the_checkpoint_is_saved_with_the_batch(store: Store) -> None:
    assert store.stream_state("shop", Stream.ORDERS) == StreamState()
    cursor = dt.datetime(2024, 5, 1, 9, 0, tzinfo=JST)
    state = {"bulk_operation": "gid://shopify/BulkOperation/1", "メモ": "途中"}
    store.write_batch("shop", Stream.ORDERS, [order("1")], StreamState(cursor, state))

    saved = store.stream_state("shop", Stream.ORDERS)
    assert saved == StreamState(cursor, state)
    assert saved.cursor is not None and saved.cursor.tzinfo is dt.UTC
    assert store.stream_state("shop", Stream.CUSTOMERS) == StreamState()
    assert store.stream_state("pos", Stream.ORDERS) == StreamState()

    # A later checkpoint replaces it, even with no records; no checkpoint leaves it alone.
    store.write_batch("shop", Stream.ORDERS, [], StreamState(None, {"page": 2}))
    assert store.stream_state("shop", Stream.ORDERS) == StreamState(None, {"page": 2})
    store.write_batch("shop", Stream.ORDERS, [order("2")])
    assert store.stream_state("shop", Stream.ORDERS) == StreamState(None, {"page": 2})


def _naive_placed_at(o: Order) -> Order:
    # model_copy(update=...) skips validation: the store itself must refuse it.
    return o.model_copy(update={"placed_at": dt.datetime(2024, 5, 1, 10, 0)})


def _null_product_name(o: Order) -> Order:
    return o.model_copy(update={"lines": [o.lines[0].model_copy(update={"product_name": None})]})


def _null_currency(o: Order) -> Order:
    return o.model_copy(update={"currency": None})


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@pytest.mark.parametrize("which", ["new", "changed"])
@pytest.mark.parametrize("spoil", [_naive_placed_at, _null_product_name, _null_currency])
def test_a_failed_write_changes_nothing(store: Store, spoil: Any, which: str) -> None:
    run_id = store.start_run("shop", trigger="manual")
    good = [order("1", 0, n_lines=2), order("2", 0, n_lines=3)]
    checkpoint = StreamState(at(0), {"page": 1})
    store.write_batch("shop", Stream.ORDERS, good, checkpoint, run_id=run_id, read=2)
    before = stored(store)

    batch = [
        order("1", 1, n_lines=1),  # changed: its lines would be replaced
        order("3", 0, n_lines=1),  # new
        order("2", 1, n_lines=2),  # changed
        order("4", 0, n_lines=2),  # new
    ]
    spoilt = [*batch[:-2], spoil(batch[-2]), batch[-1]]
    if which == "new":
        spoilt = [*batch[:-1], spoil(batch[-1])]
    with pytest.raises(Exception) as info:
        store.write_batch(
            "shop", Stream.ORDERS, spoilt, StreamState(at(1), {"page": 2}), run_id=run_id, read=4
        )
    if spoil is _naive_placed_at:
        # Refused by the column type before the database sees it, as SQLAlchemy reports it.
        assert isinstance(info.value, StatementError)
        assert isinstance(info.value.orig, ValueError)
    else:
        # The schema refused the record: a data error, not a race worth retrying.
        assert isinstance(info.value, DataError)
        assert _caused_by(info.value, IntegrityError)

    assert stored(store) == before
    assert store.stream_state("shop", Stream.ORDERS) == checkpoint
    [run] = store.runs()
    assert (run.records_read, run.records_written) == (2, 2)
    # The store is still usable, and the same batch unspoilt goes in.
    assert store.write_batch("shop", Stream.ORDERS, batch, run_id=run_id, read=4) == 4
    assert stored(store) == {o.id: as_stored(o) for o in batch}


def test_a_failed_customer_write_changes_nothing(store: Store) -> None:
    store.write_batch("shop", Stream.CUSTOMERS, [customer("1", 0)], StreamState(at(0)))
    before = stored_customers(store)
    naive = customer("2", 0).model_copy(update={"created_at": dt.datetime(2024, 1, 1)})
    with pytest.raises(Exception):  # noqa: B017
        store.write_batch(
            "shop", Stream.CUSTOMERS, [customer("1", 1, email="x@y"), naive], StreamState(at(1))
        )
    assert stored_customers(store) == before
    assert store.stream_state("shop", Stream.CUSTOMERS) == StreamState(at(0))


# -- run history -----------------------------------------------------------------------------


def test_a_run_is_recorded_from_start_to_finish(store: Store) -> None:
    run_id = store.start_run("shop", trigger="schedule", full=True)
    [run] = store.runs()
    assert run.id == run_id
    assert (run.connection, run.trigger, run.full, run.status) == (
        "shop",
        "schedule",
        True,
        RunStatus.RUNNING,
    )
    assert run.started_at.tzinfo is dt.UTC
    assert run.ended_at is None and run.duration is None
    assert (run.records_read, run.records_written, run.errors) == (0, 0, 0)
    assert run.streams == {}

    store.write_batch("shop", Stream.ORDERS, [order("1"), order("2")], run_id=run_id, read=2)
    store.write_batch("shop", Stream.ORDERS, [order("1"), order("3")], run_id=run_id, read=2)
    [run] = store.runs()
    assert (run.records_read, run.records_written) == (4, 3)

    streams = {"orders": {"read": 4, "written": 3, "cursor": "2024-05-01T01:00:00+00:00"}}
    store.finish_run(run_id, RunStatus.COMPLETE, rate_limit_wait=1.5, streams=streams)
    [run] = store.runs()
    assert run.status is RunStatus.COMPLETE
    assert run.ended_at is not None and run.ended_at.tzinfo is dt.UTC
    assert run.duration is not None and run.duration >= 0
    assert run.rate_limit_wait == 1.5
    assert run.streams == streams
    assert (run.records_read, run.records_written, run.errors, run.error) == (4, 3, 0, None)


def test_a_failed_run_keeps_its_error(store: Store) -> None:
    run_id = store.start_run("shop", trigger="manual")
    store.finish_run(run_id, RunStatus.FAILED, errors=3, error="認証エラー: 401", error_kind="auth")
    [run] = store.runs()
    assert (run.status, run.errors, run.error, run.error_kind) == (
        RunStatus.FAILED,
        3,
        "認証エラー: 401",
        "auth",
    )
    assert run.full is False


def test_runs_that_never_started_are_recorded(store: Store) -> None:
    missed = store.record_run("shop", RunStatus.MISSED, trigger="schedule", error="too late")
    skipped = store.record_run("shop", RunStatus.SKIPPED, trigger="webhook")
    held = store.record_run("shop", RunStatus.SKIPPED, trigger="schedule", error="syncing")
    by_id = {run.id: run for run in store.runs()}
    # A run skipped because another holds the lock says why, and is no error.
    assert (by_id[held].errors, by_id[held].error) == (0, "syncing")
    assert (by_id[missed].status, by_id[missed].errors, by_id[missed].error) == (
        RunStatus.MISSED,
        1,
        "too late",
    )
    assert (by_id[skipped].status, by_id[skipped].errors, by_id[skipped].error) == (
        RunStatus.SKIPPED,
        0,
        None,
    )
    assert all(run.ended_at is not None for run in by_id.values())


def test_abandon_running_fails_only_that_connections_running_runs(store: Store) -> None:
    done = store.start_run("shop", trigger="manual")
    store.finish_run(done, RunStatus.COMPLETE)
    stuck = [store.start_run("shop", trigger="schedule") for _ in range(2)]
    other = store.start_run("pos", trigger="schedule")

    assert store.abandon_running("shop") == 2
    assert store.abandon_running("shop") == 0
    by_id = {run.id: run for run in store.runs()}
    for run_id in stuck:
        run = by_id[run_id]
        assert (run.status, run.errors, run.error_kind) == (RunStatus.FAILED, 1, "abandoned")
        assert run.error is not None and "abandoned" in run.error
        assert run.ended_at is not None
    assert by_id[done].status is RunStatus.COMPLETE
    assert by_id[other].status is RunStatus.RUNNING


def test_runs_lists_the_most_recent_first(store: Store) -> None:
    ids = [store.start_run(name, trigger="manual") for name in ("shop", "pos", "shop", "app")]
    assert ids == sorted(ids)
    assert [run.id for run in store.runs()] == ids[::-1]
    assert [run.id for run in store.runs(limit=2)] == ids[:1:-1]
    assert [run.id for run in store.runs("shop")] == [ids[2], ids[0]]
    assert store.runs("nobody") == []


def test_last_runs_gives_the_latest_run_of_each_connection(store: Store) -> None:
    assert store.last_runs() == {}
    first = store.start_run("shop", trigger="manual")
    store.finish_run(first, RunStatus.FAILED, error="boom")
    pos = store.record_run("pos", RunStatus.SKIPPED, trigger="schedule")
    second = store.start_run("shop", trigger="schedule")
    latest = store.last_runs()
    assert set(latest) == {"shop", "pos"}
    assert latest["shop"].id == second and latest["shop"].status is RunStatus.RUNNING
    assert latest["pos"].id == pos


# -- webhooks ---------------------------------------------------------------------------------


def test_a_webhook_event_is_claimed_once(store: Store) -> None:
    assert not store.webhook_seen("shopify", "evt-1")
    assert inbox.enqueue(store, "shopify", "evt-1", "orders/create", b"{}") is not None
    assert store.webhook_seen("shopify", "evt-1")
    assert inbox.enqueue(store, "shopify", "evt-1", "orders/create", b"{}") is None
    assert inbox.enqueue(store, "shopify", "evt-2", "orders/create", b"{}") is not None
    assert inbox.enqueue(store, "stores_jp", "evt-1", "orders/create", b"{}") is not None
    # A duplicate rolled back cleanly: the store still works.
    assert store.write_batch("shop", Stream.ORDERS, [order("1")]) == 1


# -- opening -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://x", "not a url", "", "oracle://u:p@h/db"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Store(url)
    assert info.value.key == "store.url"


def test_repr_hides_the_password() -> None:
    store = Store("postgresql://omnicrm:s3cr3t-パス@db.example:5432/crm")
    try:
        assert "s3cr3t" not in repr(store)
        assert "***" in repr(store)
        assert "db.example" in repr(store)
        assert store.url.drivername == "postgresql+psycopg"
    finally:
        store.close()


def test_a_sqlite_store_makes_its_directory(tmp_path: Any) -> None:
    path = tmp_path / "a" / "b" / "omnicrm.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert store.write_batch("shop", Stream.ORDERS, [order("1")]) == 1
    finally:
        store.close()


def test_an_in_memory_store_works() -> None:
    store = Store.open("sqlite://")
    try:
        assert store.write_batch("shop", Stream.ORDERS, [order("1")]) == 1
        assert store.count(Stream.ORDERS) == 1
        assert list(store.orders()) == [as_stored(order("1"))]
    finally:
        store.close()


def test_only_a_duplicate_key_counts_as_a_race(store: Store) -> None:
    from sqlalchemy import insert

    from omnicrm.core.store.schema import sync_state
    from omnicrm.core.store.store import _is_unique_violation

    row = {"connection": "c", "stream": "customers", "state": {}, "updated_at": at(0)}
    with store.engine.begin() as conn:
        conn.execute(insert(sync_state), row)
    with pytest.raises(IntegrityError) as duplicate, store.engine.begin() as conn:
        conn.execute(insert(sync_state), row)
    assert _is_unique_violation(duplicate.value)
    with pytest.raises(IntegrityError) as missing, store.engine.begin() as conn:
        conn.execute(insert(sync_state), {**row, "stream": "orders", "state": None})
    assert not _is_unique_violation(missing.value)


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS])
def test_stored_versions_are_found_whatever_the_ids_hold(store: Store, stream: Stream) -> None:
    # A batch's ids go to the database as one JSON array: every character must survive it.
    make: Any = customer if stream is Stream.CUSTOMERS else order
    ids = ['a"b', "c\\d", "e,f", "顧客/1", "g h", "[1]", "null", "😀", "x" * 255]
    assert store.write_batch("shop", stream, [make(i, 5) for i in ids]) == len(ids)
    # The same versions again are duplicates; later ones are updates, not new rows.
    assert store.write_batch("shop", stream, [make(i, 5) for i in ids]) == 0
    assert store.write_batch("shop", stream, [make(i, 6) for i in ids]) == len(ids)
    got = stored_customers(store) if stream is Stream.CUSTOMERS else stored(store)
    assert got == {i: as_stored(make(i, 6)) for i in ids}


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.ORDERS])
def test_a_stored_id_is_found_wherever_it_sorts_among_the_batch(
    store: Store, stream: Stream
) -> None:
    # On SQLite a batch with nothing stored between its least and greatest id skips the
    # lookup: text order there must be Python's (digits, case, non-ASCII), and another
    # connection's ids in between must not count.
    make: Any = customer if stream is Stream.CUSTOMERS else order
    stored_ids = ["10", "Z", "顧客/2", "m"]
    store.write_batch("shop", stream, [make(i, 5) for i in stored_ids])
    store.write_batch("other", stream, [make("k", 5)])
    batches = [
        ["9", "10", "100"],  # "10" sorts first, 9 last
        ["Y", "Z", "a"],  # upper case before lower
        ["顧客/1", "顧客/2", "顧客/3"],  # in the middle, beyond ASCII
        ["m"],  # alone
        ["j", "k", "l"],  # only another connection's id in between: all new
    ]
    for batch in batches:
        # The stored ones again, same version: duplicates, not written (nor inserted twice).
        written = store.write_batch("shop", stream, [make(i, 5) for i in batch])
        assert written == len([i for i in batch if i not in stored_ids]), batch
        stored_ids += batch
    got = stored_customers(store) if stream is Stream.CUSTOMERS else stored(store)
    assert sorted(got) == sorted(set(stored_ids))


def test_checkpoints_and_run_counters_are_saved_together(store: Store) -> None:
    # On PostgreSQL the checkpoint's upsert runs inside the counters' statement (a CTE):
    # both must take effect, the first checkpoint inserted and later ones replacing it.
    run_id = store.start_run("shop", trigger="manual")
    other = StreamState(at(5), {"page": 9})
    store.write_batch("other", Stream.ORDERS, [order("9")], other)
    for n, batch in enumerate([[order("1"), order("2")], [order("3")], [order("1", 1)]]):
        checkpoint = StreamState(at(n), {"page": n})
        store.write_batch("shop", Stream.ORDERS, batch, checkpoint, run_id=run_id, read=n + 1)
        assert store.stream_state("shop", Stream.ORDERS) == checkpoint
    [run] = store.runs("shop")
    assert (run.records_read, run.records_written) == (6, 4)
    assert store.stream_state("other", Stream.ORDERS) == other
    assert store.stream_state("shop", Stream.CUSTOMERS) == StreamState()


def test_written_records_queue_their_customers_once_in_order(store: Store) -> None:
    def queued() -> list[tuple[str, str]]:
        with store.engine.connect() as conn:
            query = select(profile_changes).order_by(profile_changes.c.seq)
            return [(r.connection, i) for r in conn.execute(query) for i in r.record_ids]

    batch = [
        order("1", customer_id='c/\u5c71\u7530 "q"'),
        order("2", customer_id="c/b"),
        order("3", customer_id="c/b"),
        order("4", customer_id=None),
        order("5", customer_id="c/a"),
    ]
    store.write_batch("shop", Stream.ORDERS, batch)
    assert queued() == [("shop", "c/a"), ("shop", "c/b"), ("shop", 'c/\u5c71\u7530 "q"')]
    store.write_batch("shop", Stream.ORDERS, batch)  # nothing new: nothing queued
    store.write_batch("shop", Stream.CUSTOMERS, [customer("c/z"), customer("c/y")])
    assert queued()[3:] == [("shop", "c/y"), ("shop", "c/z")]
