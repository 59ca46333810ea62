"""The Messaging API over httpx: push, multicast and link tokens, and what answers mean.

Every send carries an ``X-Line-Retry-Key``: the same key for every try of one message
(derived from the message's id, so a sender restarted later sends the same key too).
LINE accepts a key once; a repeated request with a key it accepted is answered 409 with
the messages it sent then, so a try whose answer was lost (a timeout) is settled by the
next try without a second delivery. What an answer means:

* 200, or 409 on a repeated retry key: ``sent`` (the id of the first sent message is the
  provider's id);
* 400: ``rejected`` (LINE refuses this recipient or this message for good: an invalid
  or unknown user id, a user who is not a friend, a message it cannot take); LINE's
  answers about the recipient (``Failed to send messages``, which a push to a user who
  never added the account or blocked it gets, and an invalid ``to``) are ``bounced``
  too, so the host suppresses the user id; a refusal of the message's body is not;
* 429, 5xx, a timeout or a lost connection: tried again after a backoff, up to the
  settings' ``attempts`` (Retry-After is honoured), then ``failed`` (may be retried);
* 401 and 403 (the token is wrong or lacks the right): ``failed``, the operator's to fix.

The channel access token goes only into the Authorization header: no error, log line or
repr shows it.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from omnicrm import DeliveryStatus, DispatchOutcome, retry_after
from omnicrm.plugins.line.settings import LineSettings

log = logging.getLogger("omnicrm.plugins.line")

MULTICAST_LIMIT = 500
"""User ids LINE takes in one multicast request."""
TEXT_LIMIT = 5000
"""Characters LINE takes in one text message."""
MAX_WAIT = 60.0
"""The longest pause between tries, whatever Retry-After asks."""

_KEYS = uuid.UUID("6f1b3c52-8d0e-4d4a-9f57-3f2a5d6c7e80")  # namespace of retry keys


def retry_key(message_id: str, part: int = 0) -> str:
    """The X-Line-Retry-Key of a message (a UUID derived from its id): the same on every
    try, in this process or after a restart. ``part`` tells a multicast's batches apart."""
    return str(uuid.uuid5(_KEYS, f"{message_id}#{part}"))


@dataclass(frozen=True)
class Answer:
    """What LINE answered one request (or why it could not)."""

    status: int | None  # None: no answer (a timeout, a lost connection)
    body: dict[str, Any]
    request_id: str | None = None
    error: str | None = None
    wait: float | None = None  # what Retry-After asked for

    @property
    def message(self) -> str:
        """LINE's reason, with its details, for an error answer."""
        text = str(self.body.get("message") or self.error or f"HTTP {self.status}")
        details = [
            f"{d.get('property')}: {d.get('message')}"
            if d.get("property")
            else str(d.get("message"))
            for d in self.body.get("details") or []
            if isinstance(d, dict)
        ]
        return f"{text} ({'; '.join(details)})" if details else text


def text_message(text: str) -> dict[str, Any]:
    """A text message object."""
    return {"type": "text", "text": text}


def button_message(label: str, url: str) -> dict[str, Any]:
    """A buttons template with one link, as a message object (altText for old clients)."""
    return {
        "type": "template",
        "altText": f"{label}: {url}"[:400],
        "template": {
            "type": "buttons",
            "text": label,
            "actions": [{"type": "uri", "label": label, "uri": url}],
        },
    }


