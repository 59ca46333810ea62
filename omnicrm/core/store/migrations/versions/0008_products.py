"""products and product_variants: each channel's catalogue (issue 17)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from omnicrm.core.store.schema import Money, UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("product_type", sa.String(length=255), nullable=True),
        sa.Column("vendor", sa.String(length=255), nullable=True),
        sa.Column("tags", Json, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "id", name=op.f("pk_products")),
    )
    op.create_index(
        op.f("ix_products_connection_updated_at"), "products", ["connection", "updated_at"]
    )
    op.create_index(op.f("ix_products_shop_status"), "products", ["shop", "status"])
    op.create_table(
        "product_variants",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("price", Money(), nullable=False),
        sa.Column("compare_at_price", Money(), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("inventory", sa.Integer(), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection", "product_id"],
            ["products.connection", "products.id"],
            name=op.f("fk_product_variants_connection_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "connection", "product_id", "position", name=op.f("pk_product_variants")
        ),
    )
    op.create_index(op.f("ix_product_variants_shop_sku"), "product_variants", ["shop", "sku"])
    op.create_index(
        op.f("ix_product_variants_connection_id"), "product_variants", ["connection", "id"]
    )


def downgrade() -> None:
    op.drop_table("product_variants")
    op.drop_table("products")
