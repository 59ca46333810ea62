"""A LINE Messaging API emulator on loopback (the shapes of ``messaging-api.yml``).

It answers ``POST /v2/bot/message/push``, ``POST /v2/bot/message/multicast`` and
``POST /v2/bot/user/{userId}/linkToken`` as LINE does, checks the bearer token, and
keeps what it delivered (:attr:`LineEmulator.delivered`) for the tests and the demo:

* ``X-Line-Retry-Key`` must be a UUID; a key accepted before is answered 409 with the
  messages sent then (and ``x-line-accepted-request-id``), nothing delivered again;
* a push to a user id that is not a friend (never followed, or blocked) is answered 400
  ``Failed to send messages``; a multicast skips them, as LINE does;
* the fault switches of :class:`omnicrm.testing.Emulator` answer 429 and 5xx in LINE's
  error shape; :meth:`LineEmulator.lose_answer_next` accepts a push and answers only
  after the client has given up (a timeout whose message went out).

Users are made friends and blocked with :meth:`~LineEmulator.follow` and
:meth:`~LineEmulator.unfollow`, which also post the ``follow`` / ``unfollow`` webhook
to :attr:`~LineEmulator.webhook_url`, signed with the channel secret. ``GET
/dialog/bot/accountLink?linkToken=...&nonce=...`` plays the page LINE sends a user to in
the account link flow: it posts the ``accountLink`` event (``ok`` for a link token it
issued, unused and fresh; ``failed`` otherwise).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnicrm.plugins.line.webhooks import sign
from omnicrm.testing import Emulator

USER_ID = re.compile(r"^U[0-9a-f]{32}$")
MESSAGE_TYPES = frozenset(
    {"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap",
     "template", "flex", "coupon"}
)  # fmt: skip
LINK_TOKEN_TTL = 600.0
KEPT_FILE = "delivered.jsonl"
"""With ``keep_in``: the file each delivery is appended to, one JSON object a line."""


@dataclass(frozen=True)
class Delivery:
    """What one accepted request delivered: to whom, which message objects."""

    kind: str  # push or multicast
    to: tuple[str, ...]
    messages: tuple[dict[str, Any], ...]
    retry_key: str | None
    request_id: str
    sent_ids: tuple[str, ...]


@dataclass(frozen=True)
class Exchange:
    """One API request and the emulator's answer, for checking both against the spec."""

    method: str
    path: str  # the spec's path template, e.g. /v2/bot/user/{userId}/linkToken
    headers: dict[str, str]
    request: Any  # the JSON body, or None
    status: int
    response: Any


@dataclass
class _LinkToken:
    user_id: str
    issued: float
    used: bool = False


@dataclass
class _State:
    friends: dict[str, bool] = field(default_factory=dict)  # user id -> follows now
    delivered: list[Delivery] = field(default_factory=list)
    accepted: dict[str, Delivery] = field(default_factory=dict)  # retry key -> delivery
    link_tokens: dict[str, _LinkToken] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)  # bodies posted
    exchanges: list[Exchange] = field(default_factory=list)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status, headers=_request_id())


def _request_id() -> dict[str, str]:
    return {"x-line-request-id": str(uuid.uuid4())}


