"""The storefront endpoint: what the script on a shop's own pages asks and tells.

- ``GET /storefront/omnicrm.js``: the script (docs/onsite.md installs it).
- ``GET /storefront/offers``: the visitor's offers and recommendations.
- ``POST /storefront/events``: impressions, clicks and product views.

A request proves its shop one of two ways (:mod:`omnicrm.engage.onsite.tokens`): through
a Shopify App Proxy (a ``signature`` over the query, keyed with the app's secret; the
``shop`` parameter picks the shop whose ``shopify_connection`` has that domain, and
``logged_in_customer_id`` is the signed-in customer), or with the shop's public ``key``
and, for a signed-in customer, a ``token`` the site's server signed. A forged signature,
key or token is answered 401. Browsers may call from the shop's ``domains`` only (CORS);
a request from another origin is answered 403. Every request names its ``visitor``: the
random id the script keeps in the site's own storage.

Answers carry no personal data but the signed-in visitor's first name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection as SqlConnection
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from omnicrm.app.config import Shop
from omnicrm.app.runtime import Runtime
from omnicrm.app.web import loops
from omnicrm.core.recommend import PurchaseHistory
from omnicrm.engage.onsite import offers as onsite_offers
from omnicrm.engage.onsite import recent, tokens, visitors
from omnicrm.engage.recommend import (
    UnknownProductError,
    for_customer,
    for_product,
    shop_catalogue,
    shop_history,
)
from omnicrm.engage.recommend.merge import Catalogue

log = logging.getLogger("omnicrm.storefront")

MAX_BODY = 16 * 1024
SHOPIFY_CUSTOMER = "gid://shopify/Customer/{}"
CACHE_SECONDS = 60.0  # how long a shop's catalogue and a visitor's recommendations are kept
_CACHE_SIZE = 10_000
READERS = 4  # threads answering from the store at once (SQLAlchemy's pool keeps 5)


@dataclass(frozen=True)
class Caller:
    """Who is asking, as proven: the shop, the origin to allow, the signed-in customer."""

    shop: Shop
    origin: str | None
    connection: str | None = None
    record_ids: tuple[str, ...] = ()


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Miss(Exception):
    """An answer begun on the event loop needs the store: it is answered in a thread."""


class _Ttl:
    """A small cache of recent answers, each kept ``CACHE_SECONDS``; a value is made by
    one thread at a time, the others asking for it meanwhile wait for that one."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._making: dict[tuple[str, ...], threading.Lock] = {}

    def _held(self, key: tuple[str, ...]) -> tuple[bool, Any]:  # the lock held
        held = self._items.get(key)
        if held is not None and time.monotonic() - held[0] < CACHE_SECONDS:
            return True, held[1]
        return False, None

    def get(self, key: tuple[str, ...], make: Callable[[], Any], *, reads: bool = True) -> Any:
        """The value held for ``key``, or made now (:class:`_Miss` if not ``reads``)."""
        with self._lock:
            found, value = self._held(key)
            if found:
                return value
            if not reads:
                raise _Miss
            making = self._making.setdefault(key, threading.Lock())
        # Without this, the first answers after a start (or after a shop's segments or
        # history expire) each read the whole shop again at once, in every reader thread:
        # the slowest answers of a run were all such, in its first second.
        with making:
            with self._lock:
                found, value = self._held(key)
            if found:
                return value
            began = time.monotonic()
            try:
                value = make()
            except BaseException:
                with self._lock:
                    self._making.pop(key, None)
                raise
            with self._lock:  # held and no longer being made: in one step
                if len(self._items) >= _CACHE_SIZE:
                    self._items.clear()
                self._items[key] = (began, value)
                self._making.pop(key, None)
        return value

    def clear(self) -> None:
        """Drop everything held."""
        with self._lock:
            self._items.clear()


Work = Callable[[SqlConnection], int] | visitors.Visit
# A write handed over: the work, the future to answer and its loop, what to run first.
_Pending = tuple[
    Work,
    "Future[int] | asyncio.Future[int]",
    asyncio.AbstractEventLoop | None,
    Callable[[], None] | None,
]


