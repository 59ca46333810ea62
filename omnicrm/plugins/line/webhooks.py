"""LINE's webhooks: follow, unfollow and accountLink, signed with the channel secret.

LINE posts a batch of events per request, signed ``X-Line-Signature`` = base64 of the
HMAC-SHA256 of the raw body under the channel secret. The receiver finds the shop whose
secret signed it (each shop sending through ``line`` is one connection, ``line@SHOP``),
then reads the events it acts on:

* ``unfollow`` (the user blocked the account): LINE consent withdrawn, and the user id
  suppressed in the shop, before the answer (the request is ``urgent``), so no message
  goes after it, even one of a campaign planned earlier;
* ``follow`` (added as a friend, or unblocked): LINE's statement that the user takes the
  account's messages, recorded as an opt-in on the customer the user is linked to (a
  user linked to no customer is no one's consent) and lifting the block's suppression;
* ``accountLink`` with ``result: ok``: the user id linked to the customer the shop issued
  the nonce for, the linking being the customer's opt-in (``failed``: nothing).

Other events (messages, postbacks...) are accepted and left alone. The batch's id is its
events' ``webhookEventId`` (joined, hashed when there are several), so a redelivery is a
duplicate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omnicrm import Connection, ConsentState, Medium
from omnicrm.plugins.line.settings import LineSettings
from omnicrm.webhooks import (
    Action,
    ConsentChange,
    LinkAddress,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)

SIGNATURE_HEADER = "x-line-signature"
SOURCE = "line"


class _Source(BaseModel):
    type: str
    userId: str | None = None


class _Link(BaseModel):
    result: Literal["ok", "failed"]
    nonce: str = Field(min_length=1, max_length=255)


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    timestamp: int
    mode: str
    webhookEventId: str = Field(min_length=1, max_length=64)
    source: _Source | None = None
    link: _Link | None = None


class _Callback(BaseModel):
    destination: str = Field(pattern=r"^U[0-9a-f]{32}$")
    events: list[_Event]


def sign(secret: str, body: bytes) -> str:
    """The X-Line-Signature of ``body`` under ``secret``."""
    return base64.b64encode(hmac_sha256(secret, body)).decode()


def _parse(body: bytes | Mapping[str, Any], connection: str | None = None) -> _Callback:
    try:
        if isinstance(body, bytes):
            return _Callback.model_validate_json(body)
        return _Callback.model_validate(body)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise WebhookInvalid(f"not a LINE webhook body ({where})", connection=connection) from None


class LineWebhooks:
    """The webhook receiver of the ``line`` dispatcher."""

    max_body = 1024 * 1024

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        """The shop whose channel secret signed ``body``, and its events."""
        given = headers.get(SIGNATURE_HEADER, "")
        if not given:
            raise WebhookRejected("no X-Line-Signature header")
        found = None
        for connection in connections:
            settings = connection.settings
            if isinstance(settings, LineSettings) and signatures_match(
                sign(settings.channel_secret.get_secret_value(), body), given
            ):
                found = connection
                break
        if found is None:
            raise WebhookRejected("X-Line-Signature matches no shop's channel secret")
        callback = _parse(body, found.name)
        ids = [e.webhookEventId for e in callback.events]
        if not ids:  # LINE's "Verify" button: an empty batch to check the endpoint
            event_id = "verify-" + hashlib.sha256(body).hexdigest()[:32]
        elif len(ids) == 1:
            event_id = ids[0]
        else:
            event_id = "batch-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
        topics = sorted({e.type for e in callback.events}) or ["verify"]
        return WebhookEvent(
            connection=found.name,
            event_id=event_id,
            topic="+".join(topics)[:64],
            payload=callback.model_dump(mode="json"),
            urgent="unfollow" in topics,
        )

    def actions(self, event: WebhookEvent, connection: Connection) -> Iterable[Action]:
        """A consent change per follow and unfollow, a link per successful accountLink."""
        found: list[Action] = []
        for item in _parse(event.payload, connection.name).events:
            user = item.source.userId if item.source and item.source.type == "user" else None
            if user is None:
                continue
            at = dt.datetime.fromtimestamp(item.timestamp / 1000, dt.UTC)
            if item.type in ("follow", "unfollow"):
                opted_in = item.type == "follow"
                found.append(
                    ConsentChange(
                        medium=Medium.LINE,
                        address=user,
                        state=ConsentState.OPTED_IN if opted_in else ConsentState.OPTED_OUT,
                        at=at,
                        method="line_follow" if opted_in else "line_unfollow",
                        source=SOURCE,
                    )
                )
            elif item.type == "accountLink" and item.link is not None and item.link.result == "ok":
                found.append(LinkAddress(Medium.LINE, user, item.link.nonce, at))
        return found
