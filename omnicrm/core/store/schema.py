"""Tables of the store. Alembic migrations in ``migrations/`` build exactly this schema.

Source records are kept per connection as imported, raw payload included, so the
unified profile built on top of them can be rebuilt at any time.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A tz-aware datetime stored in UTC; naive datetimes are refused.

    PostgreSQL stores ``timestamptz``; SQLite a fixed-width UTC text that sorts in time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"expected a tz-aware datetime, got {value!r}")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # 'YYYY-MM-DD HH:MM:SS.ffffff': fixed width, so text order is time order.
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        assert isinstance(value, dt.datetime)
        return value.astimezone(dt.UTC)


class Money(TypeDecorator[Decimal]):
    """An exact decimal amount: NUMERIC on PostgreSQL, decimal text on SQLite."""

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        # Plain notation: Decimal('1E+3') is stored as '1000', readable by SQL too.
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


# JSONB on PostgreSQL so later issues can index into payloads; plain JSON text elsewhere.
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = Table(
    "customers",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime()),
    Column("family_name", String(255)),
    Column("given_name", String(255)),
    Column("family_name_kana", String(255)),
    Column("given_name_kana", String(255)),
    Column("email", String(320)),
    Column("phone", String(64)),
    Column("birth_date", Date()),
    Column("gender", String(16), nullable=False),
    Column("postal_code", String(16)),
    Column("prefecture", String(32)),
    Column("company", String(255)),
    Column("member_code", String(64)),
    Column("address", Json),
    Column("tags", Json, nullable=False),
    Column("consents", Json, nullable=False),
    Column("raw", Json, nullable=False),
    Column("synced_at", UtcDateTime(), nullable=False),
    Index(None, "connection", "updated_at"),
    Index(None, "email"),
)

orders = Table(
    "orders",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("name", String(64)),
    Column("customer_id", String(255)),
    Column("channel", String(32), nullable=False),
    Column("location", String(255)),
    Column("status", String(16), nullable=False),
    Column("placed_at", UtcDateTime(), nullable=False),
    Column("cancelled_at", UtcDateTime()),
    Column("currency", String(3), nullable=False),
    Column("subtotal", Money(), nullable=False),
    Column("discount_total", Money(), nullable=False),
    Column("shipping_total", Money(), nullable=False),
    Column("tax_total", Money(), nullable=False),
    Column("total", Money(), nullable=False),
    Column("raw", Json, nullable=False),
    Column("synced_at", UtcDateTime(), nullable=False),
    Index(None, "connection", "updated_at"),
    Index(None, "connection", "customer_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("line_no", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(255)),
    Column("product_id", String(255)),
    Column("variant_id", String(255)),
    Column("product_name", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Money(), nullable=False),
    Column("discount", Money(), nullable=False),
    ForeignKeyConstraint(
        ["connection", "order_id"], ["orders.connection", "orders.id"], ondelete="CASCADE"
    ),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("stream", String(32), primary_key=True),
    Column("cursor", UtcDateTime()),
    Column("state", Json, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection", String(100), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("full", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime()),
    Column("records_read", Integer, nullable=False),
    Column("records_written", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("error", Text),
    Column("error_kind", String(16)),
    Column("rate_limit_wait", Float, nullable=False),
    Column("streams", Json, nullable=False),
    Index(None, "connection", "started_at"),
    Index(None, "status"),
)

# Only the ids: a webhook's body holds personal data a redaction must not leave behind.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("topic", String(100), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

# Records erased on a redaction request: a later sync must not bring them back.
redactions = Table(
    "redactions",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("stream", String(32), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("redacted_at", UtcDateTime(), nullable=False),
)
