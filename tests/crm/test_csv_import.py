"""Every CSV import (points, interactions, NPS answers) takes whatever an operator can
throw at it: a clear error naming file, line and field, and nothing of the file
written, on both backends; a file of any size in bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.analytics.nps import import_nps_csv
from omnicrm.crm.csv_import import MAX_LINE, CsvImportError
from omnicrm.crm.interactions import import_interactions_csv
from omnicrm.crm.points import PointsImportError, import_point_events
from omnicrm.crm.schema import interactions, nps_responses, points_entries
from tests.crm.analytics.shop import add_profile


@dataclass(frozen=True)
class Importer:
    """One CSV import of the product: its header, a good row, its table."""

    name: str
    header: str
    row: Callable[[int, str], str]  # (row number, free text) -> a CSV line
    table: Table
    run: Callable[..., object]


def _points(conn: object, path: Path, **options: object) -> object:
    return import_point_events(conn, path, **options)  # type: ignore[arg-type]


IMPORTERS = [
    Importer(
        "points",
        "connection,customer_id,event_id,kind,points,occurred_at,note",
        lambda n, text: f"pos,m{n},E-{n},earn,10,2025-04-01 10:00,{text}",
        points_entries,
        _points,
    ),
    Importer(
        "interactions",
        "interaction_id,email,kind,occurred_at,subject",
        lambda n, text: f"I-{n},a{n}@example.com,inquiry,2024-05-01 10:00,{text}",
        interactions,
        import_interactions_csv,
    ),
    Importer(
        "nps",
        "response_id,email,score,responded_at,comment",
        lambda n, text: f"R-{n},a{n}@example.com,9,2024-05-01 10:00,{text}",
        nps_responses,
        import_nps_csv,
    ),
]
BY_NAME = {i.name: i for i in IMPORTERS}
ERRORS = (CsvImportError, PointsImportError)


def _write(tmp_path: Path, importer: Importer, texts: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / f"{importer.name}.csv"
    lines = [importer.header] + [importer.row(n, t) for n, t in enumerate(texts, start=1)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _count(store: Store, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _refused(store: Store, importer: Importer, path: Path, **options: object) -> str:
    """The error importing ``path`` gives; asserts nothing of it was written."""
    before = _count(store, importer.table)
    with pytest.raises(ERRORS) as caught, store.engine.begin() as conn:
        importer.run(conn, path, shop=DEFAULT_SHOP, **options)
    assert _count(store, importer.table) == before
    return str(caught.value)


def _imports(store: Store, importer: Importer, path: Path, **options: object) -> None:
    with store.engine.begin() as conn:
        importer.run(conn, path, shop=DEFAULT_SHOP, **options)


@pytest.fixture(params=[i.name for i in IMPORTERS])
def importer(request: pytest.FixtureRequest) -> Importer:
    return BY_NAME[request.param]


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x85", "\x0b"])
def test_a_control_character_is_refused_at_file_line_and_field(
    store: Store, tmp_path: Path, importer: Importer, control: str
) -> None:
    path = _write(tmp_path, importer, ["fine", f"bad{control}here", "fine"])
    message = _refused(store, importer, path)
    field = importer.header.rsplit(",", 1)[1]
    assert f"{path}:3:{field}: control character U+{ord(control):04X} at character 4" in message


def test_tabs_and_line_breaks_inside_a_value_are_kept(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    path = _write(tmp_path, importer, ['"two\r\nlines\tand a tab"'])
    _imports(store, importer, path)


def test_shift_jis_and_utf8_with_or_without_bom_are_read(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    with store.engine.begin() as conn:
        add_profile(conn, email="a1@example.com")  # interactions keep matched rows only
    for encoding in ("utf-8", "utf-8-sig", "cp932"):
        path = _write(tmp_path, importer, ["最高でした ﾃｽﾄ"], encoding=encoding)
        _imports(store, importer, path)
    with store.engine.connect() as conn:
        texts = set(conn.execute(select(importer.table.c[_text_column(importer)])).scalars())
    assert texts == {"最高でした ﾃｽﾄ"}


def _text_column(importer: Importer) -> str:
    return {"points": "note", "interactions": "subject", "nps": "comment"}[importer.name]


def test_euc_jp_is_refused_by_name_not_imported_garbled(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    path = _write(tmp_path, importer, ["ok", "東京都の店舗で購入"], encoding="euc_jp")
    message = _refused(store, importer, path)
    assert f"{path}:3: the file looks like EUC-JP: save it as UTF-8" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "utf-16-be"])
def test_other_encodings_are_refused_by_name(
    store: Store, tmp_path: Path, importer: Importer, encoding: str
) -> None:
    path = _write(tmp_path, importer, ["ok"], encoding=encoding)
    assert "is neither UTF-8 nor Shift_JIS (cp932)" in _refused(store, importer, path)


def test_a_binary_file_and_an_unknown_encoding_name_are_refused(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes(range(256)) * 10)
    assert str(path) in _refused(store, importer, path)
    good = _write(tmp_path, importer, ["ok"])
    message = _refused(store, importer, good, encoding="euc-jp")
    assert f"{good}:0: encoding 'euc-jp' is not supported" in message


def test_an_endless_line_is_refused_without_reading_it_whole(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    path = _write(tmp_path, importer, ["ok"])
    with path.open("a", encoding="utf-8") as out:
        out.write("x" * (MAX_LINE + 10))
    assert f"{path}:3: a line longer than 1,048,576 characters" in _refused(store, importer, path)


def test_a_huge_field_is_refused(store: Store, tmp_path: Path, importer: Importer) -> None:
    path = _write(tmp_path, importer, ['"' + "x\n" * 100_000 + '"'])
    assert "not a readable CSV file: field larger than field limit" in _refused(
        store, importer, path
    )


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:00:00-05:00", "0001-01-01 00:00", "1899-12-31 23:59", "2024-05-01T10:00+99:00"],
)
def test_a_moment_out_of_range_is_a_problem_not_a_crash(
    store: Store, tmp_path: Path, importer: Importer, moment: str
) -> None:
    path = tmp_path / "when.csv"
    line = (
        importer.row(1, "x").replace("2025-04-01 10:00", moment).replace("2024-05-01 10:00", moment)
    )
    path.write_text(f"{importer.header}\n{line}\n", encoding="utf-8")
    field = next(c for c in importer.header.split(",") if c.endswith("_at"))
    assert f"{path}:2:{field}: " in _refused(store, importer, path)


def test_points_beyond_the_column_are_a_problem(store: Store, tmp_path: Path) -> None:
    importer = BY_NAME["points"]
    path = tmp_path / "big.csv"
    path.write_text(
        f"{importer.header}\n"
        "pos,m1,E-1,earn,99999999999999999999,2025-04-01 10:00,\n"
        "pos,m1,E-2,adjust,-100000001,2025-04-01 10:00,\n"
        "pos,m1,E-3,earn,100000000,2025-04-01 10:00,\n",
        encoding="utf-8",
    )
    message = _refused(store, importer, path)
    assert f"{path}:2:points: '99999999999999999999' is more than 100,000,000 points" in message
    assert f"{path}:3:points: '-100000001' is more than" in message
    assert ":4:" not in message


def test_a_profile_id_beyond_the_column_is_a_problem(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text(
        "response_id,profile_id,score,responded_at\nR-1,99999999999999999999,9,2024-05-01\n",
        encoding="utf-8",
    )
    assert f"{path}:2:profile_id: not a profile id" in _refused(store, BY_NAME["nps"], path)


def test_many_problems_are_counted_and_the_first_ones_kept(
    store: Store, tmp_path: Path, importer: Importer
) -> None:
    path = _write(tmp_path, importer, ["bad\x00"] * 5000)
    with pytest.raises(ERRORS) as caught, store.engine.begin() as conn:
        importer.run(conn, path, shop=DEFAULT_SHOP)
    assert caught.value.total == 5000 and len(caught.value.problems) == 1000
    assert "5000 problem(s)" in str(caught.value)


def _big_file(tmp_path: Path, importer: Importer, first: int, rows: int) -> Path:
    path = tmp_path / f"big-{importer.name}-{first}.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(importer.header + "\n")
        for n in range(first, first + rows):
            out.write(importer.row(n, "あいうえお かきくけこ さしすせそ たちつてと") + "\n")
    return path


def _peak(store: Store, importer: Importer, path: Path) -> int:
    tracemalloc.start()
    try:
        _imports(store, importer, path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", ["points", "interactions"])
def test_a_large_file_is_imported_in_bounded_memory(
    store: Store, tmp_path: Path, name: str
) -> None:
    """Three times the rows take no more memory: the file is streamed, never held."""
    importer = BY_NAME[name]
    # Warm caches up (SQLAlchemy's compiled statements) so that they do not count.
    _imports(store, importer, _big_file(tmp_path, importer, 0, 3_000))
    small = _peak(store, importer, _big_file(tmp_path, importer, 10_000, 6_000))
    big = _peak(store, importer, _big_file(tmp_path, importer, 20_000, 18_000))
    # Holding the rows would take hundreds of bytes each: megabytes more for 12,000 rows.
    assert big - small < 1_000_000, f"{small:,} bytes for 6,000 rows, {big:,} for 18,000"
    if name == "points":
        assert _count(store, importer.table) == 27_000
