"""checkout lines: what was in an abandoned cart, for the recovery message to name

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import Json

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL on the checkouts stored before: their lines were never read (the next sync
    # that sees one changed fills them in).
    with op.batch_alter_table("checkouts") as batch:
        batch.add_column(sa.Column("lines", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkouts") as batch:
        batch.drop_column("lines")
