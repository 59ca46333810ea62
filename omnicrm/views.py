"""Rich renderings shared by the command line and the terminal UI.

One place decides how a profile reads, so ``omnicrm customers show`` and the terminal
UI's profile screen say the same thing the same way. A profile is read within one shop
(a client business): asking a shop for another shop's profile finds nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.consent import Suppression, suppressions_of
from omnicrm.core.links import addresses_of_members
from omnicrm.core.records import Medium
from omnicrm.crm.identity import Explanation, Merge, describe, explain
from omnicrm.crm.interactions import Interaction, interactions_for
from omnicrm.crm.points import Balance, PointsSettings, balance
from omnicrm.crm.profiles import Profile, SourceRecord, load_profile
from omnicrm.crm.schema import profiles
from omnicrm.render import ZONED, Col, FitTable, local_time

if TYPE_CHECKING:  # the report's figures load with the command that shows them
    from omnicrm.engage.results import Results
    from omnicrm.engage.stats import Difference

__all__ = [
    "ProfileView",
    "campaign_report",
    "load_profile_view",
    "local_time",
    "profile_shop",
    "render_profile_view",
    "render_withdrawn_record",
    "report_amount",
    "withdrawn_label",
]

RECENT_INTERACTIONS = 10
_MEDIA = ("email", "sms", "line", "postal")
_CONSENT_STYLES = {"opted_in": "green", "opted_out": "red", "pending": "yellow"}


@dataclass(frozen=True)
class ProfileView:
    """Everything the profile screen shows, read in one go."""

    profile: Profile
    wallet: Balance
    why: Explanation
    interactions: tuple[Interaction, ...]
    # The shop it was read in, and the currency its amounts are shown in.
    shop: str = DEFAULT_SHOP
    currency: str = "JPY"
    # Their addresses on the shop's suppression list (unsubscribed, bounced).
    suppressions: tuple[Suppression, ...] = ()


def profile_shop(conn: Connection, profile_id: int) -> str | None:
    """The shop ``profile_id`` belongs to (None: no such profile)."""
    shop: str | None = conn.execute(
        select(profiles.c.shop).where(profiles.c.id == profile_id)
    ).scalar_one_or_none()
    return shop


def load_profile_view(
    conn: Connection,
    profile_id: int,
    now: dt.datetime,
    points: PointsSettings,
    *,
    shop: str,
    currency: str = "JPY",
) -> ProfileView:
    """The profile of ``shop``, its points (less any past their expiry date by ``now``;
    ``points`` are the shop's settings), its merge explanation and its latest
    interactions; amounts to be shown in the shop's ``currency``.

    Raises DataError (or UnknownProfileError) when ``shop`` has no such profile: another
    shop's profile is not shown, even to someone who knows its id.
    """
    # First: a profile of another shop is refused before anything of it is read.
    profile = load_profile(conn, profile_id, shop=shop)
    members = [(m.connection, m.id) for m in profile.members]
    line_ids = addresses_of_members(conn, shop=shop, medium=Medium.LINE, members=members)
    emails = [profile.email or "", *(m.email or "" for m in profile.members)]
    listed = suppressions_of(
        conn,
        shop=shop,
        addresses={Medium.EMAIL: emails, Medium.LINE: [address for _, address in line_ids]},
    )
    return ProfileView(
        profile,
        balance(conn, profile_id, now=now, settings=points, shop=shop),
        explain(conn, profile_id, shop=shop),
        tuple(interactions_for(conn, profile_id, limit=RECENT_INTERACTIONS, shop=shop)),
        shop=shop,
        currency=currency,
        suppressions=tuple(listed),
    )


def _suppressions(view: ProfileView, tz: dt.tzinfo) -> Text:
    """One line per suppressed address: medium, address, reason, since when, why."""
    lines = Text()
    for i, s in enumerate(view.suppressions):
        lines.append("\n" if i else "")
        lines.append(f"{s.medium.value} {s.address} ")
        lines.append(s.reason.value, style="red")
        lines.append(f" since {local_time(s.since, tz, '%Y-%m-%d %H:%M')}")
        if s.detail:
            lines.append(f" ({s.detail})", style="dim")
    return lines


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
    return describe(merge.evidence)


def _money(amount: Decimal | float, currency: str) -> str:
    """An amount in ``currency``: yen as '¥4,200', others as '12.50 USD'."""
    if currency == "JPY":
        return f"¥{amount:,.0f}"
    return f"{amount:,.2f} {currency}"


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def withdrawn_label(at: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """``退会 withdrawn 2026-11-02`` (the shop's date) for a member who left; None else."""
    return None if at is None else f"退会 withdrawn {local_time(at, tz, '%Y-%m-%d')}"


def render_withdrawn_record(record: SourceRecord, tz: dt.tzinfo, currency: str) -> RenderableType:
    """A source customer who withdrew (退会): in no profile, so shown on its own."""
    m = record.customer
    label = withdrawn_label(m.withdrawn_at, tz) or ""
    lines = [
        Text.assemble((f"{m.connection}:{m.id}", "bold"), "  ", m.name or "(no name)"),
        Text(label, style="bold red"),
        Text(
            "a withdrawn member joins no person and is never messaged; "
            "their points are forfeit (in no wallet)",
            style="dim",
        ),
        Text(
            f"{record.orders} purchase(s), {_money(record.total, currency)}: "
            "counted in the shop's sales, attributed to nobody"
        ),
    ]
    return Group(*lines)


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
        *([("suppressed", _suppressions(view, tz))] if view.suppressions else []),
        ("points", f"{view.wallet.total:,}" + (f" ({by_connection})" if by_connection else "")),
        (
            "purchases",
            f"{p.number_of_orders} for {_money(p.amount_spent, view.currency)}, first "
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
    # A status column only when a member withdrew (until the next refresh takes them out).
    withdrawn = any(m.withdrawn_at is not None for m in p.members)
    sources = FitTable(
        [
            Col("connection"),
            Col("record"),
            Col("name", 1),
            Col("email", 2),
            Col("phone", 3, keep=True),
            Col("updated", 4, keep=True),
            *([Col("status", keep=True)] if withdrawn else []),
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
            *([withdrawn_label(m.withdrawn_at, tz) or "-"] if withdrawn else []),
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
                local_time(merge.merged_at, tz, ZONED),
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
                local_time(item.occurred_at, tz, ZONED),
                escape(item.kind),
                escape(item.medium or "-"),
                escape(item.subject or "-"),
            )
        parts.append(recent)
    else:
        parts.append(Text("none recorded", style="dim"))
    return Group(*parts)


# -- a campaign's report -------------------------------------------------------------------


def report_amount(amount: float, currency: str) -> str:
    """An amount as the campaign report shows it: '4,200 JPY', '12.50 USD'."""
    digits = 0 if currency in ("JPY", "KRW", "TWD") else 2
    return f"{amount:,.{digits}f} {currency}"


def _interval(d: Difference, show: Callable[[float], str]) -> str:
    if math.isnan(d.low):
        return f"{show(d.value)} (too few to tell)" if not math.isnan(d.value) else "-"
    mark = " [bold green]significant[/]" if d.significant else ""
    return f"{show(d.value)} ({d.confidence:.0%}: {show(d.low)} to {show(d.high)}){mark}"


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2%}"


def campaign_report(
    found: Results, currency: str, zone: ZoneInfo, *, now: dt.datetime
) -> list[RenderableType]:
    """What ``omnicrm campaigns report`` prints and the terminal UI's campaign screen
    shows: a summary line, a column per variant and one for the hold-out group, then
    each variant against the hold-out group (see omnicrm.engage.results)."""
    from omnicrm.engage.campaigns import HOLDOUT

    campaign = found.campaign
    groups = found.groups
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]{escape(campaign.name)}[/] ({campaign.medium.value}, {campaign.status}): "
            f"planned {sum(g.planned for g in groups):,}, "
            f"sent {sum(g.sent for g in groups):,}, "
            f"suppressed {sum(sum(g.suppressed.values()) for g in groups):,}; tracking "
            f"{'on' if found.tracked else 'off'}; conversions: orders within "
            f"{found.window.days} day(s) of the message"
        )
    ]
    if found.sent_from is not None and found.counted_until is not None:
        still = " (still open: conversions may yet come in)" if found.open(now) else ""
        parts.append(
            Text(
                f"sent from {found.sent_from.astimezone(zone):%Y-%m-%d %H:%M}; windows close "
                f"{found.counted_until.astimezone(zone):%Y-%m-%d %H:%M}{still}"
            )
        )
    table = Table("", box=box.SIMPLE)
    for g in groups:
        table.add_column("hold-out" if g.name == HOLDOUT else f"variant {g.name}", justify="right")

    def row(label: str, values: list[str]) -> None:
        table.add_row(label, *values)

    row("planned", [f"{g.planned:,}" for g in groups])
    row("sent", [f"{g.sent:,}" for g in groups])
    for status in ("rejected", "failed", "unknown", "planned", "claimed", "cancelled"):
        if any(g.statuses.get(status) for g in groups):
            row(f"  {status}", [f"{g.statuses.get(status, 0):,}" for g in groups])
    reasons = sorted({r for g in groups for r in g.suppressed})
    row("suppressed", [f"{sum(g.suppressed.values()):,}" for g in groups])
    for reason in reasons:
        label = "  held out" if reason == HOLDOUT else f"  {reason}"
        row(label, [f"{g.suppressed.get(reason, 0):,}" for g in groups])
    row("delivered", [f"{g.delivered:,}" for g in groups])
    row("bounced", [f"{g.bounced:,}" for g in groups])
    tracked = found.tracked
    row("opened", [f"{g.opened:,}" if tracked and g.name != HOLDOUT else "-" for g in groups])
    row("clicked", [f"{g.clicked:,}" if tracked and g.name != HOLDOUT else "-" for g in groups])
    row("recipients", [f"{g.recipients:,}" for g in groups])
    row("converted", [f"{g.converted:,}" for g in groups])
    row("conversion rate", [_pct(g.conversion_rate) for g in groups])
    row("revenue", [report_amount(float(g.revenue), currency) for g in groups])
    row(
        "revenue / recipient",
        [
            "-"
            if math.isnan(g.revenue_per_recipient)
            else report_amount(g.revenue_per_recipient, currency)
            for g in groups
        ],
    )
    parts.append(table)
    parts.append(
        Text(
            "recipients: messages sent (a variant); members who would have been sent it "
            "(the hold-out group)",
            style="dim",
        )
    )
    if not found.comparisons:
        parts.append(Text("no hold-out group: nothing to compare the variants with", "dim"))
    for k in found.comparisons:
        points = _interval(k.conversion_rate, lambda x: f"{x * 100:+.2f} pt")
        money = _interval(k.revenue_per_recipient, lambda x: f"{x:+,.0f} {currency}")
        parts.append(
            Text.from_markup(
                f"variant {escape(k.variant)} vs hold-out: conversion rate {points}; "
                f"revenue per recipient {money}"
            )
        )
    return parts
