"""webhook inbox and event outcomes

Webhooks are claimed by event id and queued with their raw body in one transaction, then
applied behind the answer; webhook_events also records what became of each event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:51:56.175881
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("record_id", sa.String(length=255), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_webhook_inbox_source_event_id")),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_inbox_source_customer_id"),
            ["source", "customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_inbox_source_record_id"), ["source", "record_id"], unique=False
        )

    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="applied", nullable=False)
        )
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("applied_at", UtcDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_webhook_events_status_received_at"),
            ["status", "received_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_events_status_received_at"))
        batch_op.drop_column("applied_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("error")
        batch_op.drop_column("status")

    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_inbox_source_record_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_inbox_source_customer_id"))

    op.drop_table("webhook_inbox")
