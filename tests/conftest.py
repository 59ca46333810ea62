"""Fixtures shared by the whole suite: stores on SQLite and on PostgreSQL.

Every test that takes ``store`` or ``store_url`` runs once per backend. PostgreSQL tests
get a database of their own, created for this session from the server named by
``OMNICRM_TEST_PG_URL`` (default: the CI machine's, 127.0.0.1:5432, database ``test``)
and dropped at the end; where no server answers they are skipped, saying why.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from omnicrm.core.store import Store
from omnicrm.core.store.schema import metadata

if TYPE_CHECKING:
    from omnicrm.plugins.email.sandbox import SmtpCatcher

PG_URL = os.environ.get("OMNICRM_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    admin_url = make_url(PG_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"omnicrm_test_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    Store.open(url).close()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'omnicrm.db'}"
    url: str = request.getfixturevalue("pg_url")
    store = Store(url)
    with store.engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    store.close()
    return url


# The collector as the test run started, before any runtime settled it.
_COLLECTOR_THRESHOLDS = gc.get_threshold()


def _reset_collector() -> None:
    gc.unfreeze()
    gc.enable()
    gc.set_threshold(*_COLLECTOR_THRESHOLDS)


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """Each test starts and ends with the collector as the run started: a command run
    in-process (CliRunner) or a fixture that built a runtime may have settled it
    (omnicrm.core.heap.settle_heap), and that must never change how a test measures."""
    _reset_collector()
    yield
    _reset_collector()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty, migrated store, on each backend in turn."""
    opened = Store.open(store_url)
    yield opened
    opened.close()


def install_plugin(root: Path, name: str, module: str, *, version: str = "1.0") -> None:
    """Make ``module`` an installed plugin: a dist-info with an ``omnicrm`` entry point."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[omnicrm]\n{name} = {module}\n", encoding="utf-8")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path (and PYTHONPATH, for subprocesses) to install test plugins in."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), str(repo)]))
    return root


@pytest.fixture
def synthetic_installed(plugin_dir: Path) -> Path:
    """The synthetic test channel, installed through a real entry point."""
    install_plugin(plugin_dir, "synthetic", "tests.synthetic_plugin")
    return plugin_dir


@pytest.fixture
def catcher() -> Iterator[SmtpCatcher]:
    """A real SMTP server on loopback (the email plugin's catcher), no connection to an
    earlier test's kept open."""
    from omnicrm.plugins.email.sandbox import SmtpCatcher
    from omnicrm.plugins.email.smtp import POOL

    POOL.close()
    with SmtpCatcher() as server:
        yield server
    POOL.close()
