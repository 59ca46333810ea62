"""customers.line_user_id: the LINE user id a platform keeps for a customer (issue 15)

A Shopify store's LINE-connect app keeps it in a customer metafield; the store links it
to the customer (address_links) as it writes them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("line_user_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("line_user_id")
