"""A shop's endpoint on loopback: checks each signature and keeps what it accepted.

:class:`Receiver` answers as a careful receiver would: 401 to a request whose
``X-Omnicrm-Signature`` does not sign its raw body under the secret (or is too old),
400 to a body that is not a message, 200 with ``{"id": ...}`` to a new message and 409
to an ``Idempotency-Key`` it has already taken (the message is kept once). A recipient
(``to``) containing ``refuse`` is answered 422, one containing ``defer`` 503, always;
the fault switches of :class:`omnicrm.testing.Emulator` (``fail_next``,
``rate_limit_next``, ``delay_next``) make the next requests fail.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from omnicrm.plugins.webhook.signing import HEADER, IDEMPOTENCY_HEADER, verify
from omnicrm.testing import Emulator

PATH = "/omnicrm/messages"


@dataclass(frozen=True)
class Received:
    """A message the receiver accepted: its body as sent, and the headers that came."""

    body: bytes
    headers: dict[str, str]

    @property
    def message(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver(Emulator):
    """A webhook endpoint on 127.0.0.1 that verifies what omnicrm posts."""

    name = "webhook-receiver"

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret or secrets.token_hex(16)
        self.accepted: dict[str, Received] = {}  # by Idempotency-Key
        self.refused: list[str] = []  # why each refused request was refused
        self.requests = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(PATH, self._message, methods=["POST"])])

    @property
    def endpoint(self) -> str:
        return f"{self.url}{PATH}"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings that post to this receiver, quick to give up (for tests)."""
        return {
            "url": self.endpoint,
            "secret": self.secret,
            "timeout": 5,
            "attempts": 3,
            "backoff": 0.05,
            **overrides,
        }

    async def _message(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            self.requests += 1
        problem = verify(self.secret, request.headers.get(HEADER), body)
        if problem is not None:
            with self._lock:
                self.refused.append(problem)
            return JSONResponse({"error": problem}, status_code=401)
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        try:
            message = json.loads(body)
            to, identity = str(message["to"]), message["id"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "not a message"}, status_code=400)
        if not key or identity != key:
            return JSONResponse({"error": "Idempotency-Key is not the message id"}, 400)
        if "refuse" in to:
            return JSONResponse({"error": "recipient refused"}, status_code=422)
        if "defer" in to:
            return JSONResponse({"error": "try later"}, status_code=503)
        with self._lock:
            if key in self.accepted:
                return JSONResponse({"error": "already received"}, status_code=409)
            self.accepted[key] = Received(body, dict(request.headers))
            number = len(self.accepted)
        return JSONResponse({"id": f"received-{number}"})


@contextlib.contextmanager
def sandbox() -> Iterator[Mapping[str, Any]]:
    """Start a :class:`Receiver`; its context yields settings that post to it."""
    with Receiver() as receiver:
        yield receiver.settings()
