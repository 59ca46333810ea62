"""docs/segments.md says what the code does: its examples parse, its tables are the
code's built-ins, attributes and RFM grid."""

from __future__ import annotations

import re
from pathlib import Path

from omnicrm.crm.segments.builtin import BUILTIN_SEGMENTS
from omnicrm.crm.segments.language import ATTRIBUTES, parse
from omnicrm.crm.segments.scoring import rfm_group

DOC = (Path(__file__).resolve().parents[3] / "docs" / "segments.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return DOC.split(f"\n{title}\n", 1)[1].split("\n#", 1)[0]


def test_every_example_parses() -> None:
    blocks = re.findall(r"```text\n(.*?)```", DOC, re.S)
    examples = [
        line.split("#", 1)[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.startswith(("error:", "  "))
    ]
    assert len(examples) >= 12
    for example in examples:
        parse(example)


def test_the_built_in_table_is_the_code_s() -> None:
    rows = re.findall(
        r"^\| `([a-z:-]+)` \| ([^|]+) \| `([^`]+)` \|$", _section("## Built-in segments"), re.M
    )
    assert [(n, t.strip(), e) for n, t, e in rows] == [
        (s.name, s.title, s.expression) for s in BUILTIN_SEGMENTS
    ]


def test_the_attribute_table_is_the_code_s() -> None:
    names = re.findall(r"^\| `([a-z_]+)` \|", _section("### Attributes"), re.M)
    assert names == list(ATTRIBUTES)


def test_the_rfm_grid_is_the_code_s() -> None:
    grid = re.findall(r"^\| \*\*(\d)\*\* \| (.+) \|$", DOC, re.M)
    assert [fm for fm, _ in grid] == ["5", "4", "3", "2", "1"]
    for fm, cells in grid:
        for r, cell in enumerate(cells.split(" | "), 1):
            # Any F, M with floor((F + M) / 2) = FM: F = M = FM.
            assert cell.replace(" ", "_") == rfm_group(r, int(fm), int(fm)), (r, fm)