class _GroupWriter:
    """The storefront's writes (a visit, a join, events) of many requests in one
    transaction: a request hands its write over and waits for the commit (its answer is
    sent once what it says happened is stored), while a burst shares one commit, one
    statement of each kind, and SQLite's one writer is taken once per batch, not once
    per request. The thread starts on the first write
    and ends after a quiet while (an app that is dropped leaves no thread behind).
    """

    IDLE = 5.0  # seconds without a write before the thread ends

    def __init__(self, runtime: Runtime, batch: int = 256) -> None:
        self._runtime = runtime
        self._batch = batch
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(
        self,
        work: Work,
        done: Future[int] | asyncio.Future[int],
        loop: asyncio.AbstractEventLoop | None,
        then: Callable[[], None] | None,
    ) -> None:
        """Hand ``work`` over; once it is committed (or failed) ``then`` runs in the
        writer's thread and ``done`` is answered, on ``loop`` for an asyncio future."""
        self._queue.put((work, done, loop, then))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="omnicrm-storefront-writes", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=self.IDLE)]
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # a write arriving now starts a new thread
                        self._thread = None
                        return
                continue
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(items)

    def _write(self, items: list[_Pending]) -> None:
        engine = self._runtime.store.engine
        outcomes: list[tuple[int, BaseException | None]] = []
        try:
            with engine.begin() as conn:
                outcomes = [(n, None) for n in self._run(conn, [item[0] for item in items])]
        except Exception:
            # One bad write must not fail the others: each again on its own.
            outcomes = []
            for work, *_ in items:
                try:
                    with engine.begin() as conn:
                        (result,) = self._run(conn, [work])
                except Exception as exc:
                    outcomes.append((0, exc))
                else:
                    outcomes.append((result, None))
        # Only once committed: the request then reads its own write.
        for *_, then in items:
            if then is not None:
                then()
        # One wake-up of each event loop for all of its requests in the batch.
        loops.answer_each_loop(
            (loop, (done, result, exc))
            for (_, done, loop, _), (result, exc) in zip(items, outcomes, strict=True)
        )

    @staticmethod
    def _run(conn: SqlConnection, works: list[Work]) -> list[int]:
        """Each work's result: the requests' visits with one statement of each kind."""
        results = [0] * len(works)
        at = [k for k, work in enumerate(works) if isinstance(work, visitors.Visit)]
        if at:
            visits = [work for work in works if isinstance(work, visitors.Visit)]
            for k, count in zip(at, visitors.write_visits(conn, visits), strict=True):
                results[k] = count
        for k, work in enumerate(works):
            if not isinstance(work, visitors.Visit):
                results[k] = work(conn)
        return results


_Reply = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


def _cors(origin: str | None) -> list[tuple[bytes, bytes]]:
    """The headers of every answer to a browser's request: the same for every origin
    but the one allowed, and never kept by a cache."""
    headers = [(b"vary", b"Origin"), (b"cache-control", b"no-store")]
    if origin is not None:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
    return headers


def _reply(status: int, body: bytes, origin: str | None) -> _Reply:
    """A JSON answer with the CORS headers (as Starlette's JSONResponse writes them)."""
    return (
        status,
        [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *_cors(origin),
        ],
        body,
    )


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The query's pairs, in order: ``parse_qsl(raw.decode("latin-1"), True)`` (as
    Starlette reads a query), at a third of its cost: only what is quoted is unquoted."""
    pairs = []
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = urllib.parse.unquote(name.replace("+", " "))
        if "%" in value or "+" in value:
            value = urllib.parse.unquote(value.replace("+", " "))
        pairs.append((name, value))
    return pairs


def _headers(scope: Scope, *names: bytes) -> list[str | None]:
    """The first value of each header of ``names`` (lower case, as ASGI gives them)."""
    found: list[str | None] = [None] * len(names)
    for name, value in scope["headers"]:
        if name in names:
            at = names.index(name)
            if found[at] is None:
                found[at] = value.decode("latin-1")
    return found


class _Asgi:
    """An ASGI app as a route's endpoint (Starlette takes a function as a request's)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


