"""Rich renderings shared by the command line and the terminal UI.

One place decides how a profile reads, so ``omnicrm customers show`` and the terminal
UI's profile screen say the same thing the same way.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection

from omnicrm.core.identity.service import Explanation, Merge, explain
from omnicrm.core.interactions import Interaction, interactions_for
from omnicrm.core.points import Balance, balance
from omnicrm.core.profiles import Profile, load_profile

if TYPE_CHECKING:
    from omnicrm.core.config import Config

RECENT_INTERACTIONS = 10
_MEDIA = ("email", "sms", "line", "postal")
_CONSENT_STYLES = {"opted_in": "green", "opted_out": "red", "pending": "yellow"}


def local_time(moment: dt.datetime | None, tz: dt.tzinfo, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """``moment`` in the shop's time zone, saying which ("2026-12-02 09:41 JST"); "-" for
    none. A format without ``%Z`` belongs under a heading that names the zone."""
    return moment.astimezone(tz).strftime(fmt) if moment else "-"


def shop_zone(config: Config) -> ZoneInfo:
    """The shop's time zone: every time shown to a person is in it."""
    return ZoneInfo(config.scheduler.timezone)


def zone_name(tz: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """The zone's abbreviation now (or ``at``), e.g. 'JST', for a heading."""
    return (at or dt.datetime.now(dt.UTC)).astimezone(tz).strftime("%Z")


@dataclass(frozen=True)
class Col:
    """A column of a :class:`FitTable`.

    ``priority`` 0 is always shown; a higher one is left out first when the table does
    not fit. ``keep`` cells (numbers, dates, codes) are never broken across lines.
    """

    header: str
    priority: int = 0
    justify: str = "left"
    keep: bool = False


@dataclass
class FitTable:
    """A table that shows the columns that fit the width it is drawn at, by priority,
    and wraps or folds long cells rather than cutting them to an ellipsis. Columns left
    out are named in the caption."""

    columns: Sequence[Col]
    title: str | None = None
    caption: str | None = None
    box: box.Box = box.SIMPLE_HEAD
    expand: bool = False
    rows: list[list[Text]] = field(default_factory=list)

    def add_row(self, *cells: str | Text) -> None:
        """A row of cells: rich markup (escape data) or Text."""
        self.rows.append([c if isinstance(c, Text) else Text.from_markup(c) for c in cells])

    def table(self, width: int) -> Table:
        """The table as drawn ``width`` cells wide."""
        shown = list(range(len(self.columns)))
        table = self._table(shown, [])
        while Measurement.get(_MEASURE, _MEASURE.options, table).minimum > width:
            droppable = [i for i in shown if self.columns[i].priority > 0]
            if not droppable:
                break  # cells fold to fit
            # The least important goes first; of equals, the rightmost.
            shown.remove(max(droppable, key=lambda i: (self.columns[i].priority, i)))
            table = self._table(
                shown, [c.header for i, c in enumerate(self.columns) if i not in shown]
            )
        return table

    def _table(self, shown: list[int], hidden: list[str]) -> Table:
        notes = [self.caption] if self.caption else []
        if hidden:
            notes.append(f"not shown at this width: {', '.join(hidden)}")
        table = Table(
            title=self.title,
            caption="; ".join(notes) or None,
            box=self.box,
            pad_edge=False,
            title_justify="left",
            caption_justify="left",
            expand=self.expand,
        )
        for i in shown:
            column = self.columns[i]
            widest = max((_width(r[i]) for r in self.rows), default=0)
            table.add_column(
                column.header,
                justify=column.justify,  # type: ignore[arg-type]
                overflow="fold",
                min_width=max(widest, cell_len(column.header)) if column.keep else None,
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in shown))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        yield self.table(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table(options.max_width))


def _width(text: Text) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))


# Measures at a width no table reaches, so minimums are the cells' own.
_MEASURE = Console(width=100_000, file=None, color_system=None, legacy_windows=False)


@dataclass(frozen=True)
class ProfileView:
    """Everything the profile screen shows, read in one go."""

    profile: Profile
    wallet: Balance
    why: Explanation
    interactions: tuple[Interaction, ...]


def load_profile_view(conn: Connection, profile_id: int) -> ProfileView:
    """The profile, its points, its merge explanation and its latest interactions.

    Raises DataError (or UnknownProfileError) when there is no such profile.
    """
    profile = load_profile(conn, profile_id)
    return ProfileView(
        profile,
        balance(conn, profile_id),
        explain(conn, profile_id),
        tuple(interactions_for(conn, profile_id, limit=RECENT_INTERACTIONS)),
    )


def _address(profile: Profile) -> str:
    """Japanese order: postal code, prefecture, city, street, building."""
    found = profile.address or {}
    postal = found.get("postal_code") or profile.postal_code
    parts = [
        f"〒{postal}" if postal else None,
        found.get("prefecture") or profile.prefecture,
        found.get("city"),
        found.get("line1"),
        found.get("line2"),
    ]
    return " ".join(p for p in parts if p) or "-"


