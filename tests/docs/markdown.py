"""The code blocks of a markdown document, for tests that run what the docs show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_FILE = re.compile(r"^# (\S+\.(?:py|toml|txt|cfg))\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its text and the line it starts on."""

    language: str
    text: str
    line: int

    @property
    def file(self) -> str | None:
        """The file the block belongs to, named by its first line (``# pkg/mod.py``)."""
        first = self.text.split("\n", 1)[0]
        found = _FILE.match(first)
        return found.group(1) if found else None


def blocks(document: str) -> list[Block]:
    """Every fenced code block of ``document`` (a file under docs/), in order."""
    text = (DOCS / document).read_text(encoding="utf-8")
    return [
        Block(found.group(1), found.group(2), text.count("\n", 0, found.start()) + 1)
        for found in _FENCE.finditer(text)
    ]
