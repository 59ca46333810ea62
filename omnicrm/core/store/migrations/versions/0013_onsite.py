"""onsite_visitors and onsite_events: the storefront script's visitors and what they
saw and clicked (issue 17, on-site engagement)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "onsite_visitors",
        sa.Column("shop", sa.String(100), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(100), nullable=True),
        sa.Column("record_id", sa.String(255), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_onsite_visitors_shop_connection_record_id",
        "onsite_visitors",
        ["shop", "connection", "record_id"],
    )
    op.create_table(
        "onsite_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(100), nullable=False),
        sa.Column("visitor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("offer", sa.String(100), nullable=True),
        sa.Column("variant", sa.String(32), nullable=True),
        sa.Column("product", sa.String(255), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_onsite_events_shop_visitor_kind_offer_at",
        "onsite_events",
        ["shop", "visitor", "kind", "offer", "at"],
    )
    op.create_index(
        "ix_onsite_events_shop_offer_kind_variant",
        "onsite_events",
        ["shop", "offer", "kind", "variant"],
    )


def downgrade() -> None:
    op.drop_index("ix_onsite_events_shop_offer_kind_variant", "onsite_events")
    op.drop_index("ix_onsite_events_shop_visitor_kind_offer_at", "onsite_events")
    op.drop_table("onsite_events")
    op.drop_index("ix_onsite_visitors_shop_connection_record_id", "onsite_visitors")
    op.drop_table("onsite_visitors")
