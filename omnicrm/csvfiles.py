"""Reading the CSV files operators bring, public for plugins that import files (a POS
without an API exports its sales as CSV).

:class:`CsvReader` detects the encoding (UTF-8 with or without a BOM, or Shift_JIS
cp932), checks the header, finds columns by header name and streams the rows; every
bad value is a :class:`CsvProblem` (``file:line:column: what``), collected by
:class:`Problems` and raised together as :class:`CsvImportError`, so a file can be
checked whole before anything of it is written. :class:`RowChecker` converts values,
adding a problem for each one that does not convert; :func:`money` and :func:`whole`
read amounts in yen and counts as Japanese spreadsheets write them.

:class:`CsvWriter` is the other way: every CSV omnicrm or a plugin writes goes through
it, so no cell a customer typed can run as a spreadsheet formula (:func:`cell`).
"""

from omnicrm.core.csv_export import CsvWriter, cell
from omnicrm.core.csvfiles import (
    ENCODINGS,
    CsvImportError,
    CsvProblem,
    CsvReader,
    CsvRow,
    Problems,
    RowChecker,
    header_fields,
    header_name,
    money,
    parse_moment,
    plain,
    whole,
)

__all__ = [
    "ENCODINGS",
    "CsvImportError",
    "CsvProblem",
    "CsvReader",
    "CsvRow",
    "CsvWriter",
    "Problems",
    "RowChecker",
    "cell",
    "header_fields",
    "header_name",
    "money",
    "parse_moment",
    "plain",
    "whole",
]
