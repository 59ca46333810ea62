"""abandoned checkouts and the profile's abandoned_checkout_at

The checkouts stream's records (ids, amounts and times, no address), and on each profile
when the person's latest checkout left without an order since began.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import Json, Money, UtcDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", Money(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("recovery_url", sa.String(length=2048), nullable=True),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "id", name=op.f("pk_checkouts")),
    )
    op.create_index(
        op.f("ix_checkouts_connection_updated_at"), "checkouts", ["connection", "updated_at"]
    )
    op.create_index(
        op.f("ix_checkouts_connection_customer_id"), "checkouts", ["connection", "customer_id"]
    )
    op.add_column("profiles", sa.Column("abandoned_checkout_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("abandoned_checkout_at")
    op.drop_index(op.f("ix_checkouts_connection_customer_id"), table_name="checkouts")
    op.drop_index(op.f("ix_checkouts_connection_updated_at"), table_name="checkouts")
    op.drop_table("checkouts")
