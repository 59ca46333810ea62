"""Every hook is documented: in its spec's docstring and in docs/plugins.md.

Adding a hook to ``omnicrm.core.hookspecs`` without documenting it, changing a hook's
signature without updating the reference, or documenting a hook that does not exist
fails here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from omnicrm.core import hookspecs

PLUGINS_MD = Path(__file__).parents[2] / "docs" / "plugins.md"

# Names that match ``omnicrm_\w+`` in docs/plugins.md but are not hooks.
NOT_HOOKS = frozenset({"omnicrm_minishop"})  # the example plugin's import package

_SPEC_MARKER = f"{hookspecs.hookspec.project_name}_spec"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MENTION = re.compile(r"\bomnicrm_\w+")


def _specs() -> dict[str, Callable[..., Any]]:
    """The hook specifications: ``omnicrm_*`` functions carrying pluggy's spec marker."""
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if name.startswith("omnicrm_") and callable(obj) and hasattr(obj, _SPEC_MARKER)
    }


SPECS = _specs()


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature_line(name: str) -> str:
    """The spec's signature as the reference must show it, e.g. ``hook(ctx: T) -> R``."""
    sig = inspect.signature(SPECS[name])
    params = ", ".join(f"{p.name}: {_annotation(p.annotation)}" for p in sig.parameters.values())
    return f"{name}({params}) -> {_annotation(sig.return_annotation)}"


def _doc() -> str:
    assert PLUGINS_MD.is_file(), f"{PLUGINS_MD} is missing"
    return PLUGINS_MD.read_text(encoding="utf-8")


def _headings(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """(line index, level, title) of each Markdown heading outside fenced code."""
    fenced = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            yield index, len(match.group(1)), match.group(2)


def _section(name: str) -> list[str]:
    """The lines of the section whose heading names hook ``name``, heading excluded."""
    lines = _doc().splitlines()
    headings = list(_headings(lines))
    word = re.compile(rf"\b{re.escape(name)}\b")
    for n, (index, level, title) in enumerate(headings):
        if word.search(title):
            end = next(
                (i for i, lvl, _ in headings[n + 1 :] if lvl <= level),
                len(lines),
            )
            return lines[index + 1 : end]
    pytest.fail(f"docs/plugins.md has no section heading naming {name}")


def _documented_signatures(name: str) -> list[str]:
    """Lines of the hook's section that show a call signature of it."""
    found = []
    for line in _section(name):
        text = line.strip().strip("`").strip()
        if text.startswith(f"{name}("):
            found.append(text)
    return found


def test_hookspecs_are_discovered_as_pluggy_sees_them() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registered = {
        name for name, caller in vars(pm.hook).items() if isinstance(caller, pluggy.HookCaller)
    }
    assert SPECS, "no hookspec found in omnicrm.core.hookspecs"
    assert set(SPECS) == registered, "every hookspec must be named omnicrm_*"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_docstring_says_when_it_fires_and_what_it_returns(name: str) -> None:
    doc = inspect.getdoc(SPECS[name]) or ""
    assert len(doc) >= 100, f"{name}: docstring missing or too short to document the hook"
    assert "Fires" in doc, f"{name}: docstring must say when the hook fires ('Fires ...')"
    assert "Returns" in doc, f"{name}: docstring must say what it returns ('Returns ...')"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_plugins_md_has_a_section_with_the_signature(name: str) -> None:
    signatures = _documented_signatures(name)
    assert signatures, f"docs/plugins.md: the {name} section shows no `{name}(...)` line"
    expected = [p.name for p in inspect.signature(SPECS[name]).parameters.values()]
    for line in signatures:
        args = line[len(name) + 1 : line.rfind(")")]
        documented = re.findall(r"(?:^|,)\s*\*{0,2}(\w+)\s*:", args)
        assert documented == expected, (
            f"docs/plugins.md: {name} is documented with parameters {documented}, "
            f"the spec has {expected}"
        )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_plugins_md_shows_the_exact_signature(name: str) -> None:
    expected = _signature_line(name)
    assert expected in _documented_signatures(name), (
        f"docs/plugins.md: the {name} section should show the signature\n    {expected}"
    )


def test_plugins_md_mentions_no_hook_that_does_not_exist() -> None:
    assert not NOT_HOOKS & set(SPECS), "a hook is listed in NOT_HOOKS"
    mentioned = set(_MENTION.findall(_doc()))
    unknown = sorted(mentioned - set(SPECS) - NOT_HOOKS)
    assert not unknown, (
        f"docs/plugins.md names hooks that do not exist: {unknown} "
        "(if a name is not meant as a hook, add it to NOT_HOOKS)"
    )
