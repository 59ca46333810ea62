"""The webhook inbox: verified events claimed by id, queued raw, applied behind the answer.

An event is accepted by inserting its ``webhook_events`` row (the claim on its id: a
second delivery of the same id violates the primary key and is a duplicate) and its
inbox row in one transaction. A worker claims queued rows, applies them and deletes them
with the event's outcome in one more transaction. The inbox row holds the raw body, so
it lives only until applied, and :func:`purge_pending` drops the pending rows of a
customer whose data is erased.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from omnicrm.core.store.schema import orders, webhook_events, webhook_inbox
from omnicrm.core.store.store import Store, _is_unique_violation


class EventStatus(StrEnum):
    """What became of a webhook event."""

    QUEUED = "queued"  # accepted, waiting in the inbox
    APPLIED = "applied"
    REJECTED = "rejected"  # permanently: malformed, or refused as inconsistent
    FAILED = "failed"  # kept failing for a reason a retry might have fixed; gave up


@dataclass(frozen=True)
class InboxItem:
    """One queued event, with its raw body."""

    id: int
    source: str
    event_id: str
    topic: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class EventRecord:
    """One row of the operator's list of webhook events (never a body)."""

    source: str
    event_id: str
    topic: str
    status: EventStatus
    received_at: dt.datetime
    applied_at: dt.datetime | None
    attempts: int
    error: str | None


# A claim older than this belongs to a worker that died: the event is claimed again.
STALE_AFTER = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _claim_row(
    conn: Connection, source: str, event_id: str, topic: str, status: EventStatus, error: str | None
) -> None:
    """Insert the event's row: IntegrityError when its id was claimed before."""
    conn.execute(
        insert(webhook_events).values(
            source=source,
            event_id=event_id,
            topic=topic,
            received_at=_now(),
            status=status.value,
            error=error,
            attempts=0,
        )
    )


@dataclass(frozen=True)
class Arrival:
    """A verified event to queue: its id, topic, raw body and what it is about."""

    source: str
    event_id: str
    topic: str
    body: bytes
    customer_id: str | None = None
    record_id: str | None = None


# The claim and the queueing of a whole group in one statement, so one round trip and
# no transaction of its own (autocommit: the statement is atomic). Its text is the same
# for any group size, so psycopg prepares it once on the server; the rows come as arrays
# in binary (``%b``: a bytea array in text would be escaped byte by byte, in Python).
# A delivery of an id claimed meanwhile by another transaction waits for that one and
# loses (ON CONFLICT DO NOTHING): only the rows the claim returned are queued.
_PG_ENQUEUE = """
WITH arrived AS (
    SELECT * FROM unnest(
        %(source)b::text[], %(event_id)b::text[], %(topic)b::text[],
        %(customer_id)b::text[], %(record_id)b::text[], %(body)b::bytea[]
    ) WITH ORDINALITY AS a (source, event_id, topic, customer_id, record_id, body, n)
), claimed AS (
    INSERT INTO webhook_events (source, event_id, topic, received_at, status, attempts)
    SELECT source, event_id, topic, %(now)s, %(status)s, 0 FROM arrived ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING source, event_id
)
INSERT INTO webhook_inbox (source, event_id, topic, customer_id, record_id, body, received_at)
SELECT a.source, a.event_id, a.topic, a.customer_id, a.record_id, a.body, %(now)s
FROM arrived AS a JOIN claimed AS c ON c.source = a.source AND c.event_id = a.event_id
ORDER BY a.n
RETURNING id, source, event_id
"""


def enqueue_many(store: Store, arrivals: Sequence[Arrival]) -> list[int | None]:
    """Claim the events' ids and queue their raw bodies, all in one transaction.

    Returns, for each arrival, its inbox row's id, or None when its id was claimed before
    (by an earlier transaction or an earlier arrival of this one): a duplicate, of which
    nothing is written. The claim is the ``webhook_events`` primary key, so of any number
    of simultaneous deliveries of one event id exactly one is queued.
    """
    firsts: dict[tuple[str, str], Arrival] = {}
    for arrival in arrivals:
        firsts.setdefault((arrival.source, arrival.event_id), arrival)
    if not firsts:
        return []
    now = _now()
    if store.dialect == "postgresql":
        ids = _enqueue_postgresql(store, list(firsts.values()), now)
    else:
        ids = _enqueue_sqlite(store, firsts, now)
    answers: list[int | None] = []
    for arrival in arrivals:
        key = (arrival.source, arrival.event_id)
        # Only the first arrival of a key gets its row; a repeat in the batch is a duplicate.
        answers.append(ids.pop(key, None))
    return answers


