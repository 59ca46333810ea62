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

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.render import ZONED, Col, FitTable, local_time, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import Connection


@contextlib.contextmanager
def _connection(obj: Context, shop: str | None) -> Iterator[tuple[Connection, ZoneInfo, str]]:
    """One transaction on the configured store, with the shop's timezone and id (an
    unknown shop, or none named where several are configured, exits 2 naming them);
    segment mistakes exit 2 with their message (a bad expression's shows the caret)."""
    from omnicrm.crm.points import expire
    from omnicrm.crm.segments import SegmentError, ensure_builtin

    with errors():
        runtime = obj.runtime()
        try:
            settings = runtime.crm_settings(shop)
            with runtime.store.engine.begin() as conn:
                ensure_builtin(conn, shop=settings.shop)
                # points_balance in an expression must not count points past their date.
                expire(conn, _now(), settings.points, shop=settings.shop)
                try:
                    yield conn, settings.tz, settings.shop
                except SegmentError as exc:
                    fail(str(exc), 2)
        finally:
            runtime.close()


def _shop(ctx: click.Context, shop: str | None) -> str | None:
    """The command's --shop, else the one given to ``omnicrm segments`` itself."""
    if shop is not None:
        return shop
    parent = ctx.parent.params.get("shop") if ctx.parent is not None else None
    return parent if isinstance(parent, str) else None


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
@shop_option
@click.pass_context
def segments(ctx: click.Context, live: bool, shop: str | None) -> None:
    """A shop's segments with their latest count and the change since the count before."""
    if ctx.invoked_subcommand is not None:
        return
    from omnicrm.crm.segments import count_segments, latest_counts, list_segments

    obj = ctx.find_object(Context)
    assert obj is not None
    with _connection(obj, shop) as (conn, tz, shop_id):
        listed = list_segments(conn, shop=shop_id)
        latest = latest_counts(conn, shop=shop_id)
        expressions = {s.name: s.expression for s in listed}
        now_counts = count_segments(conn, expressions, _now(), tz, shop=shop_id) if live else {}
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
@shop_option
@click.pass_context
def show(ctx: click.Context, name: str, limit: int, shop: str | None) -> None:
    """A segment's expression, description, count and a sample of its members."""
    from omnicrm.crm.segments import count_segments, get_segment, history, members

    if limit < 0:
        fail("--limit must be 0 or more", 2)
    now = _now()
    with _connection(ctx.obj, _shop(ctx, shop)) as (conn, tz, shop_id):
        segment = get_segment(conn, name, shop=shop_id)
        count = count_segments(conn, {name: segment.expression}, now, tz, shop=shop_id)[name]
        points = history(conn, name, 2, shop=shop_id)
        sample = members(conn, name, now, tz, limit, shop=shop_id)
    last = points[-1] if points else None
    change = points[-1].count - points[0].count if len(points) == 2 else None
    kind = "built-in" if segment.builtin else "user"
    console.print(f"[bold]{escape(segment.name)}[/] ({kind}): {escape(segment.title)}")
    console.print(f"  expression:  {escape(segment.expression)}")
    if segment.description:
        console.print(f"  description: {escape(segment.description)}")
    console.print(f"  count now:   {count:,}")
    if last:
        console.print(
            f"  last count:  {last.count:,} at {local_time(last.at, tz, ZONED)} "
            f"(change {_change(change)})"
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
@shop_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    expression: str,
    description: str | None,
    replace: bool,
    shop: str | None,
) -> None:
    """Define a segment of one shop: NAME (lower-case, e.g. tokyo-vip) and its EXPRESSION."""
    from omnicrm.crm.segments import define, record_new_count

    now = _now()
    with _connection(ctx.obj, _shop(ctx, shop)) as (conn, tz, shop_id):
        define(
            conn, name, expression, shop=shop_id, description=description, replace=replace, now=now
        )
        count = record_new_count(conn, name, now, tz, shop=shop_id)
    console.print(f"{'replaced' if replace else 'added'} {escape(name)}: {count:,} profiles now")


@segments.command("remove")
@click.argument("name")
@shop_option
@click.pass_context
def remove_command(ctx: click.Context, name: str, shop: str | None) -> None:
    """Remove a user segment of one shop and its count history."""
    from omnicrm.crm.segments import remove

    with _connection(ctx.obj, _shop(ctx, shop)) as (conn, _, shop_id):
        remove(conn, name, shop=shop_id)
    console.print(f"removed {escape(name)}")


@segments.command()
@click.argument("expression")
@shop_option
@click.pass_context
def check(ctx: click.Context, expression: str, shop: str | None) -> None:
    """Check an EXPRESSION and count the shop's profiles it selects now."""
    from sqlalchemy import func, select

    from omnicrm.crm.schema import profiles
    from omnicrm.crm.segments import count_segments, parse

    with _connection(ctx.obj, _shop(ctx, shop)) as (conn, tz, shop_id):
        node = parse(expression)
        count = count_segments(conn, {"": node}, _now(), tz, shop=shop_id)[""]
        total = conn.execute(
            select(func.count()).select_from(profiles).where(profiles.c.shop == shop_id)
        ).scalar_one()
    console.print(f"valid: {count:,} of {total:,} profiles match now")
