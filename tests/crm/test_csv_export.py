"""Every CSV the product writes neutralises cells a spreadsheet would run as formulas."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

import omnicrm
from omnicrm.csvfiles import CsvWriter, cell

PACKAGE = Path(omnicrm.__file__).parent


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://x","y")',
        "+1+2",
        "-2+3",
        "-500",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_text_that_could_start_a_formula_gets_a_quote(text: str) -> None:
    assert cell(text) == "'" + text


def test_other_values_are_written_as_they_are() -> None:
    assert cell("山田 花子") == "山田 花子"
    assert cell("a=b") == "a=b"  # only the start of a cell makes a formula
    assert cell(None) == ""
    assert cell(dt.date(2024, 5, 1)) == "2024-05-01"
    # Numbers given as numbers stay numbers, negative ones too: not formulas.
    assert cell(-500) == "-500"
    assert cell(Decimal("-12.50")) == "-12.50"
    assert cell(-0.25) == "-0.25"
    assert cell(True) == "True"


def test_writer_round_trips_through_a_csv_reader() -> None:
    out = io.StringIO()
    CsvWriter(out).writerows([["name", "points"], ["=cmd|' /C calc'!A0", -5]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["name", "points"],
        ["'=cmd|' /C calc'!A0", "-5"],
    ]


_WRITERS = ("writer", "DictWriter")


def _csv_writer_uses(tree: ast.AST) -> list[int]:
    """Lines that make a csv writer other than through CsvWriter."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _WRITERS
            and isinstance(node.value, ast.Name)
            and node.value.id == "csv"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "csv"
            and any(alias.name in _WRITERS for alias in node.names)
        ):
            found.append(node.lineno)
    return found


def test_the_scan_finds_a_csv_writer() -> None:
    assert _csv_writer_uses(ast.parse("import csv\nw = csv.writer(f)\n")) == [2]
    assert _csv_writer_uses(ast.parse("from csv import DictWriter\n")) == [1]


def test_every_csv_the_package_writes_goes_through_csv_writer() -> None:
    helper = PACKAGE / "core" / "csv_export.py"
    # Plays EC-CUBE's admin screen for the tests and the demo: writes exactly what
    # EC-CUBE writes (a customer's data read back by omnicrm, never handed to a person).
    emulator = PACKAGE / "plugins" / "ec_cube" / "csv" / "exports.py"
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in (helper, emulator)
        for line in _csv_writer_uses(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == [], "write CSV with omnicrm.csvfiles.CsvWriter"
