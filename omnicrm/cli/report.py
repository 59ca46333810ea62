"""``omnicrm report ...``: the analytics reports as a table, CSV or JSON.

Every report is one shop's (``--shop``; may be left out with one shop): its customers
and orders only, amounts in its currency, days in its time zone, and its heading names
the shop.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.markup import escape

from omnicrm.cli._common import Context, console, err_console, errors, fail, shop_option
from omnicrm.render import Col, FitTable

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import ColumnElement, Connection

    from omnicrm.app.runtime import Runtime
    from omnicrm.crm.analytics.reports import Report
    from omnicrm.crm.refresh import CrmSettings


FORMATS = ("table", "csv", "json")
# The Kind values (a StrEnum: its members look these up) shown right-aligned.
_NUMERIC = {"id", "int", "money", "ratio", "number"}


# --------------------------------------------------------------------------- rendering


def render(report: Report, fmt: str, shop_name: str | None = None) -> None:
    """Print ``report`` (and its parts) as a table, CSV or JSON on stdout; a table's
    heading names the shop (``shop_name``, else the report's shop id)."""
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(_csv(report), nl=False)
    else:
        _table(report, shop_heading(report, shop_name))
    if report.empty and fmt != "table":
        err_console.print(f"no data yet: {escape('; '.join(report.notes))}", highlight=False)


def _csv(report: Report) -> str:
    """Machine values: exact decimals, ratios as fractions, ISO dates, empty for none.

    Parts follow, each after a blank line with its own header."""
    from omnicrm.core.csv_export import CsvWriter

    out = io.StringIO()
    writer = CsvWriter(out, lineterminator="\n")
    for i, part in enumerate((report, *report.parts)):
        if i:
            out.write("\n")
        writer.writerow(part.column_names)
        writer.writerows(part.rows)
    return out.getvalue()


def shop_heading(report: Report, shop_name: str | None = None) -> str:
    """'shop NAME (ID)' for a table's heading, '' for a report of no shop."""
    if report.shop is None:
        return ""
    if shop_name and shop_name != report.shop:
        return f"shop {shop_name} ({report.shop})"
    return f"shop {report.shop}"


def _table(report: Report, heading: str = "") -> None:
    from omnicrm.crm.analytics.reports import Kind

    def titled(title: str) -> str:
        return f"{title} · {heading}" if heading else title

    if report.empty:
        console.print(f"{escape(titled(report.title))}: no data yet")
        for note in report.notes:
            console.print(f"  {escape(note)}", highlight=False)
        return
    for part in (report, *report.parts):
        # The first columns say what a row is: the last ones go first at a narrow width
        # (--format csv has them all).
        table = FitTable(
            [
                Col(
                    escape(column.name),
                    priority=i,
                    justify="right" if column.kind in _NUMERIC else "left",
                    keep=column.kind in _NUMERIC or column.kind is Kind.DATE,
                )
                for i, column in enumerate(part.columns)
            ],
            # The report's own heading names the shop; its parts are the same shop's.
            title=escape(titled(part.title) if part is report else part.title),
            box=box.SIMPLE_HEAVY,
        )
        for row in part.text_rows():
            table.add_row(*(escape(v) for v in row))
        console.print(table)
        for note in part.notes:
            console.print(f"[dim]{escape(note)}[/]", highlight=False)


# --------------------------------------------------------------------------- options


def shop_zone(runtime: Runtime) -> ZoneInfo:
    return ZoneInfo(runtime.config.scheduler.timezone)


def as_of(value: str | None, tz: ZoneInfo) -> dt.datetime:
    """``--as-of``: now, or the end of that day / that moment in shop time."""
    from omnicrm.crm.csv_import import parse_moment

    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = parse_moment(value, tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None
    if len(value.strip()) <= 10:  # a date alone: the whole of that day counts
        moment += dt.timedelta(days=1, microseconds=-1)
    return moment


def format_option(
    help: str = "table for reading, csv or json for other tools.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format``: table, csv or json."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help=help,
    )


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--as-of",
        "as_of_text",
        metavar="DATE",
        help="Report as of this day or moment (shop time), e.g. 2024-06-30; default now.",
    )(command)
    return format_option(
        "table for reading, csv or json for other tools (money as exact decimals)."
    )(command)


@contextmanager
def _opened(obj: Context) -> Iterator[tuple[Runtime, Connection]]:
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            with runtime.store.engine.connect() as conn:
                yield runtime, conn
        finally:
            runtime.close()


@contextmanager
def _in_shop(obj: Context, shop: str | None) -> Iterator[tuple[Runtime, CrmSettings, Connection]]:
    """The runtime, the settings of the shop ``--shop`` names (exit 2 naming the shops
    when it is unknown, or left out while several are configured) and a connection."""
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            settings = runtime.crm_settings(shop)
            with runtime.store.engine.connect() as conn:
                yield runtime, settings, conn
        finally:
            runtime.close()


# --------------------------------------------------------------------------- commands


@click.group("report")
def report_group() -> None:
    """Analytics: LTV, cohorts, repeat rate, F2, retention, AOV, intervals, CLV, NPS.

    Each report is one shop's (--shop): a purchase is a paid or fulfilled order of a
    known customer of that shop; amounts are in the shop's currency, months and days in
    its time zone. docs/reports.md defines every figure.
    """


@dataclass(frozen=True)
class _Option:
    """A report's own option, a whole number passed to the report function as ``keyword``."""

    flag: str
    keyword: str
    help: str
    default: int | None = None  # None: the [analytics] setting named ``setting``
    setting: str | None = None


@dataclass(frozen=True)
class _ReportCommand:
    """``report NAME [options] [--format] [--as-of]``: ``make`` rendered.

    ``make`` names a function of omnicrm.crm.analytics.reports, imported when the
    command runs (not for --help)."""

    name: str
    make: str
    help: str
    options: tuple[_Option, ...] = ()

    def command(self) -> click.Command:
        """The click command."""

        def run(
            obj: Context, fmt: str, as_of_text: str | None, shop: str | None, **options: Any
        ) -> None:
            from omnicrm.crm.analytics import reports

            with _in_shop(obj, shop) as (runtime, settings, conn):
                tz = settings.tz
                for option in self.options:
                    if options[option.keyword] is None and option.setting is not None:
                        options[option.keyword] = getattr(settings.analytics, option.setting)
                make: Callable[..., Report] = getattr(reports, self.make)
                try:
                    report = make(
                        conn,
                        shop=settings.shop,
                        now=as_of(as_of_text, tz),
                        tz=tz,
                        currency=settings.currency,
                        **options,
                    )
                except ValueError as exc:
                    fail(str(exc), 2)
                name = runtime.shop(settings.shop).name
            render(report, fmt, name)

        command = shop_option(_common(click.pass_obj(run)))
        for option in reversed(self.options):  # listed in --help in the table's order
            command = click.option(
                option.flag,
                option.keyword,
                type=int,
                default=option.default,
                show_default=option.default is not None,
                help=option.help,
            )(command)
        return click.command(self.name, help=self.help)(command)


_REPORTS = (
    _ReportCommand(
        "ltv",
        "ltv_customers",
        "Historical LTV: the top customers by spend to date.",
        (_Option("--limit", "limit", "How many customers.", default=20),),
    ),
    _ReportCommand(
        "cohorts",
        "ltv_cohorts",
        "Historical LTV per acquisition cohort (month of first purchase).",
    ),
    _ReportCommand(
        "repeat",
        "repeat_rate",
        "Repeat rate: customers with purchases on 2+ days, overall and per cohort.",
    ),
    _ReportCommand(
        "f2",
        "f2_conversion",
        "F2 conversion: second purchase within the window, per first-purchase month.",
        (
            _Option(
                "--window",
                "window_days",
                "Days allowed for the 2nd purchase [90].",
                setting="f2_window_days",
            ),
        ),
    ),
    _ReportCommand(
        "retention",
        "cohort_retention",
        "Cohort retention: share of each cohort buying in month +1..+N.",
        (
            _Option(
                "--months",
                "months",
                "Months after acquisition [12].",
                setting="retention_months",
            ),
        ),
    ),
    _ReportCommand(
        "aov",
        "average_order_value",
        "Average order value: overall, store vs EC, by month.",
    ),
    _ReportCommand(
        "interval",
        "purchase_interval",
        "Days between purchases: mean and median, and first to second.",
    ),
)
for _report in _REPORTS:
    report_group.add_command(_report.command())


@report_group.command("clv")
@click.option("--limit", default=20, show_default=True, help="How many customers.")
@click.option("--fit", is_flag=True, help="Fit the model now (otherwise the nightly fit is shown).")
@format_option()
@shop_option
@click.pass_obj
def clv_command(obj: Context, fmt: str, limit: int, fit: bool, shop: str | None) -> None:
    """Predicted CLV (BG/NBD x Gamma-Gamma) of one shop: parameters, top customers, deciles."""
    # Imported here: the model needs numpy and scipy, which no other report (nor any
    # --help) should load.
    from omnicrm.crm.analytics.scoring import predicted_clv_report, score_clv

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            settings = runtime.crm_settings(shop)
            if fit:
                clv = settings.analytics
                with runtime.store.engine.begin() as conn:
                    result = score_clv(
                        conn,
                        dt.datetime.now(dt.UTC),
                        clv.clv_horizon_weeks,
                        clv.clv_discount,
                        shop=settings.shop,
                        tz=settings.tz,
                        min_customers=clv.clv_min_customers,
                        min_repeaters=clv.clv_min_repeaters,
                    )
                err_console.print(
                    f"CLV fit of shop {escape(settings.shop)}: {escape(result.message)}",
                    highlight=False,
                )
            with runtime.store.engine.connect() as conn:
                report = predicted_clv_report(
                    conn, shop=settings.shop, limit=limit, currency=settings.currency
                )
            name = runtime.shop(settings.shop).name
        except ValueError as exc:
            fail(str(exc), 2)
        finally:
            runtime.close()
    render(report, fmt, name)


def segment_conditions(
    conn: Connection, names: tuple[str, ...], now: dt.datetime, tz: ZoneInfo, *, shop: str
) -> dict[str, ColumnElement[bool]]:
    """Each of ``shop``'s named segments compiled to a condition over profiles (exit 2
    if unknown)."""

    from omnicrm.crm.segments import SegmentError, compile_expression, get_segment

    out: dict[str, ColumnElement[bool]] = {}
    for name in names:
        try:
            out[name] = compile_expression(get_segment(conn, name, shop=shop).expression, now, tz)
        except SegmentError as exc:
            fail(str(exc), 2)
    return out


def nps_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--segment (repeatable), --since, --until and --format for the NPS commands."""
    for option in (
        click.option(
            "--segment",
            "segment_names",
            multiple=True,
            metavar="NAME",
            help="Also the NPS of this segment's profiles (repeat for several).",
        ),
        click.option("--since", metavar="DATE", help="Responses from this day on (shop time)."),
        click.option("--until", metavar="DATE", help="Responses before this day (shop time)."),
        format_option(),
    ):
        command = option(command)
    return command


def show_nps(
    obj: Context,
    fmt: str,
    segment_names: tuple[str, ...],
    since: str | None,
    until: str | None,
    shop: str | None = None,
) -> None:
    """Render the NPS report of ``shop`` (None: the only one), overall and per named
    segment, of responses in the bounds."""
    from omnicrm.crm.analytics.nps import nps_report
    from omnicrm.crm.csv_import import parse_moment

    with _opened(obj) as (runtime, conn):
        settings = runtime.crm_settings(shop)
        tz = settings.tz
        bounds = []
        for flag, text in (("--since", since), ("--until", until)):
            try:
                bounds.append(parse_moment(text, tz) if text else None)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=flag) from None
        now = dt.datetime.now(dt.UTC)
        conditions = segment_conditions(conn, segment_names, now, tz, shop=settings.shop)
        report = nps_report(conn, conditions, shop=settings.shop, since=bounds[0], until=bounds[1])
    render(report, fmt)


def nps_command_named(name: str, help: str) -> click.Command:
    """An NPS command (options: ``nps_options``): ``report nps`` and ``nps summary``."""

    @nps_options
    @shop_option
    @click.pass_obj
    def command(
        obj: Context,
        fmt: str,
        segment_names: tuple[str, ...],
        since: str | None,
        until: str | None,
        shop: str | None,
    ) -> None:
        show_nps(obj, fmt, segment_names, since, until, shop)

    return click.command(name, help=help)(command)


nps_command = nps_command_named("nps", "Net Promoter Score overall and per segment.")
report_group.add_command(nps_command)
