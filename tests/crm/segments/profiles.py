"""Hand-built profiles for the segment tests, inserted straight into profiles and
profile_values (standing in for the CRM's profile refresh)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select

from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.crm.schema import profile_values, profiles
from omnicrm.crm.segments.compile import compile_expression

TOKYO = ZoneInfo("Asia/Tokyo")
# 12:00 in Tokyo on Wednesday 2024-05-01.
NOW = dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.UTC)


def jst(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A moment in shop time (Tokyo)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=TOKYO)


def days_ago(days: int, hour: int = 12) -> dt.datetime:
    """Shop time ``days`` days before NOW's day, at ``hour``."""
    day = NOW.astimezone(TOKYO).date() - dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TOKYO)


def add_profile(
    conn: Connection,
    values: Mapping[str, Iterable[str]] | None = None,
    *,
    shop: str = DEFAULT_SHOP,
    **columns: Any,
) -> int:
    """Insert a profile of ``shop`` with ``columns`` (the rest default) and its
    multi-valued attributes (``{'tag': ['vip'], 'channel': ['pos']}``); returns its id."""
    columns.setdefault("updated_at", NOW)
    profile_id: int = conn.execute(
        insert(profiles).values(shop=shop, **columns).returning(profiles.c.id)
    ).scalar_one()
    rows = [
        {"profile_id": profile_id, "shop": shop, "attr": attr, "value": value}
        for attr, found in (values or {}).items()
        for value in found
    ]
    if rows:
        conn.execute(insert(profile_values), rows)
    return profile_id


def matching(
    conn: Connection, expression: str, now: dt.datetime = NOW, tz: dt.tzinfo = TOKYO
) -> set[int]:
    """Ids of the profiles ``expression`` selects."""
    condition = compile_expression(expression, now, tz)
    return set(conn.execute(select(profiles.c.id).where(condition)).scalars())


def all_ids(conn: Connection) -> set[int]:
    return set(conn.execute(select(profiles.c.id)).scalars())


PREFECTURES = ["東京都", "大阪府", "神奈川県", "北海道", "福岡県", None]
TAGS = ["vip", "gold", "newsletter", "wholesale"]
CHANNELS = ["web", "pos", "app"]
STORES = ["shibuya", "umeda", "tenjin"]
CONSENTS = ["opted_in", "opted_out", "pending", "unknown"]


def populate(conn: Connection, n: int, seed: int = 1, *, shop: str = DEFAULT_SHOP) -> list[int]:
    """``n`` random profiles of ``shop`` with every attribute in play (about one in six
    without a purchase); returns their ids."""
    import random

    rng = random.Random(seed)
    ids = []
    for _ in range(n):
        orders = rng.choice([0, 1, 1, 1, 2, 3, 4, 5, 8])
        channels = rng.sample(CHANNELS, rng.randint(1, 2)) if orders else []
        last = days_ago(rng.choice([0, 5, 29, 30, 60, 89, 90, 200, 364, 365, 700]))
        values: dict[str, list[str]] = {
            "tag": rng.sample(TAGS, rng.randint(0, 2)),
            "channel": channels,
            "store": [rng.choice(STORES)] if "pos" in channels else [],
            "connection": ["shopify"] + (["pos"] if "pos" in channels else []),
        }
        mix = "none"
        if channels:
            store, ec = "pos" in channels, any(c != "pos" for c in channels)
            mix = "both" if store and ec else "store_only" if store else "ec_only"
        ids.append(
            add_profile(
                conn,
                values,
                shop=shop,
                prefecture=rng.choice(PREFECTURES),
                number_of_orders=orders,
                amount_spent=round(rng.uniform(800, 60000) * orders, 2),
                first_order_at=last - dt.timedelta(days=rng.randrange(400)) if orders else None,
                last_order_at=last if orders else None,
                birth_date=rng.choice(
                    [None, dt.date(rng.randint(1950, 2008), rng.randint(1, 12), rng.randint(1, 28))]
                ),
                gender=rng.choice(["female", "male", "other", "unknown"]),
                consent_email=rng.choice(CONSENTS),
                consent_line=rng.choice(CONSENTS),
                channel_mix=mix,
                predicted_clv=rng.choice([None, round(rng.uniform(0, 90000), 2)]),
                points_balance=rng.randrange(0, 3000),
                first_seen_at=days_ago(rng.randrange(800)),
            )
        )
    return ids
