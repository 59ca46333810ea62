"""``omnicrm segments``: segment counts, definitions and members.

Exit codes: 0 done; 1 the store failed; 2 a bad expression, name or usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail
from omnicrm.render import ZONED, Col, FitTable, local_time, shop_zone, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import Connection


@contextlib.contextmanager
def _connection(obj: Context) -> Iterator[tuple[Connection, ZoneInfo]]:
    """One transaction on the configured store, with the shop's timezone; segment
    mistakes exit 2 with their message (a bad expression's shows the caret)."""
    from omnicrm.crm.points import expire
    from omnicrm.crm.segments import SegmentError, ensure_builtin

    with errors():
        runtime = obj.runtime()
        try:
            tz = shop_zone(runtime.config)
            with runtime.store.engine.begin() as conn:
                ensure_builtin(conn)
                # points_balance in an expression must not count points past their date.
                settings = runtime.crm_settings()
                expire(conn, _now(), settings.points, shop=settings.shop)
                try:
                    yield conn, tz
                except SegmentError as exc:
                    fail(str(exc), 2)
        finally:
            runtime.close()


def _change(change: int | None) -> str:
    if change is None:
        return "-"
    if change == 0:
        return "0"
    return f"[green]+{change:,}[/]" if change > 0 else f"[red]{change:,}[/]"


def _when(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    """Under a heading naming the zone."""
    return local_time(moment, tz, "%Y-%m-%d %H:%M")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@click.group("segments", invoke_without_command=True)
@click.option("--live", is_flag=True, help="Count every segment now instead of the last counts.")
@click.pass_context
def segments(ctx: click.Context, live: bool) -> None:
    """Segments with their latest count and the change since the count before."""
    if ctx.invoked_subcommand is not None:
        return
    from omnicrm.crm.segments import count_segments, latest_counts, list_segments

    obj = ctx.find_object(Context)
    assert obj is not None
    with _connection(obj) as (conn, tz):
        listed = list_segments(conn)
        latest = latest_counts(conn)
        now_counts = (
            count_segments(conn, {s.name: s.expression for s in listed}, _now(), tz) if live else {}
        )
    table = FitTable(
        [
            Col("segment"),
            Col("title", 3),
            *([Col("now", justify="right", keep=True)] if live else []),
            Col("count", justify="right", keep=True),
            Col("change", 1, "right", keep=True),
            Col(f"counted ({zone_name(tz)})", 2, keep=True),
        ],
        title="segments",
    )
    for segment in listed:
        last = latest.get(segment.name)
        row = [escape(segment.name), escape(segment.title)]
        if live:
            row.append(f"{now_counts[segment.name]:,}")
        row += [
            f"{last.count:,}" if last else "-",
            _change(last.change if last else None),
            _when(last.at if last else None, tz),
        ]
        table.add_row(*row)
    console.print(table)
    if not latest:
        console.print(
            "no counts recorded yet: they are taken after each sync "
            "(`omnicrm segments --live` counts now)"
        )


@segments.command()
@click.argument("name")
@click.option("--limit", "-n", default=20, show_default=True, help="Members to show.")
@click.pass_obj
def show(obj: Context, name: str, limit: int) -> None:
    """A segment's expression, description, count and a sample of its members."""
    from omnicrm.crm.segments import count_segments, get_segment, latest_counts, members

    if limit < 0:
        fail("--limit must be 0 or more", 2)
    now = _now()
    with _connection(obj) as (conn, tz):
        segment = get_segment(conn, name)
        count = count_segments(conn, {name: segment.expression}, now, tz)[name]
        last = latest_counts(conn).get(name)
        sample = members(conn, name, now, tz, limit)
    kind = "built-in" if segment.builtin else "user"
    console.print(f"[bold]{escape(segment.name)}[/] ({kind}): {escape(segment.title)}")
    console.print(f"  expression:  {escape(segment.expression)}")
    if segment.description:
        console.print(f"  description: {escape(segment.description)}")
    console.print(f"  count now:   {count:,}")
    if last:
        console.print(
            f"  last count:  {last.count:,} at {local_time(last.at, tz, ZONED)} "
            f"(change {_change(last.change)})"
        )
    if count == 0:
        console.print("no members")
    if not sample:
        return
    table = FitTable(
        [
            Col("id", keep=True),
            Col("name"),
            Col("email", 2),
            Col("prefecture", 5),
            Col("orders", 3, "right", keep=True),
            Col("spent", 1, "right", keep=True),
            Col(f"last order ({zone_name(tz)})", 4, keep=True),
            Col("rfm", 6),
            Col("stage", 7),
        ],
        title=f"members (first {len(sample)} of {count:,} by id)",
    )
    for m in sample:
        table.add_row(
            str(m.id),
            escape(m.name or "-"),
            escape(m.email or "-"),
            escape(m.prefecture or "-"),
            str(m.number_of_orders),
            f"{m.amount_spent:,.0f}",
            local_time(m.last_order_at, tz, "%Y-%m-%d"),
            escape(m.rfm_group or "-"),
            escape(m.lifecycle_stage),
        )
    console.print(table)


@segments.command()
@click.argument("name")
@click.argument("expression")
@click.option("--description", "-d", help="What the segment is for.")
@click.option("--replace", is_flag=True, help="Redefine an existing user segment.")
@click.pass_obj
def add(obj: Context, name: str, expression: str, description: str | None, replace: bool) -> None:
    """Define a segment: NAME (lower-case, e.g. tokyo-vip) and its EXPRESSION."""
    from omnicrm.crm.segments import define, record_new_count

    now = _now()
    with _connection(obj) as (conn, tz):
        define(conn, name, expression, description=description, replace=replace, now=now)
        count = record_new_count(conn, name, now, tz)
    console.print(f"{'replaced' if replace else 'added'} {escape(name)}: {count:,} profiles now")


@segments.command("remove")
@click.argument("name")
@click.pass_obj
def remove_command(obj: Context, name: str) -> None:
    """Remove a user segment and its count history."""
    from omnicrm.crm.segments import remove

    with _connection(obj) as (conn, _):
        remove(conn, name)
    console.print(f"removed {escape(name)}")


@segments.command()
@click.argument("expression")
@click.pass_obj
def check(obj: Context, expression: str) -> None:
    """Check an EXPRESSION and count the profiles it selects now."""
    from sqlalchemy import func, select

    from omnicrm.crm.schema import profiles
    from omnicrm.crm.segments import count_segments, parse

    with _connection(obj) as (conn, tz):
        node = parse(expression)
        count = count_segments(conn, {"": node}, _now(), tz)[""]
        total = conn.execute(select(func.count()).select_from(profiles)).scalar_one()
    console.print(f"valid: {count:,} of {total:,} profiles match now")