class Client:
    """One channel's Messaging API, over a kept httpx connection."""

    def __init__(
        self, settings: LineSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.api_url,
            timeout=settings.timeout,
            headers={
                "Authorization": f"Bearer {settings.channel_access_token.get_secret_value()}",
                "User-Agent": "omnicrm-line",
            },
        )

    def __repr__(self) -> str:
        return f"Client({self.settings.api_url})"

    def close(self) -> None:
        self._http.close()

    # -- requests ------------------------------------------------------------------------

    def _post(self, path: str, payload: dict[str, Any] | None, key: str | None) -> Answer:
        headers = {"X-Line-Retry-Key": key} if key else {}
        try:
            response = self._http.post(path, json=payload, headers=headers)
        except httpx.TimeoutException:
            return Answer(None, {}, error=f"no answer within {self.settings.timeout:g} s")
        except httpx.TransportError as exc:
            return Answer(
                None, {}, error=f"cannot reach {self.settings.api_url}: {type(exc).__name__}"
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        # A 200 whose body was cut (a proxy): accepted all the same, the request id names it.
        return Answer(
            response.status_code,
            body,
            response.headers.get("x-line-request-id"),
            wait=retry_after(response) if _retried(response.status_code) else None,
        )

    def _send(self, path: str, payload: dict[str, Any], key: str) -> DispatchOutcome:
        """Post ``payload`` with retry key ``key`` until an answer settles it."""
        last: Answer | None = None
        for attempt in range(1, self.settings.attempts + 1):
            if last is not None:
                wait = last.wait if last.wait is not None else self._backoff(attempt)
                self._sleep(min(MAX_WAIT, wait))
            answer = self._post(path, payload, key)
            outcome = _settle(answer)
            if outcome is not None:
                return outcome
            last = answer
            log.info(
                "line: %s try %d of %d: %s", path, attempt, self.settings.attempts, _why(answer)
            )
        assert last is not None
        return DispatchOutcome(
            DeliveryStatus.FAILED,
            error=f"{_why(last)} after {self.settings.attempts} tries (retry key {key})",
        )

    def _backoff(self, attempt: int) -> float:
        return float(self.settings.backoff * 2 ** (attempt - 2))

    # -- the API -------------------------------------------------------------------------

    def push(self, to: str, messages: Sequence[dict[str, Any]], *, key: str) -> DispatchOutcome:
        """Push ``messages`` (1 to 5 message objects) to the user ``to``."""
        return self._send("/v2/bot/message/push", {"to": to, "messages": list(messages)}, key)

    def multicast(
        self, to: Sequence[str], messages: Sequence[dict[str, Any]], *, message_id: str
    ) -> list[DispatchOutcome]:
        """Send the same ``messages`` to many users, :data:`MULTICAST_LIMIT` per request;
        one outcome per batch, in order (each batch its own retry key)."""
        outcomes = []
        for part, start in enumerate(range(0, len(to), MULTICAST_LIMIT)):
            batch = list(to[start : start + MULTICAST_LIMIT])
            payload = {"to": batch, "messages": list(messages)}
            outcomes.append(
                self._send("/v2/bot/message/multicast", payload, retry_key(message_id, part))
            )
        return outcomes

    def link_token(self, user_id: str) -> str:
        """Issue a link token for ``user_id`` (step 1 of LINE's account link flow)."""
        answer = self._post(f"/v2/bot/user/{quote(user_id, safe='')}/linkToken", None, None)
        token = answer.body.get("linkToken")
        if answer.status != 200 or not isinstance(token, str):
            raise LineError(f"LINE issued no link token: {_why(answer)}")
        return token


class LineError(Exception):
    """The Messaging API refused a request that is not a message (a link token)."""


def _settle(answer: Answer) -> DispatchOutcome | None:
    """The outcome an answer settles, or None if the request should be tried again."""
    status = answer.status
    if status == 200:
        return DispatchOutcome(DeliveryStatus.SENT, provider_id=_sent_id(answer))
    if status == 409:
        # The retry key was accepted before (a try whose answer was lost): it went out.
        accepted = answer.request_id
        return DispatchOutcome(DeliveryStatus.SENT, provider_id=_sent_id(answer) or accepted)
    if status == 400:
        return DispatchOutcome(
            DeliveryStatus.REJECTED, error=f"400 {answer.message}", bounced=_about_recipient(answer)
        )
    if status in (401, 403):
        return DispatchOutcome(
            DeliveryStatus.FAILED,
            error=f"{status} {answer.message} (check the channel access token)",
        )
    if status is None or _retried(status):
        return None
    return DispatchOutcome(DeliveryStatus.FAILED, error=f"{status} {answer.message}")


# LINE's 400 for a push to a user who is not a friend (never added, or blocked).
NOT_A_FRIEND = "Failed to send messages"


def _about_recipient(answer: Answer) -> bool:
    """Whether a 400 refuses the recipient (not a friend, an invalid user id), not the
    message."""
    text = str(answer.body.get("message") or "")
    return text == NOT_A_FRIEND or "'to'" in text


def _retried(status: int) -> bool:
    return status == 429 or status >= 500


def _sent_id(answer: Answer) -> str | None:
    sent = answer.body.get("sentMessages")
    if isinstance(sent, list) and sent and isinstance(sent[0], dict):
        return str(sent[0].get("id")) if sent[0].get("id") else None
    return answer.request_id


def _why(answer: Answer) -> str:
    if answer.status is None:
        return answer.error or "no answer"
    return f"{answer.status} {answer.body.get('message') or ''}".strip()


_CLIENTS: dict[tuple[str, str, float], Client] = {}
_LOCK = threading.Lock()


def client_for(settings: LineSettings) -> Client:
    """A kept client for ``settings`` (one connection pool per API and token)."""
    key = (settings.api_url, settings.channel_access_token.get_secret_value(), settings.timeout)
    with _LOCK:
        found = _CLIENTS.get(key)
        if found is None:
            found = _CLIENTS[key] = Client(settings)
        elif found.settings != settings:
            found.settings = settings  # attempts, backoff: read per send
        return found


def close_all() -> None:
    """Close every kept client."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()


atexit.register(close_all)
