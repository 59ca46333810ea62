"""The EC-CUBE streams against the sandbox: complete, ascending, in +09:00 windows, and
nothing lost when rows are updated while the read pages."""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from omnicrm import Checkpoint, Customer, Order, Stream
from omnicrm.plugins.ec_cube.api import channel
from omnicrm.plugins.ec_cube.api.client import EccubeClient
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox
from omnicrm.testing import stream_context


def _read(settings: EccubeSettings, stream: Stream, since: dt.datetime | None = None) -> list[Any]:
    ctx = stream_context("ec_cube", settings, stream, since=since, connection="shop")
    reader = channel.sync_customers if stream is Stream.CUSTOMERS else channel.import_orders
    return list(reader(ctx))


def _records(items: list[Any]) -> list[Customer | Order]:
    return [i for i in items if not isinstance(i, Checkpoint)]


def _visible_orders(sandbox: EccubeSandbox) -> set[str]:
    return {str(i) for i, row in sandbox.orders.rows.items() if row.status not in ("7", "8")}


def test_a_full_read_is_every_customer_and_every_sale(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    customers = _records(_read(settings, Stream.CUSTOMERS))
    assert {c.id for c in customers} == {str(i) for i in sandbox.customers.rows}
    assert any(c.withdrawn_at is not None for c in customers)  # status 3 asked for
    orders = _records(_read(settings, Stream.ORDERS))
    assert {o.id for o in orders} == _visible_orders(sandbox)
    assert len(orders) == len({o.id for o in orders})
    for records in (customers, orders):
        stamps = [r.updated_at for r in records]
        assert stamps == sorted(stamps)


def test_windows_are_sent_in_the_shops_offset(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    seen: list[dict[str, Any]] = []
    original = EccubeClient.run

    def spy(self: EccubeClient, operation: str, variables: Any) -> dict[str, Any]:
        seen.append(dict(variables))
        return original(self, operation, variables)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(EccubeClient, "run", spy)
        _read(settings, Stream.ORDERS)
    form = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00$")
    assert seen and all(form.match(v["start"]) and form.match(v["end"]) for v in seen)


def test_an_incremental_read_starts_at_since(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    orders = _records(_read(settings, Stream.ORDERS))
    since = orders[len(orders) // 2].updated_at
    later = _records(_read(settings, Stream.ORDERS, since))
    assert {o.id for o in later} == {o.id for o in orders if o.updated_at >= since}


def _churn(sandbox: EccubeSandbox, seed: int, per_request: int) -> tuple[set[int], Any]:
    """After each answer, ``per_request`` random visible orders are saved again (moved
    to now: out of every past window, which shifts the offsets of the pages after)."""
    rng = random.Random(seed)
    moved: set[int] = set()

    def hook() -> None:
        candidates = sorted(i for i, r in sandbox.orders.rows.items() if r.status not in ("7", "8"))
        for ident in rng.sample(candidates, per_request):
            sandbox.update("order", ident)
            moved.add(ident)

    return moved, hook


def test_rows_updated_while_the_read_pages_are_never_lost(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    small = settings.model_copy(update={"page_size": 10, "window_size": 120})
    before = _visible_orders(sandbox)
    moved, hook = _churn(sandbox, 3, 2)
    sandbox.after_query = hook
    first = _records(_read(small, Stream.ORDERS))
    sandbox.after_query = None
    assert moved, "the churn must have moved rows during the read"
    read_ids = {o.id for o in first}
    # Every row that stayed in the window was read; the moved ones were read before they
    # moved or come with the next run (they are newer than this run's start).
    assert before - {str(i) for i in moved} <= read_ids
    cursor = max(o.updated_at for o in first)
    time.sleep(1.1)  # a read ends before the second it starts in: the last moves are in
    second = _records(_read(small, Stream.ORDERS, since=cursor))
    assert before <= read_ids | {o.id for o in second}


def test_plain_offset_paging_would_lose_rows(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    """The churn of the test above does skip rows under plain offset paging: that test
    can fail."""
    moved, hook = _churn(sandbox, 3, 2)
    sandbox.after_query = hook
    found: set[str] = set()
    end = channel.stamp(dt.datetime.now(dt.UTC), settings.zone)
    with EccubeClient(settings, "shop") as api:
        page = 1
        while True:
            data = api.run("Orders", {"page": page, "limit": 10, "start": None, "end": end})
            nodes = data["orders"]["nodes"]
            found |= {n["id"] for n in nodes}
            if not data["orders"]["pageInfo"]["hasNextPage"]:
                break
            page += 1
    sandbox.after_query = None
    lost = _visible_orders(sandbox) - found - {str(i) for i in moved}
    assert lost


def test_more_rows_in_one_second_than_a_page_holds(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    crowded = sorted(i for i, r in sandbox.orders.rows.items() if r.status not in ("7", "8"))[:35]
    when = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    for ident in crowded:
        sandbox.update("order", ident, at=when)
    others = iter(i for i in crowded[::7])
    churned: list[int] = []

    def hook() -> None:  # while that second is paged, one of its rows is saved again
        ident = next(others, None)
        if ident is not None:
            sandbox.update("order", ident)
            churned.append(ident)

    small = settings.model_copy(update={"page_size": 10, "window_size": 200})
    sandbox.after_query = hook
    records = _records(_read(small, Stream.ORDERS))
    sandbox.after_query = None
    ids = {o.id for o in records}
    assert {str(i) for i in crowded} - {str(i) for i in churned} <= ids


def test_faults_are_retried(sandbox: EccubeSandbox, settings: EccubeSettings) -> None:
    sleeps: list[float] = []
    ctx = stream_context(
        "ec_cube", settings, Stream.CUSTOMERS, connection="shop", sleep=sleeps.append
    )
    sandbox.fail_next(2, status=502)
    sandbox.malform_next(1)
    sandbox.delay_next(1, seconds=3)
    quick = settings.model_copy(update={"timeout": 1.0, "retries": 5})
    ctx.settings = quick
    customers = [r for r in channel.sync_customers(ctx) if not isinstance(r, Checkpoint)]
    assert len(customers) == len(sandbox.customers.rows)
    assert len(sleeps) == 4 and sandbox.injected == 4


def test_an_expired_token_is_renewed(sandbox: EccubeSandbox, settings: EccubeSettings) -> None:
    _read(settings, Stream.CUSTOMERS)
    refreshes = sandbox.refreshes
    sandbox.expire_tokens()
    assert _records(_read(settings, Stream.CUSTOMERS))
    assert sandbox.refreshes == refreshes + 1


def test_dates_are_the_shops(sandbox: EccubeSandbox, settings: EccubeSettings) -> None:
    customers = _records(_read(settings, Stream.CUSTOMERS))
    row = next(r for r in sandbox.customers.rows.values() if r.node["birth"])
    customer = next(c for c in customers if c.id == str(row.id))
    assert isinstance(customer, Customer)
    assert customer.birth_date is not None
    assert customer.birth_date.isoformat() == row.node["birth"][:10]


def _json(items: Iterator[Any]) -> bytes:
    return orjson.dumps([i.model_dump(mode="json") for i in items])


def test_a_read_ends_settle_seconds_before_the_run(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    settled = settings.model_copy(update={"settle_seconds": 60.0})
    ident = next(i for i, r in sandbox.orders.rows.items() if r.status == "5")
    sandbox.update("order", ident)  # saved just now: maybe still being committed
    items = _read(settled, Stream.ORDERS)
    assert str(ident) not in {o.id for o in _records(items)}
    last = items[-1]
    assert isinstance(last, Checkpoint) and last.cursor is not None
    assert last.cursor <= dt.datetime.now(dt.UTC) - dt.timedelta(seconds=59)
    # The next run, from that cursor, reads it once it has settled.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    ctx = stream_context("ec_cube", settled, Stream.ORDERS, since=last.cursor, connection="shop")
    ctx.until = later
    assert str(ident) in {o.id for o in _records(list(channel.import_orders(ctx)))}
