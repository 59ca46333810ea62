"""``omnicrm crm refresh`` and the profile lookups ``omnicrm customers find/show``, each
within one shop (``--shop``; may be left out when only one is configured)."""

from __future__ import annotations

import datetime as dt
from itertools import zip_longest
from typing import TYPE_CHECKING

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.errors import DataError
from omnicrm.render import Col, FitTable, local_time, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from omnicrm.app.runtime import Runtime


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
@shop_option
@click.pass_obj
def refresh_command(obj: Context, full: bool, rebuild: bool, shop: str | None) -> None:
    """Bring the shop's profiles up to date with what the syncs wrote."""
    with errors():
        runtime = obj.runtime(need_config=False)
        result = runtime.refresh(shop, full=full, rebuild=rebuild)
    console.print(
        f"{result.profiles_touched:,} profile(s) updated, {result.profiles_removed:,} removed, "
        f"{len(result.counts)} segment(s) counted ({'full' if result.full else 'incremental'}) "
        f"in {result.seconds:.2f}s"
    )


def print_summary(runtime: Runtime) -> None:
    """Profiles and the built-in segments' last counts, in a few lines (the demo's end)."""
    from sqlalchemy import func, select

    from omnicrm.crm.schema import profile_members, profiles
    from omnicrm.crm.segments import latest_counts, list_segments

    shops = sorted(runtime.config.all_shops())
    for shop in shops:  # each shop its own customer base, never added together
        with runtime.store.engine.connect() as conn:
            people = conn.execute(
                select(func.count()).select_from(profiles).where(profiles.c.shop == shop)
            ).scalar_one()
            records = conn.execute(
                select(func.count())
                .select_from(profile_members)
                .where(profile_members.c.shop == shop)
            ).scalar_one()
            latest = latest_counts(conn, shop=shop)
            listed = list_segments(conn, shop=shop)
        named = f"shop {escape(shop)}: " if len(shops) > 1 else ""
        console.print(f"{named}{people:,} customer profile(s) from {records:,} source record(s)")
        if not latest:
            continue
        title = f"segments of {escape(shop)}" if len(shops) > 1 else "segments"
        table = Table("segment", "count", "segment", "count", box=box.SIMPLE, title=title)
        cells = [(escape(s.title), f"{latest[s.name].count:,}") for s in listed if s.name in latest]
        half = (len(cells) + 1) // 2
        for left, right in zip_longest(cells[:half], cells[half:], fillvalue=("", "")):
            table.add_row(*left, *right)
        console.print(table)
    console.print("more: `omnicrm segments`, `omnicrm report ltv`, `omnicrm customers find NAME`")


@click.command("find")
@click.argument("query")
@click.option("--limit", default=20, show_default=True, help="At most this many matches.")
@shop_option
@click.pass_obj
def find_command(obj: Context, query: str, limit: int, shop: str | None) -> None:
    """Find the shop's profiles by email, phone, member code or name (kanji or kana)."""
    from omnicrm.crm.profiles import find_profiles

    with errors():
        runtime = obj.runtime(need_config=False)
        settings = runtime.crm_settings(shop)
        with runtime.store.engine.connect() as conn:
            found = find_profiles(
                conn, query, shop=settings.shop, region=settings.identity.region, limit=limit
            )
    if not found:
        console.print(f"no profile matches {escape(query)!r}")
        return
    tz = settings.tz
    table = FitTable(
        [
            Col("id", keep=True),
            Col("name"),
            Col("email", 1),
            Col("phone", 2, keep=True),
            Col("orders", 4, "right", keep=True),
            Col(f"last order ({zone_name(tz)})", 3, keep=True),
        ]
    )
    for match in found:
        table.add_row(
            str(match.id),
            escape(match.name),
            escape(match.email or "-"),
            escape(match.phone or "-"),
            str(match.number_of_orders),
            local_time(match.last_order_at, tz, "%Y-%m-%d"),
        )
    console.print(table)


@click.command("show")
@click.argument("profile_id")
@shop_option
@click.pass_obj
def show_command(obj: Context, profile_id: str, shop: str | None) -> None:
    """Everything known about one person: identity, purchases, points, consent, sources."""
    # PROFILE_ID is a profile's number, or CONNECTION:ID of a source record: its
    # profile, or (a member who withdrew, 退会, in no profile) the record on its own.
    # Imported here: the profile view loads the identity, points and interactions code,
    # which `omnicrm customers --help` need not wait for.
    from omnicrm.crm.identity import UnknownProfileError
    from omnicrm.crm.profiles import load_record
    from omnicrm.views import load_profile_view, render_profile_view, render_withdrawn_record

    with errors():
        runtime = obj.runtime(need_config=False)
        settings = runtime.crm_settings(shop)
        tz = settings.tz
        with runtime.store.engine.connect() as conn:
            if profile_id.strip().isdigit():
                number = int(profile_id)
            else:
                connection, sep, record_id = profile_id.partition(":")
                if not sep or not connection or not record_id:
                    fail(f"{profile_id!r} is neither a profile id nor CONNECTION:ID", 2)
                record = load_record(conn, connection, record_id, shop=settings.shop)
                if record is None:
                    fail(f"no source customer {profile_id} in shop {settings.shop!r}", 2)
                if record.profile_id is None:
                    if record.customer.withdrawn_at is None:
                        fail(f"{profile_id} is in no profile yet: run `omnicrm crm refresh`", 2)
                    console.print(render_withdrawn_record(record, tz, settings.currency))
                    return
                number = record.profile_id
            try:
                view = load_profile_view(
                    conn,
                    number,
                    dt.datetime.now(dt.UTC),
                    settings.points,
                    shop=settings.shop,
                    currency=settings.currency,
                )
            except (DataError, UnknownProfileError) as exc:
                fail(f"{exc}: find one with `omnicrm customers find`", 2)
    console.print(render_profile_view(view, dt.datetime.now(tz).date(), tz))
