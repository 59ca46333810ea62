"""An HTTP client for the MiniShop REST API that speaks omnicrm's error language.

Every failure leaves here as one of the errors in :mod:`omnicrm.errors`, because that is
what tells the sync engine what to do: retry (``TransientError``), wait
(``RateLimitedError``), stop and ask for new credentials (``AuthError``), or stop and
name the bad record (``DataError``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from omnicrm import Customer, Order, error_for_status
from omnicrm.errors import DataError, RateLimitedError, SyncError, TransientError
from omnicrm_minishop.mapping import customer_from_minishop, order_from_minishop

Resource = Literal["customers", "orders"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: raw records and the token of the next page, if any."""

    records: list[dict[str, Any]]
    next_page_token: str | None


class MiniShopClient:
    """Reads customers and orders from one MiniShop shop.

    ``on_rate_limit``, when given, is called with the seconds to wait when MiniShop answers
    429 with a ``Retry-After`` of at most ``max_inline_wait``; the page is then asked again
    (up to ``rate_limit_retries`` times). Longer waits, or no callback, raise
    :class:`~omnicrm.errors.RateLimitedError` for the engine to schedule.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = 100,
        timeout: float = 30.0,
        on_rate_limit: Callable[[float], None] | None = None,
        max_inline_wait: float = 30.0,
        rate_limit_retries: int = 3,
        logger: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.timeout = timeout
        self._on_rate_limit = on_rate_limit
        self._max_inline_wait = max_inline_wait
        self._rate_limit_retries = rate_limit_retries
        self._log = logger or _log
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v1/",
            headers={
                "X-Api-Key": api_key,
                "Accept": "application/json",
                "User-Agent": "omnicrm-minishop/0.1",
            },
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"MiniShopClient({self.base_url!r})"  # never the key

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

    # -- records

    def customers(self, updated_since: dt.datetime | None = None) -> Iterator[Customer]:
        """Every customer with ``updated_at >= updated_since``, ascending."""
        for payload in self.iter_records("customers", updated_since=updated_since):
            yield customer_from_minishop(payload)

    def orders(self, updated_since: dt.datetime | None = None) -> Iterator[Order]:
        """Every order with ``updated_at >= updated_since``, ascending, with its lines."""
        for payload in self.iter_records("orders", updated_since=updated_since):
            yield order_from_minishop(payload)

    def iter_records(
        self, resource: Resource, *, updated_since: dt.datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Raw records of ``resource`` from ``updated_since`` on, following page tokens."""
        token: str | None = None
        pages = 0
        while True:
            page = self.get_page(resource, updated_since=updated_since, page_token=token)
            pages += 1
            self._log.debug("minishop: %s page %d: %d records", resource, pages, len(page.records))
            yield from page.records
            if page.next_page_token is None:
                return
            if page.next_page_token == token:
                # Asking again would loop for ever; better to stop the run and say so.
                raise SyncError(f"MiniShop returned the same {resource} page token twice")
            token = page.next_page_token

    # -- one request

    def get_page(
        self,
        resource: Resource,
        *,
        updated_since: dt.datetime | None = None,
        page_token: str | None = None,
        limit: int | None = None,
    ) -> Page:
        """One page of ``resource``; waits out short rate limits if allowed to."""
        params = {"limit": str(limit or self.page_size)}
        if updated_since is not None:
            params["updated_since"] = updated_since.isoformat()
        if page_token is not None:
            params["page_token"] = page_token
        attempt = 0
        while True:
            try:
                return self._get_page(resource, params)
            except RateLimitedError as exc:
                wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
                if (
                    self._on_rate_limit is None
                    or attempt >= self._rate_limit_retries
                    or wait > self._max_inline_wait
                ):
                    raise
                attempt += 1
                self._log.info("minishop: rate limited, waiting %.1fs", wait)
                self._on_rate_limit(wait)

    def _get_page(self, resource: Resource, params: Mapping[str, str]) -> Page:
        body = self._get_json(resource, params)
        records = body.get(resource) if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError(f"MiniShop's {resource} answer has no list of {resource} objects")
        token = body.get("next_page_token")
        if token is not None and (not isinstance(token, str) or not token):
            raise DataError(f"MiniShop's {resource} answer has a bad next_page_token")
        return Page(records, token)

    def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"MiniShop did not answer within {self.timeout:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.RequestError as exc:
            raise TransientError(f"cannot reach MiniShop at {self.base_url}: {exc}") from exc

        # 401/403 a bad key, 404 a wrong base_url, 429 and 5xx worth a retry; a 400 means
        # this plugin sent something MiniShop does not accept: a bug, which no retry fixes.
        error = error_for_status(
            response, "MiniShop", detail=_message(response), config_key="base_url"
        )
        if error is not None:
            raise error
        try:
            return response.json()
        except ValueError as exc:
            # Truncated bodies happen when a proxy drops the connection mid-answer.
            raise TransientError(
                f"MiniShop sent malformed JSON ({len(response.content)} bytes; truncated?)"
            ) from exc


def _message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return str(error["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no message"
