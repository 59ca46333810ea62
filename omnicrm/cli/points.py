"""``omnicrm points``: the shared wallet of each customer (see docs/points.md).

Every command works in one shop (``--shop``): its profiles, its ledger, its settings."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.render import Col, FitTable, local_time, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from omnicrm.app.runtime import Runtime
    from omnicrm.crm.points import (
        Entry,
    )
    from omnicrm.crm.refresh import CrmSettings


@contextlib.contextmanager
def _run(obj: Context, shop: str | None) -> Iterator[tuple[Runtime, CrmSettings]]:
    """The runtime (closed afterwards) and the settings of the shop worked in; bad input
    (an unknown or missing --shop, a profile not of that shop) exits 2, a refused
    operation 1."""
    from omnicrm.crm.points import PointsImportError, UnknownProfileError

    with errors():
        runtime = obj.runtime()
        try:
            yield runtime, runtime.crm_settings(shop)
        except (UnknownProfileError, PointsImportError) as exc:
            fail(str(exc), 2)
        finally:
            runtime.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _when(moment: dt.datetime | None, tz: dt.tzinfo) -> str:
    """Under a heading naming the zone."""
    return local_time(moment, tz, "%Y-%m-%d %H:%M")


def _entry_line(entry: Entry) -> str:
    return (
        f"{entry.kind.value} {entry.points:+,d} on {escape(entry.connection)}/"
        f"{escape(entry.customer_id)} ({escape(entry.source)}: {escape(entry.event_id)})"
    )


@click.group()
def points() -> None:
    """The shared points wallet: balances, history, adjustments, expiry, reconciliation."""


@points.command("balance")
@click.argument("profile_id", type=int)
@shop_option
@click.pass_obj
def balance_command(obj: Context, profile_id: int, shop: str | None) -> None:
    """Show a profile's balance, in total and per connection."""
    from omnicrm.crm.points import balance

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.connect() as conn:
        found = balance(conn, profile_id, now=_now(), settings=crm.points, shop=crm.shop)
    table = FitTable(
        [Col("connection"), Col("points", justify="right", keep=True)],
        title=f"profile {profile_id}",
    )
    for name, held in found.by_connection.items():
        table.add_row(escape(name), f"{held:,}")
    table.add_row("[bold]total[/]", f"[bold]{found.total:,}[/]")
    console.print(table)


@points.command("history")
@click.argument("profile_id", type=int)
@shop_option
@click.pass_obj
def history_command(obj: Context, profile_id: int, shop: str | None) -> None:
    """List every entry of a profile's wallet, oldest first."""
    from omnicrm.crm.points import balance, history

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.connect() as conn:
        entries = history(conn, profile_id, shop=crm.shop)
        wallet = balance(conn, profile_id, now=_now(), settings=crm.points, shop=crm.shop)
    tz = crm.tz
    zone = zone_name(tz)
    table = FitTable(
        [
            Col(f"when ({zone})", keep=True),
            Col("kind", keep=True),
            Col("points", justify="right", keep=True),
            Col("connection", 3),
            Col("event", 4),
            Col("order", 2),
            Col(f"expires ({zone})", 1, keep=True),
            Col("note", 5),
        ],
        title=f"profile {profile_id}",
    )
    running = 0
    for entry in entries:
        running += entry.points
        table.add_row(
            _when(entry.occurred_at, tz),
            entry.kind.value,
            f"{entry.points:+,d}",
            escape(entry.connection),
            escape(entry.event_id),
            escape(entry.order_id or "-"),
            _when(entry.expires_at, tz),
            escape(entry.note or ""),
        )
    console.print(table)
    due = running - wallet.total
    # Points past their date that no expiry run has written yet are not spendable.
    tail = f" ({due:,} of them past their expiry date)" if due else ""
    console.print(f"{len(entries)} entries, balance {wallet.total:,}{tail}")


# ignore_unknown_options: so '-50' is read as POINTS, not as an unknown option.
@points.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("profile_id", type=int)
@click.argument("amount", metavar="POINTS", type=int)
@click.option("--note", required=True, help="Why (kept with the entry).")
@click.option("--event-id", help="Your id for this adjustment: the same id again does nothing.")
@shop_option
@click.pass_obj
def adjust_command(
    obj: Context,
    profile_id: int,
    amount: int,
    note: str,
    event_id: str | None,
    shop: str | None,
) -> None:
    """Add POINTS to a profile's wallet (negative: take them away)."""
    from omnicrm.crm.points import adjust, balance

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.begin() as conn:
        now = _now()
        entry = adjust(conn, profile_id, amount, note, event_id=event_id, now=now, shop=crm.shop)
        total = balance(conn, profile_id, now=now, settings=crm.points, shop=crm.shop).total
    console.print(f"{_entry_line(entry)}; balance now {total:,}")


