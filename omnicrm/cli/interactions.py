"""``omnicrm interactions``: a profile's inquiries, complaints and the like, in one shop
(``--shop``)."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, err_console, errors, fail, shop_option
from omnicrm.render import Col, FitTable, local_time, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import Connection

    from omnicrm.crm.csv_import import ImportResult


def print_import(result: ImportResult, what: str) -> None:
    """One line of counts, then the rows whose person matched no profile."""
    console.print(
        f"{escape(result.file)}: {result.rows:,} {what} read - {result.inserted:,} new, "
        f"{result.updated:,} changed, {result.unchanged:,} unchanged "
        f"(source {escape(result.source)!r})",
        highlight=False,
    )
    if result.unmatched:
        table = FitTable(
            [Col("line", justify="right", keep=True), Col("id"), Col("why")],
            title=f"{len(result.unmatched) + result.more_unmatched:,} unmatched",
        )
        for miss in result.unmatched:
            table.add_row(str(miss.line), escape(miss.external_id), escape(miss.reason))
        if result.more_unmatched:
            table.add_row("...", f"and {result.more_unmatched:,} more", "")
        err_console.print(table)


def encoding_option(command: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--encoding",
        default="auto",
        show_default=True,
        help="The file's encoding: auto (UTF-8 or Shift_JIS, told by the bytes), utf-8 "
        "or cp932 (Shift_JIS, as Excel in Japan saves it).",
    )(command)


class CsvImporter(Protocol):
    """A core CSV import, e.g. ``import_interactions_csv`` or ``import_nps_csv``."""

    def __call__(
        self,
        conn: Connection,
        path: Path,
        *,
        shop: str,
        source: str,
        tz: ZoneInfo,
        encoding: str,
        region: str,
    ) -> ImportResult: ...


def csv_import_command(importer: str, *, what: str, source_help: str, help: str) -> click.Command:
    """An ``import FILE [--source] [--encoding] [--shop]`` command running ``importer`` (a
    'module:function' :class:`CsvImporter`, imported when the command runs) in one
    transaction, into one shop; a file that cannot be imported exits 2, having written
    nothing.

    ``what`` names the rows in the printed counts, e.g. 'answer(s)'.
    """

    @click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
    @click.option("--source", default="csv", show_default=True, help=source_help)
    @encoding_option
    @shop_option
    @click.pass_obj
    def command(obj: Context, file: Path, source: str, encoding: str, shop: str | None) -> None:
        from omnicrm.crm.csv_import import CsvImportError

        module, attribute = importer.split(":")
        run_import: CsvImporter = getattr(importlib.import_module(module), attribute)
        with errors():
            runtime = obj.runtime(need_config=False)
            try:
                settings = runtime.crm_settings(shop)
                with runtime.store.engine.begin() as conn:
                    result = run_import(
                        conn,
                        file,
                        shop=settings.shop,
                        source=source,
                        tz=settings.tz,
                        encoding=encoding,
                        region=settings.identity.region,
                    )
            except (CsvImportError, LookupError, ValueError) as exc:
                fail(str(exc), 2)
            finally:
                runtime.close()
        print_import(result, what)

    return click.command("import", help=help)(command)


@click.group("interactions")
def interactions_group() -> None:
    """A profile's history of inquiries, complaints and the like."""


import_command = csv_import_command(
    "omnicrm.crm.interactions:import_interactions_csv",
    what="interaction(s)",
    source_help="Where the file comes from; ids are unique within a source.",
    help="Import interactions from a CSV file (all rows or none; see docs/reports.md).",
)
interactions_group.add_command(import_command)


@interactions_group.command("add")
@click.argument("profile_id", type=int)
# The kinds and media of omnicrm.crm.interactions (KINDS, MEDIA), written out so that
# --help need not load the store (tests/cli/test_startup.py holds them equal).
@click.option(
    "--kind",
    required=True,
    help="One of inquiry, complaint, request, return, feedback, praise, other or your own word.",
)
@click.option("--subject", required=True, help="A one-line summary.")
@click.option("--body", help="The details.")
@click.option(
    "--medium", help="How it came in: phone, email, store, line, web, chat, letter, other ..."
)
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="When it happened (shop time), e.g. '2024-05-01 14:30'; default now.",
)
@shop_option
@click.pass_obj
def add_command(
    obj: Context,
    profile_id: int,
    kind: str,
    subject: str,
    body: str | None,
    medium: str | None,
    at_text: str | None,
    shop: str | None,
) -> None:
    """Add an interaction to a profile's history."""
    from omnicrm.crm.csv_import import parse_moment
    from omnicrm.crm.interactions import add_interaction

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            settings = runtime.crm_settings(shop)
            when = dt.datetime.now(dt.UTC)
            if at_text:
                try:
                    when = parse_moment(at_text, settings.tz)
                except ValueError as exc:
                    raise click.BadParameter(str(exc), param_hint="--at") from None
            with runtime.store.engine.begin() as conn:
                added = add_interaction(
                    conn, profile_id, kind, when, subject, body, medium, shop=settings.shop
                )
        except ValueError as exc:
            fail(str(exc), 2)
        finally:
            runtime.close()
    console.print(f"added interaction {added.id} ({escape(added.kind)}) to profile {profile_id}")


@interactions_group.command("list")
@click.argument("profile_id", type=int)
@click.option("--limit", type=int, default=50, show_default=True, help="The newest this many.")
@shop_option
@click.pass_obj
def list_command(obj: Context, profile_id: int, limit: int, shop: str | None) -> None:
    """A profile's interactions, newest first."""
    from sqlalchemy import select

    from omnicrm.crm.interactions import interactions_for
    from omnicrm.crm.schema import profiles

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            settings = runtime.crm_settings(shop)
            tz = settings.tz
            with runtime.store.engine.connect() as conn:
                known = conn.execute(
                    select(profiles.c.id).where(
                        profiles.c.id == profile_id, profiles.c.shop == settings.shop
                    )
                )
                if known.first() is None:
                    fail(f"no profile {profile_id} in shop {settings.shop!r}", 2)
                found = interactions_for(conn, profile_id, limit=limit, shop=settings.shop)
        finally:
            runtime.close()
    if not found:
        console.print(f"no interactions for profile {profile_id} yet")
        return
    table = FitTable(
        [
            Col(f"when ({zone_name(tz)})", keep=True),
            Col("kind"),
            Col("medium", 2),
            Col("subject"),
            Col("body", 1),
            Col("source", 3),
        ],
        title=f"profile {profile_id}",
    )
    for item in found:
        body = (item.body or "").replace("\n", " ")
        table.add_row(
            local_time(item.occurred_at, tz, "%Y-%m-%d %H:%M"),
            escape(item.kind),
            escape(item.medium or "-"),
            escape(item.subject or "-"),
            escape(body[:60] + ("…" if len(body) > 60 else "")),
            escape(item.source),
        )
    console.print(table)
