"""Expiry: earned points not spent by their expiry date leave the wallet, oldest first.

A wallet's entries are replayed in time order. Every positive entry is a lot (an earn,
points given back by a cancelled order, a grant); spending takes from the oldest lot
still holding points (first in, first out), a reversal or expiry from its own lot first.
A lot whose expiry date has passed loses what is left of it in one ``expire`` entry keyed
``expire:<the lot's event id>`` under the lot's shop and source, so it happens once.
Each shop's ledger expires on its own, with its own settings and its own progress mark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, or_, select

from omnicrm.core.store import Store
from omnicrm.crm.points._common import (
    EntryKind,
    get_state,
    insert_rows,
    max_entry_id,
    member_join,
    prefixed,
    put_state,
    refresh_since,
)
from omnicrm.crm.points.settings import PointsSettings
from omnicrm.crm.schema import points_entries, profile_members

STATE_KEY = "points_expiry"
_CHUNK = 1000


@dataclass(frozen=True)
class Expired:
    """What one expiry run did."""

    entries: int = 0
    points: int = 0  # positive: how many points left the wallets


@dataclass
class _Lot:
    shop: str
    source: str
    event_id: str
    connection: str
    customer_id: str
    order_id: str | None
    occurred_at: dt.datetime
    expires_at: dt.datetime | None
    remaining: int


def expire(conn: Connection, now: dt.datetime, settings: PointsSettings, *, shop: str) -> Expired:
    """Expire what is left of every lot of ``shop`` whose expiry date is at or before ``now``.

    Does nothing when ``settings.expiry_months`` is none (the shop has no expiry). Only
    wallets holding a lot that reached its date since the last run (or a lot written since)
    are replayed; the shop's crm_state 'points_expiry' remembers where its last run got to.
    """
    if settings.expiry_months is None:
        return Expired()
    mark = get_state(conn, STATE_KEY, shop=shop) or {}
    through = dt.datetime.fromisoformat(mark["through"]) if "through" in mark else None
    seen_id = int(mark.get("max_entry_id", 0))
    top = max_entry_id(conn)

    lot = points_entries
    done = points_entries.alias("done")
    due = [
        lot.c.shop == shop,
        lot.c.points > 0,
        lot.c.expires_at.is_not(None),
        lot.c.expires_at <= now,
        lot.c.id <= top,
        ~exists().where(
            done.c.shop == lot.c.shop,
            done.c.source == lot.c.source,
            done.c.event_id == prefixed("expire:", lot.c.event_id),
        ),
    ]
    if through is not None:
        # Lots due by the last run were settled then (to nothing, if spent): only newer
        # due dates, or lots written since, can expire anything now.
        due.append(or_(lot.c.expires_at > through, lot.c.id > seen_id))
    rows = conn.execute(
        select(lot.c.connection, lot.c.customer_id, profile_members.c.profile_id)
        .select_from(
            lot.outerjoin(
                profile_members,
                and_(
                    profile_members.c.connection == lot.c.connection,
                    profile_members.c.record_id == lot.c.customer_id,
                ),
            )
        )
        .where(*due)
        .distinct()
    ).all()
    # The wallets and loners found are the shop's: what is read of them next goes by
    # profile and by connection, whose entries are all of the shop.
    wallets = sorted({r.profile_id for r in rows if r.profile_id is not None})
    loners = sorted({(r.connection, r.customer_id) for r in rows if r.profile_id is None})

    new: list[dict[str, Any]] = []
    for start in range(0, len(wallets), _CHUNK):
        chunk = wallets[start : start + _CHUNK]
        result = conn.execute(
            select(profile_members.c.profile_id, points_entries)
            .select_from(member_join())
            .where(points_entries.c.id <= top, profile_members.c.profile_id.in_(chunk))
            .order_by(
                profile_members.c.profile_id, points_entries.c.occurred_at, points_entries.c.id
            )
        ).mappings()
        new.extend(_settle_grouped(result, "profile_id", now))
    by_connection: dict[str, list[str]] = {}
    for connection, customer_id in loners:
        by_connection.setdefault(connection, []).append(customer_id)
    for connection, ids in by_connection.items():
        for start in range(0, len(ids), _CHUNK):
            result = conn.execute(
                select(points_entries)
                .where(
                    points_entries.c.id <= top,
                    points_entries.c.connection == connection,
                    points_entries.c.customer_id.in_(ids[start : start + _CHUNK]),
                )
                .order_by(
                    points_entries.c.customer_id,
                    points_entries.c.occurred_at,
                    points_entries.c.id,
                )
            ).mappings()
            new.extend(_settle_grouped(result, "customer_id", now))

    insert_rows(conn, new)
    refresh_since(conn, top, shop=shop)
    latest = now if through is None else max(now, through)
    mark = {"through": latest.isoformat(), "max_entry_id": top}
    put_state(conn, STATE_KEY, mark, now, shop=shop)
    return Expired(len(new), -sum(row["points"] for row in new))


def pending(
    conn: Connection, profile_id: int, now: dt.datetime, settings: PointsSettings, *, shop: str
) -> list[dict[str, Any]]:
    """The expiries of one wallet due by ``now`` and not written yet (nothing is written).

    What :func:`expire` would write for this profile now: a balance read between runs
    subtracts them, so expired points never show as spendable.
    """
    if settings.expiry_months is None:
        return []
    result = conn.execute(
        select(profile_members.c.profile_id, points_entries)
        .select_from(member_join())
        .where(profile_members.c.profile_id == profile_id, profile_members.c.shop == shop)
        .order_by(points_entries.c.occurred_at, points_entries.c.id)
    ).mappings()
    return _settle(list(result), now)


def _settle_grouped(rows: Iterable[Any], key: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Settle each run of rows sharing ``key`` (rows come sorted by it) as one wallet."""
    out: list[dict[str, Any]] = []
    wallet: list[Any] = []
    current: Any = object()
    for row in rows:
        if row[key] != current and wallet:
            out.extend(_settle(wallet, now))
            wallet = []
        current = row[key]
        wallet.append(row)
    if wallet:
        out.extend(_settle(wallet, now))
    return out


