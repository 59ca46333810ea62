"""An httpx client for Shopify's Admin GraphQL API that paces itself on the cost budget.

Shopify limits an app on a shop by *query cost*: a leaky bucket of points
(``throttleStatus``: ``maximumAvailable``, ``currentlyAvailable``, ``restoreRate``) from
which every request's ``requestedQueryCost`` must be available up front; the difference to
its ``actualQueryCost`` is refunded afterwards. Every response reports the bucket, so the
client waits before each request exactly until the bucket, refilled at ``restoreRate``,
holds the cost it expects the request to have, and never needs to be told ``THROTTLED``.
Waits go through the ``on_rate_limit`` callback (``StreamContext.wait_for_rate_limit``),
so they are counted on the sync run.

A request's cost is estimated from its document and variables by Shopify's documented
rules (:func:`estimate_cost`), then scaled by how the last request of the same operation
compared with its estimate. The same estimate sizes pages (:meth:`ShopifyClient.fit`) so
that no request comes near Shopify's limit of 1,000 points (``MAX_COST_EXCEEDED``).

Every failure leaves as one of :mod:`omnicrm.errors`, which tells the engine what to do:

* ``THROTTLED`` in a 200 body: waited out here, then ``RateLimitedError`` if it persists;
* HTTP 429: short ``Retry-After`` waited out here, long ones ``RateLimitedError``;
* HTTP 5xx, timeouts, connection errors, malformed JSON, ``INTERNAL_SERVER_ERROR``:
  retried with exponential backoff, then ``TransientError``;
* HTTP 401/403 and ``ACCESS_DENIED``: ``AuthError`` (naming the missing scope);
* HTTP 404: ``ConfigError`` (no such shop);
* any other GraphQL error: ``SyncError`` with Shopify's message.

The access token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
)

from omnicrm import error_for_status
from omnicrm.errors import (
    AuthError,
    ConfigError,
    RateLimitedError,
    SyncError,
    TransientError,
)
from omnicrm.plugins.shopify.queries import API_VERSION, OPERATIONS
from omnicrm.plugins.shopify.settings import ShopifySettings

_log = logging.getLogger(__name__)

SINGLE_QUERY_LIMIT = 1000
"""Shopify refuses a query whose requested cost exceeds this (``MAX_COST_EXCEEDED``)."""

COST_CEILING = 0.5
"""A page's requested cost stays under this share of the bucket the shop reports, so a
request never waits for more than half a bucket (and, before any report, under this
share of :data:`SINGLE_QUERY_LIMIT`)."""

REFILL_SECONDS = 10.0
"""Nor above what the shop's restore rate refills in this many seconds: an empty bucket
never holds a page back longer than that."""

MUTATION_COST = 10  # Shopify's documented cost of a mutation

USER_AGENT = "omnicrm-shopify/0.1"


# -- the cost budget


@dataclass
class ThrottleStatus:
    """The bucket as one response reported it; ``at`` is our monotonic clock then."""

    maximum: float
    available: float
    restore_rate: float
    at: float


_MARGIN = 0.005  # seconds: covers clock granularity on either side


class Budget:
    """What is known of Shopify's bucket for one app on one shop.

    Shared by every client of the same shop in this process, so the orders stream
    starts where the customers stream left the bucket instead of guessing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.status: ThrottleStatus | None = None

    def update(self, status: ThrottleStatus) -> None:
        with self._lock:
            # Responses can arrive out of order; the newer report wins.
            if self.status is None or status.at >= self.status.at:
                self.status = status

    def available(self, now: float) -> float | None:
        """Points available at ``now``, extrapolated from the last report."""
        status = self.status
        if status is None:
            return None
        refill = max(0.0, now - status.at) * status.restore_rate
        return min(status.maximum, status.available + refill)

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` points are available (0 when they are, or unknown)."""
        status = self.status
        available = self.available(now)
        if status is None or available is None or status.restore_rate <= 0:
            return 0.0
        # A request can never cost more than the bucket holds; wait for a full one.
        needed = min(cost, status.maximum)
        if available >= needed:
            return 0.0
        return (needed - available) / status.restore_rate + _MARGIN

    @property
    def maximum(self) -> float | None:
        return self.status.maximum if self.status else None


_BUDGETS: dict[str, Budget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(key: str) -> Budget:
    """The shared :class:`Budget` of the shop at ``key`` (its Admin API origin)."""
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(key, Budget())


# -- estimating a request's cost before sending it


@dataclass(frozen=True)
class _Document:
    operation: OperationDefinitionNode
    fragments: Mapping[str, FragmentDefinitionNode]


@cache
def _document(name: str) -> _Document:
    node: DocumentNode = parse(OPERATIONS[name])
    operations = [d for d in node.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
    return _Document(operations[0], fragments)


def _size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    """The page size of a connection field (its ``first``/``last``), or None."""
    for argument in field.arguments or ():
        if argument.name.value not in ("first", "last"):
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            return int(given) if isinstance(given, int) else 0
    return None


def _cost(selection: SelectionSetNode, doc: _Document, variables: Mapping[str, Any]) -> int:
    """Shopify's documented rules: scalars and enums 0, objects 1, a connection 2 plus
    its page size times the cost of one node (pageInfo rides along for free)."""
    total = 0
    for node in selection.selections:
        if isinstance(node, FragmentSpreadNode):
            total += _cost(doc.fragments[node.name.value].selection_set, doc, variables)
        elif isinstance(node, InlineFragmentNode):
            total += _cost(node.selection_set, doc, variables)
        elif isinstance(node, FieldNode) and node.selection_set is not None:
            size = _size(node, variables)
            if size is None:
                total += 1 + _cost(node.selection_set, doc, variables)
            else:
                total += 2 + size * _node_cost(node.selection_set, doc, variables)
    return total


def _node_cost(connection: SelectionSetNode, doc: _Document, variables: Mapping[str, Any]) -> int:
    cost = 0
    for node in connection.selections:
        if not isinstance(node, FieldNode) or node.selection_set is None:
            continue
        if node.name.value == "nodes":
            cost = max(cost, 1 + _cost(node.selection_set, doc, variables))
        elif node.name.value == "edges":
            cost = max(cost, _cost(node.selection_set, doc, variables))
    return cost


def estimate_cost(operation: str, variables: Mapping[str, Any] | None = None) -> int:
    """A static estimate of ``operation``'s requested cost with ``variables``."""
    doc = _document(operation)
    if doc.operation.operation is OperationType.MUTATION:
        return MUTATION_COST
    return max(1, _cost(doc.operation.selection_set, doc, variables or {}))


# -- access tokens


class _Reroute(httpx.BaseTransport):
    """Sends requests meant for ``https://SHOP.myshopify.com`` to a sandbox's origin.

    shopifyapp builds the token endpoint from the shop name; a sandbox (``api_url``)
    answers on loopback instead. Only used when ``api_url`` is set.
    """

    def __init__(self, target: str) -> None:
        self._target = httpx.URL(target)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        prefix = self._target.path.rstrip("/")
        request.url = request.url.copy_with(
            scheme=self._target.scheme,
            host=self._target.host,
            port=self._target.port,
            path=prefix + request.url.path,
        )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class _Token:
    value: str
    expires: float | None  # monotonic


_TOKENS: dict[tuple[str, str, str], _Token] = {}
_TOKENS_LOCK = threading.Lock()


def _exchange_client_credentials(settings: ShopifySettings) -> _Token:
    """Ask Shopify for a token with the app's client credentials (via shopifyapp)."""
    from shopify_app import ShopifyApp

    assert settings.client_id is not None and settings.client_secret is not None
    app = ShopifyApp(settings.client_id, settings.client_secret.get_secret_value())
    transport = _Reroute(settings.base_url) if settings.api_url else None
    try:
        with httpx.Client(transport=transport, timeout=settings.timeout) as http:
            result = app.exchange_using_client_credentials(
                settings.domain.removesuffix(".myshopify.com"), http_client=http
            )
    except ValueError as exc:  # a 200 whose body is not JSON
        raise TransientError(
            f"Shopify's token endpoint for {settings.domain} sent malformed JSON"
        ) from exc
    if result.ok and result.access_token is not None and result.access_token.token:
        expires = None
        if result.access_token.expires:
            stamp = dt.datetime.fromisoformat(result.access_token.expires)
            left = (stamp - dt.datetime.now(dt.UTC)).total_seconds()
            expires = time.monotonic() + left - 60  # renew a minute early
        return _Token(result.access_token.token, expires)
    code = result.log.code
    if code == "network_error":
        raise TransientError(f"cannot reach Shopify's token endpoint for {settings.domain}")
    if code == "invalid_client":
        raise AuthError(
            f"Shopify refused the app's client credentials for {settings.domain} "
            "(invalid_client): check client_id and client_secret, and that the app is "
            "installed on the shop"
        )
    raise AuthError(
        f"Shopify refused the client-credentials exchange for {settings.domain} ({code}); "
        "check client_id and client_secret in the connection's settings"
    )


class _Credentials:
    """The access token: given in the settings, or exchanged and cached per app."""

    def __init__(self, settings: ShopifySettings) -> None:
        self._settings = settings
        self._key = (settings.base_url, settings.domain, settings.client_id or "")

    @property
    def renewable(self) -> bool:
        return self._settings.access_token is None

    def token(self) -> str:
        if self._settings.access_token is not None:
            return self._settings.access_token.get_secret_value()
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._key)
            if cached and (cached.expires is None or cached.expires > time.monotonic()):
                return cached.value
            fresh = _exchange_client_credentials(self._settings)
            _TOKENS[self._key] = fresh
            return fresh.value

    def forget(self, token: str) -> None:
        """Drop ``token`` from the cache (Shopify refused it), unless already replaced."""
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._key)
            if cached is not None and cached.value == token:
                del _TOKENS[self._key]


# -- the client


class _Again(Exception):
    """An attempt that should be retried: ``kind`` says why (and how to wait)."""

    def __init__(
        self,
        kind: Literal["transient", "limited", "throttled", "renew"],
        message: str,
        *,
        hint: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint  # 429: its Retry-After in seconds; THROTTLED: the requested cost


@dataclass(frozen=True)
class Response:
    """One GraphQL answer: its ``data`` and what it cost."""

    data: dict[str, Any]
    requested_cost: float | None
    actual_cost: float | None


class ShopifyClient:
    """Runs the documents of :mod:`~omnicrm.plugins.shopify.queries` against one shop.

    ``on_rate_limit(seconds)`` waits for the cost budget (and is counted on the run);
    ``sleep(seconds)`` waits out transient failures. Both default to ``time.sleep``.
    """

    def __init__(
        self,
        settings: ShopifySettings,
        *,
        on_rate_limit: Callable[[float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        retries: int = 3,
        throttle_retries: int = 5,
        max_inline_wait: float = 30.0,
        backoff: float = 0.5,
    ) -> None:
        self.settings = settings
        self.endpoint = f"{settings.base_url}/admin/api/{API_VERSION}/graphql.json"
        self.budget = budget_for(settings.base_url)
        self._credentials = _Credentials(settings)
        self._on_rate_limit = on_rate_limit or time.sleep
        self._sleep = sleep
        self._log = logger or _log
        self._retries = retries
        self._throttle_retries = throttle_retries
        self._max_inline_wait = max_inline_wait
        self._backoff = backoff
        self._ratio: dict[str, float] = {}  # observed / estimated cost, per operation
        self._http = httpx.Client(
            timeout=settings.timeout,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )
        self.requests = 0

    def __repr__(self) -> str:
        return f"ShopifyClient({self.settings.domain!r})"  # never the token

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

    # -- costs and page sizes

    def expected_cost(self, operation: str, variables: Mapping[str, Any] | None = None) -> float:
        """The cost ``operation`` is expected to request: the static estimate, scaled by
        how the last request of the same operation compared with its estimate."""
        return estimate_cost(operation, variables) * self._ratio.get(operation, 1.0)

    def ceiling(self) -> float:
        """The highest cost a page is sized to: as much of the bucket the shop reports
        (``maximumAvailable``, ``restoreRate``) as a request can ask for without long
        waits, up to Shopify's single-query limit. Unused points are refunded, so a page
        sized to the bucket, not to a worst case, costs nothing extra."""
        status = self.budget.status
        if status is None:
            return COST_CEILING * SINGLE_QUERY_LIMIT
        return max(
            1.0,
            min(
                float(SINGLE_QUERY_LIMIT),
                COST_CEILING * status.maximum,
                REFILL_SECONDS * status.restore_rate,
            ),
        )

    def fit(
        self,
        operation: str,
        variables: Mapping[str, Any],
        name: str = "first",
        *,
        desired: int,
    ) -> int:
        """The largest ``variables[name]`` up to ``desired`` whose cost stays under the
        ceiling (at least 1): cost is linear in a page size, so two estimates tell."""
        if self.budget.status is None:
            # The bucket's size decides what fits; one cheap query tells it.
            self.execute("AccessScopes")
        base = self.expected_cost(operation, {**variables, name: 0})
        per_item = self.expected_cost(operation, {**variables, name: 1}) - base
        if per_item <= 0:
            return desired
        fits = math.floor((self.ceiling() - base) / per_item)
        return max(1, min(desired, fits))

    # -- requests

    def execute(self, operation: str, variables: Mapping[str, Any] | None = None) -> Response:
        """Run the named document with ``variables``; wait, retry and translate errors."""
        document = OPERATIONS[operation]  # only the documents validated against the schema
        variables = dict(variables or {})
        payload = {"query": document, "variables": variables, "operationName": operation}
        expected = self.expected_cost(operation, variables)
        failures = throttled = limited = 0
        renewed = False
        while True:
            wait = self.budget.wait_for(expected, time.monotonic())
            if wait > 0:
                self._on_rate_limit(wait)
            try:
                return self._attempt(operation, variables, payload, renew=not renewed)
            except _Again as again:
                if again.kind == "renew":
                    renewed = True
                elif again.kind == "transient":
                    failures = self._transient(failures, again.message, again.__cause__)
                elif again.kind == "limited":  # HTTP 429
                    limited += 1
                    wait = again.hint if again.hint is not None else 2.0**limited
                    if limited > 3 or wait > self._max_inline_wait:
                        raise RateLimitedError(again.message, retry_after=wait) from None
                    self._log.info("shopify: %s; waiting %.1fs", again.message, wait)
                    self._on_rate_limit(wait)
                else:  # THROTTLED: the loop's pacing waits for the refill it reported
                    throttled += 1
                    expected = max(expected, again.hint or expected)
                    self._throttled(operation, expected, throttled)

    def _attempt(
        self,
        operation: str,
        variables: Mapping[str, Any],
        payload: Mapping[str, Any],
        *,
        renew: bool,
    ) -> Response:
        """One request: its answer, an omnicrm error, or :class:`_Again` to retry."""
        token = self._credentials.token()
        self.requests += 1
        try:
            reply = self._http.post(
                self.endpoint, json=payload, headers={"X-Shopify-Access-Token": token}
            )
        except httpx.TimeoutException as exc:
            raise _Again(
                "transient",
                f"Shopify ({self.settings.domain}) did not answer {operation} within "
                f"{self.settings.timeout:g}s",
            ) from exc
        except httpx.RequestError as exc:
            raise _Again(
                "transient",
                f"cannot reach Shopify at {self.settings.base_url} ({type(exc).__name__}: {exc})",
            ) from exc
        received = time.monotonic()

        status = reply.status_code
        if status == 401 and renew and self._credentials.renewable:
            # A cached token may have been revoked or expired: exchange once more.
            self._credentials.forget(token)
            raise _Again("renew", "token refused")
        if status in (401, 403):
            raise AuthError(self._auth_message(status, reply))
        if status == 404:
            raise ConfigError(
                f"{self.endpoint} does not exist (HTTP 404): is {self.settings.domain} the "
                "shop's myshopify domain, and the app installed on it?",
                key="api_url" if self.settings.api_url else "domain",
            )
        error = error_for_status(reply, "Shopify", action=operation, detail=_message(reply))
        if isinstance(error, RateLimitedError):  # 429: waited out here if short
            raise _Again("limited", str(error), hint=error.retry_after)
        if isinstance(error, TransientError):  # 5xx: retried here with backoff
            raise _Again("transient", str(error))
        if error is not None:
            raise error
        if status != 200:
            raise SyncError(f"Shopify refused {operation} (HTTP {status}: {_message(reply)})")
        try:
            body = reply.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise _Again(
                "transient",
                f"Shopify sent malformed JSON for {operation} ({len(reply.content)} bytes; "
                "truncated?)",
            ) from exc

        requested, actual = self._account(operation, variables, body, received)
        errors = body.get("errors")
        if errors:
            code, message = _first_error(errors)
            if code == "THROTTLED":
                raise _Again("throttled", f"{operation} THROTTLED", hint=requested)
            if code == "ACCESS_DENIED":
                raise AuthError(_scope_message(self.settings.domain, errors, message))
            if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
                raise _Again("transient", f"Shopify failed on {operation} ({code}: {message})")
            raise SyncError(
                f"Shopify refused {operation}: {message}" + (f" ({code})" if code else "")
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise _Again("transient", f"Shopify's answer to {operation} has no data")
        return Response(data, requested, actual)

    def _throttled(self, operation: str, expected: float, times: int) -> None:
        """Decide on a THROTTLED answer: retry (after the refill), or give up."""
        maximum = self.budget.maximum
        if maximum is not None and expected > maximum:
            # No wait can help: the bucket never holds that much.
            raise SyncError(
                f"{operation} costs {expected:.0f} points, more than the shop's whole cost "
                f"bucket ({maximum:.0f})"
            )
        wait = self.budget.wait_for(expected, time.monotonic())
        if times > self._throttle_retries:
            raise RateLimitedError(
                f"Shopify kept throttling {operation} ({times} times)",
                retry_after=max(wait, 1.0),
            )
        self._log.warning("shopify: %s THROTTLED; waiting %.2fs", operation, wait)
        if self.budget.status is None:  # no throttleStatus to go by: back off blindly
            self._on_rate_limit(2.0**times)

    def _transient(self, failures: int, message: str, cause: BaseException | None = None) -> int:
        """Count a transient failure: back off and return the new count, or raise."""
        failures += 1
        if failures > self._retries:
            raise TransientError(f"{message}; gave up after {failures} attempts") from cause
        delay = self._backoff * 2 ** (failures - 1) * random.uniform(0.75, 1.25)
        self._log.warning(
            "shopify: %s; retry %d/%d in %.1fs", message, failures, self._retries, delay
        )
        self._sleep(delay)
        return failures

    def _account(
        self, operation: str, variables: Mapping[str, Any], body: Mapping[str, Any], at: float
    ) -> tuple[float | None, float | None]:
        """Read ``extensions.cost``: update the budget and the operation's calibration.
        Returns the requested and actual cost."""
        extensions = body.get("extensions")
        cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
        if not isinstance(cost, Mapping):
            return None, None
        throttle = cost.get("throttleStatus")
        if isinstance(throttle, Mapping):
            try:
                # Stamped when the answer arrived: Shopify read the bucket a little
                # earlier, so the refill is underestimated and the wait errs long.
                self.budget.update(
                    ThrottleStatus(
                        maximum=float(throttle["maximumAvailable"]),
                        available=float(throttle["currentlyAvailable"]),
                        restore_rate=float(throttle["restoreRate"]),
                        at=at,
                    )
                )
            except (KeyError, TypeError, ValueError):
                self._log.warning("shopify: unreadable throttleStatus on %s", operation)
        requested = _number(cost.get("requestedQueryCost"))
        if requested is not None and requested > 0:
            self._ratio[operation] = requested / estimate_cost(operation, variables)
        return requested, _number(cost.get("actualQueryCost"))

    def _auth_message(self, status: int, reply: httpx.Response) -> str:
        detail = _message(reply)
        scope = _scope_in(detail)
        if scope:
            return (
                f"the Shopify app on {self.settings.domain} lacks the {scope} scope "
                f"(HTTP {status}: {detail}); grant it in the app's settings"
            )
        what = "access token" if self.settings.access_token else "client credentials"
        return (
            f"Shopify rejected the {what} for {self.settings.domain} (HTTP {status}: "
            f"{detail}); check the connection's settings"
        )

    # -- downloads (bulk operation results)

    @contextmanager
    def download(self, url: str) -> Iterator[Iterator[bytes]]:
        """Stream the file at ``url`` (a bulk operation's signed link) in chunks.

        The link carries its own signature and lives on another host: the access token
        is never sent with it.
        """
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(
                        self.settings.timeout, read=max(60.0, self.settings.timeout)
                    ),
                    headers={"User-Agent": USER_AGENT},
                    follow_redirects=True,
                ) as http,
                http.stream("GET", url) as reply,
            ):
                if reply.status_code >= 400:
                    raise TransientError(
                        f"cannot download the bulk operation's result from Shopify "
                        f"(HTTP {reply.status_code})"
                    )
                yield _chunks(reply)
        except httpx.TimeoutException as exc:
            raise TransientError("the bulk operation's result download timed out") from exc
        except httpx.RequestError as exc:
            raise TransientError(
                f"the bulk operation's result download failed ({type(exc).__name__}: {exc})"
            ) from exc


def _chunks(reply: httpx.Response) -> Iterator[bytes]:
    try:
        yield from reply.iter_bytes()
    except httpx.TimeoutException as exc:
        raise TransientError("the bulk operation's result download timed out") from exc
    except httpx.RequestError as exc:
        # A connection dropped mid-body: the file is incomplete.
        raise TransientError(
            f"the bulk operation's result download broke off ({type(exc).__name__})"
        ) from exc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _first_error(errors: Any) -> tuple[str | None, str]:
    """The code and message of the first GraphQL error (``errors`` may be a string)."""
    if isinstance(errors, str):
        return None, errors
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, Mapping):
            extensions = first.get("extensions")
            code = extensions.get("code") if isinstance(extensions, Mapping) else None
            messages = "; ".join(
                str(e.get("message", "")) for e in errors[:3] if isinstance(e, Mapping)
            )
            return (str(code) if code else None), messages or "no message"
        return None, str(first)
    return None, str(errors)


_SCOPE = re.compile(r"\b((?:read|write|unauthenticated_read|unauthenticated_write)_[a-z_]+)")


def _scope_in(text: str) -> str | None:
    match = _SCOPE.search(text)
    return match.group(1) if match else None


def _scope_message(shop: str, errors: Any, message: str) -> str:
    scope = None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        extensions = error.get("extensions")
        required = extensions.get("requiredAccess") if isinstance(extensions, Mapping) else None
        scope = _scope_in(str(required or "")) or _scope_in(str(error.get("message", "")))
        if scope:
            break
    if scope:
        return (
            f"the Shopify app on {shop} lacks the {scope} scope ({message}); grant it in "
            "the app's settings (Shopify admin > Settings > Apps and sales channels)"
        )
    return f"Shopify denied access on {shop}: {message}"


def _message(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.reason_phrase or "no message"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors is None:
        return reply.reason_phrase or "no message"
    return _first_error(errors)[1][:300]


def search_since(since: dt.datetime | None) -> str:
    """Shopify search syntax for ``updated_at >= since`` (empty: everything).

    Floored to the second, the precision Shopify keeps, so the bound stays inclusive.
    """
    if since is None:
        return ""
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    stamp = since.astimezone(dt.UTC).replace(microsecond=0)
    return f"updated_at:>='{stamp:%Y-%m-%dT%H:%M:%SZ}'"
