"""address_links and link_nonces: LINE user ids linked to customers (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "address_links",
        sa.Column("shop", sa.String(100), primary_key=True),
        sa.Column("medium", sa.String(16), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_address_links_shop_connection_record_id",
        "address_links",
        ["shop", "connection", "record_id"],
    )
    op.create_table(
        "link_nonces",
        sa.Column("nonce", sa.String(255), primary_key=True),
        sa.Column("shop", sa.String(100), nullable=False),
        sa.Column("medium", sa.String(16), nullable=False),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "ix_link_nonces_shop_connection_record_id",
        "link_nonces",
        ["shop", "connection", "record_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_link_nonces_shop_connection_record_id", "link_nonces")
    op.drop_table("link_nonces")
    op.drop_index("ix_address_links_shop_connection_record_id", "address_links")
    op.drop_table("address_links")
