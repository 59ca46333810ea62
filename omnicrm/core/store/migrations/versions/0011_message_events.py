"""message events (opens, clicks) and a campaign's tracking and attribution window

What recipients did with a campaign's messages, one row per outbox row and kind, ids
only; a campaign may say whether it tracks and how many days an order after a message
counts as its conversion (NULL: as the shop's [messaging] says).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("tracking", sa.Boolean(), nullable=True))
    op.add_column("campaigns", sa.Column("attribution_days", sa.Integer(), nullable=True))
    op.create_table(
        "message_events",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("first_at", UtcDateTime(), nullable=False),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shop", "outbox_id", "kind", name=op.f("pk_message_events")),
    )
    op.create_index(
        op.f("ix_message_events_shop_campaign_id_kind"),
        "message_events",
        ["shop", "campaign_id", "kind"],
    )


def downgrade() -> None:
    op.drop_table("message_events")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("attribution_days")
        batch.drop_column("tracking")
