"""``omnicrm demo``: the installed channels' sandboxes, synced on a schedule.

The demo writes the user config (``omnicrm.toml`` in the data dir) pointing at its
store, so ``omnicrm segments``, ``omnicrm points`` and the rest work from any directory
afterwards. Exit codes: 0 done; 1 a sync failed; 2 no sandbox or bad usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, err_console, errors, fail
from omnicrm.cli._logging import log_runs
from omnicrm.render import shop_zone

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from omnicrm.app.config import Connection
    from omnicrm.app.runtime import Runtime


# The first line of the config the demo writes: the demo rewrites only a file it wrote.
DEMO_MARK = "# Written by `omnicrm demo`."


def demo_config_text(store_url: str, timezone: str) -> str:
    """The user config the demo leaves: its store and timezone, no connections."""
    quoted = store_url.replace("\\", "\\\\").replace('"', '\\"')
    return f"""{DEMO_MARK}
# omnicrm commands read this file when there is no ./omnicrm.toml and neither --config
# nor $OMNICRM_CONFIG is given: it points them at the demo's store. The demo's sandbox
# connections live only while `omnicrm demo` runs, so none is listed here.
# For a real shop, write ./omnicrm.toml with `omnicrm init`.

[store]
url = "{quoted}"

[scheduler]
timezone = "{timezone}"
"""


def write_demo_config(store_url: str, timezone: str) -> Path | None:
    """Write (or refresh) the user config for the demo's store; None if the user keeps
    a config of their own there, which is left alone."""
    from omnicrm.app.config import user_config

    path = user_config()
    if path.exists():
        try:
            head = path.read_text(encoding="utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError):
            head = ""
        if head != DEMO_MARK:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(demo_config_text(store_url, timezone), encoding="utf-8")
    partial.replace(path)  # never a half-written config
    return path


def _say_where(path: Path | None) -> None:
    from omnicrm.app.config import user_config

    if path is None:
        err_console.print(
            f"note: {escape(str(user_config()))} is a config of your own, so commands run "
            "outside a directory with omnicrm.toml read it, not the demo's store",
            highlight=False,
        )
        return
    console.print(
        f"config: {escape(str(path))} - `omnicrm status`, `omnicrm segments`, "
        "`omnicrm points` and the rest read the demo's store through it from any "
        "directory without an omnicrm.toml",
        highlight=False,
    )


def _duration_option(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    from omnicrm.app.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("demo")
@click.option(
    "--every",
    default="30s",
    show_default=True,
    callback=_duration_option,
    help="How often to sync, e.g. 30s, 5m.",
)
@click.option("--once", is_flag=True, help="Sync each sandbox once, print the status, exit.")
@click.option(
    "--tui/--no-tui",
    default=None,
    help="Watch in the terminal UI (default: when the output is a terminal).",
)
@click.pass_obj
def demo(obj: Context, every: dt.timedelta, once: bool, tui: bool | None) -> None:
    """Start the local sandboxes of installed channels and sync them on a schedule,
    watched in the terminal UI.

    Uses the embedded default store (SQLite in the user's data dir) and writes the
    config other commands then read (omnicrm.toml in the data dir).
    """
    from omnicrm.app.config import Config, Connection, SchedulerSection, default_store_url
    from omnicrm.app.runtime import Runtime
    from omnicrm.cli import _serve

    with errors(), contextlib.ExitStack() as stack:
        runtime = Runtime.load(None)
        sandboxes = {n: ct for n, ct in runtime.host.channel_types.items() if ct.sandbox}
        if not sandboxes:
            fail("no installed channel plugin has a sandbox (see `omnicrm plugins`)", 2)
        connections: dict[str, Connection] = {}
        for name, channel in sorted(sandboxes.items()):
            assert channel.sandbox is not None
            console.print(f"starting the {channel.title or name} sandbox ...")
            settings = channel.settings.model_validate(dict(stack.enter_context(channel.sandbox())))
            conn_name = f"demo-{name}"
            connections[conn_name] = Connection(
                name=conn_name,
                channel=name,
                settings=settings,
                every=every,
                lookback=dt.timedelta(minutes=1),
            )
        runtime.config = Config(
            path=None,
            store_url=default_store_url(),
            scheduler=SchedulerSection(),
            connections=connections,
        )
        written = write_demo_config(runtime.config.store_url, runtime.config.scheduler.timezone)
        tz = shop_zone(runtime.config)
        if once:
            log_runs(tz)
            complete = _once(runtime, connections)
            _say_where(written)
            if not complete:
                sys.exit(1)
            return
        watch = sys.stdout.isatty() if tui is None else tui
        _say_where(written)
        if not watch:
            log_runs(tz)
        _serve(runtime, tui=watch)


def _once(runtime: Runtime, connections: dict[str, Connection]) -> bool:
    """Sync each sandbox once and print the status and the summary; True if all ran."""
    from omnicrm.cli.crm import print_summary
    from omnicrm.cli.status import print_last_errors, status_table
    from omnicrm.core.store import RunStatus

    engine = runtime.engine()
    results = [engine.sync(conn, trigger="demo") for conn in connections.values()]
    for result in results:
        console.print(
            f"{result.connection}: {result.status.value}, {result.read:,} read, "
            f"{result.written:,} written"
        )
    last = runtime.store.last_runs()
    console.print(status_table(runtime.config, last))
    print_last_errors(last, shop_zone(runtime.config))
    print_summary(runtime)
    runtime.close()
    return all(r.status is RunStatus.COMPLETE for r in results)
