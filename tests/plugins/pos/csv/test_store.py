"""An export written to the store: the whole file in one transaction, and a corrected
export replacing what the first said about its receipts; both backends."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from omnicrm import Customer, Order, Stream
from omnicrm.core.store import Store
from omnicrm.core.store.schema import order_lines, orders
from omnicrm.plugins.pos.csv import Format, read_export
from tests.plugins.pos.csv.exports import AIRREGI, write

TOKYO = ZoneInfo("Asia/Tokyo")


def _import(store: Store, path: Path) -> dict[Stream, int]:
    with read_export(path, Format.AIRREGI, timezone=TOKYO) as export:
        return store.write_all("shibuya", export.batches())


def _count(store: Store, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_corrected_export_replaces_its_receipts_without_duplicates(
    store: Store, tmp_path: Path
) -> None:
    first = write(tmp_path / "会計明細_0501.csv", AIRREGI, "cp932")
    assert _import(store, first) == {Stream.CUSTOMERS: 2, Stream.ORDERS: 4}
    assert _count(store, orders) == 4 and _count(store, order_lines) == 5

    # The correction: 抹茶ラテ was rung up on the wrong receipt; 0000124 is two of them.
    lines = [line for line in AIRREGI.splitlines() if ",抹茶ラテ," not in line]
    lines = [line.replace("648,1,0,648,48,648", "648,2,0,1296,96,1296") for line in lines]
    second = write(tmp_path / "会計明細_0501_訂正.csv", "\n".join(lines) + "\n", "cp932")
    _import(store, second)
    assert _count(store, orders) == 4 and _count(store, order_lines) == 4
    kept = {o.id: o for o in store.orders("shibuya")}
    assert [line.product_name for line in kept["0000123"].lines] == ["静岡煎茶 深蒸し 100g"]
    assert kept["0000124"].lines[0].quantity == 2
    assert kept["0000124"].total == Decimal(1296)
    assert {c.id for c in store.customers("shibuya")} == {"A-0001", "A-0002"}


def test_all_batches_or_none(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "会計明細.csv", AIRREGI, "utf-8")

    def failing() -> Iterator[tuple[Stream, list[Customer] | list[Order]]]:
        with read_export(path, Format.AIRREGI, timezone=TOKYO) as export:
            yield from export.batches()
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="disk"):
        store.write_all("shibuya", failing())
    assert _count(store, orders) == 0 and list(store.customers("shibuya")) == []
