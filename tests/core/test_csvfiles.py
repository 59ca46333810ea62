"""What ``omnicrm.csvfiles`` gained for exports whose layout varies: headers found among
candidates, a repeated header read from its first column, PostgreSQL's short offsets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omnicrm.csvfiles import CsvImportError, CsvReader, Problems, header_fields, parse_moment

TOKYO = ZoneInfo("Asia/Tokyo")


def test_header_fields_takes_the_first_candidate_present_and_overrides_first() -> None:
    candidates = {"email": ("メールアドレス", "E-MAIL"), "id": ("会員ID", "顧客ID")}
    header = ["E-MAIL", "顧客ID", "total"]
    assert header_fields(candidates, header) == {
        "e-mail": "email",
        "顧客id": "id",
        "total": "-total",  # no field: it does not pass for one by its own name
    }
    assert header_fields(candidates, header, {"total": "email"})["total"] == "email"
    assert header_fields(candidates, header, {"total": "email"})["e-mail"] == "-e-mail"


def test_a_repeated_header_is_read_from_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "order.csv"
    path.write_text("id,住所1,住所1\n1,札幌市,港区\n", encoding="utf-8")
    names = {"id": "id", "住所1": "addr"}
    with pytest.raises(CsvImportError, match="addr: column appears more than once"):
        CsvReader(path, required=("id",), optional=("addr",), names=names, extra=True)
    reader = CsvReader(
        path, required=("id",), optional=("addr",), names=names, extra=True, first_wins=True
    )
    [row] = list(reader.rows(Problems()))
    assert row.values == {"id": "1", "addr": "札幌市"}


def test_short_offsets_read() -> None:
    assert parse_moment("2013-09-01 11:00:00+09", TOKYO) == dt.datetime(
        2013, 9, 1, 2, 0, tzinfo=dt.UTC
    )
    assert parse_moment("2013-09-01 11:00:00.5-0130", TOKYO) == dt.datetime(
        2013, 9, 1, 12, 30, 0, 500000, tzinfo=dt.UTC
    )