class LineEmulator(Emulator):
    """The Messaging API of one LINE Official Account, on 127.0.0.1."""

    name = "line-emulator"

    def __init__(
        self,
        *,
        channel_access_token: str | None = None,
        channel_secret: str | None = None,
        webhook_url: str | None = None,
        bot_user_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_in: Path | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        # Where each delivery is also appended, a JSON line, for the demo's operator.
        self.kept = None if keep_in is None else keep_in / KEPT_FILE
        if self.kept is not None:
            self.kept.parent.mkdir(parents=True, exist_ok=True)
        self.channel_access_token = channel_access_token or secrets.token_urlsafe(32)
        self.channel_secret = channel_secret or secrets.token_hex(16)
        self.webhook_url = webhook_url
        self.bot_user_id = bot_user_id or "U" + secrets.token_hex(16)
        self._state = _State()
        self._lock = threading.Lock()
        self.app = Starlette(
            middleware=[Middleware(_Recorder, emulator=self)],
            routes=[
                Route("/v2/bot/message/push", self._push, methods=["POST"]),
                Route("/v2/bot/message/multicast", self._multicast, methods=["POST"]),
                Route("/v2/bot/user/{user_id}/linkToken", self._link_token, methods=["POST"]),
                Route("/dialog/bot/accountLink", self._account_link, methods=["GET"]),
            ],
        )

    # -- what the tests use ----------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Settings of the ``line`` dispatcher that reach this emulator."""
        return {
            "api_url": self.url,
            "channel_access_token": self.channel_access_token,
            "channel_secret": self.channel_secret,
            "backoff": 0.05,
        }

    @property
    def delivered(self) -> list[Delivery]:
        """Every accepted request, oldest first."""
        with self._lock:
            return list(self._state.delivered)

    def received_by(self, user_id: str) -> list[dict[str, Any]]:
        """The message objects ``user_id`` received, oldest first."""
        return [m for d in self.delivered if user_id in d.to for m in d.messages]

    @property
    def exchanges(self) -> list[Exchange]:
        """Every API request answered (faults included), oldest first."""
        with self._lock:
            return list(self._state.exchanges)

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._state.exchanges.append(exchange)

    @property
    def webhooks_posted(self) -> list[dict[str, Any]]:
        """The webhook bodies this emulator posted, oldest first."""
        with self._lock:
            return list(self._state.webhooks)

    def add_friend(self, user_id: str) -> None:
        """Make ``user_id`` a friend without a webhook (one who followed long ago)."""
        with self._lock:
            self._state.friends[user_id] = True

    def follow(self, user_id: str, *, unblocked: bool = False) -> httpx.Response | None:
        """``user_id`` adds the account as a friend; the follow webhook is posted."""
        self.add_friend(user_id)
        return self.post_webhook(
            self.event("follow", user_id, replyToken=secrets.token_hex(16),
                       follow={"isUnblocked": unblocked})
        )  # fmt: skip

    def block(self, user_id: str) -> None:
        """``user_id`` blocks the account, without a webhook."""
        with self._lock:
            self._state.friends[user_id] = False

    def unfollow(self, user_id: str) -> httpx.Response | None:
        """``user_id`` blocks the account; the unfollow webhook is posted."""
        self.block(user_id)
        return self.post_webhook(self.event("unfollow", user_id))

    def lose_answer_next(self, count: int = 1, *, seconds: float = 2.0) -> None:
        """The next ``count`` pushes are accepted (delivered), but answered only after
        ``seconds``: a client with a shorter timeout never hears it."""
        self.set_fault("lose_answer", count, seconds=seconds)

    def event(self, kind: str, user_id: str, **fields: Any) -> dict[str, Any]:
        """A webhook event object of ``kind`` from ``user_id`` (webhook.yml's Event)."""
        return {
            "type": kind,
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": _ulid(),
            "deliveryContext": {"isRedelivery": False},
            **fields,
        }

    def webhook_body(self, *events: dict[str, Any]) -> bytes:
        """A webhook request body carrying ``events``."""
        return json.dumps({"destination": self.bot_user_id, "events": list(events)}).encode()

    def post_webhook(self, *events: dict[str, Any]) -> httpx.Response | None:
        """Post ``events`` to :attr:`webhook_url`, signed; None without a URL."""
        body = self.webhook_body(*events)
        with self._lock:
            self._state.webhooks.append(json.loads(body))
        if self.webhook_url is None:
            return None
        headers = {
            "Content-Type": "application/json",
            "X-Line-Signature": sign(self.channel_secret, body),
        }
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=30)

    # -- the API -------------------------------------------------------------------------

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        message = (
            "The API rate limit has been exceeded. Try again later."
            if status == 429
            else "An error occurred on the LINE Platform."
        )
        return JSONResponse({"message": message}, status, headers={**headers, **_request_id()})

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given, f"Bearer {self.channel_access_token}")

    async def _body(
        self, request: Request, *, many: bool
    ) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        if not self._authorized(request):
            return None, _error(
                401,
                "Authentication failed. Confirm that the access token in the authorization "
                "header is valid.",
            )
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                return None, _error(400, "The value of the X-Line-Retry-Key header is invalid")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None, _error(400, "The request body has 1 error(s)",
                                details=[{"message": "Invalid JSON"}])  # fmt: skip
        problems = _check(body, many=many)
        if problems:
            return None, _error(
                400,
                f"The request body has {len(problems)} error(s)",
                details=[{"message": m, "property": p} for p, m in problems],
            )
        return body, None

    def _repeat(self, key: str | None) -> JSONResponse | None:
        if key is None:
            return None
        with self._lock:
            before = self._state.accepted.get(key)
        if before is None:
            return None
        return JSONResponse(
            {
                "message": "The retry key is already accepted",
                "sentMessages": [{"id": i} for i in before.sent_ids] or None,
            }
            if before.sent_ids
            else {"message": "The retry key is already accepted"},
            409,
            headers={**_request_id(), "x-line-accepted-request-id": before.request_id},
        )

    def _accept(self, kind: str, to: list[str], body: dict[str, Any], key: str | None,
                request_id: str) -> Delivery:  # fmt: skip
        sent_ids = tuple(str(secrets.randbelow(10**18)) for _ in body["messages"])
        delivery = Delivery(
            kind, tuple(to), tuple(body["messages"]), key, request_id,
            sent_ids if kind == "push" else (),
        )  # fmt: skip
        with self._lock:
            if key is not None:
                self._state.accepted[key] = delivery
            self._state.delivered.append(delivery)
            if self.kept is not None:
                self._keep(delivery)
        return delivery

    def _keep(self, delivery: Delivery) -> None:
        """Append ``delivery`` to the kept file (under the lock: one writer at a time)."""
        line = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "kind": delivery.kind,
            "to": list(delivery.to),
            "messages": list(delivery.messages),
            "retry_key": delivery.retry_key,
        }
        assert self.kept is not None
        with self.kept.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    async def _push(self, request: Request) -> Response:
        body, refused = await self._body(request, many=False)
        if refused is not None:
            return refused
        assert body is not None
        key = request.headers.get("x-line-retry-key")
        repeated = self._repeat(key)
        if repeated is not None:
            return repeated
        to = body["to"]
        if not USER_ID.match(to):
            return _error(
                400, "The property, 'to', in the request body is invalid (line 1, column 7)"
            )
        with self._lock:
            friend = self._state.friends.get(to, False)
        if not friend:
            return _error(400, "Failed to send messages")
        request_id = str(uuid.uuid4())
        delivery = self._accept("push", [to], body, key, request_id)
        lost = self.take_fault("lose_answer")
        if lost:
            await asyncio.sleep(float(lost["seconds"]))
        return JSONResponse(
            {"sentMessages": [{"id": i} for i in delivery.sent_ids]},
            headers={"x-line-request-id": request_id},
        )

    async def _multicast(self, request: Request) -> Response:
        body, refused = await self._body(request, many=True)
        if refused is not None:
            return refused
        assert body is not None
        key = request.headers.get("x-line-retry-key")
        repeated = self._repeat(key)
        if repeated is not None:
            return repeated
        bad = [u for u in body["to"] if not USER_ID.match(u)]
        if bad:
            return _error(400, "The property, 'to', in the request body is invalid")
        with self._lock:
            friends = [u for u in body["to"] if self._state.friends.get(u, False)]
        request_id = str(uuid.uuid4())
        self._accept("multicast", friends, body, key, request_id)
        return JSONResponse({}, headers={"x-line-request-id": request_id})

    async def _link_token(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "Authentication failed.")
        user_id = request.path_params["user_id"]
        with self._lock:
            friend = self._state.friends.get(user_id, False)
        if not USER_ID.match(user_id) or not friend:
            return _error(400, "The user ID is invalid or the user is not a friend")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._state.link_tokens[token] = _LinkToken(user_id, time.monotonic())
        return JSONResponse({"linkToken": token}, headers=_request_id())

    async def _account_link(self, request: Request) -> Response:
        token = request.query_params.get("linkToken", "")
        nonce = request.query_params.get("nonce", "")
        if not nonce:
            return PlainTextResponse("nonce is required", 400)
        with self._lock:
            found = self._state.link_tokens.get(token)
            ok = (
                found is not None
                and not found.used
                and time.monotonic() - found.issued < LINK_TOKEN_TTL
            )
            if found is not None:
                found.used = True
        if found is None:
            return PlainTextResponse("the link token is invalid", 400)
        event = self.event(
            "accountLink", found.user_id, link={"result": "ok" if ok else "failed", "nonce": nonce}
        )
        if ok:
            event["replyToken"] = secrets.token_hex(16)
        response = await asyncio.to_thread(self.post_webhook, event)
        status = response.status_code if response is not None else None
        return PlainTextResponse(f"account link {'ok' if ok else 'failed'} (webhook: {status})")


