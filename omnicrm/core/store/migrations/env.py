"""Alembic environment: migrations run on the connection the Store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from omnicrm.core.store.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # the alembic CLI, for writing new revisions
        url = context.config.get_main_option("sqlalchemy.url") or "sqlite://"
        with create_engine(url, hide_parameters=True).connect() as conn:
            _migrate(conn)
            conn.commit()
    else:
        _migrate(connection)


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        # Each layer declares its tables on this one metadata when its schema module is
        # imported: autogenerating a revision needs them all, so the caller (a test, a
        # developer's script) imports them and may pass the metadata explicitly.
        target_metadata=context.config.attributes.get("metadata", metadata),
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