@dataclass(frozen=True)
class Endpoints:
    """The storefront's routes, and those of its requests to answer ahead of the app's
    middleware and router, by method and path: the hot ones."""

    routes: list[Route]
    ahead: dict[tuple[str, str], ASGIApp]


def _script() -> bytes:
    return resources.files("omnicrm.app.web").joinpath("omnicrm.js").read_bytes()


def endpoints(runtime: Runtime, *, clock: Callable[[], dt.datetime] | None = None) -> Endpoints:
    """The storefront's routes over ``runtime``'s shops and store."""
    now_of = clock or (lambda: dt.datetime.now(dt.UTC))
    cache = _Ttl()
    writer = _GroupWriter(runtime)
    book = recent.RecentVisitors(ttl=CACHE_SECONDS)

    def forget(_connection: str, _customer_id: str) -> None:
        # A redaction is rare: drop all that is held (first names, who signed in where)
        # rather than find the person's entries; the next answers read the store again.
        cache.clear()
        book.clear()

    runtime.redacted.append(forget)
    # A few threads read the store at a time: within the connection pool (more would
    # open and close a connection each), and fewer threads contend for the GIL. (Its
    # threads start on the first read, and end once a dropped app is collected.)
    readers = ThreadPoolExecutor(READERS, "omnicrm-storefront-reads")

    script = _script()

    def by_key(key: str) -> Shop | None:
        for shop in runtime.config.all_shops().values():
            if shop.storefront.public_key == key:
                return shop
        return None

    def by_shopify_domain(domain: str) -> Shop | None:
        for shop in runtime.config.all_shops().values():
            name = shop.storefront.shopify_connection
            connection = runtime.config.connections.get(name) if name else None
            if connection is not None and getattr(connection.settings, "domain", None) == domain:
                return shop
        return None

    def identify(
        params: list[tuple[str, str]],
        query: dict[str, str],
        origin: str | None,
        key_header: str | None,
    ) -> Caller:
        """The caller a request proves to be: its query's ``params`` (``query`` by name,
        the last of each), its Origin and X-Omnicrm-Key headers."""
        if any(key == "signature" for key, _ in params):
            domain = query.get("shop", "")
            shop = by_shopify_domain(domain)
            secret = shop.storefront.app_proxy_secret if shop is not None else None
            if shop is None or secret is None:
                raise _Refusal(401, "not verified")
            try:
                proxied = tokens.verify_app_proxy(
                    params, secret.get_secret_value(), now=now_of().timestamp()
                )
            except tokens.Refused as exc:
                log.warning("storefront request for %s refused: %s", domain, exc)
                raise _Refusal(401, "not verified") from None
            customer = proxied.customer_id
            # Through the proxy the page and the endpoint share the shop's origin.
            return Caller(
                shop,
                None,
                shop.storefront.shopify_connection if customer else None,
                (SHOPIFY_CUSTOMER.format(customer), customer) if customer else (),
            )
        key = query.get("key") or key_header or ""
        shop = by_key(key) if key else None
        if shop is None:
            raise _Refusal(401, "unknown key")
        front = shop.storefront
        if origin is not None and origin.lower() not in front.domains:
            log.warning("storefront request of shop %s from origin %s refused", shop.id, origin)
            raise _Refusal(403, "origin not allowed")
        token = query.get("token")
        if not token:
            return Caller(shop, origin)
        if front.token_secret is None or front.customer_connection is None:
            raise _Refusal(401, "this shop takes no customer tokens")
        try:
            customer_id = tokens.verify_customer_token(
                token, front.token_secret.get_secret_value(), now=now_of().timestamp()
            )
        except tokens.Refused as exc:
            log.warning("storefront token of shop %s refused: %s", shop.id, exc)
            raise _Refusal(401, "not verified") from None
        return Caller(shop, origin, front.customer_connection, (customer_id,))

    def identify_request(request: Request) -> Caller:
        headers = request.headers
        return identify(
            list(request.query_params.multi_items()),
            dict(request.query_params),
            headers.get("origin"),
            headers.get("x-omnicrm-key"),
        )

    def cors(response: Response, origin: str | None) -> Response:
        response.raw_headers.extend(_cors(origin))
        return response

    def refused(exc: _Refusal) -> Response:
        return cors(JSONResponse({"error": exc.reason}, exc.status), None)

    def visitor_of(value: str | None) -> str:
        if value is None or not visitors.VISITOR_ID.fullmatch(value):
            raise _Refusal(400, "visitor: 16 to 64 letters, digits, '-' or '_'")
        return value

    def catalogue_of(shop: Shop) -> Catalogue | None:
        def load() -> Catalogue | None:
            with runtime.store.engine.connect() as conn:
                return shop_catalogue(conn, shop.id, shop.products)

        found: Catalogue | None = cache.get(("catalogue", shop.id), load)
        return found

    def recommend(
        shop: Shop, profile_id: int | None, product: str | None, *, reads: bool
    ) -> list[dict[str, Any]]:
        limit = shop.storefront.recommendations
        if limit == 0 or not runtime.host.recommenders:
            return []

        def make() -> list[dict[str, Any]]:
            catalogue = catalogue_of(shop)
            if catalogue is None:  # nothing says what can be bought: offer nothing
                return []
            # Checking that the shop's history is still current counts its orders and
            # people: once a minute, not for every product's first answer.
            history: PurchaseHistory = cache.get(
                ("history", shop.id), lambda: shop_history(runtime.store.engine, shop.id)
            )
            try:
                if product is not None:
                    found = for_product(
                        runtime.host,
                        history,
                        product,
                        limit=limit,
                        catalogue=catalogue,
                        weights=shop.recommend.weights,
                    )
                else:
                    # Someone unknown gets what is popular across the shop.
                    found = for_customer(
                        runtime.host,
                        history,
                        "" if profile_id is None else str(profile_id),
                        limit=limit,
                        catalogue=catalogue,
                        weights=shop.recommend.weights,
                    )
            except UnknownProductError:
                return []
            except Exception:  # a recommender's bug: the page still gets its offers
                log.exception("storefront recommendations of shop %s failed", shop.id)
                return []
            return [
                {
                    "product": item.product_id,
                    "name": item.name,
                    # The same text on every backend: 1500, not 1500.0000.
                    "price": None if item.price is None else f"{item.price.normalize():f}",
                    "currency": item.currency,
                    "url": item.url,
                    "image": catalogue[item.product_id].image_url
                    if item.product_id in catalogue
                    else None,
                    "reason": item.reason,
                }
                for item in found
            ]

        # What goes with a product is the same for everyone: one answer per product.
        who = f"p{profile_id}" if profile_id is not None and product is None else ""
        rows: list[dict[str, Any]] = cache.get(
            ("rec", shop.id, who, product or ""), make, reads=reads
        )
        return rows

    def who(
        caller: Caller, now: dt.datetime, tz: ZoneInfo, *, reads: bool = True
    ) -> tuple[visitors.Customer | None, visitors.CustomerFacts | None, str | None]:
        """The signed-in customer, what the rules need of them and their first name;
        kept CACHE_SECONDS (a purchase or a segment change shows within a minute)."""
        shop = caller.shop
        if caller.connection is None:
            return None, None, None
        connection = caller.connection

        def load() -> tuple[visitors.Customer | None, visitors.CustomerFacts | None, str | None]:
            with runtime.store.engine.connect() as conn:
                customer = visitors.customer_of(conn, shop.id, connection, caller.record_ids)
                if customer is None:
                    return None, None, None
                members: dict[str, frozenset[int]] = cache.get(
                    ("segments", shop.id),
                    lambda: visitors.segment_members(conn, shop.id, shop.offers, now=now, tz=tz),
                )
                facts = visitors.customer_facts(
                    conn, shop.id, shop.offers, customer, now=now, tz=tz, members=members
                )
                name = (
                    visitors.first_name(conn, shop.id, customer.profile_id)
                    if customer.profile_id is not None
                    else None
                )
            return customer, facts, name

        found: tuple[visitors.Customer | None, visitors.CustomerFacts | None, str | None]
        found = cache.get(("who", shop.id, connection, *caller.record_ids), load, reads=reads)
        return found

    def visit_of(
        shop: str,
        visitor: str,
        customer: visitors.Customer | None,
        *,
        now: dt.datetime,
        new_visit: bool,
        events: list[visitors.Event] | None = None,
        impressions: Sequence[str] = (),
    ) -> tuple[Work, tuple[recent.Key, ...]]:
        """The write of a request (the visit, the join, the events), counted in memory
        as it is handed over; with the keys to release once committed."""
        join = customer is not None and not book.joined(shop, visitor, customer)
        keys = book.hand_over(
            shop,
            visitor,
            new_visit=new_visit,
            customer=customer,
            impressions=impressions,
            now=now,
        )

        write = visitors.Visit(
            shop,
            visitor,
            now,
            new_visit,
            (customer.connection, customer.record_id) if join and customer is not None else None,
            events or (),
        )
        return write, keys

    async def written(work: tuple[Work, tuple[recent.Key, ...]]) -> int:
        """Hand the write over and wait for its commit (the answer follows it)."""
        write, keys = work
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        writer.put(write, done, loop, lambda: book.committed(keys))
        return await done

    def answer_offers(
        caller: Caller, params: dict[str, str], reads: bool = True
    ) -> tuple[dict[str, Any], tuple[Work, tuple[recent.Key, ...]]]:
        """The visitor's offers and the write of the visit; with ``reads`` False,
        :class:`_Miss` (before anything is counted) if it needs the store."""
        shop, now = caller.shop, now_of()
        visitor = visitor_of(params.get("visitor"))
        page = params.get("page") or None
        product = params.get("product") or None
        if (page is not None and len(page) > 2000) or (product is not None and len(product) > 255):
            raise _Refusal(400, "page or product too long")
        tz = ZoneInfo(shop.timezone)
        new_visit = params.get("new_visit") == "1"
        customer, facts, name = who(caller, now, tz, reads=reads)
        # Read (from memory, mostly), then write in a transaction shared with other
        # answers' writes: SQLite has one writer at a time.
        state = book.state(
            runtime.store.engine.connect,
            shop.id,
            visitor,
            shop.offers,
            customer=customer,
            facts=facts,
            now=now,
            tz=tz,
            reads=reads,
        )
        if state is None:
            raise _Miss
        profile_id = customer.profile_id if customer is not None else None
        recommended = recommend(shop, profile_id, product, reads=reads)
        if new_visit or not state.known:  # this request begins a visit
            state = dataclasses.replace(state, visits=state.visits + 1)
        write = visit_of(shop.id, visitor, customer, now=now, new_visit=new_visit)
        shown = onsite_offers.choose(shop.offers, visitor, state, page=page, now=now)
        return {
            "visitor": visitor,
            "customer": None if customer is None else {"first_name": name},
            "offers": [
                {
                    "offer": s.name,
                    "variant": s.variant,
                    "kind": s.kind,
                    "text": s.text,
                    "image": s.image,
                    "link": s.link,
                    "coupon": s.coupon,
                }
                for s in shown
            ],
            "recommendations": recommended,
        }, write

    def take_events(
        caller: Caller, params: dict[str, str], body: bytes
    ) -> tuple[Work, tuple[recent.Key, ...]]:
        try:
            document = json.loads(body or b"null")
        except ValueError:
            raise _Refusal(400, "the body is not JSON") from None
        visitor = visitor_of(
            document.get("visitor") if isinstance(document, dict) else params.get("visitor")
        )
        shop, now = caller.shop, now_of()
        try:
            events = visitors.check_events(document, shop.offers)
        except visitors.BadEvent as exc:
            raise _Refusal(400, str(exc)) from None
        customer, _facts, _name = who(caller, now, ZoneInfo(shop.timezone))
        capped = visitors.capped(shop.offers)
        shown = [e.offer for e in events if e.kind == "impression" and e.offer in capped]
        return visit_of(
            shop.id,
            visitor,
            customer,
            now=now,
            new_visit=False,
            events=events,
            impressions=[offer for offer in shown if offer is not None],
        )

    async def read_then_written(caller: Caller, query: dict[str, str]) -> dict[str, Any]:
        """The answer of :func:`answer_offers` that reads the store, in a reader thread
        which hands the write over itself: the loop wakes once, when it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        answered: list[dict[str, Any]] = []

        def read() -> None:
            try:
                found, (write, keys) = answer_offers(caller, query, True)
            except BaseException as exc:
                loops.answer([(done, None, exc)], loop)
                return
            answered.append(found)
            writer.put(write, done, loop, lambda: book.committed(keys))

        readers.submit(read)
        await done
        return answered[0]

    async def offers_of(scope: Scope) -> _Reply:
        """The answer to GET /storefront/offers."""
        params = query_pairs(scope["query_string"])
        query = dict(params)
        origin, key_header = _headers(scope, b"origin", b"x-omnicrm-key")
        try:
            caller = identify(params, query, origin, key_header)
            try:
                # Most answers are in memory: no thread for them.
                found, write = answer_offers(caller, query, reads=False)
            except _Miss:
                found = await read_then_written(caller, query)
            else:
                await written(write)
        except _Refusal as exc:
            return _reply(exc.status, orjson.dumps({"error": exc.reason}), None)
        return _reply(200, orjson.dumps(found), caller.origin)

    async def post_events(request: Request) -> Response:
        try:
            caller = identify_request(request)
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise _Refusal(413, f"the body is over {MAX_BODY} bytes")
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise _Refusal(413, f"the body is over {MAX_BODY} bytes")
            write = await run_in_threadpool(take_events, caller, dict(request.query_params), body)
            count = await written(write)
        except _Refusal as exc:
            return refused(exc)
        except ClientDisconnect:
            return JSONResponse({"error": "incomplete body"}, 400)
        return cors(JSONResponse({"recorded": count}), caller.origin)

    def preflight_of(origin: str | None, key: str) -> _Reply:
        """The answer to a CORS preflight (OPTIONS) of ``key``'s shop from ``origin``."""
        shop = by_key(key) if key else None
        if shop is None or origin is None or origin.lower() not in shop.storefront.domains:
            return 403, [(b"content-length", b"0")], b""
        return (
            204,
            [
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", b"Content-Type, X-Omnicrm-Key"),
                (b"access-control-max-age", b"600"),
                *_cors(origin),
            ],
            b"",
        )

    async def preflight(request: Request) -> Response:
        status, headers, body = preflight_of(
            request.headers.get("origin"), request.query_params.get("key", "")
        )
        response = Response(body, status)
        response.raw_headers = headers
        return response

    async def offers_app(scope: Scope, receive: Receive, send: Send) -> None:
        """GET and OPTIONS /storefront/offers as a bare ASGI app: the webhook app puts it
        ahead of Starlette's middleware, routing, requests and responses, which cost
        as much CPU as the answer itself."""
        try:
            if scope["method"] == "OPTIONS":
                query = dict(query_pairs(scope["query_string"]))
                (origin,) = _headers(scope, b"origin")
                status, headers, body = preflight_of(origin, query.get("key", ""))
            else:
                status, headers, body = await offers_of(scope)
        except Exception:
            # As Starlette's ServerErrorMiddleware: logged, and no traceback to the client.
            log.exception("storefront %s %s failed", scope["method"], scope["path"])
            status, body = 500, b"Internal Server Error"
            headers = [
                (b"content-length", b"21"),
                (b"content-type", b"text/plain; charset=utf-8"),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def get_script(_request: Request) -> Response:
        return Response(
            script,
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    offers = _Asgi(offers_app)
    return Endpoints(
        [
            Route("/storefront/omnicrm.js", get_script, methods=["GET"]),
            # Also in the router: a HEAD, or a path under a root path, is answered there.
            Route("/storefront/offers", offers, methods=["GET", "OPTIONS"]),
            Route("/storefront/events", post_events, methods=["POST"]),
            Route("/storefront/events", preflight, methods=["OPTIONS"]),
        ],
        {("GET", "/storefront/offers"): offers_app, ("OPTIONS", "/storefront/offers"): offers_app},
    )