def _settle(entries: Sequence[Any], now: dt.datetime) -> list[dict[str, Any]]:
    """Replay one wallet's entries (in time order); the expiries now due."""
    lots: list[_Lot] = []
    by_key: dict[tuple[str, str], _Lot] = {}
    expired: set[tuple[str, str]] = set()
    head = 0  # lots before it are empty for good: nothing refills a lot
    debt = 0  # spent beyond every lot; the next points pay it first
    for e in entries:
        points = int(e["points"])
        if points > 0:
            pay = min(debt, points)
            debt -= pay
            new = _Lot(
                e["shop"],
                e["source"],
                e["event_id"],
                e["connection"],
                e["customer_id"],
                e["order_id"],
                e["occurred_at"],
                e["expires_at"],
                points - pay,
            )
            lots.append(new)
            by_key[(new.source, new.event_id)] = new
            continue
        need = -points
        target = _target(e)
        if target is not None and e["kind"] == EntryKind.EXPIRE.value:
            expired.add(target)
        own = by_key.get(target) if target is not None else None
        if own is not None:
            take = min(need, own.remaining)
            own.remaining -= take
            need -= take
        while need > 0 and head < len(lots):
            oldest = lots[head]
            take = min(need, oldest.remaining)
            oldest.remaining -= take
            need -= take
            if oldest.remaining == 0:
                head += 1
        debt += need
    return [
        {
            "shop": lot.shop,
            "source": lot.source,
            "event_id": f"expire:{lot.event_id}",
            "connection": lot.connection,
            "customer_id": lot.customer_id,
            "kind": EntryKind.EXPIRE.value,
            "points": -lot.remaining,
            "occurred_at": now,
            "expires_at": None,
            "order_id": lot.order_id,
            "note": f"earned {lot.occurred_at.date().isoformat()}, "
            f"expired {lot.expires_at.date().isoformat()}",
        }
        for lot in lots
        if lot.expires_at is not None
        and lot.expires_at <= now
        and lot.remaining > 0
        and (lot.source, lot.event_id) not in expired
    ]


def _target(entry: Any) -> tuple[str, str] | None:
    """The lot a reversal or an expiry is about (same source, the event it names)."""
    kind, event_id = entry["kind"], entry["event_id"]
    if kind == EntryKind.EXPIRE.value and event_id.startswith("expire:"):
        return entry["source"], event_id.removeprefix("expire:")
    if kind == EntryKind.REVERSE.value and event_id.startswith("reverse:"):
        return entry["source"], event_id.removeprefix("reverse:")
    return None


def run_expiry(store: Store, settings: PointsSettings, now: dt.datetime, *, shop: str) -> Expired:
    """:func:`expire` as a whole command, in a transaction of its own (the nightly job)."""
    with store.engine.begin() as conn:
        return expire(conn, now, settings, shop=shop)
