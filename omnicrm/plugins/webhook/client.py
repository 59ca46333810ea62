"""The POST of one message, its retries, and what the endpoint's answer means.

* 2xx: ``sent``; the provider id is the ``id`` of a JSON object answered, else the
  message id (the Idempotency-Key the endpoint knows it by);
* 409: ``sent``: the endpoint already has this Idempotency-Key (a try whose answer was
  lost got through);
* 429, 408, 5xx, a timeout, a refused or lost connection: tried again within the call,
  after ``backoff`` seconds doubling per try (``Retry-After`` instead when given, up to
  ``max_wait``), at most ``attempts`` tries; then ``failed`` (the outbox may retry later);
* any other 4xx (401 and 403 included: the endpoint refused the signature): ``rejected``;
* a redirect: ``failed``: a signed POST is not followed elsewhere; set ``url`` to where
  it points.

A timed-out try may have been received: the next carries the same Idempotency-Key, so
the endpoint recognises it. No error shows the secret, the URL's path or query (which
may hold a token) or the endpoint's answer body (which may echo the customer).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections.abc import Callable
from importlib.metadata import version

import httpx

from omnicrm import DeliveryStatus, DispatchOutcome, Message, retry_after
from omnicrm.plugins.webhook.settings import WebhookSettings
from omnicrm.plugins.webhook.signing import HEADER, IDEMPOTENCY_HEADER, sign

log = logging.getLogger("omnicrm.plugins.webhook")

RETRIED = frozenset({408, 429})
USER_AGENT = f"omnicrm/{version('omnicrm')} (webhook dispatcher)"


def payload(message: Message) -> bytes:
    """The JSON body posted for ``message`` (documented in docs/webhook_dispatcher.md)."""
    document = {
        "type": "message",
        "id": message.id,
        "medium": message.medium.value,
        "customer_id": message.customer_id,
        "to": message.to,
        "subject": message.subject,
        "body": message.body,
        "html": message.html,
        "metadata": message.metadata,
    }
    # Values a JSON document cannot hold (a date) are written as their text.
    return json.dumps(document, ensure_ascii=False, default=str, separators=(",", ":")).encode()


def _provider_id(response: httpx.Response, message: Message) -> str:
    try:
        answer = response.json()
    except ValueError:
        return message.id
    if isinstance(answer, dict) and isinstance(answer.get("id"), str | int) and answer["id"]:
        return str(answer["id"])
    return message.id


class Client:
    """Posts messages to one endpoint over kept connections."""

    def __init__(
        self, settings: WebhookSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=settings.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        self._http.close()

    def post(self, message: Message) -> DispatchOutcome:
        """Post ``message``, trying again as the module says; the outcome."""
        settings = self.settings
        body = payload(message)
        secret = settings.secret.get_secret_value()
        wait = settings.backoff
        problem = ""
        for attempt in range(1, settings.attempts + 1):
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                HEADER: sign(secret, body),
                IDEMPOTENCY_HEADER: message.id,
            }
            hint: float | None = None
            try:
                response = self._http.post(settings.url, content=body, headers=headers)
            except httpx.TimeoutException:
                problem = f"no answer from {settings.host} within {settings.timeout:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot reach {settings.host}: {type(exc).__name__}"
            else:
                status = response.status_code
                if 200 <= status < 300 or status == 409:
                    return DispatchOutcome(
                        DeliveryStatus.SENT, provider_id=_provider_id(response, message)
                    )
                if 300 <= status < 400:
                    return DispatchOutcome(
                        DeliveryStatus.FAILED,
                        error=f"{settings.host} answered a redirect (HTTP {status}): a signed "
                        "POST is not followed; set url to the address it points to",
                    )
                if status < 500 and status not in RETRIED:
                    return DispatchOutcome(
                        DeliveryStatus.REJECTED,
                        error=f"{settings.host} refused message {message.id}: HTTP {status} "
                        f"{response.reason_phrase}".rstrip(),
                    )
                problem = f"{settings.host} answered HTTP {status}"
                hint = retry_after(response)
            if attempt == settings.attempts:
                break
            pause = wait if hint is None else hint
            if pause > settings.max_wait:
                problem += f", asking to wait {pause:g} s (more than max_wait)"
                break
            log.info(
                "webhook message %s: %s; try %d of %d in %.2f s",
                message.id,
                problem,
                attempt + 1,
                settings.attempts,
                pause,
            )
            self._sleep(pause)
            wait *= 2
        return DispatchOutcome(
            DeliveryStatus.FAILED,
            error=f"{problem} (after {attempt} tr{'y' if attempt == 1 else 'ies'})",
        )


_clients: dict[tuple[str, str], Client] = {}
_lock = threading.Lock()


def client_for(settings: WebhookSettings) -> Client:
    """A client for ``settings``, kept for the process (its connections are reused)."""
    key = (settings.model_dump_json(), settings.secret.get_secret_value())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
        return client


@atexit.register
def close_all() -> None:
    """Close every kept client (at exit; tests call it between servers)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


__all__ = ["Client", "client_for", "close_all", "payload"]
