"""docs/writing-a-plugin.md, followed top to bottom: the plugin its blocks make passes the
conformance kit, installed through its entry point, and its examples print what they say.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from omnicrm.core.host import Host
from omnicrm.testing import ChannelConformance
from tests.conftest import install_plugin
from tests.docs.markdown import DOCS, Block, blocks

DOC = "writing-a-plugin.md"


def tutorial_files() -> dict[str, str]:
    """Each file the tutorial writes, its blocks joined in the order they appear."""
    files: dict[str, str] = {}
    for block in blocks(DOC):
        if block.file is not None:
            files[block.file] = files.get(block.file, "") + block.text
    return files


def examples() -> list[Block]:
    return [block for block in blocks(DOC) if block.language == "pycon"]


def test_the_tutorial_writes_a_whole_distribution() -> None:
    files = tutorial_files()
    assert list(files) == [
        "pyproject.toml",
        "omnicrm_myshop/__init__.py",
        "omnicrm_myshop/settings.py",
        "omnicrm_myshop/sandbox.py",
        "omnicrm_myshop/client.py",
        "omnicrm_myshop/mapping.py",
        "omnicrm_myshop/plugin.py",
        "tests/test_conformance.py",
    ]
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")  # a SyntaxError names the file and line
        assert "..." not in text.replace('"..."', ""), f"{name} leaves something out"


def test_each_module_imports_only_what_an_earlier_block_wrote() -> None:
    written: set[str] = set()
    for name, text in tutorial_files().items():
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and node.module:
                    module = node.module
                    assert not module.startswith("omnicrm.core"), f"{name}: {module} is private"
                    if module.startswith("omnicrm_myshop."):
                        needed = module.replace(".", "/") + ".py"
                        assert needed in written, f"{name} imports {module} before it is written"
        written.add(name)


@pytest.fixture
def tutorial(plugin_dir: Path, tmp_path: Path) -> Path:
    """The tutorial's distribution, its package importable and its entry point installed
    (as `pip install -e .` would); returns the project folder (with its tests)."""
    project = tmp_path / "omnicrm-myshop"
    for name, text in tutorial_files().items():
        # The package goes where Python finds it; the rest stays in the project folder.
        root = plugin_dir if name.startswith("omnicrm_myshop/") else project
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    meta = pyproject["project"]
    ((name, module),) = meta["entry-points"]["omnicrm"].items()
    install_plugin(plugin_dir, name, module, version=meta["version"])
    return project


@pytest.mark.slow
def test_the_tutorial_plugin_passes_the_conformance_kit(tutorial: Path) -> None:
    host = Host.load()
    assert "myshop" not in host.failures, host.failures
    assert host.channel_type("myshop").sandbox is not None
    # The tutorial's own test file, run as its author would: `pytest tests/...`.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
        cwd=tutorial,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kit = [getattr(ChannelConformance, n) for n in dir(ChannelConformance) if n[:5] == "test_"]
    # A check that takes `stream` runs once per stream: MyShop offers both.
    runs = sum(2 if "stream" in inspect.signature(check).parameters else 1 for check in kit)
    assert f"{runs} passed" in done.stdout and "skipped" not in done.stdout, done.stdout


def test_the_tutorial_lists_every_check_of_the_kit() -> None:
    text = (DOCS / DOC).read_text(encoding="utf-8")
    for name in dir(ChannelConformance):
        if name.startswith("test_"):
            assert f"`{name}`" in text, f"{DOC} does not say what {name} checks"


def test_the_tutorials_examples_print_what_it_says(tutorial: Path) -> None:
    assert examples(), "the tutorial shows its sandbox and client at work"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for block in examples():
        test = parser.get_doctest(block.text, {}, f"{DOC}:{block.line}", DOC, block.line)
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} example(s) of {DOC} print otherwise"
