"""cart recovery's decisions, one per abandoned checkout

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cart_recoveries",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("checkout_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "shop", "connection", "checkout_id", name=op.f("pk_cart_recoveries")
        ),
    )
    op.create_index(
        op.f("ix_cart_recoveries_shop_campaign_id_profile_id"),
        "cart_recoveries",
        ["shop", "campaign_id", "profile_id"],
    )
    op.create_index(
        op.f("ix_cart_recoveries_shop_connection_customer_id"),
        "cart_recoveries",
        ["shop", "connection", "customer_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_cart_recoveries_shop_connection_customer_id"), table_name="cart_recoveries"
    )
    op.drop_index(
        op.f("ix_cart_recoveries_shop_campaign_id_profile_id"), table_name="cart_recoveries"
    )
    op.drop_table("cart_recoveries")
