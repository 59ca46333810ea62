"""The sandbox's HTTP side: a Starlette app served by uvicorn, plus its switches.

Endpoints, as Shopify's:

* ``POST /admin/api/2024-12/graphql.json`` with ``X-Shopify-Access-Token`` (other API
  versions answer 404; a bad token 401 with Shopify's message);
* ``POST /admin/oauth/access_token``: the client credentials grant;
* ``GET /bulk/<number>.jsonl``: bulk results (the URL ``BulkOperation.url`` gives).

And the sandbox's own, for a sandbox in another process (benchmarks, the demo):
``GET /_sandbox/stats`` and ``POST /_sandbox/control``.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from omnicrm.testing import Emulator

from ..queries import API_VERSION
from . import DEFAULT_LIVE_INTERVAL, STANDARD_BUCKET, STANDARD_RESTORE_RATE, webhooks
from .bulk import BulkManager
from .cost import LeakyBucket
from .data import DAY, SHIFT, ShopData
from .schema import SCOPES, Context, GraphQLService, sandbox_schema
from .writes import Writes

YEAR = 365 * DAY
LIVE_MONTH_HOURS = 24.0
"""A live shop takes this long to sell what its history sells in a month."""

DEFAULT_SHOP = "omnicrm-demo.myshopify.com"
DEFAULT_TOKEN = "shpat_0mn1crm5andb0x00000000000000000"
DEFAULT_CLIENT_ID = "0mn1crm5andb0xc11e47000000000000"
DEFAULT_CLIENT_SECRET = "shpss_0mn1crm5andb0x5ecre7000000000"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
TOKEN_LIFETIME = 86_399
_JSON = "application/json; charset=utf-8"


def _later(seconds: float, run: Any) -> None:
    """Run ``run`` in the background ``seconds`` from now (Shopify's asynchronous jobs)."""
    timer = threading.Timer(seconds, run)
    timer.daemon = True
    timer.start()


@dataclass
class Stats:
    """What the sandbox was asked and what it answered (for tests and benchmarks)."""

    requests: int = 0
    graphql: int = 0
    throttled: int = 0
    max_cost_exceeded: int = 0
    requested_cost: int = 0
    actual_cost: int = 0
    tokens_issued: int = 0
    downloads: int = 0
    first_at: float | None = None
    last_at: float | None = None
    operations: dict[str, int] = field(default_factory=dict)


class ShopifySandbox(Emulator):
    """A local Shopify Admin API for one shop, seeded with Japanese shop data.

    Its fault switches (:class:`~omnicrm.testing.Emulator`'s and Shopify's own) apply
    to the Admin API and the token endpoint, not to bulk downloads.
    """

    name = "shopify-sandbox"

    def __init__(
        self,
        customers: int = 3000,
        seed: int = 1,
        *,
        shop: str = DEFAULT_SHOP,
        shop_name: str = "OmniCRM デモ商店",
        access_token: str = DEFAULT_TOKEN,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        bucket_size: float = STANDARD_BUCKET,
        restore_rate: float = STANDARD_RESTORE_RATE,
        max_cost: int = 1000,
        end: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        live_interval: float | None = None,
        shared_with: int | None = None,
        shared: float = 0.0,
    ) -> None:
        self.data = ShopData(customers, seed, end=end, shared_with=shared_with, shared=shared)
        self.shop, self.shop_name = shop, shop_name
        self.access_token, self.client_id, self.client_secret = (
            access_token,
            client_id,
            client_secret,
        )
        super().__init__(host=host, port=port)
        self.bucket = LeakyBucket(bucket_size, restore_rate)
        self._files = tempfile.TemporaryDirectory(prefix="shopify-sandbox-")
        self.bulk = BulkManager(
            self.data, sandbox_schema(), Path(self._files.name), self._bulk_url, seed=seed
        )
        self.writes = Writes()
        self.service = GraphQLService(self._context, self.bucket, max_cost=max_cost)
        self.tokens: dict[str, float] = {access_token: math.inf}
        self.stats = Stats()
        self.live_interval = live_interval
        self._rng = random.Random(seed ^ 0x7E57)
        self._order_chance: float | None = None  # per tick, set on the first tick
        self._stop = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
                Route("/admin/oauth/access_token", self._token, methods=["POST"]),
                Route("/bulk/{number:int}.jsonl", self._download, methods=["GET"]),
                Route("/_sandbox/stats", self._stats, methods=["GET"]),
                Route("/_sandbox/control", self._control, methods=["POST"]),
            ]
        )

    # --- life --------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a background thread; returns once the port answers."""
        if not self.running:
            super().start()
            self._start_live()
        return self

    def serve_forever(self, sock: socket.socket | None = None) -> None:
        """Serve in this thread until interrupted (the command line)."""
        self._start_live()
        try:
            super().serve_forever(sock)
        finally:
            self._stop.set()

    def _start_live(self) -> None:
        if self.live_interval:
            threading.Thread(target=self._live, name="shopify-live", daemon=True).start()

    def stop(self) -> None:
        """Stop serving and remove the bulk files."""
        self._stop.set()
        super().stop()
        self.bulk.wait(10)
        self._files.cleanup()

    @property
    def graphql_url(self) -> str:
        """The Admin API endpoint of the pinned version."""
        return f"{self.url}/admin/api/{API_VERSION}/graphql.json"

    def settings(self) -> dict[str, Any]:
        """Settings of a connection to this sandbox (ShopifySettings accepts them)."""
        return {
            "domain": self.shop,
            "access_token": self.access_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "api_url": self.url,
        }

    def _bulk_url(self, number: int) -> str:
        return f"{self.url}/bulk/{number}.jsonl"

    def _context(self) -> Context:
        return Context(
            self.data, self.bulk, self.shop, self.shop_name, self.scopes(),
            writes=self.writes, later=_later,
        )  # fmt: skip

    def scopes(self) -> list[str]:
        """The access scopes the app holds."""
        return [s for s in SCOPES if s != "read_all_orders" or self.data.read_all_orders]

    # --- fault switches --------------------------------------------------------------------

    def throttle_next(self, count: int = 1) -> None:
        """The next ``count`` GraphQL queries are THROTTLED (the bucket is drained)."""
        self.set_fault("throttle", count)

    def truncate_next_download(self, count: int = 1, *, keep: float = 0.5) -> None:
        """The next ``count`` bulk downloads stop after ``keep`` of the file, mid-line."""
        self.set_fault("truncate", count, keep=keep)

    def fail_next_bulk(self, count: int = 1) -> None:
        """The next ``count`` bulk operations FAIL after their first chunk."""
        self.bulk.fail_next += count

    def deny_read_all_orders(self, denied: bool = True) -> None:
        """Revoke (or grant back) read_all_orders: orders older than 60 days vanish."""
        with self.data.lock:
            self.data.read_all_orders = not denied

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        super().clear_faults()
        self.bulk.fail_next = 0

    # --- the shop, by GID ------------------------------------------------------------------

    def _customer(self, value: str) -> int:
        c = self.data.customer_index(value)
        if c is None:
            raise KeyError(value)
        return c

    def _order(self, value: str) -> int:
        self.data.wait_for_orders()
        rank = self.data.order_rank(value)
        if rank is None:
            raise KeyError(value)
        return rank

    def customer(self, gid: str) -> dict[str, Any]:
        """A customer as the API shows it (plus ``_``-keys the sandbox uses)."""
        with self.data.lock:
            return self.data.customer(self._customer(gid))

    def order(self, gid: str) -> dict[str, Any]:
        """An order as the API shows it (plus ``_``-keys the sandbox uses)."""
        with self.data.lock:
            return self.data.order(self._order(gid))

    def update_customer(self, gid: str, **fields: Any) -> dict[str, Any]:
        """Set fields (GraphQL names, API values) of a customer; updatedAt becomes now."""
        return self.data.update_customer(self._customer(gid), **fields)

    def update_order(self, gid: str, **fields: Any) -> dict[str, Any]:
        """Set fields (GraphQL names, API values) of an order; updatedAt becomes now."""
        return self.data.update_order(self._order(gid), **fields)

    def cancel_order(self, gid: str) -> dict[str, Any]:
        """Cancel and refund an order now (its customer's amountSpent changes too)."""
        return self.data.cancel_order(self._order(gid))

    def create_customer(self, **fields: Any) -> dict[str, Any]:
        """A customer who signs up now."""
        return self.data.create_customer(**fields)

    def create_order(self, customer: str | None = None) -> dict[str, Any]:
        """A web order placed now by ``customer`` (a GID) or a guest."""
        self.data.wait_for_orders()
        return self.data.create_order(None if customer is None else self._customer(customer))

    def create_order_with_code(self, customer: str, code: str) -> dict[str, Any]:
        """A web order placed now by ``customer`` (a GID) with the discount ``code``,
        checked as Shopify's checkout checks it (a ValueError if it refuses the code):
        the order lists the code in ``discountCodes``."""
        order = self.create_order(customer)
        subtotal = int(float(order["subtotalPriceSet"]["shopMoney"]["amount"]))
        try:
            held = self.writes.redeem(code, subtotal, order["createdAt"])
        except ValueError:
            self.delete_order(order["id"])  # the checkout never completed
            raise
        return self.update_order(order["id"], discountCodes=[held])

    def metafield(self, owner: str, namespace: str, key: str) -> dict[str, Any] | None:
        """The metafield an app set on ``owner`` (a customer or product GID), if any:
        ``namespace``, ``key``, ``type``, ``value`` (a string), ``updatedAt``."""
        return self.writes.metafield(owner, namespace, key)

    def delete_customer(self, gid: str) -> None:
        """Delete a customer (it leaves every listing)."""
        self.data.delete_customer(self._customer(gid))

    def delete_order(self, gid: str) -> None:
        """Delete an order (it leaves every listing)."""
        self.data.delete_order(self._order(gid))

    def update_product(self, gid: str, **fields: Any) -> dict[str, Any]:
        """Edit a product now (``status``, ``title``, ``available``); its updatedAt
        becomes now. Returns it as the API shows it."""
        products = self.data.products
        number = products.number(gid)
        if number is None:
            raise KeyError(gid)
        products.update(number, **fields)
        with products.lock:
            return products.node(number, self.shop)

    def delete_product(self, gid: str) -> None:
        """Delete a product (it leaves every listing)."""
        number = self.data.products.number(gid)
        if number is None:
            raise KeyError(gid)
        self.data.products.delete(number)

    def monthly_orders(self) -> float:
        """Orders a month in the seeded history's last year (what the shop normally sells)."""
        data = self.data
        data.wait_for_orders()
        since = float((data.end - YEAR) * SHIFT)
        return (len(data.by_created) - bisect.bisect_left(data.by_created, since)) / 12

    def tick(self, interval: float | None = None) -> tuple[str, str]:
        """One change a live shop sees: (what happened, the GID it happened to).

        Orders (and sign-ups, which come with one) arrive so that a month's worth of the
        seeded history's sales takes :data:`LIVE_MONTH_HOURS` hours of ``interval``-second
        ticks (default: the live interval): a demo left running for an afternoon adds a
        busy month, not years of sales in the current one (one in twenty of those
        ticks cancels a recent order instead). The other ticks edit a customer.
        """
        data, rng = self.data, self._rng
        every = interval or self.live_interval or DEFAULT_LIVE_INTERVAL
        if self._order_chance is None:
            per_tick = self.monthly_orders() * every / (LIVE_MONTH_HOURS * 3600)
            self._order_chance = min(1.0, per_tick)
        if rng.random() < self._order_chance:
            data.wait_for_orders()
            kind = rng.random()
            if kind < 0.2:  # a new customer's first order
                customer = data.create_customer()
                data.create_order(customer["_index"])
                return "customers/create", customer["id"]
            if kind < 0.25:  # one in twenty: a recent order cancelled instead
                rank = max(0, data.base_orders - 1 - rng.randrange(min(500, data.base_orders)))
                return "orders/updated", data.cancel_order(rank)["id"]
            c = rng.randrange(data.n)
            owner = None if c in data.deleted_customers or rng.random() < 0.1 else c
            return "orders/create", data.create_order(owner)["id"]
        c = rng.randrange(data.n)
        while c in data.deleted_customers:
            c = rng.randrange(data.n)
        record = data.update_customer(c, note=rng.choice(("再入荷の連絡を希望。", None)))
        return "customers/update", record["id"]

    def _live(self) -> None:
        assert self.live_interval
        while not self._stop.wait(self.live_interval):
            self.tick()

    # --- webhooks --------------------------------------------------------------------------

    def webhook_payload(self, topic: str, gid: str | None = None) -> dict[str, Any]:
        """The REST payload Shopify would send for ``topic`` about ``gid``."""
        data = self.data
        if topic != "shop/redact":
            data.wait_for_orders()
        with data.lock:
            if topic == "shop/redact":
                return webhooks.compliance_payload(data, topic, self.shop)
            if gid is None:
                raise ValueError(f"{topic} needs the GID of its customer or order")
            if topic in ("customers/redact", "customers/data_request"):
                return webhooks.compliance_payload(data, topic, self.shop, self._customer(gid))
            if topic in ("customers/create", "customers/update"):
                return webhooks.customer_payload(data.customer(self._customer(gid)))
            if topic == "customers/delete":
                return {
                    "id": int(gid.rsplit("/", 1)[1]),
                    "tax_exemptions": [],
                    "admin_graphql_api_id": gid,
                }
            if topic in ("orders/create", "orders/updated"):
                return webhooks.order_payload(data, self._order(gid), self.shop)
            if topic == "orders/delete":
                return {"id": int(gid.rsplit("/", 1)[1])}
        raise ValueError(f"unknown webhook topic {topic!r}; known: {', '.join(webhooks.TOPICS)}")

    def deliver_webhook(
        self,
        url: str,
        topic: str,
        payload: Any = None,
        *,
        gid: str | None = None,
        event_id: str | None = None,
        secret: str | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST a webhook to ``url`` signed with the app's client secret, as Shopify does.

        ``payload`` defaults to :meth:`webhook_payload` of ``gid``. Give ``event_id`` to
        redeliver an event (Shopify keeps it on retries) and ``secret`` to sign wrongly.
        """
        if payload is None:
            payload = self.webhook_payload(topic, gid)
        body = webhooks.encode(payload)
        sent = webhooks.headers(
            topic, body, secret=secret or self.client_secret, shop=self.shop,
            api_version=API_VERSION, event_id=event_id,
        )  # fmt: skip
        return httpx.post(url, content=body, headers=sent, timeout=timeout)

    # --- HTTP --------------------------------------------------------------------------------

    def _count(self) -> None:
        now = time.time()
        self.stats.requests += 1
        self.stats.first_at = self.stats.first_at or now
        self.stats.last_at = now

    def applies_faults(self, path: str) -> bool:
        return path.startswith("/admin/")

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        """A 5xx as Shopify's edge answers it (an HTML page), a 429 as its API does."""
        self._count()
        if status == 429:
            return JSONResponse(
                {"errors": "Exceeded 2 calls per second for api client. Reduce request rates "
                 "to resume uninterrupted service."},
                429,
                headers=dict(headers),
            )  # fmt: skip
        page = f"<html><body><h1>{status}</h1><p>There was a problem loading this website."
        return Response(page + "</p></body></html>", status, media_type="text/html")

    def _authorised(self, request: Request) -> bool:
        token = request.headers.get("x-shopify-access-token", "")
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    async def _graphql(self, request: Request) -> Response:
        self._count()
        if request.path_params["version"] != API_VERSION:
            return JSONResponse({"errors": "Not Found"}, 404)
        if not self._authorised(request):
            return JSONResponse({"errors": INVALID_TOKEN}, 401)
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/graphql"):
            body: Any = {"query": raw.decode("utf-8", "replace")}
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if not isinstance(body, dict):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        force = self.take_fault("throttle") is not None
        outcome = await run_in_threadpool(self.service.answer, body, force_throttle=force)
        stats = self.stats
        stats.graphql += 1
        stats.throttled += outcome.throttled
        stats.requested_cost += outcome.requested or 0
        stats.actual_cost += outcome.actual or 0
        errors = outcome.body.get("errors") or []
        if any(e.get("extensions", {}).get("code") == "MAX_COST_EXCEEDED" for e in errors):
            stats.max_cost_exceeded += 1
        name = body.get("operationName") or "?"
        stats.operations[name] = stats.operations.get(name, 0) + 1
        text = json.dumps(outcome.body, ensure_ascii=False, separators=(",", ":"))
        return Response(text, 200, media_type=_JSON, headers={"X-Request-Id": str(uuid.uuid4())})

    async def _token(self, request: Request) -> Response:
        self._count()
        raw = await request.body()
        params: Mapping[str, Any]
        try:
            if raw.strip().startswith(b"{"):
                params = json.loads(raw)
            else:  # application/x-www-form-urlencoded, as OAuth clients often send
                params = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        except ValueError:
            params = {}
        if params.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type",
                 "error_description": "Only the client_credentials grant is supported here."},
                400,
            )  # fmt: skip
        if params.get("client_id") != self.client_id or not secrets.compare_digest(
            str(params.get("client_secret", "")), self.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client",
                 "error_description": "Client authentication failed: unknown client or secret."},
                400,
            )  # fmt: skip
        token = "shpat_" + secrets.token_hex(16)
        self.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        self.stats.tokens_issued += 1
        return JSONResponse(
            {"access_token": token, "scope": ",".join(self.scopes()), "expires_in": TOKEN_LIFETIME}
        )

    def expire_tokens(self) -> None:
        """Expire every token issued by the client credentials grant."""
        for token in list(self.tokens):
            if token != self.access_token:
                self.tokens[token] = 0.0

    async def _download(self, request: Request) -> Response:
        self.stats.downloads += 1
        path = self.bulk.path(request.path_params["number"])
        if path is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", 404, media_type="text/xml")
        cut = self.take_fault("truncate")
        if cut:
            raw = path.read_bytes()
            keep = raw[: int(len(raw) * float(cut["keep"]))]
            if keep.endswith(b"\n"):
                keep = keep[:-1]
            return Response(keep, 200, media_type="application/jsonl")
        return FileResponse(path, media_type="application/jsonl")

    async def _stats(self, _request: Request) -> Response:
        body = asdict(self.stats)
        body["injected"] = self.injected
        body["throttle_status"] = self.bucket.status().as_json()
        body["orders_ready"] = self.data.orders_ready.is_set()
        return JSONResponse(body)

    async def _control(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            action = body.pop("action")
            count = int(body.pop("count", 1))
            if action == "read_all_orders":
                self.deny_read_all_orders(not body.get("granted", True))
            elif action == "tick":
                done = [await run_in_threadpool(self.tick) for _ in range(count)]
                return JSONResponse({"changes": done})
            elif action == "clear_faults":
                self.clear_faults()
            else:
                switch = {
                    "fail": self.fail_next,
                    "delay": self.delay_next,
                    "malform": self.malform_next,
                    "rate_limit": self.rate_limit_next,
                    "throttle": self.throttle_next,
                    "truncate": self.truncate_next_download,
                    "fail_bulk": self.fail_next_bulk,
                }[action]
                switch(count, **body)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad control request: {exc}"}, 400)
        return JSONResponse({"ok": True})
