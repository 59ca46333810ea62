"""The footer every screen shows: all of its keys, on two lines when one is too narrow.

Textual's footer is one line that scrolls sideways, so at 80 columns the keys past the
edge (quit among them) are simply not seen. This one lays the same keys out in a grid
with as many columns as fit the width, so it takes a second line only when it must.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey
from textual.widgets._toast import ToastRack

GAP = 1  # columns between two keys
MAX_LINES = 3


def _width(key: FooterKey) -> int:
    # Compact style: "key description", no padding (see FooterKey's CSS).
    label = f" {key.description}" if key.description else ""
    return cell_len(key.key_display) + cell_len(label)


def columns_that_fit(widths: list[int], space: int) -> int:
    """The most columns a row-major grid of items ``widths`` can have within ``space``."""
    for columns in range(len(widths), 1, -1):
        column_widths = [max(widths[i::columns]) for i in range(columns)]
        if sum(column_widths) + GAP * (columns - 1) <= space:
            return columns
    return 1


class KeysFooter(Footer):
    """The keys of the screen in front, wrapped onto more lines when they need them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(compact=True, **kwargs)
        self._keys: list[FooterKey] = []
        self._palette: FooterKey | None = None

    def compose(self) -> ComposeResult:
        items: list[Widget] = list(super().compose())
        self._prefer_plain_keys(items)
        self._keys = [
            item
            for item in items
            if isinstance(item, FooterKey) and not item.has_class("-command-palette")
        ]
        palettes = [item for item in items if item.has_class("-command-palette")]
        self._palette = palettes[0] if palettes and isinstance(palettes[0], FooterKey) else None
        self._arrange(self.size.width)
        yield from items

    def _prefer_plain_keys(self, items: list[Widget]) -> None:
        # Of an action's keys that work where the focus is, show the one typed alone
        # ('q' rather than Ctrl+Q; Ctrl+Q only where a text box takes the 'q').
        keys: dict[str, list[Binding]] = {}
        for active in self.screen.active_bindings.values():
            if active.binding.show:
                keys.setdefault(active.binding.action, []).append(active.binding)
        for item in items:
            if not isinstance(item, FooterKey) or item.action not in keys:
                continue
            plain = [b for b in keys[item.action] if len(b.key) == 1]
            if plain and item.key != plain[0].key:
                item.key = plain[0].key
                item.key_display = self.app.get_key_display(plain[0])

    def on_resize(self, event: events.Resize) -> None:
        self._arrange(event.size.width)

    def _arrange(self, width: int) -> None:
        if not self._keys or width <= 0:
            return
        space = width
        if self._palette is not None:
            space -= _width(self._palette) + 2  # its border and padding
        widths = [_width(key) for key in self._keys]
        columns = columns_that_fit(widths, space)
        lines = min(MAX_LINES, -(-len(widths) // columns))
        self.styles.grid_size_columns = columns
        self.styles.height = lines
        # Notifications stack above the footer (Textual leaves room for one line only).
        if self.is_attached:
            for rack in self.screen.query(ToastRack):
                rack.styles.margin = (0, 0, lines, 0)
