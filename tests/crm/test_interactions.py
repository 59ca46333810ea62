"""A profile's interactions: added by hand, imported from CSV, listed; and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from omnicrm.cli._common import Context
from omnicrm.cli.interactions import interactions_group
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.csv_import import CsvImportError
from omnicrm.crm.interactions import add_interaction, import_interactions_csv, interactions_for
from omnicrm.crm.schema import interactions
from tests.crm.analytics.shop import add_profile, jst

HEADER = "interaction_id,email,phone,profile_id,kind,medium,occurred_at,subject,body\n"
GOOD = HEADER + (
    "t-1,HANAKO@example.jp,,,問い合わせ,メール,2024-05-01 10:00,配送日について,いつ届きますか\n"
    "t-2,,090-1234-5678,,complaint,phone,2024-05-02 15:30,破損,"
    '"箱が潰れていた\n交換希望"\n'
    "t-3,,,2,Request,,2024-05-03,,\n"
    "t-4,stranger@example.jp,,,inquiry,,2024-05-04,?,\n"
)


@pytest.fixture
def people(store: Store) -> Store:
    with store.engine.begin() as conn:
        add_profile(conn, email="hanako@example.jp", phone="+819012345678")
        add_profile(conn, email="taro@example.jp")
    return store


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(interactions)).scalar_one())


def test_add_and_list(people: Store) -> None:
    with people.engine.begin() as conn:
        first = add_interaction(
            conn,
            1,
            "クレーム",
            jst(2024, 5, 1, 9),
            "配送遅延",
            "3日遅れ",
            "電話",
            shop=DEFAULT_SHOP,
        )
        later = add_interaction(
            conn, 1, " Inquiry ", jst(2024, 6, 1, 9), "在庫", medium="LINE", shop=DEFAULT_SHOP
        )
        add_interaction(conn, 2, "other", jst(2024, 7, 1), None, shop=DEFAULT_SHOP)
        assert (first.kind, first.medium, first.source) == ("complaint", "phone", "cli")
        assert (later.kind, later.medium) == ("inquiry", "line")
        listed = interactions_for(conn, 1, shop=DEFAULT_SHOP)
        with pytest.raises(ValueError, match="profile_id: no profile 9"):
            add_interaction(conn, 9, "inquiry", jst(2024, 5, 1), "x", shop=DEFAULT_SHOP)
        with pytest.raises(ValueError, match="occurred_at"):
            add_interaction(
                conn, 1, "inquiry", jst(2024, 5, 1).replace(tzinfo=None), "x", shop=DEFAULT_SHOP
            )
        with pytest.raises(ValueError, match="kind"):
            add_interaction(conn, 1, "x" * 33, jst(2024, 5, 1), "x", shop=DEFAULT_SHOP)
    assert [i.id for i in listed] == [later.id, first.id]
    assert listed[1].occurred_at == jst(2024, 5, 1, 9)
    assert listed[1].body == "3日遅れ"


def test_import_matches_skips_the_unknown_and_is_idempotent(people: Store, tmp_path: Path) -> None:
    path = tmp_path / "support.csv"
    path.write_text(GOOD, encoding="utf-8")
    with people.engine.begin() as conn:
        result = import_interactions_csv(conn, path, source="zendesk", shop=DEFAULT_SHOP)
    assert (result.rows, result.inserted, result.updated, result.unchanged) == (4, 3, 0, 0)
    assert [(u.line, u.external_id) for u in result.unmatched] == [(6, "t-4")]
    assert "no profile has email stranger@example.jp" in result.unmatched[0].reason
    with people.engine.connect() as conn:
        mine = interactions_for(conn, 1, shop=DEFAULT_SHOP)
        theirs = interactions_for(conn, 2, shop=DEFAULT_SHOP)
    assert [(i.external_id, i.kind, i.medium) for i in mine] == [
        ("t-2", "complaint", "phone"),
        ("t-1", "inquiry", "email"),
    ]
    assert mine[0].body == "箱が潰れていた\n交換希望"
    assert mine[0].occurred_at == jst(2024, 5, 2, 15, 30)
    assert [(i.external_id, i.kind, i.subject) for i in theirs] == [("t-3", "request", None)]

    with people.engine.begin() as conn:
        again = import_interactions_csv(conn, path, source="zendesk", shop=DEFAULT_SHOP)
    assert (again.inserted, again.updated, again.unchanged, len(again.unmatched)) == (0, 0, 3, 1)
    # Once the stranger has a profile, importing the same file brings their row in.
    with people.engine.begin() as conn:
        stranger = add_profile(conn, email="stranger@example.jp")
        third = import_interactions_csv(conn, path, source="zendesk", shop=DEFAULT_SHOP)
        assert [i.external_id for i in interactions_for(conn, stranger, shop=DEFAULT_SHOP)] == [
            "t-4"
        ]
    assert (third.inserted, third.unchanged, third.unmatched) == (1, 3, ())
    assert count(people) == 4


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("t-9,,,1,inquiry,,2024-02-30,x,", "occurred_at", "not a date or time: '2024-02-30'"),
        ("t-9,,,1,,,2024-05-01,x,", "kind", "a value is required"),
        ("t-9,,,1,inquiry,," + "2024-05-01," + "x" * 256 + ",", "subject", "longer than 255"),
        ("t-9,bad@,,,inquiry,,2024-05-01,x,", "email", "not an email address"),
        ("t-1,,,1,inquiry,,2024-05-01,x,", "interaction_id", "'t-1' repeats line 2"),
    ],
)
def test_a_bad_row_names_file_line_and_field_and_writes_nothing(
    people: Store, tmp_path: Path, row: str, field: str, message: str
) -> None:
    path = tmp_path / "support.csv"
    path.write_text(GOOD + row + "\n", encoding="utf-8")
    with pytest.raises(CsvImportError) as caught, people.engine.begin() as conn:
        import_interactions_csv(conn, path, shop=DEFAULT_SHOP)
    # t-2's body spans lines 3-4, so the added row is line 7.
    assert f"{path}:7:{field}: {message}" in str(caught.value)
    assert count(people) == 0


def test_unknown_column_is_refused(people: Store, tmp_path: Path) -> None:
    path = tmp_path / "support.csv"
    path.write_text("interaction_id,email,kind,occurred_at,note\n", encoding="utf-8")
    with (
        pytest.raises(CsvImportError, match=rf"{path}:1:note: unknown column"),
        people.engine.begin() as conn,
    ):
        import_interactions_csv(conn, path, shop=DEFAULT_SHOP)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def config(tmp_path: Path, people: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{people.url.render_as_string(hide_password=False)}"\n', encoding="utf-8"
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        interactions_group, list(args), obj=Context(config), catch_exceptions=False
    )


def test_cli_add_list_import(config: Path, people: Store, tmp_path: Path) -> None:
    empty = run(config, "list", "1")
    assert empty.exit_code == 0 and "no interactions for profile 1 yet" in empty.output
    added = run(
        config, "add", "1", "--kind", "苦情", "--subject", "梱包", "--medium", "店頭",
        "--at", "2024-05-01 14:30",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "(complaint) to profile 1" in added.output
    listed = run(config, "list", "1")
    assert listed.exit_code == 0, listed.output
    assert "2024-05-01 14:30" in listed.output and "梱包" in listed.output
    assert "store" in listed.output

    path = tmp_path / "support.csv"
    path.write_text(GOOD, encoding="utf-8")
    imported = run(config, "import", str(path), "--source", "zendesk")
    assert imported.exit_code == 0, imported.output
    assert "4 interaction(s) read - 3 new, 0 changed, 0 unchanged" in imported.output
    assert "1 unmatched" in imported.output and "stranger@example.jp" in imported.output

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "z,,,1,inquiry,,soon,x,\n", encoding="utf-8")
    refused = run(config, "import", str(bad))
    assert refused.exit_code == 2
    assert f"{bad}:2:occurred_at: not a date or time: 'soon'" in refused.output
    assert count(people) == 4


def test_cli_bad_input_exits_2(config: Path) -> None:
    assert run(config, "list", "9").exit_code == 2
    nobody = run(config, "add", "9", "--kind", "inquiry", "--subject", "x")
    assert nobody.exit_code == 2 and "no profile 9" in nobody.output
    when = run(config, "add", "1", "--kind", "inquiry", "--subject", "x", "--at", "soon")
    assert when.exit_code == 2 and "not a date or time" in when.output
