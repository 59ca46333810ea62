"""HTTP access to one Smaregi contract: the token, paging, waiting and retrying.

* The token: OAuth2 client credentials at ``{id_url}/app/{contract_id}/token`` (HTTP Basic
  with the app's client id and secret, ``grant_type=client_credentials`` and the scopes of
  :data:`~.settings.SCOPES`); renewed a minute before ``expires_in`` runs out, and once
  more if the API answers 401 to a token it handed out.
* Paging: ``limit`` and ``page`` (from 1) until a page comes back short.
* HTTP 429: its ``Retry-After`` waited out (up to a minute, three times), then
  :class:`~omnicrm.errors.RateLimitedError`.
* HTTP 5xx, timeouts, connection errors and bodies that are not JSON: retried with
  exponential backoff ``retries`` times, then :class:`~omnicrm.errors.TransientError`.
* 400 (a query Smaregi refuses, e.g. a range over 31 days): :class:`SyncError` naming
  Smaregi's own message; 401/403: :class:`AuthError`.

The secret goes only into the token request; neither it nor a token is ever logged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson

from omnicrm import error_for_status
from omnicrm.errors import AuthError, RateLimitedError, SyncError, TransientError
from omnicrm.plugins.pos.smaregi.settings import SCOPES, SmaregiSettings

log = logging.getLogger("omnicrm.channel.smaregi")

_RENEW_EARLY = 60.0  # seconds before a token's expiry it is renewed
_MAX_INLINE_WAIT = 60.0  # a longer Retry-After ends the run (the next one resumes)


def _detail(reply: httpx.Response) -> str:
    """Smaregi's own message from an error body (``title``/``detail``), never values."""
    try:
        body = reply.json()
    except ValueError:
        return reply.reason_phrase
    if isinstance(body, Mapping):
        parts = [str(body[k])[:300] for k in ("title", "detail") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return reply.reason_phrase


class _Again(Exception):
    """One attempt failed in a way another may not: ``kind`` says how to wait."""

    def __init__(self, kind: str, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.wait = kind, message, wait


class SmaregiClient:
    """Reads one contract's POS API. Use as a context manager (it holds connections)."""

    def __init__(
        self,
        settings: SmaregiSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_rate_limit: Callable[[float], None] | None = None,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._on_rate_limit = on_rate_limit or sleep
        self._backoff = backoff
        self._http = httpx.Client(timeout=settings.timeout, transport=transport)
        self._token: str | None = None
        self._expires = 0.0  # monotonic
        self.requests = 0
        self.tokens = 0
        """Tokens obtained so far (a renewal counts)."""

    def __enter__(self) -> SmaregiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the token

    def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._expires:
            return self._token
        settings = self.settings
        try:
            reply = self._http.post(
                settings.token_url,
                data={"grant_type": "client_credentials", "scope": " ".join(SCOPES)},
                auth=(settings.client_id, settings.client_secret.get_secret_value()),
            )
        except httpx.TimeoutException as exc:
            raise _Again("transient", "Smaregi's token endpoint did not answer in time") from exc
        except httpx.RequestError as exc:
            raise _Again(
                "transient", f"cannot reach Smaregi's token endpoint ({type(exc).__name__})"
            ) from exc
        if reply.status_code in (400, 401, 403):
            raise AuthError(
                f"Smaregi refused the app's client credentials for contract "
                f"{settings.contract_id} ({_detail(reply)}): check client_id, client_secret "
                f"and that the app is installed with the scopes {', '.join(SCOPES)}"
            )
        self._check(reply, "the token request")
        body = self._json(reply.content, "the token request")
        token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not token:
            raise _Again("transient", "Smaregi's token answer has no access_token")
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._token = token
        self._expires = time.monotonic() + max(0.0, lifetime - _RENEW_EARLY)
        self.tokens += 1
        return token

    # -- requests

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``{base_url}{path}`` with ``params``: the JSON answer, waited and retried."""
        return self._fetch(path, params or {}, parse=True)

    def _fetch(
        self, path: str, params: Mapping[str, Any], *, parse: bool, failures: int = 0
    ) -> Any:
        """The answer to GET ``path`` (parsed, or its body when not ``parse``), waited and
        retried; ``failures`` attempts already failed."""
        limited = 0
        renewed = False
        what = f"GET {path}"
        while True:
            try:
                return self._attempt(path, params, what, renew=not renewed, parse=parse)
            except _Again as again:
                if again.kind == "renew":
                    renewed = True
                elif again.kind == "limited":
                    limited += 1
                    wait = again.wait if again.wait is not None else 2.0**limited
                    if limited > 3 or wait > _MAX_INLINE_WAIT:
                        raise RateLimitedError(again.message, retry_after=wait) from None
                    log.info("smaregi: %s; waiting %.1fs", again.message, wait)
                    self._on_rate_limit(wait)
                else:
                    failures += 1
                    self._back_off(again, failures)

    def _back_off(self, again: _Again, failures: int) -> None:
        """Wait before the next attempt after ``failures`` transient ones, or give up."""
        if failures > self.settings.retries:
            raise TransientError(
                f"{again.message}; gave up after {failures} attempts"
            ) from again.__cause__
        delay = self._backoff * 2 ** (failures - 1) * random.uniform(0.75, 1.25)
        log.warning(
            "smaregi: %s; retry %d/%d in %.1fs",
            again.message,
            failures,
            self.settings.retries,
            delay,
        )
        self._sleep(delay)

    def _attempt(
        self, path: str, params: Mapping[str, Any], what: str, *, renew: bool, parse: bool
    ) -> Any:
        token = self._access_token()
        self.requests += 1
        try:
            reply = self._http.get(
                self.settings.base_url + path,
                params=dict(params),
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TimeoutException as exc:
            raise _Again(
                "transient", f"Smaregi did not answer {what} within {self.settings.timeout:g}s"
            ) from exc
        except httpx.RequestError as exc:
            raise _Again(
                "transient", f"cannot reach Smaregi for {what} ({type(exc).__name__})"
            ) from exc
        if reply.status_code == 401 and renew:
            self._token = None  # expired or revoked early: one fresh token, one more try
            raise _Again("renew", "token refused")
        self._check(reply, what)
        return self._json(reply.content, what) if parse else reply.content

    def _check(self, reply: httpx.Response, what: str) -> None:
        if reply.status_code == 200:
            return  # the error body's message is read only for an error: a page is large
        error = error_for_status(
            reply, "Smaregi", action=what, detail=_detail(reply), config_key="contract_id"
        )
        if isinstance(error, RateLimitedError):
            raise _Again("limited", str(error), error.retry_after)
        if isinstance(error, TransientError):
            raise _Again("transient", str(error))
        if error is not None:
            raise error
        if reply.status_code != 200:
            raise SyncError(f"Smaregi answered {what} with HTTP {reply.status_code}")

    @staticmethod
    def _json(content: bytes, what: str) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise _Again(
                "transient",
                f"Smaregi sent malformed JSON for {what} ({len(content)} bytes; truncated?)",
            ) from exc

    def pages(self, path: str, params: Mapping[str, Any], limit: int) -> Iterator[list[Any]]:
        """Every page of a list, ``limit`` a page, until one comes back short.

        While the caller works on a full page the next is already being fetched (one
        request in flight at a time, from one worker thread), so the platform's time to
        answer overlaps the mapping and the store writes instead of adding to them. The
        worker only fetches: a body is parsed here, in the thread that goes on to use
        its records, so the objects are made and read by one thread.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="smaregi-page") as ahead:
            page = 1
            query = {**params, "limit": limit, "page": page}
            coming = ahead.submit(self._fetch, path, query, parse=False)
            while True:
                items = self._items(path, query, coming.result())
                full = len(items) >= limit
                if full:
                    page += 1
                    query = {**params, "limit": limit, "page": page}
                    coming = ahead.submit(self._fetch, path, query, parse=False)
                if items:
                    yield items
                if not full:
                    return

    def _items(self, path: str, query: Mapping[str, Any], body: bytes) -> list[Any]:
        """The records of one page's ``body``; a body that is not JSON counts as a failed
        attempt, and the page is asked for again."""
        what = f"GET {path}"
        try:
            items = self._json(body, what)
        except _Again as again:
            self._back_off(again, 1)
            items = self._fetch(path, query, parse=True, failures=1)
        if not isinstance(items, list):
            raise SyncError(f"Smaregi's answer to GET {path} is not a list")
        return items
