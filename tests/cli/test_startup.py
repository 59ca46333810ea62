"""`omnicrm --help` and every command's --help load only what they need.

What is imported is checked, not how long it takes (benchmarks/cli_startup.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from omnicrm.cli import cli

# Never for a --help: the CRM's maths, the terminal UI, the web servers, the scheduler,
# the store.
HEAVY = (
    "numpy",
    "scipy",
    "textual",
    "uvicorn",
    "starlette",
    "apscheduler",
    "alembic",
    "sqlalchemy",
)

# Runs each argument list (JSON) in turn in one fresh interpreter: what the last leaves
# loaded includes what each loaded.
_PROBE = """
import json, sys
from click.testing import CliRunner
from omnicrm.cli import cli
results = [CliRunner().invoke(cli, args) for args in json.loads(sys.argv[1])]
print(json.dumps({"codes": [r.exit_code for r in results],
                  "outputs": [r.output for r in results],
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand of the CLI, as the words that invoke it."""
    paths: list[tuple[str, ...]] = [()]

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            paths.append((*prefix, name))
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))

    walk(cli, ())
    return paths


def loaded_by(*runs: tuple[str, ...]) -> tuple[list[int], list[str], set[str]]:
    """Exit codes, outputs and the top-level modules loaded after running ``runs``."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found["codes"], found["outputs"], set(found["modules"])


def by_command() -> dict[str, list[tuple[str, ...]]]:
    """Each top-level command ('' for none) with its subcommands' paths."""
    grouped: dict[str, list[tuple[str, ...]]] = {}
    for path in command_paths():
        grouped.setdefault(path[0] if path else "", []).append(path)
    return grouped


def test_every_command_is_walked() -> None:
    names = {path[0] for path in command_paths() if path}
    assert {"demo", "status", "segments", "report", "points", "tui", "sync"} <= names
    assert ("report", "clv") in command_paths()


@pytest.mark.parametrize("command", sorted(by_command()), ids=lambda c: c or "omnicrm")
def test_help_loads_no_heavy_module(command: str) -> None:
    """The command's --help and each of its subcommands', all in one interpreter."""
    paths = by_command()[command]
    codes, outputs, modules = loaded_by(*((*path, "--help") for path in paths))
    assert codes == [0] * len(paths)
    assert all("Usage:" in output for output in outputs)
    assert not modules & set(HEAVY), f"{command} --help loaded {modules & set(HEAVY)}"


def test_the_top_help_lists_lazy_commands_with_their_own_help_texts() -> None:
    group = cli
    assert isinstance(group, click.Group)
    ctx = click.Context(group)
    stand_ins = dict(group.lazy_commands)  # type: ignore[attr-defined]
    for name, (_, text) in stand_ins.items():
        real = group.get_command(ctx, name)
        assert real is not None
        for limit in (30, 45, 80, 200):
            shown = click.Command(name, help=text).get_short_help_str(limit)
            assert shown == real.get_short_help_str(limit), name


def test_interactions_add_help_lists_the_kinds_and_media_of_the_core() -> None:
    from omnicrm.crm.interactions import KINDS, MEDIA

    codes, outputs, _ = loaded_by(("interactions", "add", "--help"))
    said = " ".join(outputs[0].split())
    assert codes == [0]
    assert f"One of {', '.join(KINDS)} or your own word." in said
    assert f"How it came in: {', '.join(MEDIA)} ..." in said


def test_the_public_api_loads_its_models_on_first_use() -> None:
    """`omnicrm --help` needs only the version: the record models load when named."""
    _, _, modules = loaded_by(("--help",))
    assert "pydantic" not in modules
    import omnicrm

    assert set(omnicrm.__all__) == {"errors", *omnicrm._EXPORTS}
    for name in omnicrm.__all__:
        assert getattr(omnicrm, name) is not None, name
