"""A DataTable for live lists: changing a cell renders that cell again, not the table.

Textual's `DataTable.update_cell` bumps a counter that is part of every key of its render
caches, so after any change the next frame renders every visible cell again through
Rich (about 400 on the connections screen: 40-90 ms on a quiet two-core machine, over
150 ms on a busy one, all of it on the UI thread a key press waits behind). The lists of
this UI change a few cells at a time, several times a second. `LiveTable` keeps the
counter where it was and forgets only the renders of the cells that changed; when a
change alters a column's width (which every cached render of that column depends on) it
forgets everything, as the DataTable would.

It reaches into the DataTable's render caches (private to Textual): the tests render a
`LiveTable` and a plain `DataTable` through the same changes and compare them line by
line, so a Textual release that changes those caches fails there, not on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey

Key = TypeVar("Key", bound=Hashable)


def _drop(cache: LRUCache[Key, Any], stale: Callable[[Key], bool]) -> None:
    for key in [key for key in list(cache.keys()) if stale(key)]:
        cache.discard(key)


class LiveTable(DataTable[Any]):
    """A `DataTable` whose `update_cell` re-renders only the cell it changes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stale: set[tuple[RowKey, ColumnKey]] = set()  # changed since the last render

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: CellType,
        *,
        update_width: bool = False,
    ) -> None:
        kept = self._update_count
        super().update_cell(row_key, column_key, value, update_width=update_width)
        # Every other cell's render stays valid: only this one is forgotten (at the next
        # render, once for all the cells changed meanwhile).
        self._update_count = kept
        row = row_key if isinstance(row_key, RowKey) else RowKey(row_key)
        column = column_key if isinstance(column_key, ColumnKey) else ColumnKey(column_key)
        self._stale.add((row, column))

    def render_lines(self, crop: Region) -> list[Strip]:
        if self._stale:
            self._forget_stale()
        return super().render_lines(crop)

    def _forget_stale(self) -> None:
        stale, self._stale = self._stale, set()
        rows = {row for row, _ in stale}
        indexes = {self._row_locations.get(row) for row in rows}
        _drop(self._cell_render_cache, lambda key: (key[0], key[1]) in stale)
        _drop(self._row_renderable_cache, lambda key: key[1] in indexes)
        _drop(self._row_render_cache, lambda key: key[0] in rows)
        _drop(self._line_cache, lambda key: self._row_at(key[0]) in rows)

    def _row_at(self, y: int) -> RowKey | None:
        """The row drawn on line ``y`` of the table (None: below the last row)."""
        try:
            row, _ = self._get_offsets(y)
        except (LookupError, IndexError):
            return None
        return row

    # -- widths: a changed width makes every render of its column stale --------------------

    def _widths(self) -> list[int]:
        return [column.get_render_width(self) for column in self.ordered_columns]

    def _update_column_widths(self, updated_cells: Any) -> None:
        before = self._widths()
        super()._update_column_widths(updated_cells)
        if self._widths() != before:
            self._update_count += 1

    def _update_dimensions(self, new_rows: Any) -> None:
        before = self._widths()
        super()._update_dimensions(new_rows)
        if self._widths() != before:
            self._update_count += 1
