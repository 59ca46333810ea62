"""The shop switcher: every shop, those with connections in trouble first; type to narrow.

The segments and the customer lookup work in the shop picked here (the app shell keeps
it). The list shows each shop's connections and how many need the operator, read in a
thread worker (the names show at once, the counts as soon as they are read), so an
agency with fifty shops sees which ones have trouble before picking one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from omnicrm.tui.base import STYLESHEET
from omnicrm.tui.data import ShopRow
from omnicrm.tui.footer import KeysFooter


def shop_prompt(shop: ShopRow, current: bool) -> Text:
    """One line of the list: the picked shop marked, trouble in red."""
    text = Text("● " if current else "  ", style="bold")
    text.append(shop.label, style="bold" if current else "")
    plural = "" if shop.connections == 1 else "s"
    text.append(f"  {shop.connections} connection{plural}", style="dim")
    if shop.trouble:
        text.append(f", {shop.trouble} in trouble", style="bold red")
    return text


def matches(shop: ShopRow, words: str) -> bool:
    """Whether every word typed is in the shop's id or name (any case)."""
    seen = f"{shop.id} {shop.name}".casefold()
    return all(word in seen for word in words.casefold().split())


class ShopPicker(ModalScreen[str | None]):
    """Pick a shop: dismissed with its id, or None (Esc).

    ``shops`` are shown at once; ``load`` (called in a thread worker) reads them again
    with their connections' health.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel"),
        # The typing stays in the box; the arrows move through the list.
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]
    CSS_PATH = STYLESHEET

    def __init__(
        self, shops: list[ShopRow], current: str, load: Callable[[], list[ShopRow]] | None
    ) -> None:
        super().__init__()
        self.shops = shops
        self.current = current
        self._load_rows = load

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Switch to shop (type to narrow, Enter picks)", id="picker-title")
            yield Input(placeholder="shop name or id", id="shop-filter")
            yield OptionList(id="shops")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._fill(keep=self.current)
        self.query_one("#shop-filter", Input).focus()
        if self._load_rows is not None:
            self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        assert self._load_rows is not None
        try:
            shops = self._load_rows()
        except Exception:
            return  # the names are shown already; the app shell says when the store is lost
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._loaded, shops)

    def _loaded(self, shops: list[ShopRow]) -> None:
        self.shops = shops
        highlighted = self.query_one("#shops", OptionList).highlighted_option
        self._fill(keep=highlighted.id if highlighted is not None else None)

    def _fill(self, keep: str | None = None) -> None:
        """List the shops the words typed match, the highlight on ``keep`` if listed,
        else on the first."""
        options = self.query_one("#shops", OptionList)
        words = self.query_one("#shop-filter", Input).value
        shown = [shop for shop in self.shops if matches(shop, words)]
        options.clear_options()
        options.add_options(
            [Option(shop_prompt(shop, shop.id == self.current), id=shop.id) for shop in shown]
        )
        ids = [shop.id for shop in shown]
        if ids:
            options.highlighted = ids.index(keep) if keep in ids else 0

    @on(Input.Changed, "#shop-filter")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill()  # narrowing starts from the first that matches

    @on(Input.Submitted, "#shop-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        option = self.query_one("#shops", OptionList).highlighted_option
        if option is not None:
            self.dismiss(option.id)

    @on(OptionList.OptionSelected, "#shops")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one("#shops", OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


__all__ = ["ShopPicker", "matches", "shop_prompt"]
