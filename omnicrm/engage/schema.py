"""Tables of the engagement layer, declared on the store's metadata: campaigns, the
outbox every message goes through, what cart recovery decided about each checkout, what
became of the messages (opens, clicks), coupon codes, the recommendation write-back, and
the storefront's visitors and their events.

All belong to one shop and lead their keys and indexes with it.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from omnicrm.core.store.schema import FREE_TEXT, Json, UtcDateTime, metadata

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("segment", Text, nullable=False),  # a segment's name or an expression
    Column("medium", String(16), nullable=False),
    Column("dispatcher", String(100), nullable=False),
    # [{"name": "A", "weight": 1, "subject": "...", "body": "..."}, ...]
    Column("variants", Json, nullable=False),
    Column("holdout", Float, nullable=False),  # the share that receives nothing, 0 to 0.5
    # draft, scheduled, planned, sending, paused, done, cancelled
    Column("status", String(16), nullable=False),
    Column("scheduled_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("planned_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("note", Text, info=FREE_TEXT),
    Column("tracking", Boolean),  # opens and clicks; NULL: as the shop's [messaging] says
    Column("attribution_days", Integer),  # NULL: as the shop's [messaging] says
    UniqueConstraint("shop", "name"),
    Index(None, "shop", "status"),
)

# One row per (campaign, recipient, medium), written when the campaign is planned:
# planned -> claimed (by a sender) -> handed_over (to the dispatcher) -> sent, rejected
# or failed; or suppressed (with its reason) at planning or just before hand-over. A row
# found handed_over by a restart is 'unknown': it may have gone out, and is never resent
# without the operator's word.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("campaign_id", Integer, nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("medium", String(16), nullable=False),
    Column("variant", String(32), nullable=False),  # a variant's name, or 'holdout'
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),  # why suppressed (omnicrm.core.consent.Refusal)
    Column("address", String(320)),  # where it went, as handed over
    Column("message_id", String(255), nullable=False),  # deterministic: the same on a retry
    Column("provider_id", String(255)),
    Column("error", Text, info=FREE_TEXT),
    Column("claimed_by", String(64)),
    Column("planned_at", UtcDateTime(), nullable=False),
    Column("claimed_at", UtcDateTime()),
    Column("handed_at", UtcDateTime()),
    Column("answered_at", UtcDateTime()),
    UniqueConstraint("shop", "campaign_id", "profile_id", "medium"),
    Index(None, "shop", "campaign_id", "status"),
    # Frequency caps: what went to a person through a medium lately.
    Index(None, "shop", "profile_id", "medium", "handed_at"),
)

# What cart recovery decided about each abandoned checkout (omnicrm.engage.recovery), one
# row per checkout, written with the outbox row it planned in one transaction: a
# checkout is decided once, so it never gets two messages. ``outcome``: planned (the
# campaign's outbox row of the profile is its message), reached (the person already has
# this month's), bought (ordered or completed it before it was due: nothing sent), no_link
# (no way back to it). ``customer_id``: the checkout's buyer, for a redaction.
cart_recoveries = Table(
    "cart_recoveries",
    metadata,
    Column("shop", String(100), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("checkout_id", String(255), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("campaign_id", Integer),
    Column("outcome", String(16), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("shop", "connection", "checkout_id"),
    Index(None, "shop", "campaign_id", "profile_id"),
    Index(None, "shop", "connection", "customer_id"),
)

# What a recipient did with a message, one row per outbox row and kind ('open', 'click'):
# when first and last, and how often. Ids only: who it was is the outbox row's profile.
message_events = Table(
    "message_events",
    metadata,
    Column("shop", String(100), nullable=False),
    Column("outbox_id", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("campaign_id", Integer, nullable=False),
    Column("first_at", UtcDateTime(), nullable=False),
    Column("last_at", UtcDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("shop", "outbox_id", "kind"),
    Index(None, "shop", "campaign_id", "kind"),
)

# A campaign's coupon: the discount every code gives (a CouponSpec as JSON), the
# connection whose platform creates the codes (NULL: none does, the codes live in
# omnicrm only), and the platform's id of the discount once it exists.
campaign_coupons = Table(
    "campaign_coupons",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("campaign_id", Integer, primary_key=True, autoincrement=False),
    Column("spec", Json, nullable=False),
    Column("connection", String(100)),
    Column("discount_id", String(255)),
    Column("created_at", UtcDateTime(), nullable=False),
)

# One unique code per recipient of a campaign, issued when it is planned; unique in the
# shop (a code names one person's coupon). ``published_at``: when the platform accepted
# it (NULL: not yet, or no platform creates the shop's codes).
coupon_codes = Table(
    "coupon_codes",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("campaign_id", Integer, nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime()),
    UniqueConstraint("shop", "campaign_id", "profile_id"),
    Index(None, "shop", "campaign_id", "published_at"),
)

# What the last recommendation write-back stored on each customer and product of a
# connection (a digest of the items): only what changed is written again.
writeback_state = Table(
    "writeback_state",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("connection", String(100), primary_key=True),
    Column("owner", String(16), primary_key=True),  # customer, product
    Column("owner_id", String(255), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("written_at", UtcDateTime(), nullable=False),
)

# -- on-site engagement (the storefront script) -------------------------------------------

# A browser seen on the shop's own site, by the random first-party id its script keeps.
# Once a signed-in customer arrives with it, it joins that source customer
# (``connection``, ``record_id``): its visits and events then count for the customer's
# profile, whichever channel the profile's orders come from. No personal data but ids.
onsite_visitors = Table(
    "onsite_visitors",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("connection", String(100)),
    Column("record_id", String(255)),
    Column("visits", Integer, nullable=False),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Index(None, "shop", "connection", "record_id"),
)

# What a visitor did: 'visit', 'impression' and 'click' (of an offer's variant), 'view'
# (of a product). Events stay with their visitor: joining a customer moves them along.
onsite_events = Table(
    "onsite_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(100), nullable=False),
    Column("visitor", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("offer", String(100)),
    Column("variant", String(32)),
    Column("product", String(255)),
    Column("at", UtcDateTime(), nullable=False),
    # A visitor's caps and history; an offer's report.
    Index(None, "shop", "visitor", "kind", "offer", "at"),
    Index(None, "shop", "offer", "kind", "variant"),
)
