"""The plugin contract: plugins import only the public API, and the public API is whole.

The public API is ``omnicrm`` and the modules in :data:`PUBLIC_MODULES`, each name in
their ``__all__``. Every module of the built-in plugins (omnicrm/plugins/) and of the
examples (examples/), their tests included, is parsed: an import of anything else of
omnicrm fails here, naming the file, the line and what it reached for.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import pickle
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter

import omnicrm
import omnicrm.webhooks
from tests.docs.markdown import blocks

ROOT = Path(__file__).parents[1]
PUBLIC_MODULES = (
    "omnicrm",
    "omnicrm.errors",
    "omnicrm.webhooks",
    "omnicrm.csvfiles",
    "omnicrm.testing",
)


def public_names(module: str) -> frozenset[str]:
    names = set(importlib.import_module(module).__all__)
    if module == "omnicrm":  # the public submodules are reached as attributes too
        names |= {m.removeprefix("omnicrm.") for m in PUBLIC_MODULES if m != "omnicrm"}
    return frozenset(names)


def _private(module: str, own: str | None) -> bool:
    """Whether importing ``module`` (a dotted name) reaches outside the public API."""
    if module != "omnicrm" and not module.startswith("omnicrm."):
        return False  # not omnicrm (``omnicrm_minishop`` included): a plugin's own business
    if own is not None and (module == own or module.startswith(own + ".")):
        return False
    return module not in PUBLIC_MODULES


def violations(source: str, filename: str, own: str | None = None) -> list[str]:
    """Where ``source`` reaches outside the public API: ``'file:line what'`` each.

    ``own`` is the plugin's own package when it lives inside omnicrm (e.g.
    ``omnicrm.plugins.shopify``); its modules may import each other.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if _private(a.name, own)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _private(node.module, own):
                found.append(f"{where} imports from {node.module}")
            elif node.module in PUBLIC_MODULES:
                allowed = public_names(node.module)
                found += [
                    f"{where} imports {node.module}.{a.name}, not in its __all__"
                    for a in node.names
                    if a.name not in allowed
                ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "omnicrm"
            and node.attr not in public_names("omnicrm")
        ):
            found.append(f"{where} uses omnicrm.{node.attr}, not in its __all__")
    return found


def plugin_modules() -> Iterator[tuple[Path, str | None]]:
    """Each module a plugin is made of, with the package it may import freely."""
    for path in sorted((ROOT / "omnicrm" / "plugins").rglob("*.py")):
        parts = path.relative_to(ROOT / "omnicrm" / "plugins").parts
        yield path, f"omnicrm.plugins.{parts[0]}" if len(parts) > 1 else None
    for path in sorted((ROOT / "examples").rglob("*.py")):
        yield path, None


def test_plugins_and_examples_import_only_the_public_api() -> None:
    modules = list(plugin_modules())
    assert any("shopify" in str(p) for p, _ in modules)
    assert any("minishop" in str(p) for p, _ in modules)
    found = [
        v
        for path, own in modules
        for v in violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), own)
    ]
    assert found == []


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:  # a signature shown alone, not code
        return False
    return True


@pytest.mark.parametrize("document", ["plugins.md", "writing-a-plugin.md"])
def test_the_docs_plugin_code_imports_only_the_public_api(document: str) -> None:
    python = [b for b in blocks(document) if b.language == "python" and _parses(b.text)]
    assert python
    found = [v for b in python for v in violations(b.text, f"{document}:{b.line}+")]
    assert found == []


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("from omnicrm.core.store import Store", "x.py:1 imports from omnicrm.core.store"),
        ("import omnicrm.core.host as h", "x.py:1 imports omnicrm.core.host"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from omnicrm.app.config import Connection",
            "x.py:3 imports from omnicrm.app.config",
        ),
        ("from omnicrm import core", "x.py:1 imports omnicrm.core, not in its __all__"),
        (
            "from omnicrm.testing import conformance",
            "x.py:1 imports omnicrm.testing.conformance, not in its __all__",
        ),
        (
            "import omnicrm\nomnicrm.core.host.Host()",
            "x.py:2 uses omnicrm.core, not in its __all__",
        ),
        (
            "from omnicrm.plugins.shopify import mapping",
            "x.py:1 imports from omnicrm.plugins.shopify",
        ),
    ],
)
def test_a_reach_into_private_omnicrm_is_reported(source: str, reported: str) -> None:
    assert violations(source, "x.py", own="omnicrm.plugins.pos") == [reported]


def test_the_public_api_and_a_plugins_own_modules_are_not_reported() -> None:
    source = """
import omnicrm
import omnicrm.errors
import omnicrm_minishop.client
from omnicrm import Customer, Registrar, errors, webhooks
from omnicrm.testing import load_host
from omnicrm.webhooks import Upsert, hmac_sha256
from omnicrm.plugins.pos.client import PosClient
from . import mapping

@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None: ...
"""
    assert violations(source, "x.py", own="omnicrm.plugins.pos") == []


def _public_objects() -> Iterator[tuple[str, str, object]]:
    for module in PUBLIC_MODULES:
        for name in importlib.import_module(module).__all__:
            yield module, name, getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(("module", "name", "obj"), list(_public_objects()))
def test_public_names_report_a_public_module(module: str, name: str, obj: object) -> None:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # a constant, a type alias, a marker, a module: nothing to report
    owner = obj.__module__
    assert owner in PUBLIC_MODULES, f"{module}.{name} reports {owner}"
    assert getattr(importlib.import_module(owner), obj.__name__) is obj


def test_public_records_still_pickle_validate_and_print() -> None:
    customer = omnicrm.Customer(id="c1", updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert pickle.loads(pickle.dumps(customer)) == customer
    assert pickle.loads(pickle.dumps(omnicrm.Stream.ORDERS)) is omnicrm.Stream.ORDERS
    assert pickle.loads(pickle.dumps(omnicrm.Checkpoint(state={"page": 2}))).state == {"page": 2}
    assert repr(omnicrm.Customer) == "<class 'omnicrm.Customer'>"
    line = {"sku": "tea", "product_name": "煎茶", "quantity": 1, "unit_price": "980"}
    order = omnicrm.Order.model_validate(
        {
            "id": "o1",
            "updated_at": "2026-01-01T00:00:00+09:00",
            "placed_at": "2026-01-01T00:00:00+09:00",
            "subtotal": "980",
            "total": "980",
            "lines": [line],
        }
    )
    assert pickle.loads(pickle.dumps(order)) == order
    assert "Order" in omnicrm.Order.model_json_schema()["title"]


@pytest.mark.parametrize(
    "cls",
    [omnicrm.Checkpoint, omnicrm.Connection, omnicrm.Message, omnicrm.webhooks.WebhookEvent],
    ids=lambda cls: cls.__name__,
)
def test_public_dataclasses_keep_their_type_hints(cls: type) -> None:
    # Resolved through __module__, which is now `omnicrm`: see omnicrm/core/_public.py.
    assert typing.get_type_hints(cls)
    assert TypeAdapter(cls).json_schema()["title"] == cls.__name__
    assert typing.get_type_hints(omnicrm.StreamContext)["stream"] is omnicrm.Stream


def test_every_exported_name_resolves() -> None:
    for name in omnicrm.__all__:
        assert getattr(omnicrm, name) is not None
    assert set(dir(omnicrm)) >= set(omnicrm.__all__)
