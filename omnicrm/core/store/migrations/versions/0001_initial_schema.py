"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 22:32:46.093067
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from omnicrm.core.store.schema import Money, UtcDateTime

# JSONB on PostgreSQL, JSON text elsewhere (as in schema.Json at this revision).
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=True),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("given_name", sa.String(length=255), nullable=True),
        sa.Column("family_name_kana", sa.String(length=255), nullable=True),
        sa.Column("given_name_kana", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("prefecture", sa.String(length=32), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("member_code", sa.String(length=64), nullable=True),
        sa.Column("address", Json, nullable=True),
        sa.Column("tags", Json, nullable=False),
        sa.Column("consents", Json, nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_connection_updated_at"),
            ["connection", "updated_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_customers_email"), ["email"], unique=False)

    op.create_table(
        "orders",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("placed_at", UtcDateTime(), nullable=False),
        sa.Column("cancelled_at", UtcDateTime(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", Money(), nullable=False),
        sa.Column("discount_total", Money(), nullable=False),
        sa.Column("shipping_total", Money(), nullable=False),
        sa.Column("tax_total", Money(), nullable=False),
        sa.Column("total", Money(), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_connection_customer_id"),
            ["connection", "customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_orders_connection_updated_at"),
            ["connection", "updated_at"],
            unique=False,
        )

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("records_read", sa.Integer(), nullable=False),
        sa.Column("records_written", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("rate_limit_wait", sa.Float(), nullable=False),
        sa.Column("streams", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_runs_connection_started_at"),
            ["connection", "started_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_sync_runs_status"), ["status"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("cursor", UtcDateTime(), nullable=True),
        sa.Column("state", Json, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "stream", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "event_id", name=op.f("pk_webhook_events")),
    )
    op.create_table(
        "redactions",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("redacted_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "stream", "record_id", name=op.f("pk_redactions")),
    )
    op.create_table(
        "order_lines",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("line_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=True),
        sa.Column("product_id", sa.String(length=255), nullable=True),
        sa.Column("variant_id", sa.String(length=255), nullable=True),
        sa.Column("product_name", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", Money(), nullable=False),
        sa.Column("discount", Money(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection", "order_id"],
            ["orders.connection", "orders.id"],
            name=op.f("fk_order_lines_connection_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection", "order_id", "line_no", name=op.f("pk_order_lines")),
    )


def downgrade() -> None:
    op.drop_table("order_lines")
    op.drop_table("redactions")
    op.drop_table("webhook_events")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_runs_status"))
        batch_op.drop_index(batch_op.f("ix_sync_runs_connection_started_at"))

    op.drop_table("sync_runs")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_connection_updated_at"))
        batch_op.drop_index(batch_op.f("ix_orders_connection_customer_id"))

    op.drop_table("orders")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_email"))
        batch_op.drop_index(batch_op.f("ix_customers_connection_updated_at"))

    op.drop_table("customers")
