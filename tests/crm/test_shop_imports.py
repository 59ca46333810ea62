"""Interactions and NPS answers in two shops that know the same people (same emails,
phones, names): an import into one shop matches that shop's profiles only, the other
shop's rows stay untouched, and every list and score is per shop (issue 12), on both
backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Table, func, select

from omnicrm.cli._common import Context
from omnicrm.cli.interactions import interactions_group
from omnicrm.cli.nps import nps_group
from omnicrm.core.store import Store
from omnicrm.crm.analytics.nps import import_nps_csv, nps_report, nps_summary, record_response
from omnicrm.crm.csv_import import CsvImportError
from omnicrm.crm.interactions import add_interaction, import_interactions_csv, interactions_for
from omnicrm.crm.schema import interactions, nps_responses
from tests.crm.analytics.shop import add_profile, jst

HANAKO = {"email": "hanako@example.jp", "phone": "+819012345678", "family_name": "山田"}
SUPPORT = (
    "interaction_id,email,phone,kind,occurred_at,subject\n"
    "t-1,HANAKO@example.jp,,inquiry,2024-05-01 10:00,配送\n"
    "t-2,,090-1234-5678,complaint,2024-05-02 10:00,破損\n"
    "t-3,family@example.jp,,request,2024-05-03 10:00,ギフト\n"
)
ANSWERS = (
    "response_id,email,phone,score,responded_at\n"
    "r1,hanako@example.jp,,10,2024-05-01 10:00\n"
    "r2,family@example.jp,,3,2024-05-02 10:00\n"
)


@pytest.fixture
def people(store: Store) -> dict[str, dict[str, int]]:
    """Hanako in both shops (same email, phone, name); family@ is one profile in cake,
    two in tea (a family sharing an address there)."""
    with store.engine.begin() as conn:
        return {
            "tea": {
                "hanako": add_profile(conn, shop="tea", **HANAKO),
                "family": add_profile(conn, shop="tea", email="family@example.jp"),
                "family2": add_profile(conn, shop="tea", email="family@example.jp"),
            },
            "cake": {
                "hanako": add_profile(conn, shop="cake", **HANAKO),
                "family": add_profile(conn, shop="cake", email="family@example.jp"),
            },
        }


def _file(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(store: Store, table: Table) -> list[tuple[str, str, int | None]]:
    """(shop, external id, profile id) of every row of ``table``."""
    with store.engine.connect() as conn:
        found = conn.execute(select(table.c.shop, table.c.external_id, table.c.profile_id))
        return sorted((r.shop, r.external_id, r.profile_id) for r in found)


def test_interactions_import_into_one_shop_matches_that_shops_profiles(
    store: Store, people: dict[str, dict[str, int]], tmp_path: Path
) -> None:
    path = _file(tmp_path, SUPPORT)
    tea, cake = people["tea"], people["cake"]
    with store.engine.begin() as conn:
        done = import_interactions_csv(conn, path, shop="tea")
    # family@ is two profiles in tea: shared, so not matched (cake's one does not count).
    assert (done.inserted, [u.external_id for u in done.unmatched]) == (2, ["t-3"])
    assert "shared by profiles" in done.unmatched[0].reason
    assert _rows(store, interactions) == [
        ("tea", "t-1", tea["hanako"]),
        ("tea", "t-2", tea["hanako"]),
    ]
    with store.engine.connect() as conn:
        assert interactions_for(conn, cake["hanako"], shop="cake") == []
        assert interactions_for(conn, cake["hanako"], shop="tea") == []

    # The same file (same source, same ids) into cake: cake's rows, tea's untouched.
    with store.engine.begin() as conn:
        again = import_interactions_csv(conn, path, shop="cake")
    assert (again.inserted, again.updated, again.unmatched) == (3, 0, ())
    assert _rows(store, interactions) == [
        ("cake", "t-1", cake["hanako"]),
        ("cake", "t-2", cake["hanako"]),
        ("cake", "t-3", cake["family"]),
        ("tea", "t-1", tea["hanako"]),
        ("tea", "t-2", tea["hanako"]),
    ]
    with store.engine.begin() as conn:
        unchanged = import_interactions_csv(conn, path, shop="tea")
        assert (unchanged.inserted, unchanged.updated, unchanged.unchanged) == (0, 0, 2)
        listed = interactions_for(conn, tea["hanako"], shop="tea")
    assert [i.external_id for i in listed] == ["t-2", "t-1"]


@pytest.mark.parametrize("what", ["interactions", "nps"])
def test_a_profile_id_of_another_shop_is_a_problem_and_nothing_is_written(
    store: Store, people: dict[str, dict[str, int]], tmp_path: Path, what: str
) -> None:
    theirs = people["cake"]["hanako"]
    if what == "interactions":
        text = (
            "interaction_id,profile_id,email,kind,occurred_at\n"
            f"t-1,,hanako@example.jp,inquiry,2024-05-01\n"
            f"t-2,{theirs},,inquiry,2024-05-01\n"
            "t-3,99999,,inquiry,2024-05-01\n"  # no such profile anywhere: only unmatched
        )
        run, table = import_interactions_csv, interactions
    else:
        text = (
            "response_id,profile_id,email,score,responded_at\n"
            f"r1,,hanako@example.jp,9,2024-05-01\n"
            f"r2,{theirs},,9,2024-05-01\n"
            "r3,99999,,9,2024-05-01\n"
        )
        run, table = import_nps_csv, nps_responses  # type: ignore[assignment]
    path = _file(tmp_path, text)
    with pytest.raises(CsvImportError) as caught, store.engine.begin() as conn:
        run(conn, path, shop="tea")
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3:profile_id: profile {theirs} is not a profile of shop 'tea'"
    ]
    assert _rows(store, table) == []
    with store.engine.begin() as conn:
        done = run(conn, path, shop="cake")  # theirs is cake's: fine there
    assert done.inserted == (2 if what == "interactions" else 3)


def test_one_at_a_time_only_into_the_shops_own_profiles(
    store: Store, people: dict[str, dict[str, int]]
) -> None:
    tea, cake = people["tea"], people["cake"]
    when = jst(2024, 5, 1)
    with store.engine.begin() as conn:
        with pytest.raises(ValueError, match=f"profile_id: no profile {cake['hanako']} in shop"):
            add_interaction(conn, cake["hanako"], "inquiry", when, "x", shop="tea")
        with pytest.raises(ValueError, match=f"profile_id: no profile {cake['hanako']} in shop"):
            record_response(
                conn,
                shop="tea",
                source="line",
                external_id="a1",
                profile_id=cake["hanako"],
                score=9,
                responded_at=when,
            )
        # The same (source, external id) in each shop: two rows, each its shop's.
        ids = {
            shop: record_response(
                conn,
                shop=shop,
                source="line",
                external_id="a1",
                profile_id=people[shop]["hanako"],
                score=score,
                responded_at=when,
            )
            for shop, score in (("tea", 10), ("cake", 0))
        }
        again = record_response(
            conn,
            shop="tea",
            source="line",
            external_id="a1",
            profile_id=tea["hanako"],
            score=9,
            responded_at=when,
        )
        added = {
            shop: add_interaction(
                conn, people[shop]["hanako"], "inquiry", when, "x", shop=shop, external_id="e1"
            )
            for shop in ("tea", "cake")
        }
    assert again == ids["tea"] != ids["cake"]
    assert added["tea"].id != added["cake"].id
    assert _rows(store, nps_responses) == [
        ("cake", "a1", cake["hanako"]),
        ("tea", "a1", tea["hanako"]),
    ]
    with store.engine.connect() as conn:
        assert nps_summary(conn, shop="tea").promoters == 1  # 9, updated from 10
        assert nps_summary(conn, shop="cake").detractors == 1


def test_nps_is_per_shop(store: Store, people: dict[str, dict[str, int]], tmp_path: Path) -> None:
    path = _file(tmp_path, ANSWERS)
    with store.engine.begin() as conn:
        tea = import_nps_csv(conn, path, shop="tea")
        cake = import_nps_csv(conn, path, shop="cake")
    # Kept unmatched in tea (family@ is shared there), matched in cake.
    assert (tea.inserted, [u.external_id for u in tea.unmatched]) == (2, ["r2"])
    assert (cake.inserted, cake.unmatched) == (2, ())
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(nps_responses)).scalar_one()
        assert count == 4
        for shop in ("tea", "cake"):
            summary = nps_summary(conn, shop=shop)
            assert (summary.responses, summary.promoters, summary.detractors) == (2, 1, 1)
        tea_report = nps_report(conn, shop="tea")
        cake_report = nps_report(conn, shop="cake")
        assert nps_summary(conn, shop="coffee").responses == 0
    assert "1 response(s) are not matched to a profile" in tea_report.notes
    assert not any("not matched" in note for note in cake_report.notes)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def config(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "omnicrm.toml"
    url = store.url.render_as_string(hide_password=False)
    path.write_text(
        f'[store]\nurl = "{url}"\n\n[shops.tea]\nname = "Tea"\n\n[shops.cake]\nname = "Cake"\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, group: object, *args: str) -> Result:
    return CliRunner().invoke(group, list(args), obj=Context(config), catch_exceptions=False)  # type: ignore[arg-type]


def test_cli_imports_lists_and_scores_in_the_shop_named(
    config: Path, store: Store, people: dict[str, dict[str, int]], tmp_path: Path
) -> None:
    support, answers = _file(tmp_path, SUPPORT, "s.csv"), _file(tmp_path, ANSWERS, "a.csv")
    tea, cake = people["tea"], people["cake"]
    for group, args in (
        (interactions_group, ["import", str(support)]),
        (interactions_group, ["list", str(tea["hanako"])]),
        (interactions_group, ["add", str(tea["hanako"]), "--kind", "other", "--subject", "x"]),
        (nps_group, ["import", str(answers)]),
        (nps_group, ["summary"]),
    ):
        missing = run(config, group, *args)
        assert missing.exit_code == 2, (args, missing.output)
        assert "tea" in missing.output and "cake" in missing.output
    assert _rows(store, interactions) == [] and _rows(store, nps_responses) == []

    imported = run(config, interactions_group, "import", str(support), "--shop", "cake")
    assert imported.exit_code == 0, imported.output
    assert "3 new" in imported.output
    listed = run(config, interactions_group, "list", str(cake["hanako"]), "--shop", "cake")
    assert listed.exit_code == 0 and "配送" in listed.output and "破損" in listed.output
    other = run(config, interactions_group, "list", str(cake["hanako"]), "--shop", "tea")
    assert other.exit_code == 2 and f"no profile {cake['hanako']} in shop 'tea'" in other.output
    added = run(
        config, interactions_group, "add", str(tea["hanako"]), "--kind", "other",
        "--subject", "x", "--shop", "cake",
    )  # fmt: skip
    assert added.exit_code == 2 and "in shop 'cake'" in added.output
    assert {shop for shop, _, _ in _rows(store, interactions)} == {"cake"}

    assert run(config, nps_group, "import", str(answers), "--shop", "tea").exit_code == 0
    scored = run(config, nps_group, "summary", "--shop", "tea", "--format", "csv")
    assert scored.exit_code == 0, scored.output
    assert "all responses,2,1,0,1,0" in scored.output
    empty = run(config, nps_group, "summary", "--shop", "cake")
    assert empty.exit_code == 0 and "no NPS responses yet" in empty.output
