"""benchmarks/store_write.py: its check that the store and the floor hold the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.store_write import SqliteFloor, _check_same, floor_tuples, generate
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