def _enqueue_postgresql(
    store: Store, firsts: Sequence[Arrival], now: dt.datetime
) -> dict[tuple[str, str], int]:
    params = {
        "source": [a.source for a in firsts],
        "event_id": [a.event_id for a in firsts],
        "topic": [a.topic for a in firsts],
        "customer_id": [a.customer_id for a in firsts],
        "record_id": [a.record_id for a in firsts],
        "body": [a.body for a in firsts],
        "now": now,
        "status": EventStatus.QUEUED.value,
    }
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        rows = conn.exec_driver_sql(_PG_ENQUEUE, params).all()
    return {(row.source, row.event_id): row.id for row in rows}


def _enqueue_sqlite(
    store: Store, firsts: Mapping[tuple[str, str], Arrival], now: dt.datetime
) -> dict[tuple[str, str], int]:
    claim = (
        sqlite_insert(webhook_events)
        .on_conflict_do_nothing()
        .returning(webhook_events.c.source, webhook_events.c.event_id)
    )
    queue = insert(webhook_inbox).returning(
        webhook_inbox.c.id, webhook_inbox.c.source, webhook_inbox.c.event_id
    )
    with store.engine.begin() as conn:
        won = {
            (row.source, row.event_id)
            for row in conn.execute(
                claim,
                [
                    {
                        "source": a.source,
                        "event_id": a.event_id,
                        "topic": a.topic,
                        "received_at": now,
                        "status": EventStatus.QUEUED.value,
                        "error": None,
                        "attempts": 0,
                    }
                    for a in firsts.values()
                ],
            )
        }
        if not won:
            return {}
        rows = [
            {
                "source": a.source,
                "event_id": a.event_id,
                "topic": a.topic,
                "customer_id": a.customer_id,
                "record_id": a.record_id,
                "body": a.body,
                "received_at": now,
                "claimed_at": None,
            }
            for key, a in firsts.items()
            if key in won
        ]
        return {(r.source, r.event_id): r.id for r in conn.execute(queue, rows)}


def enqueue(
    store: Store,
    source: str,
    event_id: str,
    topic: str,
    body: bytes,
    *,
    customer_id: str | None = None,
    record_id: str | None = None,
) -> int | None:
    """:func:`enqueue_many` of one event: its inbox row's id, or None for a duplicate."""
    return enqueue_many(store, [Arrival(source, event_id, topic, body, customer_id, record_id)])[0]


def record_rejected(store: Store, source: str, event_id: str, topic: str, error: str) -> bool:
    """Record a genuine event refused for good at intake; False if its id was seen before."""
    try:
        with store.engine.begin() as conn:
            _claim_row(conn, source, event_id, topic, EventStatus.REJECTED, error)
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            return False
        raise
    return True


def claim(
    store: Store,
    *,
    limit: int = 50,
    only: int | None = None,
    stale_after: dt.timedelta = STALE_AFTER,
) -> list[InboxItem]:
    """Claim up to ``limit`` queued events (or the one row ``only``), oldest first.

    A row claimed longer than ``stale_after`` ago is taken to belong to a worker that
    died and is claimed again. Each claim counts as an attempt of the event.
    """
    now = _now()
    free = or_(webhook_inbox.c.claimed_at.is_(None), webhook_inbox.c.claimed_at < now - stale_after)
    ids = select(webhook_inbox.c.id).where(free).order_by(webhook_inbox.c.id).limit(limit)
    if only is not None:
        ids = ids.where(webhook_inbox.c.id == only)
    if store.dialect == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        # ``free`` again on the row itself: PostgreSQL rechecks it on the row's latest
        # version, so two workers never both claim one row.
        claimed = conn.execute(
            update(webhook_inbox)
            .where(webhook_inbox.c.id.in_(ids.scalar_subquery()), free)
            .values(claimed_at=now)
            .returning(
                webhook_inbox.c.id,
                webhook_inbox.c.source,
                webhook_inbox.c.event_id,
                webhook_inbox.c.topic,
                webhook_inbox.c.body,
            )
        ).all()
        if not claimed:
            return []
        keys = [(row.source, row.event_id) for row in claimed]
        key = tuple_(webhook_events.c.source, webhook_events.c.event_id)
        conn.execute(
            update(webhook_events)
            .where(key.in_(keys))
            .values(attempts=webhook_events.c.attempts + 1)
        )
        attempts = dict(
            ((row.source, row.event_id), row.attempts)
            for row in conn.execute(
                select(
                    webhook_events.c.source, webhook_events.c.event_id, webhook_events.c.attempts
                ).where(key.in_(keys))
            )
        )
    return sorted(
        (
            InboxItem(
                row.id,
                row.source,
                row.event_id,
                row.topic,
                bytes(row.body),
                attempts.get((row.source, row.event_id), 1),
            )
            for row in claimed
        ),
        key=lambda item: item.id,
    )


