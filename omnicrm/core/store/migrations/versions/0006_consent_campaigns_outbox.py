"""consent records, suppressions, campaigns and the outbox (issue 15)

Consent statements made through omnicrm and the addresses not to send to live in the
core; campaigns and the outbox in the engagement layer. Every table carries the shop and
leads its keys with it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stated_at", UtcDateTime(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index(
        op.f("ix_consent_records_shop_medium_connection_record_id_stated_at"),
        "consent_records",
        ["shop", "medium", "connection", "record_id", "stated_at"],
    )
    op.create_table(
        "suppressions",
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("shop", "medium", "address", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("segment", sa.Text(), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("dispatcher", sa.String(length=100), nullable=False),
        sa.Column("variants", Json, nullable=False),
        sa.Column("holdout", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("planned_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("shop", "name", name=op.f("uq_campaigns_shop_name")),
    )
    op.create_index(op.f("ix_campaigns_shop_status"), "campaigns", ["shop", "status"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.Column("handed_at", UtcDateTime(), nullable=True),
        sa.Column("answered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint(
            "shop",
            "campaign_id",
            "profile_id",
            "medium",
            name=op.f("uq_outbox_shop_campaign_id_profile_id_medium"),
        ),
    )
    op.create_index(
        op.f("ix_outbox_shop_campaign_id_status"), "outbox", ["shop", "campaign_id", "status"]
    )
    op.create_index(
        op.f("ix_outbox_shop_profile_id_medium_handed_at"),
        "outbox",
        ["shop", "profile_id", "medium", "handed_at"],
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("campaigns")
    op.drop_table("suppressions")
    op.drop_table("consent_records")