class _Recorder:
    """Keeps each API request's body and its answer (plain ASGI, inside the faults)."""

    def __init__(self, app: ASGIApp, emulator: LineEmulator) -> None:
        self.app, self.emulator = app, emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        answer: dict[str, Any] = {"body": b""}

        async def taking() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, taking, sending)
        raw = b"".join(chunks)
        path = re.sub(r"^/v2/bot/user/[^/]+/linkToken$", "/v2/bot/user/{userId}/linkToken",
                      scope["path"])  # fmt: skip
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        headers.pop("authorization", None)
        self.emulator._record(
            Exchange(
                scope["method"],
                path,
                headers,
                _json(raw),
                int(answer.get("status", 0)),
                _json(answer["body"]),
            )
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _check(body: Any, *, many: bool) -> list[tuple[str, str]]:
    """What is wrong with a push or multicast body (property, message), as LINE says."""
    if not isinstance(body, dict):
        return [("", "must be a JSON object")]
    problems: list[tuple[str, str]] = []
    to = body.get("to")
    if many:
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            problems.append(("to", "Size must be between 1 and 500"))
        elif not all(isinstance(u, str) for u in to):
            problems.append(("to", "must be an array of user IDs"))
    elif not isinstance(to, str) or not to:
        problems.append(("to", "May not be empty"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        problems.append(("messages", "Size must be between 1 and 5"))
        return problems
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in MESSAGE_TYPES:
            problems.append((f"{where}.type", "Must be one of the message types"))
        elif kind == "text":
            text = message.get("text")
            if not isinstance(text, str) or not text:
                problems.append((f"{where}.text", "May not be empty"))
            elif len(text) > 5000:
                problems.append((f"{where}.text", "Length must be between 0 and 5000"))
        elif kind == "template":
            template = message.get("template")
            alt = message.get("altText")
            if not isinstance(alt, str) or not 1 <= len(alt) <= 400:
                problems.append((f"{where}.altText", "Length must be between 1 and 400"))
            if not isinstance(template, dict) or template.get("type") != "buttons":
                problems.append((f"{where}.template", "Only buttons templates are emulated"))
    return problems


def _ulid() -> str:
    """A ULID-shaped id (26 characters of Crockford base32), as webhookEventId is."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def demo_user(client: int, number: int) -> str:
    """The LINE user id of demo shop ``client``'s customer ``number`` (stable)."""
    return "U" + uuid.uuid5(uuid.NAMESPACE_URL, f"omnicrm-line-demo/{client}/{number}").hex