def finish(store: Store, item: InboxItem, status: EventStatus, error: str | None = None) -> None:
    """Record the event's outcome and delete its inbox row (and with it the body)."""
    finish_many(store, [item], status, error)


def finish_many(
    store: Store, items: Sequence[InboxItem], status: EventStatus, error: str | None = None
) -> None:
    """:func:`finish` for several events with one outcome, in one transaction."""
    if not items:
        return
    keys = [(item.source, item.event_id) for item in items]
    with store.engine.begin() as conn:
        conn.execute(delete(webhook_inbox).where(webhook_inbox.c.id.in_([i.id for i in items])))
        conn.execute(
            update(webhook_events)
            .where(tuple_(webhook_events.c.source, webhook_events.c.event_id).in_(keys))
            .values(
                status=status.value,
                error=error,
                applied_at=_now() if status is EventStatus.APPLIED else None,
            )
        )


def release(store: Store, item: InboxItem, error: str, *, retry_in: dt.timedelta) -> None:
    """Give a claimed event back for another attempt in ``retry_in``, noting why this
    one failed."""
    # Backdated so the claim goes stale (free to claim) exactly when the retry is due.
    free_at = _now() - STALE_AFTER + min(retry_in, STALE_AFTER)
    with store.engine.begin() as conn:
        conn.execute(
            update(webhook_inbox).where(webhook_inbox.c.id == item.id).values(claimed_at=free_at)
        )
        conn.execute(
            update(webhook_events)
            .where(
                webhook_events.c.source == item.source, webhook_events.c.event_id == item.event_id
            )
            .values(error=error)
        )


def purge_pending(conn: Connection, connection: str, record_ids: Sequence[str] | None) -> int:
    """Delete the queued events of ``connection`` about ``record_ids`` (a customer and
    their orders), or all of them when None (the shop is erased); their outcome reads
    'rejected'. For the redaction path, inside its own transaction: the raw bodies hold
    the personal data being erased. Returns how many were purged.
    """
    where = webhook_inbox.c.source == connection
    if record_ids is not None:
        ids = list(record_ids)
        if not ids:
            return 0
        where = where & or_(
            webhook_inbox.c.customer_id.in_(ids), webhook_inbox.c.record_id.in_(ids)
        )
    gone = (
        conn.execute(delete(webhook_inbox).where(where).returning(webhook_inbox.c.event_id))
        .scalars()
        .all()
    )
    for start in range(0, len(gone), 500):
        conn.execute(
            update(webhook_events)
            .where(
                webhook_events.c.source == connection,
                webhook_events.c.event_id.in_(gone[start : start + 500]),
            )
            .values(status=EventStatus.REJECTED.value, error="purged: its data was erased")
        )
    return len(gone)


def purge(store: Store, connection: str, record_ids: Sequence[str] | None) -> int:
    """:func:`purge_pending` in a transaction of its own."""
    with store.engine.begin() as conn:
        return purge_pending(conn, connection, record_ids)


def order_owners(store: Store, connection: str, order_ids: Sequence[str]) -> dict[str, str | None]:
    """The stored customer of each of ``order_ids`` that is held (to check a redaction)."""
    owners: dict[str, str | None] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(order_ids), 500):
            chunk = list(order_ids[start : start + 500])
            owners.update(
                (row.id, row.customer_id)
                for row in conn.execute(
                    select(orders.c.id, orders.c.customer_id).where(
                        orders.c.connection == connection, orders.c.id.in_(chunk)
                    )
                )
            )
    return owners


def newest(store: Store) -> int:
    """The id of the newest queued event (0 if none): it changes as events arrive."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.max(webhook_inbox.c.id))).scalar_one() or 0)


def pending(store: Store) -> int:
    """How many events wait in the inbox."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_inbox)).scalar_one())


def events(
    store: Store,
    source: str | None = None,
    *,
    status: EventStatus | None = None,
    limit: int = 50,
) -> list[EventRecord]:
    """The most recently received events first (of one connection, of one status)."""
    query = (
        select(webhook_events)
        .order_by(webhook_events.c.received_at.desc(), webhook_events.c.event_id)
        .limit(limit)
    )
    if source is not None:
        query = query.where(webhook_events.c.source == source)
    if status is not None:
        query = query.where(webhook_events.c.status == status.value)
    with store.engine.connect() as conn:
        return [
            EventRecord(
                row.source,
                row.event_id,
                row.topic,
                EventStatus(row.status),
                row.received_at,
                row.applied_at,
                row.attempts,
                row.error,
            )
            for row in conn.execute(query)
        ]
