"""Suggested pairs: records the identity rules refused for one reason, for the operator.

`SuggestionsScreen` lists the shop's suggestions strongest first (the pair, each
record's name and birth date, why the rules refused it), with every piece of evidence of
the pair under the cursor below the table. One key links the pair (``y``: one person),
another separates it (``n``: two people); a pair a third record of one profile
blocks can be split (``s``: the pair is one person, that record someone else). The
decision goes through the same call as ``omnicrm customers suggestions link N`` /
``separate N`` / ``split N``, is remembered for good, and the pair leaves the list.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Header, Static

from omnicrm.app.runtime import Runtime
from omnicrm.crm.identity import PairSuggestion, decide, describe, suggestions
from omnicrm.tui.base import Clock, StoreScreen
from omnicrm.tui.footer import KeysFooter
from omnicrm.tui.segments import screen_shop
from omnicrm.tui.table import LiveTable

SHOWN = 200  # pairs listed at most: an operator decides the strongest first
COLUMNS: tuple[tuple[str | Text, str], ...] = (
    (Text("#", justify="right"), "id"),
    (Text("strength", justify="right"), "strength"),
    ("records", "records"),
    ("names", "names"),
    ("refused for", "conflict"),
)
EMPTY_HINT = (
    "No suggestions: every pair the rules refused was refused for good reasons, or the "
    "operator decided it. They are found at each `omnicrm crm refresh`."
)
DECIDE_HINT = "y: the same person (link) · n: two people (separate)"

Cells = tuple[Text, ...]


def suggestion_cells(found: PairSuggestion) -> Cells:
    """A suggestion's cells, each two lines: one per record."""

    def side(name: str | None, born: object) -> str:
        return f"{name or '(no name)'}{'' if born is None else f', {born}'}"

    return (
        Text(str(found.id), justify="right"),
        Text(str(found.strength), justify="right"),
        Text(f"{found.a.ref[0]}:{found.a.ref[1]}\n{found.b.ref[0]}:{found.b.ref[1]}"),
        Text(f"{side(found.a.name, found.a.birth_date)}\n{side(found.b.name, found.b.birth_date)}"),
        Text(found.conflict),
    )


def evidence_text(found: PairSuggestion) -> str:
    """Everything weighed for the pair, for the line under the table."""
    detail = found.evidence.get("detail", found.conflict)
    rule = found.evidence.get("rule")
    would = f" (but for it, rule {rule} would join them)" if rule else ""
    text = f"#{found.id}: refused for {detail}{would}.\nWeighed: {describe(found.evidence)}"
    third = _third(found)
    if third:
        text += f"\ny joins {', '.join(third)} too; s: they are someone else (split)"
    return text


def _third(found: PairSuggestion) -> list[str]:
    """The records blocking the pair that a link joins with it."""
    refs = {ref for pair in found.blocked_by for ref in pair} - {found.a.ref, found.b.ref}
    return [f"{c}:{r}" for c, r in sorted(refs)]


class SuggestionsScreen(StoreScreen):
    """The shop's suggested pairs; y links the one under the cursor, n separates it."""

    TITLE = "Suggestions"
    heading = "suggested pairs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "decide('link')", "Same person"),
        Binding("n", "decide('separate')", "Two people"),
        Binding("s", "decide('split')", "Split out"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
        shop: str | None = None,
    ) -> None:
        super().__init__(runtime, clock=clock, poll_interval=poll_interval)
        self.shop = screen_shop(runtime, shop)
        self._shown: dict[str, tuple[PairSuggestion, Cells]] = {}
        self.loads = 0  # tables shown: for tests
        self.decisions = 0  # decisions made: for tests

    def compose(self) -> ComposeResult:
        yield Header()
        table = LiveTable(id="suggestions", cursor_type="row", zebra_stripes=True)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("Loading suggestions…", id="evidence")
        yield Static(DECIDE_HINT, id="status")
        yield KeysFooter()

    def shop_heading(self) -> str:
        return self.heading_for(self.shop)

    def reload(self) -> None:
        picked = self.app_shop
        if picked is not None and picked != self.shop:
            self.shop = picked
            self.show_heading()
            self.query_one("#suggestions", DataTable).clear()
            self._shown.clear()
        self._load(self.shop)

    def action_reload(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, group="suggestions-load", exit_on_error=False)
    def _load(self, shop: str) -> None:
        try:
            with self.engine().connect() as conn:
                found = suggestions(conn, shop=shop, limit=SHOWN)
        except Exception as exc:
            self.failed(exc)
            return
        # The cells are made here, off the UI thread: it only compares them.
        rows = [(s, suggestion_cells(s)) for s in found]
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            self.app.call_from_thread(self._show, rows, shop)

    def _show(self, rows: list[tuple[PairSuggestion, Cells]], shop: str) -> None:
        """Bring the table in line with ``rows``, touching only the cells that differ."""
        if shop != self.shop:
            return
        self.loads += 1
        table: DataTable[Any] = self.query_one("#suggestions", DataTable)
        keys = [key for _, key in COLUMNS]
        wanted = {str(s.id) for s, _ in rows}
        for gone in set(self._shown) - wanted:
            table.remove_row(gone)
            del self._shown[gone]
        order = list(self._shown)
        for found, cells in rows:
            key = str(found.id)
            held = self._shown.get(key)
            if held is None:
                table.add_row(*cells, key=key, height=2)
                order.append(key)
            else:
                for column, before, after in zip(keys, held[1], cells, strict=True):
                    if before != after:
                        table.update_cell(key, column, after)
            self._shown[key] = (found, cells)
        if order != [str(s.id) for s, _ in rows]:
            # A strength changed the order (rare): lay the rows out again, in order.
            table.clear()
            for found, cells in rows:
                table.add_row(*cells, key=str(found.id), height=2)
        self._describe_current()
        self.refresh_bindings()  # the decision keys come and go with the pairs

    def _current(self) -> PairSuggestion | None:
        table: DataTable[Any] = self.query_one("#suggestions", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        held = self._shown.get(key) if key is not None else None
        return None if held is None else held[0]

    def _describe_current(self) -> None:
        current = self._current()
        text = EMPTY_HINT if current is None else evidence_text(current)
        self.query_one("#evidence", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._describe_current()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "decide":
            current = self._current()  # no pair, no decision keys in the footer
            if current is not None and parameters == ("split",):
                return bool(_third(current))  # nothing blocks it: nothing to split out
            return current is not None
        return super().check_action(action, parameters)

    def action_decide(self, decision: str) -> None:
        current = self._current()
        if current is not None:
            self._decide(current, decision, self.shop)

    @work(thread=True, group="suggestions-decide", exit_on_error=False)
    def _decide(self, found: PairSuggestion, decision: str, shop: str) -> None:
        """Decide through the store as the CLI does (the UI's reader may be read-only),
        then refresh the shop's profiles."""
        settings = self.runtime.crm_settings(shop)
        try:
            with self.runtime.store.engine.begin() as conn:
                decide(conn, found.id, decision, shop=settings.shop, settings=settings.identity)
            self.runtime.refresh(shop)
        except Exception as exc:
            self.notify(f"{type(exc).__name__}: {exc}", title="not decided", severity="error")
            return
        pair = f"{found.a.ref[0]}:{found.a.ref[1]} and {found.b.ref[0]}:{found.b.ref[1]}"
        verb = {
            "link": "linked: one person",
            "separate": "separated: two people",
            "split": f"linked: one person, {', '.join(_third(found))} taken out",
        }[decision]
        self.decisions += 1
        self.notify(f"{pair} {verb}")
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self.reload)
