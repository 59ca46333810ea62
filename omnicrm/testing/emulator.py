"""The base of a platform emulator: an ASGI app on loopback with fault switches.

Exported as ``omnicrm.testing.Emulator``. It imports no pytest: a channel's sandbox
runs in ``omnicrm demo``, where the test tools are not installed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnicrm.core._public import public

_STARTUP_TIMEOUT = 30.0


def env_number(name: str, default: float, low: float, high: float, *, whole: bool = False) -> float:
    """A sandbox's size or pace from the environment variable ``name`` (``default`` when
    unset or blank), refused by name when it is not a number (``whole``: not a whole
    number) or lies outside ``low``..``high``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {'whole ' if whole else ''}number") from None
    if not low <= value <= high:
        bounds = f"{low} and {high}" if whole else f"{low:g} and {high:g}"
        raise ValueError(f"{name}={raw!r} must be between {bounds}")
    return value


class Emulator:
    """A platform's API on 127.0.0.1, served by uvicorn from a daemon thread.

    A subclass sets ``self.app`` (an ASGI app, typically Starlette) in its ``__init__``
    and calls ``super().__init__()``; :meth:`start` then serves it on a free port (or
    ``port``), :meth:`stop` ends it, and ``with`` does both. :attr:`url` is where it
    answers.

    The fault switches make the next requests fail the way real APIs do, so a client's
    error handling is tested over real HTTP: :meth:`fail_next` (a 5xx),
    :meth:`rate_limit_next` (429 with ``Retry-After``), :meth:`delay_next` (a slow
    answer) and :meth:`malform_next` (a 200 whose body is cut in half). They apply to
    the requests :meth:`applies_faults` accepts (default: every path not starting
    ``/_``, the emulator's own control endpoints); their answers come from
    :meth:`fault_response`, which a subclass overrides to answer as its platform does.
    A subclass adds its own switches with :meth:`set_fault` and :meth:`take_fault`.
    """

    name: ClassVar[str] = "emulator"
    """Names the server thread and the error raised when it does not start."""

    app: ASGIApp

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.injected = 0
        """How many faults were injected so far."""
        self._faults: dict[str, deque[dict[str, Any]]] = {}
        self._fault_lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------

    def bind(self) -> socket.socket:
        """A listening socket on ``host`` and ``port``; ``port`` becomes the one bound.

        Connections queue from now on, before the server runs: a parent process can
        announce the address first and serve right after (:meth:`serve_forever`).
        """
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
        # for sockets that say so, and without it every answer waits ~40 ms (delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        return sock

    def _uvicorn(self) -> uvicorn.Server:
        config = uvicorn.Config(
            _FaultMiddleware(self, self.app),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        return uvicorn.Server(config)

    @property
    def running(self) -> bool:
        """Whether the server answers (between :meth:`start` and :meth:`stop`)."""
        return self._server is not None and self._server.started and not self._server.should_exit

    def start(self) -> Self:
        """Serve in a background thread; returns once the port answers."""
        if self.running:
            return self
        sock = self.bind()
        self._server = server = self._uvicorn()
        self._thread = thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                sock.close()
                raise RuntimeError(f"the {self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def serve_forever(self, sock: socket.socket | None = None) -> None:
        """Serve in this thread until interrupted (an emulator's command line)."""
        sock = sock or self.bind()
        self._server = self._uvicorn()
        self._server.run(sockets=[sock])

    def stop(self) -> None:
        """Stop serving; waits for the server thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Where the emulator answers, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    # --- fault switches ----------------------------------------------------------------------

    def set_fault(self, kind: str, count: int = 1, **params: Any) -> None:
        """The next ``count`` :meth:`take_fault` of ``kind`` give ``params`` (0 switches it off).

        It replaces what was pending of that kind, so a switch means what it says: the
        next ``count`` requests.
        """
        with self._fault_lock:
            self._faults[kind] = deque(dict(params) for _ in range(count))

    def take_fault(self, kind: str) -> dict[str, Any] | None:
        """The next queued fault of ``kind`` (its params), counted as injected; else None."""
        with self._fault_lock:
            queue = self._faults.get(kind)
            if not queue:
                return None
            self.injected += 1
            return queue.popleft()

    def fail_next(self, count: int = 1, *, status: int = 503) -> None:
        """The next ``count`` requests answer HTTP ``status`` (500, 502, 503...)."""
        self.set_fault("fail", count, status=status)

    def rate_limit_next(self, count: int = 1, *, retry_after: float | str = 2.0) -> None:
        """The next ``count`` requests answer 429 with ``Retry-After`` (seconds or a date)."""
        text = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self.set_fault("rate_limit", count, retry_after=text)

    def delay_next(self, count: int = 1, *, seconds: float = 5.0) -> None:
        """The next ``count`` requests answer only after ``seconds`` (a client times out)."""
        self.set_fault("delay", count, seconds=seconds)

    def malform_next(self, count: int = 1) -> None:
        """The next ``count`` successful (200) answers are cut in half, as by a dropped proxy."""
        self.set_fault("malform", count)

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._fault_lock:
            self._faults.clear()

    def applies_faults(self, path: str) -> bool:
        """Whether the fault switches apply to a request for ``path``."""
        return not path.startswith("/_")

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        """The answer of an injected ``status`` (a 5xx or 429) with ``headers`` to send."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:  # a status HTTP does not name, e.g. Cloudflare's 520
            phrase = "Error"
        return JSONResponse({"error": phrase}, status, headers=dict(headers))


class _FaultMiddleware:
    """Applies an emulator's pending faults around its app (plain ASGI, so bodies stream)."""

    def __init__(self, emulator: Emulator, app: ASGIApp) -> None:
        self.emulator, self.app = emulator, app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        emulator = self.emulator
        if scope["type"] != "http" or not emulator.applies_faults(scope["path"]):
            await self.app(scope, receive, send)
            return
        delay = emulator.take_fault("delay")
        if delay:
            await asyncio.sleep(float(delay["seconds"]))
        answer: Response | None = None
        fail = emulator.take_fault("fail")
        if fail:
            answer = emulator.fault_response(Request(scope, receive), int(fail["status"]), {})
        else:
            limited = emulator.take_fault("rate_limit")
            if limited:
                headers = {"Retry-After": str(limited["retry_after"])}
                answer = emulator.fault_response(Request(scope, receive), 429, headers)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, _Malformer(emulator, send))


class _Malformer:
    """Passes an answer on, or, if a malform fault is due and it is a 200, half its body."""

    def __init__(self, emulator: Emulator, send: Send) -> None:
        self.emulator, self.send = emulator, send
        self.start: MutableMapping[str, Any] | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] == 200 and self.emulator.take_fault("malform") is not None:
                self.start = message  # held back until the whole body is known
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.body += message.get("body", b"")
            if message.get("more_body", False):
                return
            cut = bytes(self.body[: len(self.body) // 2])
            headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(cut)).encode()))
            await self.send({**self.start, "headers": headers})
            await self.send({"type": "http.response.body", "body": cut})
            return
        await self.send(message)


public(Emulator, env_number, module="omnicrm.testing")
