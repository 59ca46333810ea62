"""The ASGI app behind ``omnicrm webhooks serve``: POST /webhooks/CHANNEL, and the links
messages carry (unsubscribe, open, click: :mod:`omnicrm.app.web.tracking`).

A channel whose receiver sets ``path_token`` (a platform that cannot add a header, such
as Smaregi) is also served at POST /webhooks/CHANNEL/TOKEN; the receiver finds TOKEN
under :data:`~omnicrm.core.webhooks.PATH_TOKEN_HEADER` and compares it. The token is a
secret: it is never logged (nor is the path it came in).

A dispatcher with a receiver (LINE) is served at POST /webhooks/DISPATCHER: its receiver
is given one connection per shop sending through it (``DISPATCHER@SHOP``, the shop's
dispatcher settings), and its consent changes and links are applied to that shop.

Intake is quick and does no work of the event's own: the body is read up to the
receiver's ``max_body`` (413 beyond, counted while it streams in), verified by the
receiver in a worker thread (401 if not genuine), and its event id is claimed together
with the queued raw body in one transaction (a second delivery of the id loses the claim
and is answered as a duplicate). The answer is then 200 ``queued``. An :class:`InboxWorker`
applies queued events behind the answer, each once, and deletes the body when done.

A genuine event that can never be applied (malformed for its topic, or a destructive
action its body contradicts) is answered 200 as well, so the platform does not retry it
for days, and recorded as rejected with the reason (``omnicrm webhooks list``). 503 is
kept for what a retry can fix (the store is down). Privacy requests (``urgent`` events:
a redaction) are applied before the answer, so a person who asked to be forgotten is gone
from the store and the profiles by the time the platform hears back, and a redaction
purges the queued events about that person with their bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy import Connection as SqlConnection
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from omnicrm.app.runtime import Runtime
from omnicrm.app.web import storefront
from omnicrm.app.web.loops import answer as answer_loop
from omnicrm.app.web.loops import answer_each_loop
from omnicrm.app.web.tracking import routes as tracking_routes
from omnicrm.core import links
from omnicrm.core.channels import Connection, Stream
from omnicrm.core.consent import Method
from omnicrm.core.records import ConsentState, Medium, Record
from omnicrm.core.store import inbox
from omnicrm.core.store.inbox import EventStatus, InboxItem
from omnicrm.core.streams import stream_of
from omnicrm.core.webhooks import (
    DEFAULT_MAX_BODY,
    PATH_TOKEN_HEADER,
    Action,
    ConsentChange,
    Delete,
    EraseConnection,
    Export,
    LinkAddress,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookReceiver,
    WebhookRejected,
    event_actions,
)
from omnicrm.engage.permission import record_word
from omnicrm.errors import DataError, OmnicrmError, TransientError

log = logging.getLogger("omnicrm.webhooks")


class ProfileRefresher:
    """Keeps profiles current behind the webhooks without a refresh per event.

    Ordinary changes are coalesced: the first one arms a timer and the refresh after
    ``delay`` seconds takes every change queued by then. A redaction is applied to the
    profiles at once, so a person who asked to be forgotten does not linger in them.
    Failures are logged; the changes stay queued in the store for the next refresh.
    While ``busy()`` says webhooks keep arriving, a due refresh waits for a lull (up to
    ``max_defer`` seconds): during a burst the CPU goes to answering them.
    """

    def __init__(
        self,
        runtime: Runtime,
        delay: float = 5.0,
        *,
        busy: Callable[[], bool] | None = None,
        max_defer: float = 30.0,
    ) -> None:
        self._runtime = runtime
        self._delay = delay
        self._busy = busy
        self._max_defer = max_defer
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def soon(self) -> None:
        with self._lock:
            if self._timer is None:
                self._arm(self._delay, time.monotonic() + self._delay + self._max_defer)

    def _arm(self, delay: float, latest: float) -> None:
        self._timer = threading.Timer(delay, self._fire, args=(latest,))
        self._timer.daemon = True
        self._timer.start()

    def now(self) -> None:
        self._refresh()

    def _fire(self, latest: float) -> None:
        with self._lock:
            if self._timer is None:
                return  # closed
            if self._busy is not None and self._busy() and time.monotonic() < latest:
                self._arm(0.5, latest)
                return
            self._timer = None
        self._refresh()

    def _refresh(self) -> None:
        try:
            self._runtime.refresh_all()
        except Exception:
            log.exception("profile refresh after webhooks failed; the next one retries")

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


def apply_event(
    runtime: Runtime,
    event: WebhookEvent,
    receiver: WebhookReceiver,
    connection: Connection,
    refresher: ProfileRefresher | None = None,
) -> str:
    """Apply one verified, claimed event of ``connection`` to the store; returns
    'processed'.

    Raises WebhookInvalid (or DataError) when the event can never be applied, before
    anything was changed: a destructive action must agree with what the store holds.
    """
    store = runtime.store
    actions = event_actions(receiver, event, connection)
    _check_destructive(runtime, event, actions)
    for action in actions:
        if isinstance(action, Upsert):
            action.record.connection = event.connection
            store.write_batch(event.connection, stream_of(action.record), [action.record])
        elif isinstance(action, Delete):
            store.delete_records(event.connection, Stream(action.kind), action.ids)
        elif isinstance(action, Redact):
            runtime.redact_customer(event.connection, action.customer_id, action.order_ids)
        elif isinstance(action, EraseConnection):
            store.erase_connection(event.connection)
        elif isinstance(action, Export):
            # Named from the connection, the checked customer id and the time; the
            # request's id (body text) and the event id (an unsigned header) only go inside.
            path = runtime.write_export(event.connection, action.customer_id, action.request_id)
            log.warning("%s: data request exported to %s", event.connection, path)
        elif isinstance(action, ConsentChange):
            with store.engine.begin() as conn:
                apply_consent_change(conn, connection.shop, action)
        elif isinstance(action, LinkAddress):
            with store.engine.begin() as conn:
                apply_link(conn, connection.shop, action)
    if refresher is not None:
        if any(isinstance(a, Redact | EraseConnection) for a in actions):
            refresher.now()
        else:
            refresher.soon()
    return "processed"


def apply_consent_change(conn: SqlConnection, shop: str, change: ConsentChange) -> None:
    """Record a platform's consent statement (a LINE follow or block) on the customers
    the address is linked to; a withdrawal suppresses the address itself too (linked or
    not yet), an opt-in lifts an unsubscribed one."""
    record_word(
        conn,
        shop=shop,
        members=links.linked_members(conn, shop=shop, medium=change.medium, address=change.address),
        address=change.address,
        medium=change.medium,
        state=change.state,
        at=change.at,
        source=change.source,
        method=change.method,
        # A LINE follow ends what a bounce there meant (not a friend); an email
        # opt-in does not make a dead mailbox deliverable.
        ends_bounce=change.medium == Medium.LINE,
    )


def apply_link(conn: SqlConnection, shop: str, action: LinkAddress) -> None:
    """Link the address to the customer the nonce names; the person's linking is their
    opt-in for the medium (DataError for a nonce that is unknown, used or expired)."""
    member = links.link_by_nonce(
        conn,
        shop=shop,
        medium=action.medium,
        address=action.address,
        nonce=action.nonce,
        at=action.at,
    )
    record_word(
        conn,
        shop=shop,
        members=[member],
        address=action.address,
        medium=action.medium,
        state=ConsentState.OPTED_IN,
        at=action.at,
        source=action.medium.value,
        method=Method.LINE_LINK,
    )


def dispatcher_connections(runtime: Runtime, name: str) -> list[Connection]:
    """One connection per shop that sends through dispatcher ``name`` (see
    :class:`~omnicrm.core.dispatch.Dispatcher`): ``NAME@SHOP``, its settings."""
    spec = runtime.host.dispatchers.get(name)
    if spec is None:
        return []
    found = []
    for shop in runtime.config.all_shops().values():
        choice = shop.messaging.dispatchers.get(spec.medium)
        if choice is None or choice.dispatcher != name:
            continue
        try:
            settings = spec.settings.model_validate(choice.settings)
        except ValidationError:
            log.error("%s@%s: the dispatcher's settings are not valid", name, shop.id)
            continue
        found.append(Connection(f"{name}@{shop.id}", name, settings, shop=shop.id))
    return found


def _check_destructive(runtime: Runtime, event: WebhookEvent, actions: Sequence[Action]) -> None:
    """Refuse a redaction that names orders of another customer: the body is signed, but
    whether it is this customer's is a question of what the store holds."""
    for action in actions:
        if isinstance(action, Redact) and action.order_ids:
            owners = inbox.order_owners(runtime.store, event.connection, list(action.order_ids))
            foreign = sorted(
                order_id
                for order_id, owner in owners.items()
                if owner is not None and owner != action.customer_id
            )
            if foreign:
                raise WebhookInvalid(
                    f"{event.topic} for customer {action.customer_id} names order(s) of "
                    f"another customer: {', '.join(foreign[:5])}"
                )


