"""profiles: room on each page for the next version of its rows (PostgreSQL)

A refresh rewrites a thousand changed profiles twice (their columns, then their scores).
On a page left full, every new row version lands on another page and every index of
``profiles`` gets a new entry for it; with a fifth of each page kept free, the new version
stays on its page and, as no indexed column changed, no index is touched (a HOT update).
Pages written from now on keep the room; a store's existing pages get it as they are
rewritten (``VACUUM FULL profiles`` does all of them at once, locking the table).
SQLite has no such setting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Also in omnicrm.crm.schema (profiles' postgresql_with), which new stores are made from.
FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE profiles SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE profiles RESET (fillfactor)")