def _evidence(merge: Merge) -> str:
    evidence = merge.evidence
    if "operator" in evidence:
        return "linked by an operator"
    keys = ", ".join(f"{kind} {value}" for kind, value in sorted(evidence.get("keys", {}).items()))
    names = evidence.get("names")
    return "; ".join(p for p in (keys, f"names {names}" if names else "") if p) or "-"


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def render_profile_view(view: ProfileView, today: dt.date, tz: dt.tzinfo) -> RenderableType:
    """The profile as the operator reads it, top to bottom."""
    p = view.profile
    parts: list[RenderableType] = []
    # NFKC: half-width katakana from a POS (ﾔﾏﾀﾞ) reads as full-width (ヤマダ).
    kana = unicodedata.normalize(
        "NFKC", f"{p.family_name_kana or ''} {p.given_name_kana or ''}".strip()
    )
    title = Text(p.name, style="bold")
    if kana and kana != p.name:
        title.append(f"  {kana}", style="")
    title.append(f"  profile {p.id}", style="dim")
    parts.append(title)

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    age = p.age(today)
    consent = Text()
    for i, medium in enumerate(_MEDIA):
        state = str(p.row[f"consent_{medium}"])
        consent.append(("  " if i else "") + f"{medium} ")
        consent.append(state, style=_CONSENT_STYLES.get(state, "dim"))
    by_connection = ", ".join(f"{k} {v:,}" for k, v in sorted(view.wallet.by_connection.items()))
    rows: list[tuple[str, str | Text]] = [
        ("born", f"{p.birth_date} (age {age})" if age is not None else "-"),
        ("gender", p.gender),
        ("address", _address(p)),
        ("phone", p.phone or "-"),
        ("email", p.email or "-"),
        ("company", p.company or "-"),
        ("member code", p.member_code or "-"),
        ("consent", consent),
        ("points", f"{view.wallet.total:,}" + (f" ({by_connection})" if by_connection else "")),
        (
            "purchases",
            f"{p.number_of_orders} for ¥{p.amount_spent:,.0f}, first "
            f"{local_time(p.first_order_at, tz, '%Y-%m-%d')}, last "
            f"{local_time(p.last_order_at, tz, '%Y-%m-%d')}",
        ),
        ("channels", f"{p.channel_mix}: {', '.join(p.values.get('channel', ())) or '-'}"),
        ("stores", ", ".join(p.values.get("store", ())) or "-"),
        ("tags", ", ".join(p.values.get("tag", ())) or "-"),
        ("stage", f"{p.lifecycle_stage}" + (f", RFM {p.rfm_group}" if p.rfm_group else "")),
    ]
    for label, value in rows:
        head.add_row(label, value)
    parts.append(head)

    parts.append(_section(f"Recent orders ({len(p.orders)})"))
    if p.orders:
        orders = FitTable(
            [
                Col("placed", keep=True),
                Col("where", 2),
                Col("order"),
                Col("status", 3),
                Col("total", justify="right", keep=True),
                Col("products", 1),
            ],
            expand=True,
        )
        for o in p.orders:
            orders.add_row(
                local_time(o.placed_at, tz, "%Y-%m-%d"),
                # "pos 渋谷店", or "ec web" when the connection is not named for its channel.
                escape(
                    " ".join(
                        dict.fromkeys(
                            part for part in (o.connection, o.channel, o.location) if part
                        )
                    )
                ),
                escape(o.name or o.id),
                escape(o.status),
                f"{o.total:,.0f} {o.currency}",
                escape(", ".join(o.products) or "-"),
            )
        parts.append(orders)
    else:
        parts.append(Text("no orders", style="dim"))

    parts.append(_section(f"Source records ({len(p.members)})"))
    sources = FitTable(
        [
            Col("connection"),
            Col("record"),
            Col("name", 1),
            Col("email", 2),
            Col("phone", 3, keep=True),
            Col("updated", 4, keep=True),
        ],
        expand=True,
    )
    for m in p.members:
        sources.add_row(
            escape(m.connection),
            escape(m.id),
            escape(m.name or "-"),
            escape(m.email or "-"),
            escape(m.phone or "-"),
            local_time(m.updated_at, tz, "%Y-%m-%d"),
        )
    parts.append(sources)

    parts.append(_section("Why these records are one person"))
    if view.why.merges:
        merges = FitTable(
            [Col("records"), Col("rule", 2), Col("evidence", 1), Col("merged", 3, keep=True)],
            expand=True,
        )
        for merge in view.why.merges:
            merges.add_row(
                escape(f"{merge.a[0]}:{merge.a[1]} + {merge.b[0]}:{merge.b[1]}"),
                escape(merge.rule),
                escape(_evidence(merge)),
                local_time(merge.merged_at, tz),
            )
        parts.append(merges)
    else:
        parts.append(Text("a single source record: nothing was merged", style="dim"))
    for override in view.why.overrides:
        sign = "+" if override.kind == "link" else "/"
        parts.append(
            Text(
                f"operator {override.kind}: {override.a[0]}:{override.a[1]} {sign} "
                f"{override.b[0]}:{override.b[1]}  {override.note or ''}".rstrip(),
                style="yellow",
            )
        )

    parts.append(_section("Recent interactions"))
    if view.interactions:
        recent = FitTable(
            [Col("when", keep=True), Col("kind"), Col("medium", 1), Col("subject")], expand=True
        )
        for item in view.interactions:
            recent.add_row(
                local_time(item.occurred_at, tz),
                escape(item.kind),
                escape(item.medium or "-"),
                escape(item.subject or "-"),
            )
        parts.append(recent)
    else:
        parts.append(Text("none recorded", style="dim"))
    return Group(*parts)
