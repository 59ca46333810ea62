"""``omnicrm reconcile``: find the records a platform deleted without telling us.

Exit codes: 0 done; 1 a reconciliation failed or another run held the connection; 2 bad
usage or configuration. Ids are printed (they name records, not people); the records'
contents never are.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from omnicrm.cli import STATUS_STYLE
from omnicrm.cli._common import Context, console, err_console, errors, fail
from omnicrm.errors import LockedError


@click.command("reconcile")
@click.argument("connections", nargs=-1)
@click.option(
    "--dry-run", is_flag=True, help="Only list what the platform no longer has; delete nothing."
)
@click.pass_obj
def reconcile(obj: Context, connections: tuple[str, ...], dry_run: bool) -> None:
    """Delete stored records the platform deleted without notice (EC-CUBE), as the nightly
    job does; every reconciling connection unless some are named."""
    with errors():
        runtime = obj.runtime()
        try:
            host, config = runtime.host, runtime.config
            reconciling = sorted(
                name
                for name, conn in config.connections.items()
                if conn.enabled and host.channel_type(conn.channel).reconciles
            )
            for name in connections:
                conn = config.connection(name)
                if not host.channel_type(conn.channel).reconciles:
                    fail(
                        f"connection {name!r} ({conn.channel}) needs no reconciliation: "
                        "its platform announces every delete",
                        2,
                    )
                if not conn.enabled:
                    fail(f"connection {name!r} is disabled (enabled = false in the config)", 2)
            chosen = list(connections) or reconciling
            if not chosen:
                console.print("no connection's channel needs reconciling")
                return
            engine = runtime.engine()
            failed = False
            for name in chosen:
                try:
                    result = engine.reconcile(config.connection(name), dry_run=dry_run)
                except LockedError as exc:
                    err_console.print(f"[red]{escape(name)}:[/] {escape(str(exc))}")
                    failed = True
                    continue
                for stream, progress in result.streams.items():
                    gone = result.gone.get(stream, [])
                    verb = "would delete" if dry_run else "deleted"
                    shown = ", ".join(gone[:20]) + (", ..." if len(gone) > 20 else "")
                    console.print(
                        f"{escape(name)} {stream}: {progress.read:,} checked, "
                        f"{len(gone):,} gone on the platform"
                        + (f", {verb}: {escape(shown)}" if gone else "")
                    )
                if result.status != "complete":
                    failed = True
                    style = STATUS_STYLE[result.status]
                    err_console.print(
                        f"{escape(name)}: [{style}]{result.status.value}[/] "
                        f"{result.error_kind}: {escape(result.error or '')}",
                        highlight=False,
                    )
        finally:
            runtime.close()
    if failed:
        sys.exit(1)
