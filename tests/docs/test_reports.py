"""docs/reports.md's NPS example, run as written: its CSV imported, its reports printed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.segments import ensure_builtin
from tests.crm.segments.profiles import add_profile
from tests.docs.markdown import blocks

DOC = "reports.md"


def nps_commands() -> list[list[str]]:
    """The doc's `omnicrm ... nps ...` command lines, imports first, comments dropped."""
    found = []
    for block in blocks(DOC):
        if block.language != "sh":
            continue
        for line in block.text.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["omnicrm"] and "nps" in words[1:3]:
                found.append(words[1:])
    return sorted(found, key=lambda args: args[:2] != ["nps", "import"])


def example_csv() -> str:
    (example,) = [b for b in blocks(DOC) if b.language == "csv" and "response_id" in b.text]
    return example.text


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_the_nps_example_runs_as_written(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shop as `omnicrm init` leaves it (the built-in segments), where Hanako, who
    # answered twice (by email, then by phone), is one of the champions.
    with store.engine.begin() as conn:
        ensure_builtin(conn, shop=DEFAULT_SHOP)
        add_profile(
            conn,
            family_name="山田",
            given_name="花子",
            email="hanako@example.jp",
            phone="+819012345678",
            rfm_group="champions",
            rfm_recency=5,
            rfm_frequency=5,
            rfm_monetary=5,
        )
    (tmp_path / "omnicrm.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    commands = nps_commands()
    assert [args[:2] for args in commands] == [["nps", "import"], ["report", "nps"]]
    for args in commands:
        if args[:2] == ["nps", "import"]:
            (tmp_path / args[2]).write_text(example_csv(), encoding="utf-8")
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, f"omnicrm {shlex.join(args)}:\n{result.output}"
    segment = commands[-1][commands[-1].index("--segment") + 1]
    lines = {
        line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line.split()
    }
    assert lines["all"][:2] == ["responses", "2"], result.output
    # Both answers are Hanako's, a champion: one promoter, one detractor.
    assert lines[segment][:4] == ["2", "1", "0", "1"], result.output
