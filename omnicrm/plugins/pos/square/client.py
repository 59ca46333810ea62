"""An httpx client for Square's REST API (Square-Version 2025-08-20).

Every failure leaves as one of :mod:`omnicrm.errors`, which tells the engine what to do:

* HTTP 429: a short ``Retry-After`` is waited out here, a long one (or a fourth in a
  row) is :class:`~omnicrm.errors.RateLimitedError`;
* HTTP 5xx, timeouts, dropped connections, malformed JSON: retried with exponential
  backoff, then :class:`~omnicrm.errors.TransientError`;
* HTTP 401/403: :class:`~omnicrm.errors.AuthError`;
* an expired or foreign cursor (``INVALID_CURSOR``): :class:`CursorExpired`, which the
  readers answer by searching again from their ``updated_at`` watermark;
* any other 4xx: :class:`~omnicrm.errors.SyncError` naming Square's code and field.

The access token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from omnicrm import error_for_status
from omnicrm.errors import AuthError, RateLimitedError, SyncError, TransientError
from omnicrm.plugins.pos.square.settings import API_VERSION, SquareSettings

USER_AGENT = "omnicrm-square/0.1"


class CursorExpired(SyncError):
    """Square no longer accepts a page cursor (they expire): search again from a watermark."""


class SquareClient:
    """Square's API for one connection: JSON in and out, waits and retries included."""

    def __init__(
        self,
        settings: SquareSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_rate_limit: Callable[[float], None] | None = None,
        logger: logging.Logger | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        max_inline_wait: float = 30.0,
    ) -> None:
        self.settings = settings
        self.requests = 0
        self._sleep = sleep
        self._on_rate_limit = on_rate_limit or sleep
        self._log = logger or logging.getLogger("omnicrm.channel.square")
        self._retries, self._backoff, self._max_inline_wait = retries, backoff, max_inline_wait
        self._http = httpx.Client(
            base_url=settings.api_url,
            timeout=settings.timeout,
            headers={
                "Square-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
        )

    def __repr__(self) -> str:
        return f"SquareClient({self.settings.api_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests

    def get(self, path: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """GET ``path``; None for a 404 when ``missing_ok``."""
        return self._call("GET", path, None, missing_ok=missing_ok)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path``."""
        answer = self._call("POST", path, body, missing_ok=False)
        assert answer is not None
        return answer

    def search(self, path: str, body: Mapping[str, Any], key: str) -> Iterator[list[Any]]:
        """The pages of a search: each page's ``key`` list, following ``cursor``.

        Raises :class:`CursorExpired` when Square refuses a cursor it gave."""
        cursor: str | None = None
        while True:
            page = self.post(path, {**body, "cursor": cursor} if cursor else body)
            items = page.get(key) or []
            if not isinstance(items, list):
                raise SyncError(f"Square's answer to {path} has no {key} list")
            yield items
            following = page.get("cursor")
            if not following:
                return
            if following == cursor:
                raise SyncError(f"Square returned the same {path} cursor twice")
            cursor = str(following)

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None, *, missing_ok: bool
    ) -> dict[str, Any] | None:
        failures = limited = 0
        while True:
            token = self.settings.access_token.get_secret_value()
            self.requests += 1
            try:
                reply = self._http.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TimeoutException as exc:
                failures = self._again(
                    failures, f"Square did not answer {path} within {self.settings.timeout:g}s", exc
                )
                continue
            except httpx.RequestError as exc:
                failures = self._again(
                    failures,
                    f"cannot reach Square at {self.settings.api_url} ({type(exc).__name__})",
                    exc,
                )
                continue
            if reply.status_code == 404 and missing_ok:
                return None
            if reply.status_code == 429:
                limited += 1
                error = error_for_status(reply, "Square", action=path)
                assert isinstance(error, RateLimitedError)
                wait = error.retry_after if error.retry_after is not None else 2.0**limited
                if limited > 3 or wait > self._max_inline_wait:
                    raise RateLimitedError(str(error), retry_after=wait)
                self._log.info("square: rate limited on %s; waiting %.1fs", path, wait)
                self._on_rate_limit(wait)
                continue
            if reply.status_code >= 500:
                failures = self._again(
                    failures, f"Square failed on {path} (HTTP {reply.status_code})"
                )
                continue
            if reply.status_code >= 400:
                raise self._refusal(reply, path)
            try:
                answer = reply.json()
                if not isinstance(answer, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                failures = self._again(
                    failures,
                    f"Square sent malformed JSON for {path} ({len(reply.content)} bytes)",
                    exc,
                )
                continue
            return answer

    def _again(self, failures: int, message: str, cause: BaseException | None = None) -> int:
        """Count a transient failure: back off and return the new count, or raise."""
        failures += 1
        if failures > self._retries:
            raise TransientError(f"{message}; gave up after {failures} attempts") from cause
        delay = self._backoff * 2 ** (failures - 1) * random.uniform(0.75, 1.25)
        self._log.warning(
            "square: %s; retry %d/%d in %.1fs", message, failures, self._retries, delay
        )
        self._sleep(delay)
        return failures

    def _refusal(self, reply: httpx.Response, path: str) -> Exception:
        codes, detail = _errors(reply)
        if "INVALID_CURSOR" in codes:
            return CursorExpired(f"Square no longer accepts the {path} cursor ({detail})")
        if reply.status_code in (401, 403):
            return AuthError(
                f"Square refused the access token on {path} (HTTP {reply.status_code}: "
                f"{detail}); check the connection's access_token and its permissions"
            )
        error = error_for_status(reply, "Square", action=path, detail=detail, config_key="api_url")
        return error or SyncError(f"Square refused {path} (HTTP {reply.status_code}: {detail})")


def _errors(reply: httpx.Response) -> tuple[set[str], str]:
    """Square's error codes and a short description (code, field, detail) of the first."""
    try:
        body = reply.json()
    except ValueError:
        return set(), reply.reason_phrase or "no message"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return set(), reply.reason_phrase or "no message"
    codes = {str(e.get("code")) for e in errors if isinstance(e, Mapping)}
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    parts = [str(first.get("code", "")), str(first.get("detail", ""))[:300]]
    if first.get("field"):
        parts.append(f"field {first['field']}")
    return codes, ": ".join(p for p in parts if p)
