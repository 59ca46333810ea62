"""Helpers of the benchmarks that run a sandbox in a process of its own."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx


@contextlib.contextmanager
def announced(command: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run ``command``, a sandbox that prints one JSON line once it answers; yield its pid
    and that line, parsed. Stopped by its pid afterwards."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the sandbox exited ({process.wait()}) before it was ready")
        yield process.pid, dict(json.loads(line))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def responses(keep: Callable[[httpx.Request, httpx.Response], None]) -> Iterator[None]:
    """Hand every request and its answer (read already) that httpx clients make to
    ``keep``, while in the context."""
    original = httpx.Client.send

    def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = original(client, request, **kwargs)
        keep(request, response)
        return response

    httpx.Client.send = send  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        httpx.Client.send = original  # type: ignore[method-assign]
