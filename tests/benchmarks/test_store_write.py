"""benchmarks/store_write.py: its check that the store and the floor hold the same rows,
and what a run reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from benchmarks.store_write import SqliteFloor, _check_same, floor_tuples, generate, main
from omnicrm.core.channels import Stream
from omnicrm.core.store import Store


def _fill(
    path: Path, order_rows: list[tuple[object, ...]], line_rows: list[tuple[object, ...]]
) -> str:
    url = f"sqlite:///{path}"
    Store.open(url).close()
    floor = SqliteFloor(path)
    floor.write(order_rows, line_rows)
    floor.close()
    return url


def test_same_rows_stored_in_another_order_are_the_same(tmp_path: Path) -> None:
    batch = next(generate(400, 100, seed=1))
    order_rows, line_rows = floor_tuples(Store("sqlite://").engine.dialect, batch)
    assert any(row[1] == line_rows[0][1] for row in line_rows[1:])  # lines tie on order_id
    first = _fill(tmp_path / "a.db", order_rows, line_rows)
    # The other database got the same rows the other way round: rows that tie on
    # order_id sit in the opposite order on disk.
    second = _fill(tmp_path / "b.db", order_rows[::-1], line_rows[::-1])
    _check_same(first, second, len(order_rows), len(line_rows))


def test_a_line_that_differs_is_reported_by_its_key(tmp_path: Path) -> None:
    batch = next(generate(400, 100, seed=1))
    order_rows, line_rows = floor_tuples(Store("sqlite://").engine.dialect, batch)
    first = _fill(tmp_path / "a.db", order_rows, line_rows)
    changed = list(line_rows)
    changed[-1] = (*changed[-1][:-1], "1.0000")  # another discount on the last line
    second = _fill(tmp_path / "b.db", order_rows, changed)
    with pytest.raises(AssertionError, match="different order_lines: store connection="):
        _check_same(first, second, len(order_rows), len(line_rows))


def test_the_floor_writes_the_shop_the_store_writes(tmp_path: Path) -> None:
    # Orders of connections in two shops: the floor's rows must hold each order's shop
    # as the store's do, or the comparison fails (and the floor would write less).
    shops = {"bench0": "shop00", "bench1": "shop01"}
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(store_url, shops=shops)
    floor_url = f"sqlite:///{tmp_path / 'floor.db'}"
    Store.open(floor_url).close()
    floor = SqliteFloor(tmp_path / "floor.db")
    n_orders = n_lines = 0
    per_shop = {"shop00": 0, "shop01": 0}
    for n, batch in enumerate(generate(400, 50, seed=2)):
        connection = f"bench{n % 2}"
        per_shop[shops[connection]] += len(batch)
        store.write_batch(connection, Stream.ORDERS, batch)
        order_rows, line_rows = floor_tuples(
            store.engine.dialect, batch, connection, shops[connection]
        )
        floor.write(order_rows, line_rows)
        n_orders += len(order_rows)
        n_lines += len(line_rows)
    floor.close()
    store.close()
    _check_same(store_url, floor_url, n_orders, n_lines)
    with Store(floor_url).engine.connect() as conn:
        held = conn.execute(text("SELECT shop, count(*) FROM orders GROUP BY shop")).all()
    assert sorted(held) == sorted(per_shop.items())
    assert per_shop["shop01"] > 0

    # A floor writing the default shop instead is caught by the comparison.
    other = tmp_path / "other.db"
    Store.open(f"sqlite:///{other}").close()
    wrong = SqliteFloor(other)
    for n, batch in enumerate(generate(400, 50, seed=2)):
        wrong.write(*floor_tuples(Store("sqlite://").engine.dialect, batch, f"bench{n % 2}"))
    wrong.close()
    with pytest.raises(AssertionError, match="different orders"):
        _check_same(store_url, f"sqlite:///{other}", n_orders, n_lines)


def test_a_run_reports_both_sides_cpu_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    # On a shared machine wall seconds include waiting for a core; the CPU seconds of
    # both sides (SQLite works in this process) are what such a run can compare.
    assert main(["--backend", "sqlite", "--lines", "1500", "--batch", "200"]) in (0, 1)
    out = capsys.readouterr().out
    cpu = {
        side: float(re.search(rf"{side} .*\(CPU ([0-9.]+) s\)", out)[1])  # type: ignore[index]
        for side in ("floor", "store")
    }
    wall = {
        side: float(re.search(rf"{side}\s+([0-9.]+) s", out)[1])  # type: ignore[index]
        for side in ("floor", "store")
    }
    for side in ("floor", "store"):
        # Each side's CPU seconds were spent in its own calls: some, and no more than
        # the wall seconds those calls took (both to the report's two decimals).
        assert 0 < cpu[side] <= wall[side] + 0.01, (side, cpu, wall)
    ratio = float(re.search(r"ratio in CPU time ([0-9.]+)", out)[1])  # type: ignore[index]
    # The seconds are printed to two decimals: the ratio lies within what they allow
    # (the inverse, store/floor, would not), to the ratio's own two decimals.
    half = 0.005
    low = (cpu["floor"] - half) / (cpu["store"] + half)
    high = (cpu["floor"] + half) / max(cpu["store"] - half, 1e-9)
    assert low - half <= ratio <= high + half, (ratio, cpu)
