"""coupons and recommendation write-back (issues 15 and 17)

orders.discount_codes: the discount codes an order used (coupon redemptions);
campaign_coupons and coupon_codes: a campaign's discount and its unique codes;
writeback_state: what the last write-back stored on each platform customer and product.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import Json, UtcDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("discount_codes", Json, nullable=True))
    op.create_table(
        "campaign_coupons",
        sa.Column("shop", sa.String(100), primary_key=True),
        sa.Column("campaign_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("connection", sa.String(100)),
        sa.Column("discount_id", sa.String(255)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "coupon_codes",
        sa.Column("shop", sa.String(100), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("profile_id", sa.Integer, nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime()),
        sa.UniqueConstraint(
            "shop", "campaign_id", "profile_id", name="uq_coupon_codes_shop_campaign_id_profile_id"
        ),
    )
    op.create_index(
        "ix_coupon_codes_shop_campaign_id_published_at",
        "coupon_codes",
        ["shop", "campaign_id", "published_at"],
    )
    op.create_table(
        "writeback_state",
        sa.Column("shop", sa.String(100), primary_key=True),
        sa.Column("connection", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(16), primary_key=True),
        sa.Column("owner_id", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("written_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("writeback_state")
    op.drop_index("ix_coupon_codes_shop_campaign_id_published_at", "coupon_codes")
    op.drop_table("coupon_codes")
    op.drop_table("campaign_coupons")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("discount_codes")
