"""``omnicrm customers suggestions``: list, link, separate; and explain's evidence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from omnicrm.cli._common import Context
from omnicrm.cli.customers import customers
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolve_all
from omnicrm.crm.schema import profile_members

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HANAKO = {"family_name": "山田", "given_name": "花子"}
ICHIRO = {"family_name": "鈴木", "given_name": "一郎"}


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(store: Store, store_url: str, tmp_path: Path) -> Path:
    """A day/month swap, a wareki slip, and a nameless register record on a family's
    landline."""
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                birth_date=dt.date(1985, 3, 4),
                updated_at=T0,
                **HANAKO,
            ),
            Customer(
                id="w",
                email="ichiro@example.jp",
                birth_date=dt.date(1985, 6, 1),
                updated_at=T0,
                **ICHIRO,
            ),
            Customer(
                id="m",
                email="sato@example.jp",
                phone="03-3456-7890",
                family_name="佐藤",
                given_name="直子",
                updated_at=T0,
            ),
            Customer(
                id="s",
                email="sato@example.jp",
                phone="03-3456-7890",
                family_name="佐藤",
                given_name="翔太",
                updated_at=T0,
            ),
        ],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            Customer(
                id="P1",
                email="hanako@example.jp",
                phone="09011112222",
                birth_date=dt.date(1985, 4, 3),
                updated_at=T0,
                **HANAKO,
            ),
            Customer(
                id="PW",
                email="ichiro@example.jp",
                birth_date=dt.date(2048, 6, 1),
                updated_at=T0,
                **ICHIRO,
            ),
            Customer(id="N", phone="03-3456-7890", updated_at=T0),
        ],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(customers, list(args), obj=Context(config), catch_exceptions=False)


def listed(config: Path) -> list[dict[str, object]]:
    result = run(config, "suggestions", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.output)
    return found


def records(entry: dict[str, object]) -> list[str]:
    sides = entry["records"]
    assert isinstance(sides, list)
    return [f"{side['connection']}:{side['record_id']}" for side in sides]


def profile_of(store: Store, connection: str, record_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(profile_members.c.profile_id).where(
                    profile_members.c.connection == connection,
                    profile_members.c.record_id == record_id,
                )
            ).scalar_one()
        )


def test_the_list_shows_each_pair_with_its_evidence_strongest_first(config: Path) -> None:
    result = run(config, "suggestions")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "suggestions (strongest first)" in out
    assert out.index("ec:1") < out.index("ec:w") < out.index("pos:N")
    assert "山田 花子, born 1985-03-04" in out and "born 1985-04-03" in out
    assert "birth dates 1985-03-04 and 1985-04-03: day and month" in out
    assert "email hanako@example.jp, phone +819011112222; names agree; birth date" in out
    assert "wareki" in out and "(no name)" in out
    assert "names cannot be compared, and phone +81334567890 (held by" in out


def test_json_lists_records_strength_and_evidence(config: Path) -> None:
    found = listed(config)
    assert [records(s) for s in found] == [
        ["ec:1", "pos:P1"],
        ["ec:w", "pos:PW"],
        ["ec:m", "pos:N"],
        ["ec:s", "pos:N"],
    ]
    first = found[0]
    assert first["strength"] == 100 and first["conflict"] == "birth_date"
    assert first["evidence"] == {
        "keys": {"email": "hanako@example.jp", "phone": "+819011112222"},
        "names": "agree",
        "birth_date": "day_month_swap",
        "gender": "unknown",
        "conflict": "birth_date",
        "detail": "birth dates 1985-03-04 and 1985-04-03: day and month swapped",
        "rule": "email",
    }
    assert first["records"][0]["birth_date"] == "1985-03-04"  # type: ignore[index]


def test_link_and_separate_decide_in_one_step_and_are_remembered(
    store: Store, config: Path
) -> None:
    found = listed(config)
    swap, wareki, mother, _son = (int(str(s["id"])) for s in found)

    result = run(config, "suggestions", "link", str(swap))
    assert result.exit_code == 0, result.output
    assert "ec:1 and pos:P1 linked: one person" in result.output
    assert profile_of(store, "ec", "1") == profile_of(store, "pos", "P1")

    result = run(config, "suggestions", "separate", str(wareki), "--note", "father and son")
    assert result.exit_code == 0, result.output
    assert "ec:w and pos:PW separated: two people, for good" in result.output
    assert profile_of(store, "ec", "w") != profile_of(store, "pos", "PW")

    # The register's nameless record is the mother: the son's pair goes with it.
    result = run(config, "suggestions", "--shop", DEFAULT_SHOP, "link", str(mother))
    assert result.exit_code == 0, result.output
    assert profile_of(store, "ec", "m") == profile_of(store, "pos", "N")
    assert listed(config) == []
    assert "no suggestions" in run(config, "suggestions").output

    # A rebuild remembers every decision.
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
    assert listed(config) == []
    assert profile_of(store, "ec", "1") == profile_of(store, "pos", "P1")
    assert profile_of(store, "ec", "w") != profile_of(store, "pos", "PW")
    why = run(config, "explain", str(profile_of(store, "ec", "w"))).output
    assert "father and son" in why


def test_an_unknown_or_decided_suggestion_exits_2(config: Path) -> None:
    result = run(config, "suggestions", "link", "999")
    assert result.exit_code == 2 and "no suggestion 999 in shop 'default'" in result.output
    first = int(str(listed(config)[0]["id"]))
    assert run(config, "suggestions", "separate", str(first)).exit_code == 0
    result = run(config, "suggestions", "link", str(first))
    assert result.exit_code == 2 and "decided already" in result.output
    result = run(config, "suggestions", "link", "one")
    assert result.exit_code == 2 and "'one' is not a valid integer" in result.output
    result = run(config, "suggestions", "--shop", "nowhere")
    assert result.exit_code == 2


def test_explain_shows_every_piece_of_evidence_the_birth_date_included(
    store: Store, config: Path
) -> None:
    first = int(str(listed(config)[0]["id"]))
    assert run(config, "suggestions", "link", str(first)).exit_code == 0
    result = run(config, "explain", str(profile_of(store, "ec", "1")))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "born" in out and "1985-03-04" in out and "1985-04-03" in out
    assert "linked by an operator" in out
    pid = profile_of(store, "ec", "m")
    assert pid != profile_of(store, "ec", "s")


def test_a_pair_blocked_by_a_third_record_is_listed_and_split(store: Store, config: Path) -> None:
    """The app's 山田花子 shares the EC record's mobile, but her birth date (1985-04-03)
    conflicts with the register's, already one person with the EC record."""
    store.write_batch(
        "app",
        Stream.CUSTOMERS,
        [
            Customer(
                id="A1",
                phone="+81-90-1111-2222",
                birth_date=dt.date(1985, 3, 4),
                updated_at=T0,
                **HANAKO,
            ),
        ],
    )
    first = int(str(listed(config)[0]["id"]))
    assert run(config, "suggestions", "link", str(first)).exit_code == 0  # ec:1 + pos:P1
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
    (blocked,) = [s for s in listed(config) if "app:A1" in records(s)]
    assert records(blocked) == ["app:A1", "ec:1"]
    evidence = blocked["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["blocked_by"] == [
        {
            "records": [["app", "A1"], ["pos", "P1"]],
            "field": "birth_date",
            "detail": "app:A1 born 1985-03-04, pos:P1 born 1985-04-03: day and month swapped",
        }
    ]
    table = run(config, "suggestions").output
    assert "a link joins pos:P1 too" in table
    assert "split N" in table

    # A pair nothing else blocks cannot be split.
    plain = next(s for s in listed(config) if "app:A1" not in records(s))
    refused = run(config, "suggestions", "split", str(plain["id"]))
    assert refused.exit_code == 2 and "no third record blocks the pair" in refused.output

    result = run(config, "suggestions", "split", str(blocked["id"]), "--note", "店頭で別人と確認")
    assert result.exit_code == 0, result.output
    assert "app:A1 and ec:1 linked: one person; pos:P1 taken out" in result.output
    assert profile_of(store, "app", "A1") == profile_of(store, "ec", "1")
    assert profile_of(store, "pos", "P1") != profile_of(store, "ec", "1")
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
    assert profile_of(store, "app", "A1") == profile_of(store, "ec", "1")
    assert profile_of(store, "pos", "P1") != profile_of(store, "ec", "1")
    assert not [s for s in listed(config) if "app:A1" in records(s)]
