"""Every CSV the product writes goes through here, so no cell can run as a formula.

Public as ``omnicrm.csvfiles.CsvWriter``: a plugin that writes a CSV (the postal
dispatcher's recipient lists) writes it through the same writer.

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and tab or carriage return can hide such a start), so a customer named
``=HYPERLINK(...)`` would become a live link in the operator's Excel. Following
OWASP's CSV injection advice, such a text cell is written with a leading single quote,
which spreadsheets show as text and do not display.

Numbers given as numbers (``int``, ``float``, ``Decimal``) are written as they are, a
negative one included: ``-500`` written from a number is a number to a spreadsheet,
never a formula, and quoting it would turn a numeric column into text. Text that merely
looks like a negative number is still quoted, as OWASP says.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TextIO

from omnicrm.core._public import public

__all__ = ["FORMULA_STARTS", "CsvWriter", "cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """``value`` as a CSV cell: None is empty, dates ISO, text that could start a
    formula prefixed with a single quote, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dt.date):  # a datetime too
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CsvWriter:
    """``csv.writer`` whose every cell goes through :func:`cell`."""

    def __init__(self, out: TextIO, *, lineterminator: str = "\r\n") -> None:
        self._writer = csv.writer(out, lineterminator=lineterminator)

    def writerow(self, row: Iterable[object]) -> None:
        """Write one row of cells."""
        self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write each of ``rows``."""
        for row in rows:
            self.writerow(row)


public(CsvWriter, cell, module="omnicrm.csvfiles")
