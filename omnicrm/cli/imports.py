"""``omnicrm import``: records from files a platform exports, as a connection's records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, err_console, errors, fail, shop_option

if TYPE_CHECKING:
    from omnicrm import Customer, Order, Product, Stream
    from omnicrm.app.runtime import Runtime
    from omnicrm.csvfiles import CsvImportError

_FORMATS = ("airregi", "smaregi", "generic")


@click.group("import")
def import_group() -> None:
    """Import a connection's records from files its platform exports (POS CSV, EC-CUBE CSV)."""


def _refused(file: Path, exc: CsvImportError) -> NoReturn:
    """List a file's problems and exit 1."""
    for line in str(exc).splitlines():
        err_console.print(escape(line), highlight=False, soft_wrap=True)
    fail(f"{file}: not imported", 1)


def _write(
    runtime: Runtime,
    connection: str,
    batches: Iterable[tuple[Stream, Sequence[Customer] | Sequence[Order] | Sequence[Product]]],
) -> dict[Stream, int]:
    """Write one file's batches in one transaction under the connection's lock, recorded
    as an import run."""
    from omnicrm.core.store import RunStatus
    from omnicrm.errors import LockedError

    store = runtime.store
    try:
        with store.lock(connection):
            run_id = store.start_run(connection, trigger="import")
            try:
                written = store.write_all(connection, batches, run_id=run_id)
            except BaseException as exc:
                store.finish_run(
                    run_id, RunStatus.FAILED, errors=1, error=str(exc), error_kind="import"
                )
                raise
            store.finish_run(
                run_id,
                RunStatus.COMPLETE,
                streams={
                    s.value: {"read": n, "written": n, "done": True} for s, n in written.items()
                },
            )
    except LockedError as exc:
        fail(f"{exc}: wait for that run to end (see `omnicrm status`)", 1)
    return written


@import_group.command("pos-csv")
@click.argument("connection")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "format_",
    type=click.Choice(_FORMATS),
    default=None,
    help="The export's format (default: the connection's `format` setting): airregi "
    "(Airレジ 会計明細), smaregi (スマレジ 取引履歴) or generic (docs/pos.md).",
)
@click.option(
    "--encoding",
    default="auto",
    show_default=True,
    help="utf-8 or cp932 (Shift_JIS); auto tells them apart.",
)
@click.pass_obj
def pos_csv(obj: Context, connection: str, file: Path, format_: str | None, encoding: str) -> None:
    """Import a POS export (receipts and members) as CONNECTION's orders and customers.

    The whole file or nothing: any problem (encoding, a missing column, a bad date or
    amount, a short row) is listed by file, line and column and nothing is written. A
    receipt imported before is replaced by the file's version (a corrected export).
    """
    from zoneinfo import ZoneInfo

    from omnicrm.csvfiles import CsvImportError
    from omnicrm.plugins.pos.csv import Format, PosCsvSettings, read_export
    from omnicrm.plugins.pos.csv.channel import NAME

    with errors():
        runtime = obj.runtime()
        try:
            conn = runtime.config.connection(connection)
            if conn.channel != NAME:
                fail(
                    f"connection {connection!r} is a {conn.channel} connection; "
                    f"`import pos-csv` takes a {NAME} one",
                    2,
                )
            settings = conn.settings
            assert isinstance(settings, PosCsvSettings)
            zone = settings.timezone or runtime.shop(conn.shop).timezone
            try:
                export = read_export(
                    file,
                    Format(format_) if format_ else settings.format,
                    timezone=ZoneInfo(zone),
                    columns=settings.columns,
                    store_name=settings.store_name,
                    encoding=encoding,
                )
            except CsvImportError as exc:
                _refused(file, exc)
            with export:
                _write(runtime, conn.name, export.batches())
            if runtime.config.crm.refresh_after_sync:
                runtime.refresh(runtime.store.shop_of(conn.name))
        finally:
            runtime.close()
    console.print(
        f"{connection}: imported {escape(str(file))} ({export.format.value}): "
        f"{export.receipts:,} receipt(s) of {export.rows:,} row(s), {export.members:,} member(s)"
    )