MAX_ATTEMPTS = 5  # a transient failure is retried this often, with backoff, then given up


def _reason(exc: BaseException) -> str:
    """Why an event failed, for the log and the operator, without the value that failed:
    a mapping error ends with the value it read ("(got ...)"), which may be personal."""
    text = str(exc).split(" (got ", 1)[0]
    return text if isinstance(exc, OmnicrmError) else f"{type(exc).__name__}: {text}"[:500]


class InboxWorker:
    """Applies the queued webhook events behind the answer, one thread, oldest first.

    ``wake`` after each accepted event; ``drain`` applies what is queued now (also what
    a previous process left behind). A permanent failure rejects the event; anything
    else is retried with backoff up to MAX_ATTEMPTS, then recorded as failed. Either way
    the raw body is deleted once the event is done.
    """

    def __init__(
        self,
        runtime: Runtime,
        refresher: ProfileRefresher | None = None,
        *,
        batch: int = 64,
        poll: float = 1.0,
    ) -> None:
        self._runtime = runtime
        self.refresher = refresher
        self._batch = batch
        self._poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Event()
        self.last_arrival = 0.0  # time.monotonic() of the last event queued
        # Out of the intake's process (``applying``), arrivals are seen in the store: the
        # newest inbox row's id changing. Two cores are shared with the intake there too.
        self.watch_store = False
        self._newest = 0
        self.max_defer = 2.0
        # In a burst longer than ``max_defer`` the worker applies a batch, then pauses this
        # many times as long as the batch took while arrivals go on: the answers keep the
        # larger share of the CPU (and of SQLite's one writer) and the backlog still moves.
        self.yield_share = 1.0
        # ... and claims batches this small then: SQLite's one writer is held shorter.
        self.burst_batch = 16
        self._burst_began: float | None = None

    def receiver_of(self, connection: str) -> tuple[WebhookReceiver, Connection] | None:
        """The webhook receiver of a configured connection's channel, and the connection
        as configured now (what the receiver fetches with)."""
        config = self._runtime.config.connections.get(connection)
        if config is None and "@" in connection:
            name = connection.partition("@")[0]
            spec = self._runtime.host.dispatchers.get(name)
            found = [c for c in dispatcher_connections(self._runtime, name) if c.name == connection]
            if spec is None or spec.webhooks is None or not found:
                return None
            return spec.webhooks, found[0]
        channel = self._runtime.host.channel_types.get(config.channel) if config else None
        if config is None or channel is None or channel.webhooks is None:
            return None
        return channel.webhooks, config

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._background, name="omnicrm-webhook-inbox", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self.last_arrival = time.monotonic()
        self.start()
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the worker found the inbox empty after the last wake (for tests)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def run(self) -> None:
        """Drain the inbox in this thread until :meth:`close` (``omnicrm webhooks work``:
        the events another process accepted, polled every ``poll`` seconds)."""
        self._loop()

    def _background(self) -> None:
        # Applying can wait, answers cannot: on Linux (where a thread's nice value is its
        # own) this thread leaves the CPU to the intake's first when both want it.
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        self._loop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._yield_to_intake()
            try:
                done = self.drain()
            except Exception as exc:  # the store is down: try again in a moment
                log.error("webhook inbox: %s; retrying", _reason(exc))
                self._stop.wait(2.0)
                continue
            if done == 0:
                self._idle.set()
                # Also look again now and then: retries come due, another process queues.
                self._wake.wait(self._poll)

    def busy(self) -> bool:
        """Whether webhooks arrived in the last 100 ms."""
        return time.monotonic() - self.last_arrival < 0.1

    def _arrivals(self) -> bool:
        """Whether webhooks are arriving (seen in the store when applying out of process)."""
        if self.watch_store:
            newest = inbox.newest(self._runtime.store)
            if newest != self._newest:
                self._newest = newest
                self.last_arrival = time.monotonic()
        return self.busy()

    def _yield_to_intake(self, took: float = 0.0) -> None:
        """While webhooks keep arriving, let their answers have the CPU (one interpreter
        lock, or the machine's cores, serve both): wait for a lull, for the first
        ``max_defer`` seconds of a burst; in a longer one pause ``yield_share`` times
        ``took`` (what the last batch took), so the backlog moves, slower than the burst."""
        while not self._stop.is_set():
            if not self._arrivals():
                self._burst_began = None
                return
            if self._burst_began is None:
                self._burst_began = time.monotonic()
            if self._long_burst():
                break
            self._stop.wait(0.05)
        pause_until = time.monotonic() + took * self.yield_share
        while not self._stop.is_set() and time.monotonic() < pause_until and self._arrivals():
            self._stop.wait(min(0.05, max(0.0, pause_until - time.monotonic())))

    def _long_burst(self) -> bool:
        began = self._burst_began
        return began is not None and time.monotonic() - began >= self.max_defer

    def drain(self) -> int:
        """Apply the queued events; returns how many were taken. Between batches it
        yields to arrivals as :meth:`_yield_to_intake` says."""
        store = self._runtime.store
        done = 0
        while not self._stop.is_set():
            began = time.monotonic()
            limit = min(self._batch, self.burst_batch) if self._long_burst() else self._batch
            items = inbox.claim(store, limit=limit)
            self._apply_batch(items)
            done += len(items)
            if not items:
                break
            self._yield_to_intake(time.monotonic() - began)
        return done

    def _apply_batch(self, items: Sequence[InboxItem]) -> None:
        """Apply claimed events in order; runs of plain upserts are written together (one
        transaction per stream and connection, one for their outcomes), the rest one by
        one. A run the store refuses is retried one event at a time, to isolate the bad one."""
        run: list[tuple[InboxItem, list[Upsert]]] = []
        for item in items:
            upserts = self._upserts_of(item)
            if upserts is None:
                self._write_run(run)
                run = []
                self.apply(item)
            else:
                run.append((item, upserts))
        self._write_run(run)

    def _upserts_of(self, item: InboxItem) -> list[Upsert] | None:
        """The event's actions if they are all upserts, else None (applied on its own)."""
        found = self.receiver_of(item.source)
        if found is None:
            return None
        receiver, connection = found
        try:
            event = WebhookEvent(item.source, item.event_id, item.topic, from_json(item.body))
            actions = event_actions(receiver, event, connection)
        except Exception:
            return None  # apply() derives them again and records why they fail
        if not actions or not all(isinstance(a, Upsert) for a in actions):
            return None
        return [a for a in actions if isinstance(a, Upsert)]

    def _write_run(self, run: Sequence[tuple[InboxItem, list[Upsert]]]) -> None:
        if not run:
            return
        store = self._runtime.store
        batches: dict[tuple[str, Stream], list[Record]] = {}
        for item, upserts in run:
            for action in upserts:
                action.record.connection = item.source
                stream = stream_of(action.record)
                batches.setdefault((item.source, stream), []).append(action.record)
        try:
            for (connection, stream), records in batches.items():
                store.write_batch(connection, stream, records)
        except Exception:
            for item, _ in run:  # each again on its own: the failure is then its own
                self.apply(item)
            return
        inbox.finish_many(store, [item for item, _ in run], EventStatus.APPLIED)
        if self.refresher is not None:
            self.refresher.soon()

    def apply_now(self, inbox_id: int) -> EventStatus | None:
        """Apply one queued event at once; None if it is not applied now (the worker
        has it, or it was released for a retry)."""
        claimed = inbox.claim(self._runtime.store, limit=1, only=inbox_id)
        return self.apply(claimed[0]) if claimed else None

    def apply(self, item: InboxItem) -> EventStatus | None:
        """Apply one claimed event and record its outcome (None: released for a retry)."""
        store = self._runtime.store
        found = self.receiver_of(item.source)
        try:
            if found is None:
                raise WebhookInvalid(f"connection {item.source!r} no longer receives webhooks")
            receiver, connection = found
            try:
                payload = from_json(item.body)
            except ValueError as exc:
                raise WebhookInvalid(f"the queued body is not JSON: {exc}") from None
            event = WebhookEvent(item.source, item.event_id, item.topic, payload)
            apply_event(self._runtime, event, receiver, connection, self.refresher)
        except (WebhookInvalid, DataError) as exc:
            reason = _reason(exc)
            log.warning(
                "%s: webhook %s (%s) rejected: %s", item.source, item.event_id, item.topic, reason
            )
            inbox.finish(store, item, EventStatus.REJECTED, reason)
            return EventStatus.REJECTED
        except Exception as exc:
            reason = _reason(exc)
            if item.attempts >= MAX_ATTEMPTS:
                log.error(
                    "%s: webhook %s (%s) failed for good: %s",
                    item.source,
                    item.event_id,
                    item.topic,
                    reason,
                )
                inbox.finish(store, item, EventStatus.FAILED, reason)
                return EventStatus.FAILED
            if not isinstance(exc, TransientError | SQLAlchemyError | OSError):
                log.exception("%s: webhook %s (%s) failed", item.source, item.event_id, item.topic)
            else:
                log.warning(
                    "%s: webhook %s (%s) failed, will retry: %s",
                    item.source,
                    item.event_id,
                    item.topic,
                    reason,
                )
            inbox.release(store, item, reason, retry_in=dt.timedelta(seconds=2**item.attempts))
            return None
        inbox.finish(store, item, EventStatus.APPLIED)
        return EventStatus.APPLIED


