"""Moved to :mod:`omnicrm.core.csv_export` (public as ``omnicrm.csvfiles.CsvWriter``), so
plugins can write CSV through it too; kept here for importers of the old path."""

from omnicrm.core.csv_export import FORMULA_STARTS, CsvWriter, cell

__all__ = ["FORMULA_STARTS", "CsvWriter", "cell"]
