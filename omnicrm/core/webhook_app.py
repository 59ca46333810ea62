"""The ASGI app behind ``omnicrm webhooks serve``: POST /webhooks/CHANNEL.

Answers 401 to anything not genuine, 200 to a duplicate without doing anything, and
otherwise applies the event's actions, then remembers its id. Actions come before the
record of the id so a failure (answered 503) is retried by the platform rather than
dropped as a duplicate; every action is idempotent, so a retry that races is harmless.
Payloads are not stored: they hold personal data, which a redaction must not leave behind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from omnicrm.core.channels import Stream
from omnicrm.core.records import Customer
from omnicrm.core.runtime import Runtime
from omnicrm.core.webhooks import (
    Delete,
    EraseConnection,
    Export,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookReceiver,
    WebhookRejected,
)
from omnicrm.errors import OmnicrmError

log = logging.getLogger("omnicrm.webhooks")


class ProfileRefresher:
    """Keeps profiles current behind the webhooks without a refresh per event.

    Ordinary changes are coalesced: the first one arms a timer and the refresh after
    ``delay`` seconds takes every change queued by then. A redaction is applied to the
    profiles at once, so a person who asked to be forgotten does not linger in them.
    Failures are logged; the changes stay queued in the store for the next refresh.
    """

    def __init__(self, runtime: Runtime, delay: float = 5.0) -> None:
        self._runtime = runtime
        self._delay = delay
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def soon(self) -> None:
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self._delay, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def now(self) -> None:
        self._refresh()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self._refresh()

    def _refresh(self) -> None:
        try:
            self._runtime.refresh()
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
    refresher: ProfileRefresher | None = None,
) -> str:
    """Apply one verified event to the store; returns 'processed' or 'duplicate'."""
    store = runtime.store
    if store.webhook_seen(event.connection, event.event_id):
        return "duplicate"
    actions = list(receiver.actions(event))
    for action in actions:
        if isinstance(action, Upsert):
            action.record.connection = event.connection
            if isinstance(action.record, Customer):
                store.write_batch(event.connection, Stream.CUSTOMERS, [action.record])
            else:
                store.write_batch(event.connection, Stream.ORDERS, [action.record])
        elif isinstance(action, Delete):
            store.delete_records(event.connection, Stream(action.kind), action.ids)
        elif isinstance(action, Redact):
            store.redact_customer(event.connection, action.customer_id, action.order_ids)
        elif isinstance(action, EraseConnection):
            store.erase_connection(event.connection)
        elif isinstance(action, Export):
            # Named from the connection, the checked customer id and the time; the
            # request's id (body text) and the event id (an unsigned header) only go inside.
            path = store.write_export(event.connection, action.customer_id, action.request_id)
            log.warning("%s: data request exported to %s", event.connection, path)
    store.record_webhook_event(event.connection, event.event_id, event.topic)
    if refresher is not None:
        if any(isinstance(a, Redact | EraseConnection) for a in actions):
            refresher.now()
        else:
            refresher.soon()
    return "processed"


def create_app(runtime: Runtime, *, refresh_delay: float = 5.0) -> Starlette:
    """The webhook app for the channels and connections of ``runtime``; profiles are
    refreshed ``refresh_delay`` seconds after a change (at once after a redaction)."""
    _ = runtime.store  # open and migrate now: a bad store URL fails at start, not per request
    refresher = (
        ProfileRefresher(runtime, refresh_delay) if runtime.config.crm.refresh_after_sync else None
    )

    async def receive(request: Request) -> JSONResponse:
        channel = request.path_params["channel"]
        channel_type = runtime.host.channel_types.get(channel)
        receiver = channel_type.webhooks if channel_type else None
        if receiver is None:
            return JSONResponse({"error": f"no webhooks for channel {channel!r}"}, 404)
        body = await request.body()
        connections = [c for c in runtime.config.connections.values() if c.channel == channel]
        try:
            event = receiver.verify(request.headers, body, connections)
        except WebhookRejected as exc:
            log.warning("%s webhook rejected: %s", channel, exc)
            return JSONResponse({"error": "not verified"}, 401)
        try:
            outcome = await run_in_threadpool(apply_event, runtime, event, receiver, refresher)
        except OmnicrmError as exc:
            log.error(
                "%s: webhook %s (%s) failed: %s", event.connection, event.event_id, event.topic, exc
            )
            return JSONResponse({"error": "try again"}, 503)
        log.info("%s: webhook %s %s %s", event.connection, event.topic, event.event_id, outcome)
        return JSONResponse({"status": outcome})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if refresher is not None:
            refresher.close()

    return Starlette(
        routes=[Route("/webhooks/{channel}", receive, methods=["POST"])], lifespan=lifespan
    )
