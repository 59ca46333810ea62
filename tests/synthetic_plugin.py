"""A deterministic channel plugin for the core's tests: records from a seed, in memory.

Its data depends only on its settings, so any run, resumed anywhere, sees the same
records; switches make it fail in each way the error taxonomy names.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, SecretStr

import omnicrm
from omnicrm import Checkpoint, Customer, Order, OrderLine, StreamContext
from omnicrm.errors import AuthError, DataError, RateLimitedError, TransientError

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JST = dt.timezone(dt.timedelta(hours=9))

Fault = Literal["none", "transient", "rate_limited", "auth", "data", "unordered", "wrong_type"]


class SyntheticSettings(BaseModel):
    """Settings of the synthetic channel."""

    customers: int = 50
    orders: int = 80
    seed: int = 1
    generation: int = 0
    page_size: int = 20
    page_delay: float = 0.0
    token: SecretStr = SecretStr("synthetic-secret-token")
    fault: Fault = "none"
    fault_at: int = 0
    fault_times: int = 1
    checkpoint_state: bool = False


_raised: dict[tuple[str, str], int] = {}


def reset_faults() -> None:
    _raised.clear()


@functools.lru_cache(maxsize=32)
def customers(count: int, seed: int, generation: int) -> tuple[Customer, ...]:
    out = []
    for i in range(count):
        # Three customers share each timestamp, so cursor ties are exercised.
        updated = BASE + dt.timedelta(minutes=(i // 3) + seed)
        email = f"user{i}@example.jp"
        if generation and i % 7 == generation % 7:
            updated = BASE + dt.timedelta(days=30 * generation, seconds=i)
            email = f"user{i}.g{generation}@example.jp"
        out.append(
            Customer(
                id=f"gid://synthetic/Customer/{seed}{i:06d}",
                family_name="山田",
                given_name=f"太郎{i}",
                family_name_kana="ヤマダ",
                email=email,
                created_at=BASE,
                updated_at=updated.astimezone(JST),
                raw={"index": i, "generation": generation},
            )
        )
    return tuple(sorted(out, key=lambda c: (c.updated_at, c.id)))


@functools.lru_cache(maxsize=32)
def orders(count: int, customer_count: int, seed: int, generation: int) -> tuple[Order, ...]:
    out = []
    for i in range(count):
        updated = BASE + dt.timedelta(minutes=(i // 2) + seed)
        bump = 0  # a changed order says so in updated_at, as platforms do
        if generation and i % 5 == generation % 5:
            updated = BASE + dt.timedelta(days=30 * generation, seconds=i)
            bump = generation
        lines = [
            OrderLine(
                sku=f"SKU-{(i + n) % 17}",
                product_id=f"p{(i + n) % 17}",
                product_name=f"商品{(i + n) % 17}",
                quantity=1 + n + bump,
                unit_price=Decimal("1200"),
            )
            for n in range(1 + i % 3)
        ]
        subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
        out.append(
            Order(
                id=f"gid://synthetic/Order/{seed}{i:06d}",
                name=f"#{1000 + i}",
                customer_id=f"gid://synthetic/Customer/{seed}{i % max(customer_count, 1):06d}",
                placed_at=BASE,
                updated_at=updated,
                subtotal=subtotal,
                tax_total=subtotal * Decimal("0.1"),
                total=subtotal * Decimal("1.1"),
                lines=lines,
                raw={"index": i},
            )
        )
    return tuple(sorted(out, key=lambda o: (o.updated_at, o.id)))


def _page(
    ctx: StreamContext[SyntheticSettings], records: tuple[Customer, ...] | tuple[Order, ...]
) -> Iterator[Customer | Order | Checkpoint]:
    s = ctx.settings
    start = (
        0 if ctx.since is None else bisect.bisect_left([r.updated_at for r in records], ctx.since)
    )
    key = (ctx.connection, ctx.stream.value)
    for n, record in enumerate(records[start:], start=start):
        if n == s.fault_at and s.fault != "none" and _raised.get(key, 0) < s.fault_times:
            _raised[key] = _raised.get(key, 0) + 1
            raise _fault(s.fault, record)
        if s.page_delay and n % s.page_size == 0:
            time.sleep(s.page_delay)
        yield record
        if s.checkpoint_state and n % s.page_size == s.page_size - 1:
            yield Checkpoint(state={"after": record.id})


def _fault(fault: Fault, record: Customer | Order) -> Exception:
    errors: dict[str, Callable[[], Exception]] = {
        "transient": lambda: TransientError("HTTP 503 from synthetic"),
        "rate_limited": lambda: RateLimitedError("HTTP 429 from synthetic", retry_after=0.01),
        "auth": lambda: AuthError("HTTP 401: token rejected"),
        "data": lambda: DataError(f"record {record.id}: field 'total' is not a number"),
    }
    if fault in errors:
        return errors[fault]()
    raise AssertionError(f"fault {fault} is not raised as an error")


@contextlib.contextmanager
def sandbox() -> Iterator[dict[str, object]]:
    """Nothing to start: the data lives in this module. Small, for a quick demo."""
    yield {"customers": 30, "orders": 40}


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    register.channel_type(
        omnicrm.ChannelType(
            name="synthetic", settings=SyntheticSettings, title="Synthetic", sandbox=sandbox
        )
    )


@omnicrm.hookimpl
def omnicrm_sync_customers(
    ctx: StreamContext[SyntheticSettings],
) -> Iterator[Customer | Order | Checkpoint | str]:
    s = ctx.settings
    records = customers(s.customers, s.seed, s.generation)
    if s.fault == "unordered":
        records = tuple(reversed(records))
    if s.fault == "wrong_type":
        yield "not a record"
    yield from _page(ctx, records)


@omnicrm.hookimpl
def omnicrm_import_orders(ctx: StreamContext[SyntheticSettings]) -> Iterator[Order | Checkpoint]:
    s = ctx.settings
    for item in _page(ctx, orders(s.orders, s.customers, s.seed, s.generation)):
        assert not isinstance(item, Customer)
        yield item
