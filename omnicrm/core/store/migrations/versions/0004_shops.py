"""shops: every customer-level row belongs to one shop

A shop is one client business, one customer base. Source records belong to the shop of
their connection (``connection_shops``); everything the CRM derives from them carries
its shop, and keys that two shops may share (match keys, segment names, import ids) lead
with it.

An existing store's rows go to the shop the config gives their connection; the rest (and
connections the config no longer names) to the store's default shop: the config's only
shop, or ``default``. The Store passes both in ``config.attributes``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from omnicrm.core.store.schema import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_SHOP = "default"

# Tables whose rows take the shop of their connection column.
_BY_CONNECTION = {
    "customers": "connection",
    "orders": "connection",
    "profile_changes": "connection",
    "profile_members": "connection",
    "identity_keys": "connection",
    "identity_merges": "a_connection",
    "identity_overrides": "a_connection",
    "points_entries": "connection",
}
# Tables whose rows take the shop of their profile.
_BY_PROFILE = ("profile_values", "interactions", "nps_responses")
# Tables whose rows (not per customer) go to the default shop.
_TO_DEFAULT = ("segments", "segment_counts", "crm_state")


def _shop_column() -> sa.Column[str]:
    return sa.Column("shop", sa.String(length=100), nullable=True)


def upgrade() -> None:
    attributes = context.config.attributes
    assigned: dict[str, str] = dict(attributes.get("shops") or {})
    default = str(attributes.get("default_shop") or DEFAULT_SHOP)
    bind = op.get_bind()

    connection_shops = op.create_table(
        "connection_shops",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=False),
        sa.Column("assigned_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection", name=op.f("pk_connection_shops")),
    )
    with op.batch_alter_table("connection_shops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_shops_shop"), ["shop"], unique=False)

    known: set[str] = set()
    for table, column in [
        *_BY_CONNECTION.items(),
        ("identity_merges", "b_connection"),
        ("identity_overrides", "b_connection"),
        ("sync_state", "connection"),
        ("sync_runs", "connection"),
    ]:
        known.update(bind.execute(sa.text(f"SELECT DISTINCT {column} FROM {table}")).scalars())
    now = dt.datetime.now(dt.UTC)
    if known:
        op.bulk_insert(
            connection_shops,
            [
                {"connection": name, "shop": assigned.get(name, default), "assigned_at": now}
                for name in sorted(known)
            ],
        )

    for table, column in _BY_CONNECTION.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_shop_column())
        bind.execute(
            sa.text(
                f"UPDATE {table} SET shop = (SELECT cs.shop FROM connection_shops cs"
                f" WHERE cs.connection = {table}.{column})"
            )
        )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(_shop_column())
    # A profile's members were resolved together, so they share a connection's shop
    # unless the config spreads the old connections over several shops; then the first
    # shop keeps the profile, and a rebuild of each shop's identities separates them.
    bind.execute(
        sa.text(
            "UPDATE profiles SET shop = (SELECT MIN(pm.shop) FROM profile_members pm"
            " WHERE pm.profile_id = profiles.id)"
        )
    )
    for table in _BY_PROFILE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_shop_column())
        bind.execute(
            sa.text(
                f"UPDATE {table} SET shop = (SELECT p.shop FROM profiles p"
                f" WHERE p.id = {table}.profile_id)"
            )
        )
    for table in ("profiles", *_BY_CONNECTION, *_BY_PROFILE, *_TO_DEFAULT):
        if table in _TO_DEFAULT:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(_shop_column())
        bind.execute(
            sa.text(f"UPDATE {table} SET shop = :shop WHERE shop IS NULL"), {"shop": default}
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("shop", existing_type=sa.String(length=100), nullable=False)

    # Keys and indexes that lead with the shop.
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_email"))
        batch_op.create_index(
            batch_op.f("ix_customers_shop_email"), ["shop", "email"], unique=False
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_shop_placed_at"), ["shop", "placed_at"], unique=False
        )
    with op.batch_alter_table("profile_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_changes_shop_seq"), ["shop", "seq"], unique=False
        )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_email"))
        batch_op.drop_index(batch_op.f("ix_profiles_phone"))
        batch_op.create_index(batch_op.f("ix_profiles_shop_id"), ["shop", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_profiles_shop_email"), ["shop", "email"], unique=False)
        batch_op.create_index(batch_op.f("ix_profiles_shop_phone"), ["shop", "phone"], unique=False)
    with op.batch_alter_table("profile_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_values_attr_value"))
        batch_op.create_index(
            batch_op.f("ix_profile_values_shop_attr_value"), ["shop", "attr", "value"], unique=False
        )
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_keys_kind_value"))
        batch_op.create_index(
            batch_op.f("ix_identity_keys_shop_kind_value"), ["shop", "kind", "value"], unique=False
        )
    with op.batch_alter_table("identity_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_overrides_shop_id"), ["shop", "id"], unique=False
        )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_merges_shop_merged_at"), ["shop", "merged_at"], unique=False
        )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_interactions_source_external_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_interactions_shop_source_external_id"), ["shop", "source", "external_id"]
        )
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_nps_responses_source_external_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_nps_responses_shop_source_external_id"),
            ["shop", "source", "external_id"],
        )
        batch_op.create_index(
            batch_op.f("ix_nps_responses_shop_responded_at"), ["shop", "responded_at"], unique=False
        )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_points_entries_source_event_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_points_entries_shop_source_event_id"), ["shop", "source", "event_id"]
        )
    for table, key in (
        ("segments", ["shop", "name"]),
        ("segment_counts", ["shop", "segment", "counted_at"]),
        ("crm_state", ["shop", "key"]),
    ):
        with op.batch_alter_table(table, schema=None, recreate="always") as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", key)


def downgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT DISTINCT shop FROM profiles")).scalars().all()
    if len(held) > 1:
        # Without the shop, two businesses' customers would become one customer base.
        raise RuntimeError(
            f"cannot downgrade a store holding {len(held)} shops' customers: erase all but one"
        )
    for table, key in (
        ("segments", ["name"]),
        ("segment_counts", ["segment", "counted_at"]),
        ("crm_state", ["key"]),
    ):
        with op.batch_alter_table(table, schema=None, recreate="always") as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", key)
    for table, name, columns in (
        ("points_entries", "uq_points_entries_source_event_id", ["source", "event_id"]),
        ("nps_responses", "uq_nps_responses_source_external_id", ["source", "external_id"]),
        ("interactions", "uq_interactions_source_external_id", ["source", "external_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_shop_{'_'.join(columns)}", type_="unique")
            batch_op.create_unique_constraint(name, columns)
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nps_responses_shop_responded_at"))
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merges_shop_merged_at"))
    with op.batch_alter_table("identity_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_overrides_shop_id"))
    with op.batch_alter_table("identity_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_keys_shop_kind_value"))
        batch_op.create_index(
            batch_op.f("ix_identity_keys_kind_value"), ["kind", "value"], unique=False
        )
    with op.batch_alter_table("profile_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_values_shop_attr_value"))
        batch_op.create_index(
            batch_op.f("ix_profile_values_attr_value"), ["attr", "value"], unique=False
        )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_shop_phone"))
        batch_op.drop_index(batch_op.f("ix_profiles_shop_email"))
        batch_op.drop_index(batch_op.f("ix_profiles_shop_id"))
        batch_op.create_index(batch_op.f("ix_profiles_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_profiles_email"), ["email"], unique=False)
    with op.batch_alter_table("profile_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_changes_shop_seq"))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_shop_placed_at"))
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_shop_email"))
        batch_op.create_index(batch_op.f("ix_customers_email"), ["email"], unique=False)
    for table in ("profiles", *_BY_CONNECTION, *_BY_PROFILE, *_TO_DEFAULT):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("shop")
    with op.batch_alter_table("connection_shops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_shops_shop"))
    op.drop_table("connection_shops")
