"""suppression lifts: who took an address off the suppression list, why and when

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppression_lifts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("lifted_at", UtcDateTime(), nullable=False),
        sa.Column("lifted_by", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("why", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression_lifts")),
    )
    op.create_index(
        op.f("ix_suppression_lifts_shop_medium_address"),
        "suppression_lifts",
        ["shop", "medium", "address"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_suppression_lifts_shop_medium_address"), table_name="suppression_lifts")
    op.drop_table("suppression_lifts")
