"""``omnicrm nps``: import survey answers, show the Net Promoter Score."""

from __future__ import annotations

import click

from omnicrm.cli.interactions import csv_import_command
from omnicrm.cli.report import nps_command_named


@click.group("nps")
def nps_group() -> None:
    """Net Promoter Score: survey answers (0-10) and the score per segment."""


import_command = csv_import_command(
    "omnicrm.crm.analytics.nps:import_nps_csv",
    what="answer(s)",
    source_help="The survey the file comes from; response ids are unique within it.",
    help="Import survey answers from a CSV file (all rows or none; see docs/reports.md).",
)
nps_group.add_command(import_command)


summary_command = nps_command_named(
    "summary", "Promoters, passives, detractors and the score, overall and per --segment."
)
nps_group.add_command(summary_command)