@import_group.command("ec_cube-csv")
@click.argument("connection")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--encoding",
    default="auto",
    show_default=True,
    help="utf-8 or cp932 (Shift_JIS); auto tells them apart.",
)
@click.pass_obj
def ec_cube_csv(obj: Context, connection: str, files: tuple[Path, ...], encoding: str) -> None:
    """Import EC-CUBE admin CSV exports as CONNECTION's customers, orders and products.

    FILES are a 会員CSV (customers), a 受注CSV (orders), a 商品CSV (products, one row per
    product class), or any of them, in any order: each is told by its header, 2.x and
    4.x alike (docs/ec_cube_csv.md). Every file is checked before anything is written;
    any problem (encoding, a missing column, a bad date, amount or number, a short row)
    is listed by file, line and column, and nothing is written. Each file is then
    written in one transaction, products and customers before orders. Importing the
    same export again changes nothing; a newer one replaces what an older one said.
    """
    from zoneinfo import ZoneInfo

    from omnicrm.csvfiles import CsvImportError
    from omnicrm.plugins.ec_cube.csv import EcCubeCsvSettings, Export, Kind, read_export
    from omnicrm.plugins.ec_cube.csv.channel import NAME

    done: list[tuple[Export, int]] = []  # each export with the records it changed
    with errors():
        runtime = obj.runtime()
        try:
            conn = runtime.config.connection(connection)
            if conn.channel != NAME:
                fail(
                    f"connection {connection!r} is a {conn.channel} connection; "
                    f"`import ec_cube-csv` takes a {NAME} one",
                    2,
                )
            settings = conn.settings
            assert isinstance(settings, EcCubeCsvSettings)
            zone = ZoneInfo(settings.timezone or runtime.shop(conn.shop).timezone)
            exports: dict[Kind, Export] = {}
            try:
                for file in files:
                    try:
                        export = read_export(
                            file,
                            timezone=zone,
                            columns=settings.columns,
                            encoding=encoding,
                            pricing=settings.pricing,
                        )
                    except CsvImportError as exc:
                        _refused(file, exc)
                    if export.kind in exports:
                        export.close()
                        fail(
                            f"{file} and {exports[export.kind].path} are both "
                            f"{export.kind.value} exports: give one of each",
                            2,
                        )
                    exports[export.kind] = export
                for kind in (Kind.PRODUCTS, Kind.CUSTOMERS, Kind.ORDERS):
                    if kind in exports:
                        written = _write(runtime, conn.name, exports[kind].batches())
                        done.append((exports[kind], sum(written.values())))
            finally:
                for export in exports.values():
                    export.close()
            if runtime.config.crm.refresh_after_sync:
                runtime.refresh(runtime.store.shop_of(conn.name))
        finally:
            runtime.close()
    for export, changed in done:
        what = {Kind.CUSTOMERS: "member(s)", Kind.ORDERS: "order(s)", Kind.PRODUCTS: "product(s)"}[
            export.kind
        ]
        skipped = f", {export.skipped:,} unfinished checkout(s) left out" if export.skipped else ""
        console.print(
            f"{connection}: imported {escape(str(export.path))}: {export.records:,} {what} "
            f"of {export.rows:,} row(s){skipped}; {changed:,} new or changed",
            soft_wrap=True,
        )


@import_group.command("line-links")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--encoding",
    default="auto",
    show_default=True,
    help="utf-8 or cp932 (Shift_JIS); auto tells them apart.",
)
@shop_option
@click.pass_obj
def line_links(obj: Context, file: Path, encoding: str, shop: str | None) -> None:
    """Link LINE user ids to the shop's customers from a CSV file (docs/line.md).

    Columns: line_user_id (U and 32 hex digits) and the customer's profile_id, email,
    phone or member_code. The whole file or nothing: a bad user id, one given twice, or
    a customer the shop does not have (or has twice) is listed by file, line and column
    and nothing is linked. Linking grants no LINE consent.
    """
    import datetime as dt

    from omnicrm.crm.line_links import import_line_links
    from omnicrm.csvfiles import CsvImportError

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            settings = runtime.crm_settings(shop)
            try:
                with runtime.store.engine.begin() as conn:
                    result = import_line_links(
                        conn,
                        file,
                        shop=settings.shop,
                        now=dt.datetime.now(dt.UTC),
                        encoding=encoding,
                        region=settings.identity.region,
                    )
            except CsvImportError as exc:
                _refused(file, exc)
        finally:
            runtime.close()
    console.print(
        f"{escape(str(file))}: {result.rows:,} row(s) - {result.linked:,} linked, "
        f"{result.moved:,} moved from another customer, {result.unchanged:,} unchanged "
        f"(shop {settings.shop}; LINE consent is as recorded)",
        highlight=False,
        soft_wrap=True,
    )
