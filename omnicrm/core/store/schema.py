"""Tables of the store. Alembic migrations in ``migrations/`` build exactly this schema.

Source records are kept per connection as imported, raw payload included, so the
unified profile built on top of them can be rebuilt at any time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
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
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

# The bind processors' fast path: records hold their datetimes in UTC (datetime.UTC).
_DATETIME = dt.datetime
_UTC = dt.UTC
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def _aware(value: Any) -> dt.datetime | None:
    """``value`` as is for a ``timestamptz`` (which keeps the instant, whatever the
    offset it is given in); naive datetimes (and anything else) are refused."""
    if value is None:
        return None
    # Records hold their datetimes in UTC: no utcoffset() call (a method call) for those.
    if type(value) is _DATETIME and value.tzinfo is _UTC:
        return value
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"expected a tz-aware datetime, got {value!r}")
    return value


def _utc_text(value: Any) -> str | None:
    """``value`` as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff': fixed width, so text order is
    time order. Naive datetimes (and anything else) are refused."""
    if value is None:
        return None
    if type(value) is _DATETIME and value.tzinfo is _UTC:
        # Records hold their datetimes in UTC. The naive datetime of the same wall time
        # (the same days and microseconds from the epoch: a subtraction of two datetimes
        # of one tzinfo ignores it) formats at half the cost of the aware one, whose
        # isoformat calls utcoffset() and writes the offset; a first sync writes
        # millions of these.
        return (_NAIVE_EPOCH + (value - _UTC_EPOCH)).isoformat(" ", "microseconds")
    if not isinstance(value, dt.datetime) or (offset := value.utcoffset()) is None:
        raise ValueError(f"expected a tz-aware datetime, got {value!r}")
    # The wall time shifted by the offset is the UTC wall time; isoformat's first 26
    # characters leave the offset out. Cheaper than astimezone + replace(tzinfo=None).
    return (value - offset if offset else value).isoformat(" ", "microseconds")[:26]


def decimal_text(value: Any) -> str | None:
    """``value`` in plain decimal notation: Decimal('1E+3') is '1000', readable by SQL."""
    if value is None:
        return None
    if type(value) is Decimal:
        # str() is format(value, "f") unless it chose an exponent, at a quarter the cost.
        text = str(value)
        if "E" not in text and "e" not in text:
            return text
    return format(value, "f")


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
        return (_utc_text if dialect.name == "sqlite" else _aware)(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # process_bind_param itself, without TypeDecorator's wrapper around it: a first
        # sync binds millions of these. The wrapper only matters when the impl has a
        # processor of its own (none of the drivers used here has one).
        if self.impl_instance.bind_processor(dialect) is not None:
            return super().bind_processor(dialect)
        return _utc_text if dialect.name == "sqlite" else _aware

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
        return decimal_text(value) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # As UtcDateTime's: no wrapper per value (and none at all on PostgreSQL).
        if self.impl_instance.bind_processor(dialect) is not None:
            return super().bind_processor(dialect)
        return decimal_text if dialect.name == "sqlite" else None

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


# ensure_ascii=False keeps Japanese payloads readable and a third smaller. One encoder
# for every call: json.dumps with options builds a new one each time (a third of its cost
# on a record's payload).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
# What orjson must leave to ``default`` (str, as _JSON does) for the same text.
_ORJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """The store's JSON text of ``value`` (the engines' serializer)."""
    return _JSON.encode(value)


def record_json_column(value: Any) -> str | None:
    """:func:`json_text` of a record's value in a JSON column, a tenth of its cost (a
    first sync writes a payload per record); None for None, SQL NULL, as the store's
    JSON columns take it (``none_as_null``).

    orjson writes the same document: keys in order, non-ASCII as is, ``str()`` of what
    JSON has no type for (Decimal, datetime ...); floats may be spelled otherwise
    ('1e-7', not '1e-07') but read back the same. What it would write otherwise it
    refuses (integers beyond 64 bits, keys that are not text): those go to
    :func:`json_text`. Records hold no non-finite numbers (which orjson writes as null)
    and no Enum but text or integer ones (which it writes by value, not by ``str()``).
    """
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=str, option=_ORJSON).decode()
    except orjson.JSONEncodeError:
        return _JSON.encode(value)


# JSONB on PostgreSQL so later issues can index into payloads; plain JSON text elsewhere.
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Columns of free text (an error message, an operator's note, a customer's comment) that
# may mention anyone: a redaction rewrites what they say about the erased person.
FREE_TEXT = {"free_text": True}

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
    # Keyed by connection, which belongs to one shop (see connection_shops); the shop
    # is on every row for shop-wide scans and as the partition key.
    Column("shop", String(100), nullable=False),
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
    Column("points", Integer),
    Column("withdrawn_at", UtcDateTime()),
    Column("line_user_id", String(64)),  # migration 0012
    Index(None, "connection", "updated_at"),
    Index(None, "shop", "email"),
    # The few members who withdrew (退会), for campaign planning (migration 0010).
    Index(
        None,
        "shop",
        "withdrawn_at",
        postgresql_where=text("withdrawn_at IS NOT NULL"),
        sqlite_where=text("withdrawn_at IS NOT NULL"),
    ),
)

orders = Table(
    "orders",
    metadata,
    Column("shop", String(100), nullable=False),
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
    Column("points_earned", Integer),
    Column("points_redeemed", Integer),
    # The discount codes used (a JSON list; NULL for none), for coupon redemptions
    # (migration 0012).
    Column("discount_codes", Json),
    Index(None, "connection", "updated_at"),
    Index(None, "connection", "customer_id"),
    Index(None, "shop", "placed_at"),
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

# A channel's catalogue: what recommendations may offer (names, prices, links) and
# whether it can be bought now. Not personal data. Keyed by connection as customers
# and orders are; the shop is on every row, for the shop-wide catalogue a recommender
# reads (a SKU sold online and in the store is one product of the shop).
products = Table(
    "products",
    metadata,
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime()),
    Column("title", String(255), nullable=False),
    Column("handle", String(255)),
    Column("url", String(2048)),
    Column("image_url", String(2048)),
    Column("product_type", String(255)),
    Column("vendor", String(255)),
    Column("tags", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("raw", Json, nullable=False),
    Column("synced_at", UtcDateTime(), nullable=False),
    Index(None, "connection", "updated_at"),
    Index(None, "shop", "status"),
)

# A product's variants, replaced with it as an order's lines are.
product_variants = Table(
    "product_variants",
    metadata,
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), primary_key=True),
    Column("product_id", String(255), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("id", String(255), nullable=False),
    Column("sku", String(255)),
    Column("title", String(255)),
    Column("price", Money(), nullable=False),
    Column("compare_at_price", Money()),
    Column("available", Boolean, nullable=False),
    Column("inventory", Integer),
    Column("image_url", String(2048)),
    ForeignKeyConstraint(
        ["connection", "product_id"], ["products.connection", "products.id"], ondelete="CASCADE"
    ),
    Index(None, "shop", "sku"),
    Index(None, "connection", "id"),
)

# Checkouts customers began and left (abandoned carts); ids and amounts, no address.
checkouts = Table(
    "checkouts",
    metadata,
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("customer_id", String(255)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime()),
    Column("currency", String(3), nullable=False),
    Column("total", Money(), nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("recovery_url", String(2048)),
    # The cart's lines (sku, product, variant, name, quantity, unit price): read whole,
    # never searched. NULL on checkouts stored before the column existed.
    Column("lines", Json),
    Column("raw", Json, nullable=False),
    Column("synced_at", UtcDateTime(), nullable=False),
    Index(None, "connection", "updated_at"),
    Index(None, "connection", "customer_id"),
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
    Column("error", Text, info=FREE_TEXT),
    Column("error_kind", String(16)),
    Column("rate_limit_wait", Float, nullable=False),
    Column("streams", Json, nullable=False),
    Index(None, "connection", "started_at"),
    Index(None, "status"),
)

# Every webhook event received, by its id: the claim that makes one delivery of an event
# win (the row is inserted before any work, in the transaction that queues the event),
# and the operator's record of what became of it. Only ids and outcomes: never a body.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("topic", String(100), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    # queued, applied, rejected (permanently: malformed, refused) or failed (gave up)
    Column("status", String(16), nullable=False, server_default="applied"),
    Column("error", Text, info=FREE_TEXT),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("applied_at", UtcDateTime()),
    Index(None, "status", "received_at"),
)

# Verified events waiting to be applied, raw body included (it holds personal data: the
# row is deleted once applied, and a redaction purges the pending rows of its customer,
# found by the subject columns the receiver filled in).
webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("customer_id", String(255)),
    Column("record_id", String(255)),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("claimed_at", UtcDateTime()),
    UniqueConstraint("source", "event_id"),
    Index(None, "source", "customer_id"),
    Index(None, "source", "record_id"),
)

# An operator's hold on a connection's schedule (from the terminal UI): the scheduler
# skips a paused connection's runs and records them as skipped.
connection_controls = Table(
    "connection_controls",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
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


# The change feed: source customers changed (written, redacted, erased) in the same
# transaction as the change itself (a transactional outbox). The CRM refresh drains it
# to know which profiles need another look. A row per change and connection, its record
# ids a JSON array (see changes.py): a batch of a thousand orders queues its customers as
# one row, not a thousand (5 % of a first sync's writes, as rows).
profile_changes = Table(
    "profile_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("record_ids", Json, nullable=False),
    # Each shop's refresh drains its own changes.
    Index(None, "shop", "seq"),
)


# Which shop each connection's records belong to. A connection never moves: its
# customers are that shop's personal data (the store refuses a config that moves one).
connection_shops = Table(
    "connection_shops",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("shop", String(100), nullable=False),
    Column("assigned_at", UtcDateTime(), nullable=False),
    Index(None, "shop"),
)


# Consent statements made through omnicrm itself (an operator's action, an unsubscribe
# link, a LINE block, a sign-up form), appended, never overwritten: Japan's 特定電子メール法
# asks the sender to keep when, where and how each consent was given or withdrawn. A
# statement names a source customer (connection, record_id), which outlives any merge
# or unmerge of the profiles built on it; the channels' own statements stay on
# ``customers.consents``.
consent_records = Table(
    "consent_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("record_id", String(255), nullable=False),
    Column("medium", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # opted_in, opted_out
    Column("stated_at", UtcDateTime(), nullable=False),  # when the person said so
    Column("source", String(255), nullable=False),  # where: a page, a connection, 'operator'
    Column("method", String(32), nullable=False),  # how: operator, one_click, form, ...
    Column("evidence", Text, info=FREE_TEXT),  # e.g. the form's wording, the mail's id
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index(None, "shop", "medium", "connection", "record_id", "stated_at"),
)

# Addresses not to send to in a shop, whoever they belong to now: an unsubscribed or
# hard-bounced email, a LINE user who blocked the account. An address is kept as the
# dispatcher receives it (emails lower-cased).
suppressions = Table(
    "suppressions",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("medium", String(16), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("reason", String(32), nullable=False),  # unsubscribed, bounced
    Column("since", UtcDateTime(), nullable=False),
    Column("detail", Text, info=FREE_TEXT),
)

# What was taken off the suppression list, appended when it is lifted: the entry as it
# was (why and since when the address was suppressed) and who lifted it, how, why and
# when (an operator's word that a bounced address reaches the person again; the person's
# own opt-in for an unsubscribe). The same audit the consent records keep.
suppression_lifts = Table(
    "suppression_lifts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("medium", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("reason", String(32), nullable=False),  # what was lifted: unsubscribed, bounced
    Column("since", UtcDateTime(), nullable=False),
    Column("detail", Text, info=FREE_TEXT),
    Column("lifted_at", UtcDateTime(), nullable=False),
    Column("lifted_by", String(255), nullable=False),  # who: an operator, a page, a source
    Column("method", String(32), nullable=False),  # how: operator, link, line_follow, ...
    Column("why", Text, info=FREE_TEXT),
    Index(None, "shop", "medium", "address"),
)

# A medium's user id (a LINE userId) linked to a shop's source customer: where a message
# through that medium reaches the person. One customer per address in a shop; a customer
# may have several (a new LINE account). ``method`` says how it was linked (line_link:
# LINE's account link flow; import).
address_links = Table(
    "address_links",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("medium", String(16), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("connection", String(100), nullable=False),
    Column("record_id", String(255), nullable=False),
    Column("linked_at", UtcDateTime(), nullable=False),
    Column("method", String(32), nullable=False),
    Index(None, "shop", "connection", "record_id"),
)

# Nonces the shop issued for a source customer who logged in to link an address (LINE's
# account link flow): used once, before they expire.
link_nonces = Table(
    "link_nonces",
    metadata,
    Column("nonce", String(255), primary_key=True),
    Column("shop", String(100), nullable=False),
    Column("medium", String(16), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("record_id", String(255), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime()),
    Index(None, "shop", "connection", "record_id"),
)
