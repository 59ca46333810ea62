"""NPS answers: CSV import (all or nothing, matched to profiles), dispatch answers, scores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.analytics.nps import (
    import_nps_csv,
    nps_by_segment,
    nps_report,
    nps_summary,
    record_response,
)
from omnicrm.crm.csv_import import CsvImportError
from omnicrm.crm.schema import nps_responses, profiles
from omnicrm.crm.segments import compile_expression
from tests.crm.analytics.shop import add_profile, jst

HEADER = "response_id,email,phone,profile_id,score,responded_at,comment\n"
GOOD = HEADER + (
    "r1, Hanako@Example.JP ,,,10,2024-05-01 10:00,最高でした\n"  # email, normalised
    "r2,,０９０-1234-5678,,9,2024/5/2 9:05,\n"  # noqa: RUF001 (full-width digits)
    "r3,,,2,8,2024-05-03T12:00:00+09:00,\n"  # profile id
    'r4,family@example.jp,,,6,2024-05-04,"two lines\nof comment"\n'  # shared: no match
    "r5,nobody@example.jp,,,0,2024-05-05,\n"  # unknown
    "r6,,,99,7,2024-05-06,\n"  # no such profile
)


@pytest.fixture
def people(store: Store) -> Store:
    with store.engine.begin() as conn:
        add_profile(conn, email="hanako@example.jp", phone="+819012345678", prefecture="東京都")
        add_profile(conn, email="taro@example.jp", prefecture="大阪府")
        add_profile(conn, email="family@example.jp", prefecture="東京都")
        add_profile(conn, email="family@example.jp", prefecture="東京都")
    return store


def write(tmp_path: Path, text: str, name: str = "answers.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stored(store: Store) -> dict[str, tuple[int | None, int, str | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                nps_responses.c.external_id,
                nps_responses.c.profile_id,
                nps_responses.c.score,
                nps_responses.c.comment,
            )
        )
        return {r.external_id: (r.profile_id, r.score, r.comment) for r in rows}


def test_import_matches_respondents_and_keeps_the_unmatched(people: Store, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with people.engine.begin() as conn:
        result = import_nps_csv(conn, path, source="survey-2024-05", shop=DEFAULT_SHOP)
    assert (result.rows, result.inserted, result.updated, result.unchanged) == (6, 6, 0, 0)
    assert stored(people) == {
        "r1": (1, 10, "最高でした"),
        "r2": (1, 9, None),
        "r3": (2, 8, None),
        "r4": (None, 6, "two lines\nof comment"),
        "r5": (None, 0, None),
        "r6": (None, 7, None),
    }
    reasons = {u.external_id: (u.line, u.reason) for u in result.unmatched}
    assert reasons == {
        "r4": (5, "email family@example.jp is shared by profiles 3, 4"),
        "r5": (7, "no profile has email nobody@example.jp"),
        "r6": (8, "no profile 99"),
    }
    with people.engine.connect() as conn:
        when = conn.execute(
            select(nps_responses.c.responded_at).where(nps_responses.c.external_id == "r2")
        ).scalar_one()
    assert when == jst(2024, 5, 2, 9, 5)


def test_import_again_is_idempotent_and_updates_changed_answers(
    people: Store, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    with people.engine.begin() as conn:
        import_nps_csv(conn, path, shop=DEFAULT_SHOP)
    with people.engine.begin() as conn:
        again = import_nps_csv(conn, path, shop=DEFAULT_SHOP)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    changed = write(tmp_path, GOOD.replace("r3,,,2,8,", "r3,,,2,3,"), "changed.csv")
    with people.engine.begin() as conn:
        third = import_nps_csv(conn, changed, shop=DEFAULT_SHOP)
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 5)
    assert stored(people)["r3"] == (2, 3, None)
    # Another source keeps its own ids.
    with people.engine.begin() as conn:
        other = import_nps_csv(conn, path, source="other-survey", shop=DEFAULT_SHOP)
    assert other.inserted == 6
    assert len(stored(people)) == 6 and count(people) == 12


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(nps_responses)).scalar_one())


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("r9,a@example.jp,,,11,2024-05-01,", "score", "not a score from 0 to 10: '11'"),
        ("r9,a@example.jp,,,ten,2024-05-01,", "score", "not a score from 0 to 10: 'ten'"),
        ("r9,a@example.jp,,,7.5,2024-05-01,", "score", "not a score"),
        ("r9,a@example.jp,,,,2024-05-01,", "score", "a value is required"),
        ("r9,a@example.jp,,,5,2024-13-01,", "responded_at", "not a date or time: '2024-13-01'"),
        ("r9,a@example.jp,,,5,yesterday,", "responded_at", "not a date or time"),
        ("r9,not-an-email,,,5,2024-05-01,", "email", "not an email address"),
        ("r9,,12,,5,2024-05-01,", "phone", "not a valid phone number: '12'"),
        ("r9,,,abc,5,2024-05-01,", "profile_id", "not a profile id"),
        ("r1,a@example.jp,,,5,2024-05-01,", "response_id", "'r1' repeats line 2"),
    ],
)
def test_a_bad_row_names_file_line_and_field_and_writes_nothing(
    people: Store, tmp_path: Path, row: str, field: str, message: str
) -> None:
    path = write(tmp_path, GOOD + row + "\n")
    with pytest.raises(CsvImportError) as caught, people.engine.begin() as conn:
        import_nps_csv(conn, path, shop=DEFAULT_SHOP)
    assert f"{path}:9:{field}: {message}" in str(caught.value)
    assert "nothing was imported" in str(caught.value)
    assert count(people) == 0


def test_header_problems_and_every_problem_reported(people: Store, tmp_path: Path) -> None:
    unknown = write(
        tmp_path, "response_id,email,score,responded_at,rating\n1,a@b.jp,5,2024-05-01,x\n"
    )
    with (
        pytest.raises(CsvImportError, match=rf"{unknown}:1:rating: unknown column"),
        people.engine.begin() as conn,
    ):
        import_nps_csv(conn, unknown, shop=DEFAULT_SHOP)
    missing = write(tmp_path, "response_id,email,responded_at\n1,a@b.jp,2024-05-01\n", "m.csv")
    with (
        pytest.raises(CsvImportError, match=rf"{missing}:1:score: required column is missing"),
        people.engine.begin() as conn,
    ):
        import_nps_csv(conn, missing, shop=DEFAULT_SHOP)
    nobody = write(tmp_path, "response_id,score,responded_at\n1,5,2024-05-01\n", "n.csv")
    with (
        pytest.raises(CsvImportError, match="needs at least one of the columns profile_id"),
        people.engine.begin() as conn,
    ):
        import_nps_csv(conn, nobody, shop=DEFAULT_SHOP)
    several = write(
        tmp_path,
        HEADER + "a,,,,5,2024-05-01,\nb,x@y.jp,,,99,2024-05-01,\nc,x@y.jp,,,5\n",
        "s.csv",
    )
    with pytest.raises(CsvImportError) as caught, people.engine.begin() as conn:
        import_nps_csv(conn, several, shop=DEFAULT_SHOP)
    text = str(caught.value)
    assert "3 problem(s)" in text
    assert f"{several}:2: no respondent: give a profile_id, email or phone" in text
    assert f"{several}:3:score:" in text
    assert f"{several}:4:responded_at: 5 values, the header has 7" in text
    assert count(people) == 0


def test_encodings(people: Store, tmp_path: Path) -> None:
    sjis = write(tmp_path, GOOD, "excel.csv", encoding="cp932")
    # Told to read UTF-8, a Shift_JIS file is refused by name and line...
    with (
        pytest.raises(CsvImportError, match=r"excel\.csv:\d+: cannot be read as utf-8"),
        people.engine.begin() as conn,
    ):
        import_nps_csv(conn, sjis, encoding="utf-8", shop=DEFAULT_SHOP)
    # ...and by default its encoding is detected (it used to need --encoding cp932).
    with people.engine.begin() as conn:
        result = import_nps_csv(conn, sjis, shop=DEFAULT_SHOP)
    assert result.inserted == 6 and stored(people)["r1"][2] == "最高でした"
    bom = write(tmp_path, "\ufeff" + GOOD, "bom.csv")
    with people.engine.begin() as conn:
        assert import_nps_csv(conn, bom, source="bom", shop=DEFAULT_SHOP).inserted == 6


def test_summary_overall_and_per_segment(people: Store, tmp_path: Path) -> None:
    with people.engine.begin() as conn:
        import_nps_csv(conn, write(tmp_path, GOOD), shop=DEFAULT_SHOP)
    now = dt.datetime.now(dt.UTC)
    with people.engine.connect() as conn:
        overall = nps_summary(conn, shop=DEFAULT_SHOP)
        # Promoters r1 (10) and r2 (9); passives r3 (8), r6 (7); detractors r4 (6), r5 (0).
        assert (overall.responses, overall.promoters, overall.passives, overall.detractors) == (
            6,
            2,
            2,
            2,
        )
        assert overall.score == 0.0
        tokyo = compile_expression("prefecture = '東京都'", now)
        osaka = profiles.c.prefecture == "大阪府"
        found = nps_by_segment(conn, {"tokyo": tokyo, "osaka": osaka}, shop=DEFAULT_SHOP)
        # Tokyo: r1 and r2 (profile 1); the shared-email answer r4 matched nobody.
        assert (found["tokyo"].responses, found["tokyo"].score) == (2, 100.0)
        assert (found["osaka"].responses, found["osaka"].passives, found["osaka"].score) == (
            1,
            1,
            0.0,
        )
        # Responses from 3 May on (shop time): r3..r6, 1 passive + 2 detractors + 1 passive.
        since = nps_summary(conn, since=jst(2024, 5, 3, 0, 0), shop=DEFAULT_SHOP)
        assert (since.responses, since.score) == (4, -50.0)
        report = nps_report(conn, {"tokyo": tokyo}, shop=DEFAULT_SHOP)
    assert [row[0] for row in report.rows] == ["all responses", "tokyo"]
    assert report.rows[1] == ("tokyo", 2, 2, 0, 0, 100.0)
    assert any("3 response(s) are not matched" in n for n in report.notes)


def test_empty_summary(store: Store) -> None:
    with store.engine.connect() as conn:
        assert nps_summary(conn, shop=DEFAULT_SHOP).score is None
        assert nps_report(conn, shop=DEFAULT_SHOP).empty


def test_record_response_from_a_dispatch(people: Store) -> None:
    with people.engine.begin() as conn:
        first = record_response(
            conn,
            source="line-dispatch",
            external_id="msg-1",
            profile_id=2,
            score=9,
            responded_at=jst(2024, 6, 1),
            shop=DEFAULT_SHOP,
        )
        again = record_response(
            conn,
            source="line-dispatch",
            external_id="msg-1",
            profile_id=2,
            score=4,
            responded_at=jst(2024, 6, 1),
            comment="届くのが遅い",
            shop=DEFAULT_SHOP,
        )
        assert first == again
        with pytest.raises(ValueError, match="score"):
            record_response(
                conn,
                source="x",
                external_id="1",
                profile_id=2,
                score=11,
                responded_at=jst(2024, 6, 1),
                shop=DEFAULT_SHOP,
            )
        with pytest.raises(ValueError, match="no profile 42"):
            record_response(
                conn,
                source="x",
                external_id="1",
                profile_id=42,
                score=5,
                responded_at=jst(2024, 6, 1),
                shop=DEFAULT_SHOP,
            )
    assert stored(people) == {"msg-1": (2, 4, "届くのが遅い")}
