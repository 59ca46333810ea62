"""Migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

import omnicrm.core.store.store as store_module
import omnicrm.crm.schema
import omnicrm.engage.schema  # noqa: F401  (and so does the engagement layer)
from omnicrm.core.store import Store
from omnicrm.core.store.changes import queue_records
from omnicrm.core.store.schema import metadata, profile_changes
from omnicrm.crm.schema import profiles

MIGRATIONS = Path(store_module.__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def test_the_migrated_database_matches_the_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


def test_profiles_keep_room_for_new_row_versions_on_postgresql(store: Store) -> None:
    """The table option compare_metadata does not look at: what makes a refresh's
    updates of profiles HOT (migration 0005)."""
    with store.engine.connect() as conn:
        if store.dialect != "postgresql":
            return
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'profiles'"
        ).scalar()
    assert options == [f"fillfactor={profiles.kwargs['postgresql_with']['fillfactor']}"]


def test_open_migrates_to_head_and_again_does_nothing(store_url: str) -> None:
    for _ in range(2):
        store = Store.open(store_url)
        try:
            with store.engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() == _head()
        finally:
            store.close()


def test_open_without_migrate_leaves_the_database_alone(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}", migrate=False)
    try:
        assert inspect(store.engine).get_table_names() == []
    finally:
        store.close()


def test_migrations_downgrade_to_nothing_and_back(store: Store) -> None:
    config = _config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    store.migrate()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migration_0020_keeps_every_queued_change_in_order(store: Store) -> None:
    """0020 puts each queued record in an array of its own; back down, every array's ids
    become rows again, in queue order."""
    config = _config()
    queued = [("a", "pos", "c2"), ("b", "ec", "c1"), ("a", "pos", "c1"), ("a", "ec", "c2")]
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0019")
        conn.execute(
            text("INSERT INTO profile_changes (shop, connection, record_id) VALUES (:s, :c, :r)"),
            [{"s": s, "c": c, "r": r} for s, c, r in queued],
        )
        command.upgrade(config, "0020")
        rows = conn.execute(
            select(
                profile_changes.c.shop, profile_changes.c.connection, profile_changes.c.record_ids
            ).order_by(profile_changes.c.seq)
        ).all()
        assert [tuple(row) for row in rows] == [(s, c, [r]) for s, c, r in queued]

        queue_records(conn, "b", [("ec", "c9"), ("ec", "c3"), ("pos", "c5")])
        command.downgrade(config, "0019")
        back = conn.execute(
            text("SELECT shop, connection, record_id FROM profile_changes ORDER BY seq")
        ).all()
        assert [tuple(row) for row in back] == [
            *queued,
            ("b", "ec", "c3"),
            ("b", "ec", "c9"),
            ("b", "pos", "c5"),
        ]
        command.upgrade(config, "head")
