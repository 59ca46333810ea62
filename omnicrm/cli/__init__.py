"""The ``omnicrm`` command line.

Exit codes: 0 done; 1 a sync failed or could not start; 2 bad configuration or usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from omnicrm import __version__
from omnicrm.cli._common import Context, console, err_console, errors, fail
from omnicrm.core.channels import Stream
from omnicrm.core.config import (
    Config,
    Connection,
    SchedulerSection,
    default_store_url,
    example_config,
    find_config,
    format_duration,
    parse_duration,
)
from omnicrm.core.host import Host
from omnicrm.core.runtime import Runtime
from omnicrm.core.store import Run, RunStatus, failures
from omnicrm.core.sync import Interrupted, StreamProgress
from omnicrm.errors import LockedError

STATUS_STYLE = {
    RunStatus.RUNNING: "cyan",
    RunStatus.COMPLETE: "green",
    RunStatus.FAILED: "red",
    RunStatus.RATE_LIMITED: "yellow",
    RunStatus.MISSED: "yellow",
    RunStatus.SKIPPED: "yellow",
}


class _LazyGroup(click.Group):
    """A group whose listed ``lazy_commands`` ('module:attribute') import when used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a stop signal unwinds it, and a store failure that reaches
        here is one line, never a traceback (which could quote a customer's data)."""
        previous = signal.signal(signal.SIGTERM, _unwind)
        try:
            with errors():
                return super().invoke(ctx)
        except SQLAlchemyError as exc:
            obj = ctx.find_object(Context)
            loaded = obj.loaded if obj is not None else None
            url = failures.parse_url(loaded.config.store_url) if loaded else None
            fail(str(failures.store_error(exc, url)), 1)
        except Interrupted as exc:
            fail(f"stopped: {exc.reason}", 128 + signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if cmd_name == "customers":
                from omnicrm.cli.crm import find_command, show_command

                command.add_command(find_command)
                command.add_command(show_command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def _unwind(signum: int, _frame: Any) -> None:
    """SIGTERM unwinds the command as Ctrl-C does, so a sync records its end first."""
    raise Interrupted(signal.Signals(signum).name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $OMNICRM_CONFIG or ./omnicrm.toml).",
)
@click.option("--verbose", "-v", count=True, help="Log more (-vv for debug).")
@click.version_option(__version__, prog_name="omnicrm")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """omnicrm: one customer base across the shop's store, EC site and app."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    # httpx logs every URL at INFO, and some carry secrets (signed bulk download links).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    ctx.obj = Context(config)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(obj: Context, path: Path | None, force: bool) -> None:
    """Write a commented example config (default ./omnicrm.toml)."""
    target = path or find_config(obj.config_path)
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it", 2)
    with errors():
        host = Runtime.load(None).host
    text = example_config({n: ct.settings for n, ct in host.channel_types.items()})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(
        f"wrote {escape(str(target))}: edit its \\[connections] tables, "
        "then run `omnicrm connections`"
    )


@cli.command()
@click.pass_obj
def plugins(obj: Context) -> None:
    """List loaded plugins, their versions, hooks and what they provide."""
    host = Host.load()  # never the config: this is what one runs when the config is wrong
    table = Table("plugin", "version", "provides", "hooks", title="plugins")
    for info in host.plugins:
        table.add_row(
            info.name,
            info.version or "-",
            "\n".join(info.provides) or "-",
            "\n".join(info.hooks) or "-",
        )
    for name in host.disabled:
        table.add_row(name, "-", "[yellow]disabled[/]", "-")
    for failure in host.failures:
        table.add_row(failure.name, "-", f"[red]failed: {escape(failure.error)}[/]", "-")
    console.print(table)
    if not host.plugins and not host.failures:
        console.print("no plugins installed")


@cli.command()
@click.pass_obj
def connections(obj: Context) -> None:
    """List the configured connections and check their settings."""
    with errors():
        config = obj.runtime().config
    table = Table("connection", "channel", "schedule", "enabled", "check", title=str(config.path))
    for name, conn in sorted(config.connections.items()):
        table.add_row(
            name, conn.channel, conn.schedule, "yes" if conn.enabled else "no", "[green]ok[/]"
        )
    for name, error in sorted(config.invalid.items()):
        table.add_row(name, "?", "?", "?", f"[red]{escape(str(error))}[/]")
    console.print(table)
    if config.invalid:
        sys.exit(2)
    if not config.connections:
        console.print("no connections configured: add one to the config (see `omnicrm init`)")


def _progress_printer(progress: Progress) -> Any:
    tasks: dict[Stream, Any] = {}

    def show(update: StreamProgress) -> None:
        if update.stream not in tasks:
            tasks[update.stream] = progress.add_task(update.stream.value, total=None)
        label = f"{update.read:,} read, {update.written:,} written"
        progress.update(
            tasks[update.stream],
            description=f"{update.stream.value}: {label}",
            completed=update.read,
        )
        if update.done:
            progress.update(
                tasks[update.stream], total=update.read or 1, completed=update.read or 1
            )

    return show


@cli.command()
@click.argument("connection")
@click.option("--full", is_flag=True, help="Ignore the saved cursor and read everything.")
@click.pass_obj
def sync(obj: Context, connection: str, full: bool) -> None:
    """Sync one connection now."""
    with errors():
        runtime = obj.runtime()
        conn = runtime.config.connection(connection)
        if not conn.enabled:
            fail(f"connection {connection!r} is disabled (enabled = false in the config)", 2)
        engine = runtime.engine()
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        try:
            with progress:
                result = engine.sync(conn, full=full, progress=_progress_printer(progress))
        except LockedError as exc:
            fail(f"{exc}: wait for that run to end (see `omnicrm status`)", 1)
        finally:
            runtime.close()
    style = STATUS_STYLE[result.status]
    console.print(
        f"{connection}: [{style}]{result.status.value}[/] - {result.read:,} read, "
        f"{result.written:,} written, {result.rate_limit_wait:.1f}s waited on rate limits"
    )
    if result.error:
        err_console.print(f"[red]{result.error_kind}:[/] {escape(result.error)}", highlight=False)
    if result.status is not RunStatus.COMPLETE:
        sys.exit(1)


def _local(moment: dt.datetime | None) -> str:
    """Local time; just the clock time when it is today."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    today = dt.datetime.now().astimezone().date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%m-%d %H:%M")


def status_table(config: Config, last: dict[str, Run]) -> Table:
    """The last run of every connection, configured or seen in the store."""
    # A light box and short headers: it must read in an 80-column terminal.
    table = Table(
        title="last run per connection", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for name in ("connection", "schedule", "status", "started"):
        table.add_column(name, no_wrap=True)
    for name in ("took", "read", "written", "errors", "waited"):
        table.add_column(name, justify="right", no_wrap=True)
    names = sorted({*config.connections, *config.invalid, *last})
    for name in names:
        conn = config.connections.get(name)
        schedule = conn.schedule if conn else ("invalid config" if name in config.invalid else "-")
        run = last.get(name)
        if run is None:
            table.add_row(name, schedule, "never run", "-", "-", "-", "-", "-", "-")
            continue
        took = run.duration
        table.add_row(
            name,
            schedule,
            f"[{STATUS_STYLE[run.status]}]{run.status.value}[/]",
            _local(run.started_at),
            "-"
            if took is None
            else format_duration(dt.timedelta(seconds=round(took)))
            if took >= 1
            else f"{took:.2f}s",
            f"{run.records_read:,}",
            f"{run.records_written:,}",
            str(run.errors),
            f"{run.rate_limit_wait:.1f}s",
        )
    return table


@cli.command()
@click.pass_obj
def status(obj: Context) -> None:
    """Show the last run of each connection."""
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            last = runtime.store.last_runs()
        finally:
            runtime.close()
    console.print(status_table(runtime.config, last))
    for name, error in sorted(runtime.config.invalid.items()):
        err_console.print(f"[red]{escape(name)}:[/] {escape(str(error))}", highlight=False)


def _serve(runtime: Runtime, *, tui: bool = False, webhooks: bool = False) -> None:
    """Run the scheduler until SIGINT or SIGTERM; with ``tui``, in the background of the
    terminal UI until the operator quits it; with ``webhooks``, applying the webhook
    inbox meanwhile."""
    try:
        with contextlib.ExitStack() as stack:
            if webhooks:
                from omnicrm.core.webhook_app import applying

                stack.enter_context(applying(runtime))
                console.print("applying the webhook events that `webhooks serve` queues")
            _schedule(runtime, tui=tui)
    finally:
        runtime.close()  # after the inbox worker stopped


def _schedule(runtime: Runtime, *, tui: bool) -> None:
    """The scheduler of ``_serve``, until stopped (the caller closes the runtime)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from omnicrm.core.scheduler import build_scheduler

    config = runtime.config
    for name, error in sorted(config.invalid.items()):
        err_console.print(
            f"[red]{escape(name)} is not scheduled:[/] {escape(str(error))}", highlight=False
        )
        runtime.store.record_run(name, RunStatus.FAILED, trigger="schedule", error=str(error))
    engine = runtime.engine()
    scheduler = build_scheduler(
        config,
        engine,
        nightly=runtime.nightly,
        scheduler=BackgroundScheduler() if tui else None,
    )
    jobs = scheduler.get_jobs()
    if not jobs:
        fail("no enabled connection has a schedule: add `every` or `cron` to one", 2)
    if tui:
        from omnicrm.tui.app import OmnicrmApp

        scheduler.start()
        try:
            OmnicrmApp(runtime).run()
        finally:
            scheduler.shutdown(wait=True)
        return
    for job in jobs:
        console.print(f"scheduled: {job.name}")

    console.print(f"store: {runtime.store!r}; Ctrl-C to stop")
    try:
        scheduler.start()
    except (KeyboardInterrupt, Interrupted) as exc:
        # Runs in progress stop at their next record and record that they were interrupted.
        engine.interrupt(exc.reason if isinstance(exc, Interrupted) else "SIGINT (Ctrl-C)")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)


@cli.command()
@click.option("--tui", is_flag=True, help="Watch the runs in the terminal UI meanwhile.")
@click.option(
    "--webhooks",
    is_flag=True,
    help="Apply the webhook events that `webhooks serve --no-apply` accepts, meanwhile.",
)
@click.pass_obj
def run(obj: Context, tui: bool, webhooks: bool) -> None:
    """Run the scheduler: sync every connection on its schedule until stopped."""
    with errors():
        runtime = obj.runtime()
        _serve(runtime, tui=tui, webhooks=webhooks)


@cli.group()
def webhooks() -> None:
    """Receive platform webhooks (a hint for a faster sync)."""


@webhooks.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8780, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--apply/--no-apply",
    default=True,
    show_default=True,
    help="Apply the accepted events in this process too; with --no-apply only accept "
    "them and let `omnicrm webhooks work` apply them.",
)
@click.pass_obj
def webhooks_serve(obj: Context, host: str, port: int, apply: bool) -> None:
    """Serve POST /webhooks/CHANNEL for every connection of the config."""
    import uvicorn

    from omnicrm.core.webhook_app import create_app

    with errors():
        runtime = obj.runtime()
        channels = sorted(n for n, ct in runtime.host.channel_types.items() if ct.webhooks)
        if not channels:
            fail("no installed channel receives webhooks (see `omnicrm plugins`)", 2)
        for channel in channels:
            console.print(f"listening: http://{host}:{port}/webhooks/{channel}")
        if not apply:
            console.print("accepting only: run `omnicrm webhooks work` to apply the events")
        try:
            # uvicorn takes uvloop and httptools (dependencies) by itself: about a third
            # less CPU per request than asyncio and h11 (benchmarks/README.md).
            uvicorn.run(create_app(runtime, apply=apply), host=host, port=port, log_level="warning")
        finally:
            runtime.close()


@webhooks.command("work")
@click.option(
    "--poll",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01, 60),
    help="Seconds between looks at the inbox when it is empty.",
)
@click.pass_obj
def webhooks_work(obj: Context, poll: float) -> None:
    """Apply the webhook events that `webhooks serve --no-apply` accepted, until stopped.

    Several can run at once (on PostgreSQL): each event is claimed by one of them."""
    import time

    from omnicrm.core.webhook_app import applying

    with errors():
        runtime = obj.runtime()
        stopping: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
        try:
            with applying(runtime, poll=poll):
                console.print("applying queued webhook events (Ctrl-C to stop)")
                while not stopping:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            runtime.close()


@webhooks.command("list")
@click.option("--connection", "connection", default=None, help="Only this connection's events.")
@click.option(
    "--status",
    type=click.Choice(["queued", "applied", "rejected", "failed"]),
    default=None,
    help="Only events that ended so (rejected: refused for good, with the reason).",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_obj
def webhooks_list(obj: Context, connection: str | None, status: str | None, limit: int) -> None:
    """Show the webhook events received, newest first: what became of each, and why."""
    from omnicrm.core.store import inbox

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            found = inbox.events(
                runtime.store,
                connection,
                status=inbox.EventStatus(status) if status else None,
                limit=limit,
            )
            waiting = inbox.pending(runtime.store)
        finally:
            runtime.close()
    table = Table(
        title=f"webhook events ({waiting} waiting to be applied)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in ("received", "connection", "topic", "event id", "status", "tries", "reason"):
        table.add_column(name, no_wrap=name != "reason")
    for event in found:
        table.add_row(
            _local(event.received_at),
            escape(event.source),
            escape(event.topic),
            escape(event.event_id),
            f"[{WEBHOOK_STYLE[event.status]}]{event.status.value}[/]",
            str(event.attempts),
            escape(event.error or ""),
        )
    console.print(table)


WEBHOOK_STYLE = {"queued": "yellow", "applied": "green", "rejected": "red", "failed": "bold red"}


def _duration_option(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
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

    Uses the embedded default store (SQLite in the user's data dir) and no config file.
    """
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
        if once:
            engine = runtime.engine()
            results = [engine.sync(conn, trigger="demo") for conn in connections.values()]
            for result in results:
                console.print(
                    f"{result.connection}: {result.status.value}, {result.read:,} read, "
                    f"{result.written:,} written"
                )
            console.print(status_table(runtime.config, runtime.store.last_runs()))
            from omnicrm.cli.crm import print_summary

            print_summary(runtime)
            runtime.close()
            if any(r.status is not RunStatus.COMPLETE for r in results):
                sys.exit(1)
            return
        _serve(runtime, tui=sys.stdout.isatty() if tui is None else tui)


# CRM commands load on first use: they bring numpy, scipy and the CRM core, which a
# `sync` or `status` (run every few minutes by cron or the operator) never needs.
for _name, _target in {
    "crm": "omnicrm.cli.crm:crm_group",
    "customers": "omnicrm.cli.customers:customers",
    "segments": "omnicrm.cli.segments:segments",
    "report": "omnicrm.cli.report:report_group",
    "points": "omnicrm.cli.points:points",
    "interactions": "omnicrm.cli.interactions:interactions_group",
    "nps": "omnicrm.cli.nps:nps_group",
    "tui": "omnicrm.cli.tui:tui_command",
}.items():
    cli.lazy_commands[_name] = _target


def main() -> None:
    cli(prog_name="omnicrm")
