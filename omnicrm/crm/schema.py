"""Tables of the CRM, declared on the store's metadata: one profile per person, built on
the source records the framework keeps.

Everything here is derived from the source records (plus the operator's own decisions:
links, separations, interactions, point adjustments), so a profile can be rebuilt,
merged and unmerged without losing what a channel sent. The store's migrations build
these tables with the framework's own.

Every row belongs to one shop (a client business): tables keyed by values two shops may
share (match keys, segment names, import ids, state keys) lead their keys with the shop;
tables keyed by a profile or a connection, each of which belongs to one shop, carry the
shop for shop-wide scans. Nothing here joins rows of two shops.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from omnicrm.core.store.schema import FREE_TEXT, Json, UtcDateTime, metadata

# Client-side defaults: identity resolution creates a bare profile, the profile refresh
# fills it in.
profiles = Table(
    "profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    # The person, as best known across the members (the latest non-empty value wins).
    Column("family_name", String(255)),
    Column("given_name", String(255)),
    Column("family_name_kana", String(255)),
    Column("given_name_kana", String(255)),
    Column("email", String(320)),
    Column("phone", String(32)),  # E.164
    Column("birth_date", Date()),
    Column("gender", String(16), nullable=False, default="unknown"),
    Column("postal_code", String(16)),
    Column("prefecture", String(32)),
    Column("company", String(255)),
    Column("member_code", String(64)),
    Column("consent_email", String(16), nullable=False, default="unknown"),
    Column("consent_sms", String(16), nullable=False, default="unknown"),
    Column("consent_line", String(16), nullable=False, default="unknown"),
    Column("consent_postal", String(16), nullable=False, default="unknown"),
    Column("first_seen_at", UtcDateTime()),
    # Purchases: orders that are paid or fulfilled (not pending, cancelled or returned).
    Column("number_of_orders", Integer, nullable=False, default=0),
    Column("amount_spent", Float, nullable=False, default=0.0),
    Column("first_order_at", UtcDateTime()),
    Column("last_order_at", UtcDateTime()),
    # The latest checkout left and not followed by an order (omnicrm.crm.profiles).
    Column("abandoned_checkout_at", UtcDateTime()),
    Column("purchase_days", Integer, nullable=False, default=0),  # distinct days with a purchase
    Column(
        "channel_mix", String(16), nullable=False, default="none"
    ),  # none, store_only, ec_only, both
    # Scores, refreshed with the segments.
    Column("rfm_recency", Integer),
    Column("rfm_frequency", Integer),
    Column("rfm_monetary", Integer),
    Column("rfm_group", String(32)),
    Column("lifecycle_stage", String(32), nullable=False, default="prospect"),
    Column("predicted_clv", Float),
    Column("p_alive", Float),
    Column("points_balance", Integer, nullable=False, default=0),
    # Normalised names (kanji and hiragana), email and phone, for lookups.
    Column("search_text", Text),
    Column("updated_at", UtcDateTime(), nullable=False),
    # A shop's profiles without a scan of the others' (counts, reports, lookups).
    Index(None, "shop", "id"),
    Index(None, "shop", "email"),
    Index(None, "shop", "phone"),
    # Room on each page for a refresh's new row versions: they stay on their page and
    # leave the indexes alone (migration 0005 says more).
    postgresql_with={"fillfactor": 80},
)

# Multi-valued attributes for segments: tag, channel (web, pos, app ...), store, connection.
profile_values = Table(
    "profile_values",
    metadata,
    Column("profile_id", Integer, primary_key=True, autoincrement=False),
    Column("attr", String(16), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("shop", String(100), nullable=False),
    Index(None, "shop", "attr", "value"),
)

# Which profile each source customer belongs to.
profile_members = Table(
    "profile_members",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("shop", String(100), nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("joined_at", UtcDateTime(), nullable=False),
    Index(None, "profile_id"),
)

# Normalised match keys of each source customer (email, phone, member_code).
identity_keys = Table(
    "identity_keys",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("shop", String(100), nullable=False),
    # Matching looks keys up within one shop: records of two shops never meet here.
    Index(None, "shop", "kind", "value"),
)

# Why two source customers are one person: one row per edge of a profile's merge tree.
identity_merges = Table(
    "identity_merges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("a_connection", String(100), nullable=False),
    Column("a_record", String(255), nullable=False),
    Column("b_connection", String(100), nullable=False),
    Column("b_record", String(255), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("evidence", Json, nullable=False),
    Column("merged_at", UtcDateTime(), nullable=False),
    Index(None, "profile_id"),
    # A shop's latest merges (`omnicrm customers merges`) without reading another's.
    Index(None, "shop", "merged_at"),
)

# The operator's word, which outranks every rule: 'link' joins two source customers,
# 'separate' keeps them apart (an unmerge), so a re-run cannot redo what was undone.
identity_overrides = Table(
    "identity_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("a_connection", String(100), nullable=False),
    Column("a_record", String(255), nullable=False),
    Column("b_connection", String(100), nullable=False),
    Column("b_record", String(255), nullable=False),
    Column("note", Text, info=FREE_TEXT),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "shop", "id"),
    Index(None, "a_connection", "a_record"),
    Index(None, "b_connection", "b_record"),
)

# Pairs the rules refused for one reason only (one conflicting field, or a key a
# household may share), with their evidence, for an operator to link or separate. The
# resolver rewrites those of the records it re-resolves; a decided pair (an override)
# is never suggested again.
identity_suggestions = Table(
    "identity_suggestions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("a_connection", String(100), nullable=False),
    Column("a_record", String(255), nullable=False),
    Column("b_connection", String(100), nullable=False),
    Column("b_record", String(255), nullable=False),
    Column("conflict", String(32), nullable=False),
    Column("strength", Integer, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("found_at", UtcDateTime(), nullable=False),
    # A shop's list, strongest first.
    Index(None, "shop", "strength"),
    Index(None, "a_connection", "a_record"),
    Index(None, "b_connection", "b_record"),
)

# Inquiries, complaints and the like, imported from CSV or added by hand.
interactions = Table(
    "interactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("source", String(100), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("medium", String(32)),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("subject", String(255), info=FREE_TEXT),
    Column("body", Text, info=FREE_TEXT),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("shop", "source", "external_id"),
    Index(None, "profile_id", "occurred_at"),
)

nps_responses = Table(
    "nps_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("profile_id", Integer),
    Column("source", String(100), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text, info=FREE_TEXT),
    Column("responded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("shop", "source", "external_id"),
    Index(None, "shop", "responded_at"),
    Index(None, "profile_id"),
)

# The shared wallet: every change of a balance, keyed by (source, event_id) so a re-sync
# or a re-import never counts twice. Entries hang on a source customer, so an unmerge
# takes its points with it.
points_entries = Table(
    "points_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    # Room for a prefix before a 255-character platform id: 'reverse:redeem:<order id>'.
    Column("event_id", String(320), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # earn, redeem, reverse, expire, adjust
    Column("points", Integer, nullable=False),  # signed
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("order_id", String(255)),
    Column("note", Text, info=FREE_TEXT),
    UniqueConstraint("shop", "source", "event_id"),
    Index(None, "connection", "customer_id"),
)

segments = Table(
    "segments",
    metadata,
    # Built-in segments exist in every shop; a user's segment belongs to one.
    Column("shop", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("expression", Text, nullable=False),
    Column("builtin", Boolean, nullable=False),
    Column("description", Text, info=FREE_TEXT),
    Column("created_at", UtcDateTime(), nullable=False),
)

segment_counts = Table(
    "segment_counts",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("segment", String(100), primary_key=True),
    Column("counted_at", UtcDateTime(), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Small derived facts the CRM keeps between refreshes: RFM quintile cuts, fitted CLV
# parameters, the last refresh.
crm_state = Table(
    "crm_state",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Json, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
