"""A DataTable for live lists: changing a cell renders that cell again, not the table.

Textual's `DataTable.update_cell` bumps a counter that is part of every key of its render
caches, so after any change the next frame renders every visible cell again through
Rich (about 400 on the connections screen: 40-90 ms on a quiet two-core machine, over
150 ms on a busy one, all of it on the UI thread a key press waits behind). The lists of
this UI change a few cells at a time, several times a second. `LiveTable` keeps the
counter where it was, forgets only the renders of the cells that changed and paints only
their rows again; when a change alters a column's width it forgets the renders of that
column (the DataTable forgot every render of every column), and it keeps each cell's
measured width (the DataTable measured a whole column again for each narrower cell).

It reaches into the DataTable's render caches (private to Textual): the tests render a
`LiveTable` and a plain `DataTable` through the same changes and compare them line by
line, so a Textual release that changes those caches fails there, not on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Self, TypeVar

from textual.cache import LRUCache
from textual.geometry import Region
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import CellDoesNotExist, CellKey, CellType, ColumnKey, RowKey

Key = TypeVar("Key", bound=Hashable)


def _drop(cache: LRUCache[Key, Any], stale: Callable[[Key], bool]) -> None:
    for key in [key for key in list(cache.keys()) if stale(key)]:
        cache.discard(key)


class LiveTable(DataTable[Any]):
    """A `DataTable` whose `update_cell` re-renders only the cell it changes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stale: set[tuple[RowKey, ColumnKey]] = set()  # changed since the last render
        self._measured: dict[ColumnKey, dict[RowKey, int]] = {}  # each cell's width
        self._repaint: set[RowKey] = set()  # rows to paint again

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: CellType,
        *,
        update_width: bool = False,
    ) -> None:
        # What DataTable.update_cell does, but the counter in the render caches' keys is
        # left alone (only this cell's renders are forgotten, at the next render, once
        # for all the cells changed meanwhile), and only the row is painted again, not
        # every line of the table.
        row = row_key if isinstance(row_key, RowKey) else RowKey(row_key)
        column = column_key if isinstance(column_key, ColumnKey) else ColumnKey(column_key)
        if row not in self._row_locations or column not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={column!r}.")
        self._data[row][column] = value
        self._stale.add((row, column))
        if update_width:
            self._updated_cells.add(CellKey(row, column))
            self._require_update_dimensions = True
            self.check_idle()  # widths are measured when the table is idle
        if not self._repaint:
            self.call_later(self._repaint_rows)  # once for all the cells changed meanwhile
        self._repaint.add(row)

    def _repaint_rows(self) -> None:
        rows, self._repaint = self._repaint, set()
        indexes = [self._row_locations.get(row) for row in rows]
        shown = [index for index in indexes if index is not None]
        if 2 * len(shown) > self.size.height:
            self.refresh()  # most of what is shown: the table at once
            return
        for index in shown:
            self.refresh_row(index)

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

    # -- widths ------------------------------------------------------------------------------
    #
    # The DataTable measures a changed cell, and when it is narrower than its column
    # measures the whole column again through Rich, once per changed cell: a live row's
    # counter is nearly always narrower than the widest, so each refresh measured whole
    # columns several times. Here each cell's width is kept once measured, and a column's
    # width is the widest kept (the same width the DataTable arrives at).

    def add_row(self, *cells: CellType, **kwargs: Any) -> RowKey:
        self._measured.clear()  # rows move: measure afresh at the next change
        return super().add_row(*cells, **kwargs)

    def remove_row(self, row_key: RowKey | str) -> None:
        self._measured.clear()
        super().remove_row(row_key)

    def clear(self, columns: bool = False) -> Self:
        self._measured.clear()
        self._stale.clear()
        return super().clear(columns)

    def _measure(self, row_key: RowKey, column_key: ColumnKey) -> int:
        height = self.rows[row_key].height
        cell = default_cell_formatter(
            self._data[row_key][column_key], wrap=height != 1, height=height
        )
        return measure(self.app.console, cell, 1)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        changed: dict[ColumnKey, set[RowKey]] = {}
        for row_key, column_key in updated_cells:
            if column_key in self.columns and row_key in self.rows:
                changed.setdefault(column_key, set()).add(row_key)
        resized: set[ColumnKey] = set()
        for column_key, rows in changed.items():
            column = self.columns[column_key]
            known = self._measured.get(column_key)
            if known is None:
                known = {row: self._measure(row, column_key) for row in self.rows}
                self._measured[column_key] = known
            else:
                known.update((row, self._measure(row, column_key)) for row in rows)
            before = column.get_render_width(self)
            label = measure(self.app.console, column.label, 1)
            column.content_width = max([label, *known.values()])
            if column.get_render_width(self) != before:
                resized.add(column_key)
        self._require_update_dimensions = True
        self._forget_columns(resized)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        before = {key: column.get_render_width(self) for key, column in self.columns.items()}
        super()._update_dimensions(new_rows)
        self._forget_columns(
            {
                key
                for key, column in self.columns.items()
                if column.get_render_width(self) != before.get(key)
            }
        )

    def _forget_columns(self, columns: set[ColumnKey]) -> None:
        """A column's width changed: its cells are rendered again at the new width, and
        every line is put together again (the columns after it moved)."""
        if not columns:
            return
        _drop(self._cell_render_cache, lambda key: key[1] in columns)
        self._row_render_cache.clear()
        self._line_cache.clear()
        self.refresh()


def show_rows(
    table: DataTable[Any],
    shown: dict[str, tuple[Any, ...]],
    rows: Sequence[tuple[str, tuple[Any, ...]]],
    columns: Sequence[str],
) -> None:
    """Bring ``table`` in line with ``rows`` (each its key and its cells, one per column
    key of ``columns``), ``shown`` being what it shows now (brought in line too): a new
    row is added, a row gone is removed, and of the others only the cells that differ
    are updated (so the cursor stays, and a `LiveTable` paints only those)."""
    for key, cells in rows:
        old = shown.get(key)
        if old is None:
            table.add_row(*cells, key=key)
        else:
            for column, before, after in zip(columns, old, cells, strict=True):
                if before != after:
                    table.update_cell(key, column, after)
        shown[key] = cells
    for gone in set(shown) - {key for key, _ in rows}:
        table.remove_row(gone)
        del shown[gone]
