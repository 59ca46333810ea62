"""customers: a partial index of the members who withdrew (退会)

Planning a campaign looks up the profiles still holding a withdrawn member (the refresh
takes them out; a withdrawal synced in between must not be messaged). Withdrawn members
are a few of a shop's customers: indexed on their own, the lookup reads them, not the
whole customers table with its payloads.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("withdrawn_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_customers_shop_withdrawn_at",
        "customers",
        ["shop", "withdrawn_at"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_customers_shop_withdrawn_at", table_name="customers")
