"""``omnicrm status``: the last run of each connection, and the last error of a failed one.

Exit codes: 0 shown; 1 the store failed; 2 bad configuration.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from rich.markup import escape

from omnicrm.cli import STATUS_STYLE
from omnicrm.cli._common import Context, console, err_console, errors
from omnicrm.render import ZONED, Col, FitTable, local_time, shop_zone, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from omnicrm.app.config import Config
    from omnicrm.core.store import Run


# Runs whose error the operator has to read: the others say why in their status.
_FAILED = ("failed", "rate_limited")


def _took(seconds: float | None) -> str:
    from omnicrm.core.channels import format_duration

    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds:.2f}s"
    return format_duration(dt.timedelta(seconds=round(seconds)))


def status_table(config: Config, last: dict[str, Run]) -> FitTable:
    """The last run of every connection, configured or seen in the store; times in the
    shop's zone, named in the heading."""
    tz = shop_zone(config)
    table = FitTable(
        [
            Col("connection"),
            Col("schedule", 5),
            Col("status", keep=True),
            Col(f"started ({zone_name(tz)})", keep=True),
            Col("took", 3, "right", keep=True),
            Col("read", 1, "right", keep=True),
            Col("written", 2, "right", keep=True),
            Col("errors", 3, "right", keep=True),
            Col("waited", 4, "right", keep=True),
        ],
        title="last run per connection",
    )
    for name in sorted({*config.connections, *config.invalid, *last}):
        conn = config.connections.get(name)
        schedule = conn.schedule if conn else ("invalid config" if name in config.invalid else "-")
        run = last.get(name)
        if run is None:
            table.add_row(escape(name), schedule, "never run", "-", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            escape(name),
            escape(schedule),
            f"[{STATUS_STYLE[run.status]}]{run.status.value}[/]",
            local_time(run.started_at, tz, "%Y-%m-%d %H:%M"),
            _took(run.duration),
            f"{run.records_read:,}",
            f"{run.records_written:,}",
            str(run.errors),
            f"{run.rate_limit_wait:.1f}s",
        )
    return table


def print_last_errors(last: dict[str, Run], tz: ZoneInfo) -> None:
    """Each failed last run's error, under the table: what the operator acts on."""
    for name, run in sorted(last.items()):
        if run.status in _FAILED and run.error:
            kind = f" ({run.error_kind})" if run.error_kind else ""
            console.print(
                f"[red]{escape(name)}[/] {run.status.value}{kind} at "
                f"{local_time(run.ended_at or run.started_at, tz, ZONED)}: {escape(run.error)}",
                highlight=False,
            )


@click.command("status")
@click.pass_obj
def status(obj: Context) -> None:
    """Show the last run of each connection, and the last error of a failed one."""
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            last = runtime.store.last_runs()
        finally:
            runtime.close()
    console.print(status_table(runtime.config, last))
    print_last_errors(last, shop_zone(runtime.config))
    for name, error in sorted(runtime.config.invalid.items()):
        err_console.print(f"[red]{escape(name)}:[/] {escape(str(error))}", highlight=False)
