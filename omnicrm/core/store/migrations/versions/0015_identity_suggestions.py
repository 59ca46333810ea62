"""identity suggestions: pairs the rules refused for one reason, for an operator

One row per pair of source customers the resolver refused for one reason only (one
conflicting field, or a key a household may share), with its evidence and strength;
rewritten for the records each resolution covers.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from omnicrm.core.store.schema import UtcDateTime

# JSONB on PostgreSQL, JSON text elsewhere (as in schema.Json at this revision).
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_suggestions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("a_connection", sa.String(length=100), nullable=False),
        sa.Column("a_record", sa.String(length=255), nullable=False),
        sa.Column("b_connection", sa.String(length=100), nullable=False),
        sa.Column("b_record", sa.String(length=255), nullable=False),
        sa.Column("conflict", sa.String(length=32), nullable=False),
        sa.Column("strength", sa.Integer(), nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.Column("found_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_suggestions")),
    )
    op.create_index(
        op.f("ix_identity_suggestions_shop_strength"),
        "identity_suggestions",
        ["shop", "strength"],
    )
    op.create_index(
        op.f("ix_identity_suggestions_a_connection_a_record"),
        "identity_suggestions",
        ["a_connection", "a_record"],
    )
    op.create_index(
        op.f("ix_identity_suggestions_b_connection_b_record"),
        "identity_suggestions",
        ["b_connection", "b_record"],
    )


def downgrade() -> None:
    op.drop_table("identity_suggestions")
