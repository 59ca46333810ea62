"""Imports run one way: core < crm < engage < app < the operator's interfaces.

Every module of the package is parsed (imports inside functions and ``TYPE_CHECKING``
blocks count: they are the same dependency, only later) and each ``omnicrm`` import is
checked against the layer of the module that makes it. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "omnicrm"

# Lower number, lower layer. A module may import its own layer and the ones below.
LAYERS = {
    "omnicrm.errors": 0,
    "omnicrm.webhooks": 0,  # the public face of core.webhooks
    "omnicrm.csvfiles": 0,  # the public face of core.csvfiles
    "omnicrm.core": 0,
    "omnicrm.crm": 1,
    "omnicrm.engage": 2,
    "omnicrm.app": 3,
    "omnicrm.testing": 3,  # the plugin author's kit loads a host and a store like the app
    "omnicrm.cli": 4,
    "omnicrm.tui": 4,
    "omnicrm.views": 4,
    "omnicrm.render": 4,
}
# Outside the layers: the public facade re-exports by name, plugins are held to the
# public API by tests/test_public_api.py.
UNLAYERED = ("omnicrm", "omnicrm.plugins")


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name, None for a module outside the layers."""
    best: tuple[int, int] | None = None
    for prefix, layer in LAYERS.items():
        inside = module == prefix or module.startswith(prefix + ".")
        if inside and (best is None or len(prefix) > best[0]):
            best = (len(prefix), layer)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every ``omnicrm`` module ``source`` (the text of ``module``) imports."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            # `from omnicrm import crm` imports the module omnicrm.crm.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "omnicrm" or name.startswith("omnicrm.")}


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that reach a higher layer than its own."""
    own = layer_of(module)
    if own is None:
        return []
    bad = []
    for target in sorted(imported_modules(source, module, is_package=is_package)):
        layer = layer_of(target)
        if layer is not None and layer > own:
            bad.append(f"{module} imports {target}")
    return bad


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations/versions" not in str(p))


def test_every_module_has_a_layer_or_is_known_to_stand_outside() -> None:
    for path in modules():
        name = module_name(path)
        if layer_of(name) is None:
            assert name in UNLAYERED or name.startswith("omnicrm.plugins."), name


def test_no_module_imports_a_higher_layer() -> None:
    bad: list[str] = []
    for path in modules():
        bad += violations(
            path.read_text("utf-8"), module_name(path), is_package=path.name == "__init__.py"
        )
    assert bad == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("omnicrm.core.sync", "from omnicrm.crm.profiles import rebuild_profiles\n"),
        ("omnicrm.core.store.store", "def f():\n    from omnicrm.app import config\n"),
        ("omnicrm.crm.refresh", "from typing import TYPE_CHECKING\nimport omnicrm.app.config\n"),
        ("omnicrm.core.store.store", "from ...app.config import Config\n"),
        ("omnicrm.core.host", "from omnicrm import crm\n"),
        ("omnicrm.app.runtime", "from omnicrm.tui.app import OmnicrmApp\n"),
    ],
)
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert violations(source, module) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("omnicrm.crm.refresh", "from omnicrm.core.store import Store\n"),
        ("omnicrm.app.runtime", "from omnicrm.crm.refresh import refresh\n"),
        ("omnicrm.cli.status", "from omnicrm.app.runtime import Runtime\n"),
        ("omnicrm.core.store.store", "from . import rows\nfrom .schema import orders\n"),
    ],
)
def test_a_downward_or_sideways_import_is_allowed(module: str, source: str) -> None:
    assert violations(source, module) == []
