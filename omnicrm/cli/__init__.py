"""The ``omnicrm`` command line.

Exit codes: 0 done; 1 a sync failed or could not start; 2 bad configuration or usage.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from omnicrm import __version__
from omnicrm.cli._common import Context, console, err_console, errors, fail
from omnicrm.cli._logging import log_runs, setup_logging
from omnicrm.errors import LockedError

# The store, the host, the sync engine and the CRM load when a command runs, not for
# `omnicrm --help` (tests/cli/test_startup.py holds this).
if TYPE_CHECKING:
    from rich.progress import Progress

    from omnicrm.app.runtime import Runtime
    from omnicrm.core.sync import StreamProgress

# RunStatus values (a StrEnum: its members look these up) and how they are shown.
STATUS_STYLE = {
    "running": "cyan",
    "complete": "green",
    "failed": "red",
    "rate_limited": "yellow",
    "missed": "yellow",
    "skipped": "yellow",
}


class _LazyGroup(click.Group):
    """A group whose listed ``lazy_commands`` import when used.

    ``lazy_commands`` maps a name to ('module:attribute', the command's short help): the
    group's ``--help`` lists them without importing them (tests hold the texts true).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a stop signal unwinds it, and a store failure that reaches
        here is one line, never a traceback (which could quote a customer's data)."""
        previous = signal.signal(signal.SIGTERM, _unwind)
        try:
            with errors():
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise  # click's own ways out, `--help` among them
        except BaseException as exc:
            # Imported only on the way out: `--help` must not load the store.
            from sqlalchemy.exc import SQLAlchemyError

            from omnicrm.core.store import failures
            from omnicrm.core.sync import Interrupted

            if isinstance(exc, SQLAlchemyError):
                obj = ctx.find_object(Context)
                loaded = obj.loaded if obj is not None else None
                url = failures.parse_url(loaded.config.store_url) if loaded else None
                fail(str(failures.store_error(exc, url)), 1)
            if isinstance(exc, Interrupted):
                fail(f"stopped: {exc.reason}", 128 + signal.SIGTERM)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module_name, attribute = self.lazy_commands[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if cmd_name == "customers":
                from omnicrm.cli.crm import find_command, show_command

                command.add_command(find_command)
                command.add_command(show_command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            # Not imported yet: a stand-in shortens the help text as click would.
            command = self.commands.get(name) or click.Command(
                name, help=self.lazy_commands[name][1]
            )
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unwind(signum: int, _frame: Any) -> None:
    """SIGTERM unwinds the command as Ctrl-C does, so a sync records its end first."""
    from omnicrm.core.sync import Interrupted

    raise Interrupted(signal.Signals(signum).name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $OMNICRM_CONFIG, ./omnicrm.toml, else the one "
    "`omnicrm demo` writes in the data dir).",
)
@click.option("--verbose", "-v", count=True, help="Log more (-vv for debug).")
@click.version_option(__version__, prog_name="omnicrm")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """omnicrm: one customer base across the shop's store, EC site and app."""
    setup_logging(verbose)
    ctx.obj = Context(config)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(obj: Context, path: Path | None, force: bool) -> None:
    """Write a commented example config (default ./omnicrm.toml)."""
    from omnicrm.app.config import example_config, find_config
    from omnicrm.app.runtime import Runtime

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
    from omnicrm.core.host import Host
    from omnicrm.render import Col, FitTable

    host = Host.load()  # never the config: this is what one runs when the config is wrong
    table = FitTable(
        [Col("plugin"), Col("version", keep=True), Col("provides"), Col("hooks", 1)],
        title="plugins",
    )
    for info in host.plugins:
        table.add_row(
            escape(info.name),
            escape(info.version or "-"),
            escape("\n".join(info.provides) or "-"),
            escape("\n".join(info.hooks) or "-"),
        )
    for name in host.disabled:
        table.add_row(escape(name), "-", "[yellow]disabled[/]", "-")
    for failure in host.failures:
        table.add_row(escape(failure.name), "-", f"[red]failed: {escape(failure.error)}[/]", "-")
    console.print(table)
    if not host.plugins and not host.failures:
        console.print("no plugins installed")


@cli.command()
@click.pass_obj
def connections(obj: Context) -> None:
    """List the configured connections and check their settings."""
    from omnicrm.render import Col, FitTable

    with errors():
        config = obj.runtime().config
    table = FitTable(
        [
            Col("connection"),
            Col("shop"),
            Col("channel"),
            Col("schedule", 2),
            Col("enabled", 1),
            Col("check"),
        ],
        title=escape(str(config.path)),
    )
    for name, conn in sorted(config.connections.items()):
        table.add_row(
            escape(name),
            escape(conn.shop),
            escape(conn.channel),
            escape(conn.schedule),
            "yes" if conn.enabled else "no",
            "[green]ok[/]",
        )
    for name, error in sorted(config.invalid.items()):
        table.add_row(escape(name), "?", "?", "?", "?", f"[red]{escape(str(error))}[/]")
    console.print(table)
    if config.invalid:
        sys.exit(2)
    if not config.connections:
        console.print("no connections configured: add one to the config (see `omnicrm init`)")


def _progress_printer(progress: Progress) -> Any:
    tasks: dict[str, Any] = {}

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
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with errors():
        runtime = obj.runtime()
        conn = runtime.config.connection(connection)
        if not conn.enabled:
            fail(f"connection {connection!r} is disabled (enabled = false in the config)", 2)
        engine = runtime.engine()
        # Without a terminal the bar shows nothing until the end: log lines instead.
        _log_without_terminal(runtime)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
            disable=not err_console.is_terminal,
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
    if result.status != "complete":
        sys.exit(1)


def _log_without_terminal(runtime: Runtime) -> None:
    """Log each run's start, progress and end when no terminal shows a progress bar."""
    if not err_console.is_terminal:
        from omnicrm.render import shop_zone

        log_runs(shop_zone(runtime.config))


def _serve(runtime: Runtime, *, tui: bool = False, webhooks: bool = False) -> None:
    """Run the scheduler until SIGINT or SIGTERM; with ``tui``, in the background of the
    terminal UI until the operator quits it; with ``webhooks``, applying the webhook
    inbox meanwhile."""
    try:
        with contextlib.ExitStack() as stack:
            if webhooks:
                from omnicrm.app.webhook_app import applying

                stack.enter_context(applying(runtime))
                console.print("applying the webhook events that `webhooks serve` queues")
            _schedule(runtime, tui=tui)
    finally:
        runtime.close()  # after the inbox worker stopped


def _schedule(runtime: Runtime, *, tui: bool) -> None:
    """The scheduler of ``_serve``, until stopped (the caller closes the runtime)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from omnicrm.core.scheduler import build_scheduler
    from omnicrm.core.store import RunStatus
    from omnicrm.core.sync import Interrupted

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
        jobs=runtime.jobs(),
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
        if not tui:
            from omnicrm.render import shop_zone

            log_runs(shop_zone(runtime.config))
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
    """Serve POST /webhooks/CHANNEL for every connection of the config, and the
    storefront endpoint (/storefront/...) for the shops' own sites."""
    import uvicorn

    from omnicrm.app.webhook_app import create_app

    with errors():
        runtime = obj.runtime()
        channels = sorted(n for n, ct in runtime.host.channel_types.items() if ct.webhooks)
        if not channels:
            fail("no installed channel receives webhooks (see `omnicrm plugins`)", 2)
        for channel in channels:
            console.print(f"listening: http://{host}:{port}/webhooks/{channel}")
            if getattr(runtime.host.channel_types[channel].webhooks, "path_token", False):
                console.print(f"       or: http://{host}:{port}/webhooks/{channel}/TOKEN")
        if any(
            shop.storefront.public_key or shop.storefront.shopify_connection
            for shop in runtime.config.all_shops().values()
        ):
            console.print(f"storefront: http://{host}:{port}/storefront/omnicrm.js")
        if not apply:
            console.print("accepting only: run `omnicrm webhooks work` to apply the events")
        try:
            # uvicorn takes uvloop and httptools (dependencies) by itself: about a third
            # less CPU per request than asyncio and h11 (benchmarks/README.md).
            uvicorn.run(
                create_app(runtime, apply=apply),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,  # a path may carry a webhook token (a secret)
            )
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

    from omnicrm.app.webhook_app import applying

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
    from omnicrm.render import Col, FitTable, local_time, shop_zone, zone_name

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
            tz = shop_zone(runtime.config)
        finally:
            runtime.close()
    table = FitTable(
        [
            Col(f"received ({zone_name(tz)})", keep=True),
            Col("connection", 3),
            Col("topic", keep=True),
            Col("event id", 4),
            Col("status", keep=True),
            Col("tries", 5, "right"),
            Col("reason", 2),
        ],
        title=f"webhook events ({waiting} waiting to be applied)",
    )
    for event in found:
        table.add_row(
            local_time(event.received_at, tz),
            escape(event.source),
            escape(event.topic),
            escape(event.event_id),
            f"[{WEBHOOK_STYLE[event.status]}]{event.status.value}[/]",
            str(event.attempts),
            escape(event.error or ""),
        )
    console.print(table)


WEBHOOK_STYLE = {"queued": "yellow", "applied": "green", "rejected": "red", "failed": "bold red"}


# Commands that load on first use: the CRM ones bring the CRM core (numpy and scipy for
# some), the terminal UI brings Textual, and a `sync` or `status` (run every few minutes
# by cron or the operator) needs none of it. The help texts are the commands' first
# docstring lines (tests/cli/test_startup.py holds them equal).
cli.lazy_commands.update(
    {
        "campaigns": (
            "omnicrm.cli.campaigns:campaigns_group",
            "Campaigns: a segment, a message and a medium; planned, sent once, reported.",
        ),
        "connect": (
            "omnicrm.cli.connect:connect",
            "Authorise an EC-CUBE connection once (OAuth2), or show which are authorised.",
        ),
        "crm": ("omnicrm.cli.crm:crm_group", "Unified profiles, scores and segment counts."),
        "customers": (
            "omnicrm.cli.customers:customers",
            "Unified customers: find and show them; explain, list, undo and make merges.",
        ),
        "demo": (
            "omnicrm.cli.demo:demo",
            "Start the local sandboxes of installed channels and sync them on a schedule, "
            "watched in the terminal UI.",
        ),
        "import": (
            "omnicrm.cli.imports:import_group",
            "Import a connection's records from files its platform exports (POS CSV, EC-CUBE CSV).",
        ),
        "interactions": (
            "omnicrm.cli.interactions:interactions_group",
            "A profile's history of inquiries, complaints and the like.",
        ),
        "nps": (
            "omnicrm.cli.nps:nps_group",
            "Net Promoter Score: survey answers (0-10) and the score per segment.",
        ),
        "offers": (
            "omnicrm.cli.offers:offers_group",
            "On-site offers: what each variant did (impressions, clicks, conversions, revenue).",
        ),
        "points": (
            "omnicrm.cli.points:points",
            "The shared points wallet: balances, history, adjustments, expiry, reconciliation.",
        ),
        "reconcile": (
            "omnicrm.cli.reconcile:reconcile",
            "Delete stored records the platform deleted without notice (EC-CUBE), as the "
            "nightly job does; every reconciling connection unless some are named.",
        ),
        "recommend": (
            "omnicrm.cli.recommend:recommend",
            "Recommended products for a customer (profile id) or alongside --product, scored "
            "by the installed recommenders, each with its reason.",
        ),
        "report": (
            "omnicrm.cli.report:report_group",
            "Analytics: LTV, cohorts, repeat rate, F2, retention, AOV, intervals, CLV, NPS.",
        ),
        "segments": (
            "omnicrm.cli.segments:segments",
            "A shop's segments with their latest count and the change since the count before.",
        ),
        "shops": (
            "omnicrm.cli.shops:shops",
            "Each client shop: its connections, profiles, last sync and segments.",
        ),
        "products": (
            "omnicrm.cli.products:products",
            "A shop's products that recommendations may offer, with price and link.",
        ),
        "status": (
            "omnicrm.cli.status:status",
            "Show the last run of each connection, and the last error of a failed one.",
        ),
        "tui": (
            "omnicrm.cli.tui:tui_command",
            "Watch every connection's syncs live; sync, resync, pause and resume them.",
        ),
    }
)


def main() -> None:
    cli(prog_name="omnicrm")