@contextlib.contextmanager
def applying(runtime: Runtime, *, poll: float = 0.5) -> Iterator[InboxWorker]:
    """An :class:`InboxWorker` draining the inbox in a thread of this process while
    inside (``omnicrm webhooks work``, ``omnicrm run --webhooks``): it applies what a
    ``webhooks serve --no-apply`` elsewhere accepted."""
    _ = runtime.store  # open and migrate now: a bad store URL fails here
    worker = InboxWorker(runtime, poll=poll)
    worker.watch_store = True
    if runtime.config.crm.refresh_after_sync:
        worker.refresher = ProfileRefresher(runtime, busy=worker.busy)
    worker.start()
    try:
        yield worker
    finally:
        worker.close()
        if worker.refresher is not None:
            worker.refresher.close()  # what it had not refreshed yet stays queued


class _Waiting:
    """One event handed to the group commit, and where to answer."""

    __slots__ = ("arrival", "future", "loop")

    def __init__(
        self,
        arrival: inbox.Arrival,
        future: Future[int | None] | asyncio.Future[int | None],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.arrival = arrival
        self.future = future
        self.loop = loop


class GroupCommit:
    """Queues accepted events in batches: one transaction for all that arrived meanwhile.

    Requests hand their event over and wait for its answer; one writer thread claims and
    queues whatever is waiting in a single transaction. A burst thus costs a commit per
    batch, not per webhook, and SQLite's single writer is not fought over by every
    request thread (it makes a waiting writer sleep and poll).

    :meth:`accept` also verifies, in a pool of threads of its own, and the writer answers
    the event loop once per batch: anyio's hand-over to a thread and back, and a wake-up
    of the loop per webhook, cost more CPU than the HMAC and the parse themselves.
    """

    def __init__(self, runtime: Runtime, *, batch: int = 256, verifiers: int = 16) -> None:
        self._runtime = runtime
        self._batch = batch
        self._waiting: list[_Waiting] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Several threads: a receiver's verification is a plugin's code, and one that
        # blocks must not hold up the others.
        self._verifiers = ThreadPoolExecutor(verifiers, "omnicrm-webhook-verify")

    def enqueue(self, arrival: inbox.Arrival) -> int | None:
        """Claim and queue one event: its inbox row's id, or None for a duplicate.
        Raises what the store raised (the event is then not claimed)."""
        return self.submit(arrival).result()

    def submit(self, arrival: inbox.Arrival) -> Future[int | None]:
        """:meth:`enqueue` without waiting: the future of its answer."""
        answer: Future[int | None] = Future()
        self._put(_Waiting(arrival, answer, None))
        return answer

    async def accept(self, check: Callable[[], inbox.Arrival | None]) -> int | None:
        """Run ``check`` in a thread (a receiver's verification: never on the event loop)
        and claim and queue the arrival it returns with the next batch: its inbox row's
        id, or None for a duplicate or when ``check`` returned None (nothing to queue).
        Raises what ``check`` or the store raised."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int | None] = loop.create_future()
        try:
            self._verifiers.submit(self._check, check, answer, loop)
        except RuntimeError:  # shut down
            raise TransientError("the webhook app is shutting down") from None
        return await answer

    def _check(
        self,
        check: Callable[[], inbox.Arrival | None],
        answer: asyncio.Future[int | None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        try:
            arrival = check()
            if arrival is not None:
                self._put(_Waiting(arrival, answer, loop))
                return
        except BaseException as exc:
            answer_loop([(answer, None, exc)], loop)
            return
        answer_loop([(answer, None, None)], loop)

    def _put(self, waiting: _Waiting) -> None:
        with self._ready:
            if self._closed:
                raise TransientError("the webhook app is shutting down")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="omnicrm-webhook-intake", daemon=True
                )
                self._thread.start()
            self._waiting.append(waiting)
            self._ready.notify()

    def close(self) -> None:
        self._verifiers.shutdown(wait=True)
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if not self._waiting:
                    return
                batch, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            try:
                ids: list[int | None] = inbox.enqueue_many(
                    self._runtime.store, [w.arrival for w in batch]
                )
                failed: BaseException | None = None
            except BaseException as exc:
                ids, failed = [None] * len(batch), exc
            # One wake-up of each event loop for all of its requests in the batch.
            answer_each_loop(
                (waiting.loop, (waiting.future, inbox_id, failed))
                for waiting, inbox_id in zip(batch, ids, strict=True)
            )


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (``_TooLarge``) as soon as it passes ``limit`` bytes:
    by its Content-Length before reading, else while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _with_path_token(headers: Headers, token: str | None) -> Headers:
    """The request's headers as the receiver sees them: the path's token, if any, under
    PATH_TOKEN_HEADER, and never a header of that name the sender set."""
    key = PATH_TOKEN_HEADER.encode()
    if token is None and key not in (name for name, _ in headers.raw):
        return headers
    raw = [(name, value) for name, value in headers.raw if name != key]
    if token is not None:
        raw.append((key, token.encode()))
    return Headers(raw=raw)


class _App(Starlette):
    """Starlette, but for a few hot requests answered ahead of its middleware and
    router (the storefront's offers: see :func:`storefront.endpoints`); those answer
    their own errors. Everything else, lifespan included, goes through Starlette."""

    ahead: Mapping[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            app = self.ahead.get((scope["method"], scope["path"]))
            if app is not None:
                await app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime, *, refresh_delay: float = 5.0, apply: bool = True) -> Starlette:
    """The webhook app for the channels and connections of ``runtime``; profiles are
    refreshed ``refresh_delay`` seconds after a change (at once after a redaction).
    ``app.state.inbox`` is its :class:`InboxWorker`.

    With ``apply`` false the app only accepts: queued events are applied by another
    process (``omnicrm webhooks work``), so intake has this process's CPU to itself.
    Urgent events (privacy requests) are still applied before the answer."""
    _ = runtime.store  # open and migrate now: a bad store URL fails at start, not per request
    worker = InboxWorker(runtime)
    if runtime.config.crm.refresh_after_sync:
        worker.refresher = ProfileRefresher(runtime, refresh_delay, busy=worker.busy)
    refresher = worker.refresher
    intake_queue = GroupCommit(runtime)

    def verify(
        channel: str, receiver: WebhookReceiver, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent | WebhookInvalid | JSONResponse:
        """The verified event; why a genuine one is invalid (to record, off the event
        loop); or the answer to a delivery that is not genuine."""
        connections = [c for c in runtime.config.connections.values() if c.channel == channel]
        if channel not in runtime.host.channel_types:
            connections = dispatcher_connections(runtime, channel)
        try:
            return receiver.verify(headers, body, connections)
        except WebhookRejected as exc:
            log.warning("%s webhook rejected: %s", channel, exc)
            return JSONResponse({"error": "not verified"}, 401)
        except WebhookInvalid as exc:
            return exc
        except Exception:
            # A receiver's bug: never a traceback to the sender, nor the body to the log.
            log.error("%s webhook: the receiver failed on a request", channel, exc_info=False)
            return JSONResponse({"error": "internal error"}, 500)

    def queued(event: WebhookEvent, inbox_id: int | None) -> JSONResponse:
        """The answer to a claimed event; an urgent one is applied first."""
        if inbox_id is None:
            log.info("%s: webhook %s %s duplicate", event.connection, event.topic, event.event_id)
            return JSONResponse({"status": "duplicate"})
        outcome: EventStatus | None = None
        if event.urgent:
            try:
                outcome = worker.apply_now(inbox_id)
            except (SQLAlchemyError, OmnicrmError) as exc:
                # It is queued: the worker applies it once the store answers again.
                log.error(
                    "%s: webhook %s queued, not yet applied: %s",
                    event.connection,
                    event.event_id,
                    _reason(exc),
                )
        if apply:
            worker.wake()
        status = (outcome or EventStatus.QUEUED).value
        log.info("%s: webhook %s %s %s", event.connection, event.topic, event.event_id, status)
        return JSONResponse({"status": status})

    def _invalid(channel: str, exc: WebhookInvalid) -> JSONResponse:
        reason = _reason(exc)
        if exc.connection and exc.event_id:
            try:
                fresh = inbox.record_rejected(
                    runtime.store, exc.connection, exc.event_id, exc.topic or "", reason
                )
            except (SQLAlchemyError, OmnicrmError) as failed:
                log.error(
                    "%s: rejected webhook %s not recorded: %s",
                    exc.connection,
                    exc.event_id,
                    _reason(failed),
                )
                return JSONResponse({"error": "try again"}, 503)
            if not fresh:
                return JSONResponse({"status": "duplicate"})
        log.warning(
            "%s webhook %s (%s) rejected: %s",
            exc.connection or channel,
            exc.event_id,
            exc.topic,
            reason,
        )
        return JSONResponse({"status": "rejected", "error": reason})

    async def receive(request: Request) -> JSONResponse:
        channel = request.path_params["channel"]
        channel_type = runtime.host.channel_types.get(channel)
        receiver = channel_type.webhooks if channel_type else None
        if channel_type is None and channel in runtime.host.dispatchers:
            receiver = runtime.host.dispatchers[channel].webhooks
        if receiver is None:
            return JSONResponse({"error": f"no webhooks for channel {channel!r}"}, 404)
        token: str | None = request.path_params.get("token")
        if token is not None and not getattr(receiver, "path_token", False):
            return JSONResponse({"error": f"channel {channel!r} takes no token in the path"}, 404)
        headers = _with_path_token(request.headers, token)
        limit = int(getattr(receiver, "max_body", DEFAULT_MAX_BODY))
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            log.warning("%s webhook refused: the body is over %d bytes", channel, limit)
            return JSONResponse({"error": f"the body is over {limit} bytes"}, 413)
        except ClientDisconnect:
            return JSONResponse({"error": "incomplete body"}, 400)
        checks: list[WebhookEvent | WebhookInvalid | JSONResponse] = []

        def check() -> inbox.Arrival | None:
            """Verify (HMAC over the raw bytes first) and, for an event, its arrival."""
            checked = verify(channel, receiver, headers, body)
            checks.append(checked)
            if not isinstance(checked, WebhookEvent):
                return None
            return inbox.Arrival(
                checked.connection,
                checked.event_id,
                checked.topic,
                body,
                customer_id=checked.customer_id,
                record_id=checked.record_id,
            )

        try:
            # A receiver is a plugin's code (HMAC, parsing): never on the event loop. The
            # request awaits on the loop, no thread held, the verification and then the
            # claim of its event with the group commit's next batch.
            inbox_id = await intake_queue.accept(check)
        except (SQLAlchemyError, OmnicrmError) as exc:
            event = checks[0] if checks else None
            log.error(
                "%s: webhook %s not queued: %s",
                event.connection if isinstance(event, WebhookEvent) else channel,
                event.event_id if isinstance(event, WebhookEvent) else "",
                _reason(exc),
            )
            return JSONResponse({"error": "try again"}, 503)
        checked = checks[0]
        if isinstance(checked, JSONResponse):
            return checked
        if isinstance(checked, WebhookInvalid):
            return await run_in_threadpool(_invalid, channel, checked)
        event = checked
        if inbox_id is not None and event.urgent:
            return await run_in_threadpool(queued, event, inbox_id)
        return queued(event, inbox_id)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if apply:
            worker.wake()  # events a previous process left queued
        yield
        await run_in_threadpool(intake_queue.close)
        await run_in_threadpool(worker.close)
        if refresher is not None:
            refresher.close()

    front = storefront.endpoints(runtime)
    app = _App(
        routes=[
            Route("/webhooks/{channel}", receive, methods=["POST"]),
            Route("/webhooks/{channel}/{token}", receive, methods=["POST"]),
            *tracking_routes(runtime),
            *front.routes,
        ],
        lifespan=lifespan,
    )
    app.ahead = front.ahead
    app.state.inbox = worker
    return app
