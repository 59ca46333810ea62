"""change batches: profile_changes holds one row per change, its record ids as a JSON array

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import Json

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each record id the rows of arrays queued, in queue order (by seq, then by its place in
# the row's array).
_EXPAND = {
    "sqlite": (
        "SELECT c.shop, c.connection, j.value FROM profile_changes AS c, json_each(c.record_ids)"
        " AS j WHERE c.record_id IS NULL ORDER BY c.seq, j.key"
    ),
    "postgresql": (
        "SELECT c.shop, c.connection, j.value FROM profile_changes AS c,"
        " jsonb_array_elements_text(c.record_ids) WITH ORDINALITY AS j(value, n)"
        " WHERE c.record_id IS NULL ORDER BY c.seq, j.n"
    ),
}


def upgrade() -> None:
    # Every queued record stays queued, each in a row of its own (in its old place).
    wrap = "jsonb_build_array" if op.get_bind().dialect.name == "postgresql" else "json_array"
    with op.batch_alter_table("profile_changes") as batch:
        batch.add_column(sa.Column("record_ids", Json, nullable=True))
    op.execute(f"UPDATE profile_changes SET record_ids = {wrap}(record_id)")
    with op.batch_alter_table("profile_changes") as batch:
        batch.drop_column("record_id")
        batch.alter_column("record_ids", existing_type=Json, nullable=False)


def downgrade() -> None:
    # One row per record id again, appended in queue order; then the arrays go.
    with op.batch_alter_table("profile_changes") as batch:
        batch.add_column(sa.Column("record_id", sa.String(255), nullable=True))
        batch.alter_column("record_ids", existing_type=Json, nullable=True)
    expand = _EXPAND[op.get_bind().dialect.name]
    op.execute(f"INSERT INTO profile_changes (shop, connection, record_id) {expand}")
    op.execute("DELETE FROM profile_changes WHERE record_id IS NULL")
    with op.batch_alter_table("profile_changes") as batch:
        batch.drop_column("record_ids")
        batch.alter_column("record_id", existing_type=sa.String(255), nullable=False)