@points.command("redeem")
@click.argument("profile_id", type=int)
@click.argument("amount", metavar="POINTS", type=click.IntRange(min=1))
@click.option("--note", help="What they were spent on.")
@click.option("--event-id", help="Your id for this redemption: the same id again does nothing.")
@shop_option
@click.pass_obj
def redeem_command(
    obj: Context,
    profile_id: int,
    amount: int,
    note: str | None,
    event_id: str | None,
    shop: str | None,
) -> None:
    """Spend POINTS from a profile's wallet (refused beyond its balance)."""
    from omnicrm.crm.points import balance, redeem

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.begin() as conn:
        now, settings = _now(), crm.points
        entry = redeem(
            conn,
            profile_id,
            amount,
            now=now,
            event_id=event_id,
            note=note,
            settings=settings,
            shop=crm.shop,
        )
        total = balance(conn, profile_id, now=now, settings=settings, shop=crm.shop).total
    console.print(f"{_entry_line(entry)}; balance now {total:,}")


@points.command("expire")
@shop_option
@click.pass_obj
def expire_command(obj: Context, shop: str | None) -> None:
    """Expire the points whose expiry date has passed (the nightly job does it too)."""
    from omnicrm.crm.points import expire

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.begin() as conn:
        settings = crm.points
        done = expire(conn, _now(), settings, shop=crm.shop)
    if settings.expiry_months is None:
        console.print("points never expire here ([points] expiry_months is none)")
        return
    console.print(f"{done.points:,} points expired ({done.entries:,} entries)")


def _time_zone(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from omnicrm.crm.points.importer import time_zone

    if value is None:
        return None
    try:
        time_zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@points.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--timezone",
    callback=_time_zone,
    help="Time zone of times written without an offset (an IANA name); default the shop's.",
)
@click.option(
    "--encoding",
    default="auto",
    show_default=True,
    help="auto (UTF-8 or Shift_JIS, told by the bytes), utf-8 or cp932.",
)
@shop_option
@click.pass_obj
def import_command(
    obj: Context, file: Path, timezone: str | None, encoding: str, shop: str | None
) -> None:
    """Import point events (a POS export) from a CSV FILE into one shop; all of it or
    nothing.

    Columns: connection (one of the shop's), customer_id, event_id, kind (earn, redeem,
    expire, adjust), points, occurred_at, and optionally order_id and note.
    """
    from omnicrm.crm.points import import_point_events

    with _run(obj, shop) as (runtime, crm), runtime.store.engine.begin() as conn:
        done = import_point_events(
            conn,
            file,
            crm.points,
            shop=crm.shop,
            timezone=timezone or crm.timezone,
            encoding=encoding,
            configured=runtime.config.connection_shops(),
        )
    console.print(
        f"{escape(str(file))}: {done.rows:,} events, {done.inserted:,} new, "
        f"{done.skipped:,} already imported"
    )


@points.command("reconcile")
@shop_option
@click.pass_obj
def reconcile_command(obj: Context, shop: str | None) -> None:
    """Compare each platform's reported balance with the ledger; exit 1 on a difference."""
    from omnicrm.crm.points import run_reconciliation

    with _run(obj, shop) as (runtime, crm):
        result = run_reconciliation(runtime.store, crm.points, _now(), shop=crm.shop)
    against = "own entries" if result.against.value == "member" else "wallet total"
    if not result.differences:
        console.print(
            f"{result.checked:,} reported balances checked against the ledger "
            f"({against}): no difference"
        )
        return
    table = FitTable(
        [
            Col("profile", keep=True),
            Col("connection", 1),
            Col("customer", 2),
            Col("platform", justify="right", keep=True),
            Col("ledger", justify="right", keep=True),
            Col("difference", justify="right", keep=True),
        ],
        title=f"{len(result.differences):,} of {result.checked:,} balances differ ({against})",
    )
    for d in result.differences:
        table.add_row(
            "-" if d.profile_id is None else str(d.profile_id),
            escape(d.connection),
            escape(d.customer_id),
            f"{d.platform_balance:,}",
            f"{d.ledger_balance:,}",
            f"{d.difference:+,d}",
        )
    console.print(table)
    sys.exit(1)
