"""Exports as the registers write them (data/, kept in UTF-8 and saved by the tests in
each encoding): real header names, Japanese receipts, and the columns the import does
not use (payment, category, memo) left in, as they come."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).with_name("data")
AIRREGI = (DATA / "airregi_会計明細_20260501.csv").read_text(encoding="utf-8")
SMAREGI = (DATA / "smaregi_取引履歴_20260502.csv").read_text(encoding="utf-8")
GENERIC = (DATA / "generic_20260501.csv").read_text(encoding="utf-8")


def write(path: Path, text: str, encoding: str) -> Path:
    """``text`` as the register saved it: Shift_JIS with CRLF (what Excel opens), or
    UTF-8 with or without a BOM."""
    newline = "\r\n" if encoding == "cp932" else "\n"
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def columns(text: str, keep: list[str]) -> str:
    """``text`` with only the columns ``keep``, in that order (an operator's settings)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    at = [rows[0].index(name) for name in keep]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in at])
    return out.getvalue()
