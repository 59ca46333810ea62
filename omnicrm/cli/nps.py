"""``omnicrm nps``: import survey answers, show the Net Promoter Score."""

from __future__ import annotations

from pathlib import Path

import click

from omnicrm.cli._common import Context, errors, fail
from omnicrm.cli.interactions import encoding_option, print_import
from omnicrm.cli.report import nps_options, shop_zone, show_nps
from omnicrm.core.analytics.nps import import_nps_csv
from omnicrm.core.csv_import import CsvImportError


@click.group("nps")
def nps_group() -> None:
    """Net Promoter Score: survey answers (0-10) and the score per segment."""


@nps_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--source",
    default="csv",
    show_default=True,
    help="The survey the file comes from; response ids are unique within it.",
)
@encoding_option
@click.pass_obj
def import_command(obj: Context, file: Path, source: str, encoding: str) -> None:
    """Import survey answers from a CSV file (all rows or none; see docs/reports.md)."""
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            with runtime.store.engine.begin() as conn:
                result = import_nps_csv(
                    conn,
                    file,
                    source=source,
                    tz=shop_zone(runtime),
                    encoding=encoding,
                    region=runtime.config.identity.region,
                )
        except CsvImportError as exc:
            fail(str(exc), 2)
        except (LookupError, ValueError) as exc:
            fail(str(exc), 2)
        finally:
            runtime.close()
    print_import(result, "answer(s)")


@nps_group.command("summary")
@nps_options
@click.pass_obj
def summary_command(
    obj: Context, fmt: str, segment_names: tuple[str, ...], since: str | None, until: str | None
) -> None:
    """Promoters, passives, detractors and the score, overall and per --segment."""
    show_nps(obj, fmt, segment_names, since, until)
