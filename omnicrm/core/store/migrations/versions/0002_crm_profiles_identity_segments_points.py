"""crm profiles, identity, segments, points

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:49:38.440871
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from omnicrm.core.store.schema import UtcDateTime

# JSONB on PostgreSQL, JSON text elsewhere (as in schema.Json at this revision).
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_controls",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", name=op.f("pk_connection_controls")),
    )
    op.create_table(
        "crm_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", Json, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_crm_state")),
    )
    op.create_table(
        "identity_keys",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint(
            "connection", "record_id", "kind", "value", name=op.f("pk_identity_keys")
        ),
    )
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_keys_kind_value"), ["kind", "value"], unique=False
        )

    op.create_table(
        "identity_merges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("a_connection", sa.String(length=100), nullable=False),
        sa.Column("a_record", sa.String(length=255), nullable=False),
        sa.Column("b_connection", sa.String(length=100), nullable=False),
        sa.Column("b_record", sa.String(length=255), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.Column("merged_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_merges_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "identity_overrides",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("a_connection", sa.String(length=100), nullable=False),
        sa.Column("a_record", sa.String(length=255), nullable=False),
        sa.Column("b_connection", sa.String(length=100), nullable=False),
        sa.Column("b_record", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_overrides")),
    )
    with op.batch_alter_table("identity_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_overrides_a_connection_a_record"),
            ["a_connection", "a_record"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_identity_overrides_b_connection_b_record"),
            ["b_connection", "b_record"],
            unique=False,
        )

    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("medium", sa.String(length=32), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_interactions_source_external_id")
        ),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interactions_profile_id_occurred_at"),
            ["profile_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "nps_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("responded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_responses")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_nps_responses_source_external_id")
        ),
    )
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nps_responses_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "points_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=320), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("order_id", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_points_entries_source_event_id")),
    )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_entries_connection_customer_id"),
            ["connection", "customer_id"],
            unique=False,
        )

    op.create_table(
        "profile_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_profile_changes")),
    )
    op.create_table(
        "profile_members",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "record_id", name=op.f("pk_profile_members")),
    )
    with op.batch_alter_table("profile_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_members_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "profile_values",
        sa.Column("profile_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("attr", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "attr", "value", name=op.f("pk_profile_values")),
    )
    with op.batch_alter_table("profile_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_values_attr_value"), ["attr", "value"], unique=False
        )

    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("given_name", sa.String(length=255), nullable=True),
        sa.Column("family_name_kana", sa.String(length=255), nullable=True),
        sa.Column("given_name_kana", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("prefecture", sa.String(length=32), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("member_code", sa.String(length=64), nullable=True),
        sa.Column("consent_email", sa.String(length=16), nullable=False),
        sa.Column("consent_sms", sa.String(length=16), nullable=False),
        sa.Column("consent_line", sa.String(length=16), nullable=False),
        sa.Column("consent_postal", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=True),
        sa.Column("number_of_orders", sa.Integer(), nullable=False),
        sa.Column("amount_spent", sa.Float(), nullable=False),
        sa.Column("first_order_at", UtcDateTime(), nullable=True),
        sa.Column("last_order_at", UtcDateTime(), nullable=True),
        sa.Column("purchase_days", sa.Integer(), nullable=False),
        sa.Column("channel_mix", sa.String(length=16), nullable=False),
        sa.Column("rfm_recency", sa.Integer(), nullable=True),
        sa.Column("rfm_frequency", sa.Integer(), nullable=True),
        sa.Column("rfm_monetary", sa.Integer(), nullable=True),
        sa.Column("rfm_group", sa.String(length=32), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=32), nullable=False),
        sa.Column("predicted_clv", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("points_balance", sa.Integer(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
    )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profiles_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_profiles_phone"), ["phone"], unique=False)

    op.create_table(
        "segment_counts",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("counted_at", UtcDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("segment", "counted_at", name=op.f("pk_segment_counts")),
    )
    op.create_table(
        "segments",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_segments")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("points", sa.Integer(), nullable=True))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("points_earned", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("points_redeemed", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_table("connection_controls")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("points_redeemed")
        batch_op.drop_column("points_earned")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("points")

    op.drop_table("segments")
    op.drop_table("segment_counts")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_phone"))
        batch_op.drop_index(batch_op.f("ix_profiles_email"))

    op.drop_table("profiles")
    with op.batch_alter_table("profile_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_values_attr_value"))

    op.drop_table("profile_values")
    with op.batch_alter_table("profile_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_members_profile_id"))

    op.drop_table("profile_members")
    op.drop_table("profile_changes")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_entries_connection_customer_id"))

    op.drop_table("points_entries")
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nps_responses_profile_id"))

    op.drop_table("nps_responses")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_profile_id_occurred_at"))

    op.drop_table("interactions")
    with op.batch_alter_table("identity_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_overrides_b_connection_b_record"))
        batch_op.drop_index(batch_op.f("ix_identity_overrides_a_connection_a_record"))

    op.drop_table("identity_overrides")
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merges_profile_id"))

    op.drop_table("identity_merges")
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_keys_kind_value"))

    op.drop_table("identity_keys")
    op.drop_table("crm_state")
