"""HTTP access to one shop's EC-CUBE Web API: GraphQL at ``/api`` with a bearer token.

* The token comes from :class:`~.tokens.TokenSource` (renewed a minute before it runs
  out, and once more if the API answers 401 to it).
* HTTP 5xx, 429, timeouts, connection errors and bodies that are not JSON are retried
  with exponential backoff ``retries`` times, then :class:`TransientError`.
* GraphQL ``errors`` are a :class:`SyncError` naming the operation and the API's
  message (never a value of the data); 403 is an :class:`AuthError`.

Only the documents of :data:`~.queries.OPERATIONS` are sent, by name.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from omnicrm.errors import AuthError, SyncError, TransientError
from omnicrm.plugins.ec_cube.api.queries import OPERATIONS
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.tokens import TokenSource

log = logging.getLogger("omnicrm.channel.ec_cube")


class _Again(Exception):
    """One attempt failed in a way another may not."""


class EccubeClient:
    """Sends the plugin's GraphQL operations to one shop. Use as a context manager."""

    def __init__(
        self,
        settings: EccubeSettings,
        connection: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = 0.5,
        tokens: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self._sleep = sleep
        self._backoff = backoff
        self._http = httpx.Client(timeout=settings.timeout)
        self.tokens = tokens or TokenSource(settings, connection, self._http)
        self.requests = 0

    def __enter__(self) -> EccubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def run(self, operation: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data`` of ``operation`` with ``variables``, waited and retried."""
        body = orjson.dumps(
            {"query": OPERATIONS[operation], "operationName": operation, "variables": variables}
        )
        failures = 0
        renewed = False
        while True:
            try:
                token = self.tokens.access_token()
                return self._attempt(operation, body, token)
            except _Refused:
                if renewed:
                    raise AuthError(
                        f"EC-CUBE refused a fresh access token for {operation}: run "
                        f"`omnicrm connect {self.connection}` to authorise again"
                    ) from None
                renewed = True
                self.tokens.renew(token)
            except _Again as again:
                failures += 1
                if failures > self.settings.retries:
                    raise TransientError(f"{again}; gave up after {failures} attempts") from None
                delay = self._backoff * 2 ** (failures - 1) * random.uniform(0.75, 1.25)
                log.warning(
                    "ec_cube: %s; retry %d/%d in %.1fs",
                    again,
                    failures,
                    self.settings.retries,
                    delay,
                )
                self._sleep(delay)

    def _attempt(self, operation: str, body: bytes, token: str) -> dict[str, Any]:
        self.requests += 1
        try:
            reply = self._http.post(
                self.settings.api_url,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.TimeoutException:
            raise _Again(
                f"EC-CUBE did not answer {operation} within {self.settings.timeout:g}s"
            ) from None
        except httpx.RequestError as exc:
            raise _Again(f"cannot reach EC-CUBE for {operation} ({type(exc).__name__})") from None
        status = reply.status_code
        if status == 401:
            raise _Refused
        if status == 403:
            raise AuthError(
                f"EC-CUBE answered {operation} with 403: the API client lacks the scope "
                f"{self.settings.scope!r}"
            )
        if status == 429 or status >= 500:
            raise _Again(f"EC-CUBE answered {operation} with HTTP {status}")
        try:
            answer = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            raise _Again(
                f"EC-CUBE sent malformed JSON for {operation} ({len(reply.content)} bytes)"
            ) from None
        if status != 200 or not isinstance(answer, dict):
            raise SyncError(f"EC-CUBE answered {operation} with HTTP {status}")
        errors = answer.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) and errors else {}
            message = first.get("message") if isinstance(first, dict) else None
            raise SyncError(f"EC-CUBE refused {operation}: {str(message or errors)[:300]}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise _Again(f"EC-CUBE's answer to {operation} has no data")
        return data


class _Refused(Exception):
    """The API turned the access token down (401)."""
