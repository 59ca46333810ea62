"""``omnicrm crm refresh`` and the profile lookups ``omnicrm customers find/show``."""

from __future__ import annotations

import datetime as dt
from itertools import zip_longest
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from omnicrm.cli._common import Context, console, errors, fail
from omnicrm.core.interactions import interactions_for
from omnicrm.core.points import balance as points_balance
from omnicrm.core.profiles import Profile, find_profiles, load_profile
from omnicrm.core.runtime import Runtime
from omnicrm.core.segments import latest_counts, list_segments
from omnicrm.core.store.schema import profile_members, profiles
from omnicrm.errors import DataError


@click.group("crm")
def crm_group() -> None:
    """Unified profiles, scores and segment counts."""


@crm_group.command("refresh")
@click.option("--full", is_flag=True, help="Rescore every profile and recount every segment.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-resolve every identity from the source records (after changing [identity]).",
)
@click.pass_obj
def refresh_command(obj: Context, full: bool, rebuild: bool) -> None:
    """Bring profiles up to date with what the syncs wrote."""
    with errors():
        runtime = obj.runtime(need_config=False)
        result = runtime.refresh(full=full, rebuild=rebuild)
    console.print(
        f"{result.profiles_touched:,} profile(s) updated, {result.profiles_removed:,} removed, "
        f"{len(result.counts)} segment(s) counted ({'full' if result.full else 'incremental'}) "
        f"in {result.seconds:.2f}s"
    )


def print_summary(runtime: Runtime) -> None:
    """Profiles and the built-in segments' last counts, in a few lines (the demo's end)."""
    with runtime.store.engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(profiles)).scalar_one()
        records = conn.execute(select(func.count()).select_from(profile_members)).scalar_one()
        latest = latest_counts(conn)
        listed = list_segments(conn)
    console.print(f"{people:,} customer profile(s) from {records:,} source record(s)")
    if not latest:
        return
    table = Table("segment", "count", "segment", "count", box=box.SIMPLE, title="segments")
    cells = [(escape(s.title), f"{latest[s.name].count:,}") for s in listed if s.name in latest]
    half = (len(cells) + 1) // 2
    for left, right in zip_longest(cells[:half], cells[half:], fillvalue=("", "")):
        table.add_row(*left, *right)
    console.print(table)
    console.print("more: `omnicrm segments`, `omnicrm report ltv`, `omnicrm customers find NAME`")


@click.command("find")
@click.argument("query")
@click.option("--limit", default=20, show_default=True, help="At most this many matches.")
@click.pass_obj
def find_command(obj: Context, query: str, limit: int) -> None:
    """Find profiles by email, phone, member code or name (kanji or kana)."""
    with errors():
        runtime = obj.runtime(need_config=False)
        with runtime.store.engine.connect() as conn:
            found = find_profiles(conn, query, region=runtime.config.identity.region, limit=limit)
    if not found:
        console.print(f"no profile matches {escape(query)!r}")
        return
    table = Table("id", "name", "email", "phone", "orders", "last order", box=box.SIMPLE)
    for match in found:
        table.add_row(
            str(match.id),
            escape(match.name),
            escape(match.email or "-"),
            match.phone or "-",
            str(match.number_of_orders),
            _day(match.last_order_at),
        )
    console.print(table)


@click.command("show")
@click.argument("profile_id", type=int)
@click.pass_obj
def show_command(obj: Context, profile_id: int) -> None:
    """Everything known about one person: identity, purchases, points, consent, sources."""
    with errors():
        runtime = obj.runtime(need_config=False)
        with runtime.store.engine.connect() as conn:
            try:
                profile = load_profile(conn, profile_id)
            except DataError as exc:
                fail(f"{exc}: find one with `omnicrm customers find`", 2)
            wallet = points_balance(conn, profile_id)
            history = interactions_for(conn, profile_id, limit=5)
    today = dt.datetime.now(ZoneInfo(runtime.config.scheduler.timezone)).date()
    render_profile(profile, today)
    by_source = ", ".join(f"{k} {v:,}" for k, v in sorted(wallet.by_connection.items()))
    console.print(f"points: {wallet.total:,}" + (f" ({escape(by_source)})" if by_source else ""))
    if history:
        recent = Table("when", "kind", "medium", "subject", title="recent interactions")
        for item in history:
            recent.add_row(
                _day(item.occurred_at),
                escape(item.kind),
                escape(item.medium or "-"),
                escape(item.subject or "-"),
            )
        console.print(recent)


def render_profile(profile: Profile, today: dt.date) -> None:
    """Print a profile as the operator reads it."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    age = profile.age(today)
    kana = f"{profile.family_name_kana or ''} {profile.given_name_kana or ''}".strip()
    for label, value in (
        ("profile", str(profile.id)),
        ("name", profile.name + (f" ({kana})" if kana and kana != profile.name else "")),
        ("born", f"{profile.birth_date} (age {age})" if age is not None else "-"),
        ("gender", profile.gender),
        ("email", profile.email or "-"),
        ("phone", profile.phone or "-"),
        ("address", _address(profile)),
        ("company", profile.company or "-"),
        ("member code", profile.member_code or "-"),
        (
            "consent",
            ", ".join(
                f"{medium} {profile.row[f'consent_{medium}']}"
                for medium in ("email", "sms", "line", "postal")
            ),
        ),
        (
            "purchases",
            f"{profile.number_of_orders} for {profile.amount_spent:,.0f}, "
            f"first {_day(profile.first_order_at)}, last {_day(profile.last_order_at)}",
        ),
        ("channels", f"{profile.channel_mix}: {', '.join(profile.values.get('channel', ()))}"),
        ("stores", ", ".join(profile.values.get("store", ())) or "-"),
        ("tags", ", ".join(profile.values.get("tag", ())) or "-"),
        ("stage", f"{profile.lifecycle_stage}; RFM {_rfm(profile)}"),
        (
            "predicted CLV",
            f"{profile.predicted_clv:,.0f} (p alive {profile.p_alive:.2f})"
            if profile.predicted_clv is not None and profile.p_alive is not None
            else "-",
        ),
    ):
        head.add_row(label, escape(value))
    console.print(head)

    sources = Table("connection", "id", "name", "email", "phone", "updated", title="source records")
    for member in profile.members:
        sources.add_row(
            escape(member.connection),
            escape(member.id),
            escape(member.name or "-"),
            escape(member.email or "-"),
            escape(member.phone or "-"),
            _day(member.updated_at),
        )
    console.print(sources)
    if profile.orders:
        bought = Table(
            "placed",
            "connection",
            "order",
            "channel",
            "status",
            "total",
            "products",
            title="recent orders",
        )
        for order in profile.orders:
            bought.add_row(
                _day(order.placed_at),
                escape(order.connection),
                escape(order.name or order.id),
                escape(order.channel + (f" ({order.location})" if order.location else "")),
                order.status,
                f"{order.total:,.0f} {order.currency}",
                escape(", ".join(order.products)),
            )
        console.print(bought)


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


def _rfm(profile: Profile) -> str:
    if profile.rfm_recency is None:
        return "-"
    return (
        f"R{profile.rfm_recency} F{profile.rfm_frequency} M{profile.rfm_monetary} "
        f"({profile.rfm_group})"
    )


def _day(moment: dt.datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d") if moment else "-"
