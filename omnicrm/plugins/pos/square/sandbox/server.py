"""The Square emulator: the endpoints the plugin reads, with Square's rules and errors.

Rules kept as Square documents them (Square-Version 2025-08-20):

* SearchCustomers: ``limit`` 1..100 (default 100); filters ``created_at``/``updated_at``
  (inclusive); sorts only by ``DEFAULT`` (name) or ``CREATED_AT``.
* SearchOrders: 1..10 ``location_ids`` (more: 400 ARRAY_LENGTH_TOO_LONG), ``limit``
  1..1000 (default 500); one ``date_time_filter`` field, which must be the
  ``sort_field`` (else 400); ``state_filter``, ``customer_filter``; ranges inclusive.
* SearchLoyaltyAccounts: at most 30 ``customer_ids``, ``limit`` 1..200;
  SearchLoyaltyEvents: ``limit`` 1..30, newest first.
* Cursors are opaque and expire (``cursor_ttl`` seconds, or :meth:`expire_cursors_next`):
  400 INVALID_CURSOR.
* A wrong bearer token: 401 UNAUTHORIZED. Faults (5xx, 429 with Retry-After, slow and
  cut answers) from :class:`~omnicrm.testing.Emulator`, in Square's error shape.

Every exchange is kept (:attr:`SquareSandbox.exchanges`: method, path template, request
body, status, response body), so tests check both sides against Square's spec.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnicrm.plugins.pos import seed as pos_seed
from omnicrm.plugins.pos.square.sandbox.data import (
    MERCHANT_ID,
    SquareData,
    square_id,
    stamp,
    yen,
)
from omnicrm.plugins.pos.square.webhooks import signature
from omnicrm.testing import Emulator

DEFAULT_NOTIFICATION_URL = "http://127.0.0.1:8787/webhooks/square"
"""Where the demo's webhook app listens for square connections."""


@functools.lru_cache(maxsize=4)
def _seeded(seed: int, members: int, sales: int) -> pos_seed.StoreData:
    # Generating takes seconds; the tests start many sandboxes of the same seed, which
    # only read it (live changes go to the rendered SquareData, never to the seed).
    return pos_seed.generate(seed, members=members, sales=sales)


@dataclass(frozen=True)
class Exchange:
    """One request the sandbox answered."""

    method: str
    path: str
    """The route's template, as the spec names the path (``/v2/orders/{order_id}``)."""
    request: Any
    status: int
    response: Any


class _Refusal(Exception):
    def __init__(
        self, status: int, category: str, code: str, detail: str, field: str | None = None
    ):
        super().__init__(detail)
        self.status, self.category, self.code, self.detail, self.field = (
            status,
            category,
            code,
            detail,
            field,
        )


def _invalid(code: str, detail: str, field: str | None = None) -> _Refusal:
    return _Refusal(400, "INVALID_REQUEST_ERROR", code, detail, field)


def _parse_time(value: Any, field: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise _invalid("INVALID_TIME", f"{field} is not an RFC 3339 timestamp", field) from None
    if moment.tzinfo is None:
        raise _invalid("INVALID_TIME", f"{field} has no UTC offset", field)
    return moment


def _in_range(value: str | None, span: Mapping[str, Any] | None, field: str) -> bool:
    if not span:
        return True
    if value is None:
        return False
    moment = _parse_time(value, field)
    if span.get("start_at") and moment < _parse_time(span["start_at"], f"{field}.start_at"):
        return False
    return not (span.get("end_at") and moment > _parse_time(span["end_at"], f"{field}.end_at"))


def _limit(body: Mapping[str, Any], default: int, high: int) -> int:
    value = body.get("limit", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("INVALID_VALUE", "limit must be an integer", "limit")
    if value < 1:
        raise _invalid("VALUE_TOO_LOW", f"limit must be at least 1, got {value}", "limit")
    if value > high:
        raise _invalid("VALUE_TOO_HIGH", f"limit must be at most {high}, got {value}", "limit")
    return value


class SquareSandbox(Emulator):
    """A Square seller on loopback, rendered from the shared POS seed."""

    name = "square-sandbox"

    def __init__(
        self,
        *,
        members: int = 600,
        sales: int = 6000,
        seed: int = 1,
        loyalty: bool = True,
        extra_locations: int = 0,
        cursor_ttl: float = 300.0,
        notification_url: str = DEFAULT_NOTIFICATION_URL,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        store = _seeded(seed, members, sales)
        self.data = SquareData(store, loyalty=loyalty)
        for n in range(extra_locations):  # closed stores, pop-ups: a seller with many
            extra = dict(self.data.locations[0], id="L" + square_id("extra", n, 12))
            self.data.locations.append({**extra, "name": f"催事 {n + 1}", "status": "INACTIVE"})
        self.access_token = "EAAA" + square_id("token", seed, 40)
        self.signature_key = square_id("signature-key", seed, 22)
        self.notification_url = notification_url
        self.cursor_ttl = cursor_ttl
        self.exchanges: deque[Exchange] = deque(maxlen=20_000)
        self._cursors: dict[str, tuple[str, int, float]] = {}
        self._cursor_lock = threading.Lock()
        self._numbers = itertools.count(len(store.sales) + 1)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/v2/locations", self._locations),
            ("POST", "/v2/customers/search", self._search_customers),
            ("GET", "/v2/customers/{customer_id}", self._customer),
            ("POST", "/v2/orders/search", self._search_orders),
            ("GET", "/v2/orders/{order_id}", self._order),
            ("GET", "/v2/payments/{payment_id}", self._payment),
            ("GET", "/v2/loyalty/programs/{program_id}", self._program),
            ("POST", "/v2/loyalty/accounts/search", self._search_accounts),
            ("POST", "/v2/loyalty/events/search", self._search_events),
            ("GET", "/v2/loyalty/rewards/{reward_id}", self._reward),
            ("POST", "/v2/catalog/search", self._search_catalog),
        ]
        self.app = Starlette(
            routes=[
                Route(path, self._endpoint(path, handler), methods=[method])
                for method, path, handler in routes
            ]
        )

    # -- connection

    def settings(self) -> dict[str, Any]:
        """Settings of a connection to this sandbox (SquareSettings accepts them)."""
        return {
            "access_token": self.access_token,
            "api_url": self.url,
            "webhook_signature_key": self.signature_key,
            "notification_url": self.notification_url,
        }

    # -- faults

    def expire_cursors_next(self, count: int = 1) -> None:
        """The next ``count`` requests that bring a cursor find it expired."""
        self.set_fault("expire_cursor", count)

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        """Faults in Square's error shape."""
        if status == 429:
            error = {
                "category": "RATE_LIMIT_ERROR",
                "code": "RATE_LIMITED",
                "detail": "Rate limit exceeded",
            }
        else:
            error = {
                "category": "API_ERROR",
                "code": "INTERNAL_SERVER_ERROR",
                "detail": "Something went wrong",
            }
        return JSONResponse({"errors": [error]}, status, headers=dict(headers))

    # -- plumbing

    def _endpoint(self, path: str, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            status, answer = 200, None
            try:
                if request.headers.get("authorization") != f"Bearer {self.access_token}":
                    raise _Refusal(
                        401,
                        "AUTHENTICATION_ERROR",
                        "UNAUTHORIZED",
                        "This request could not be authorized.",
                    )
                if request.method == "POST":
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        raise _invalid("INVALID_JSON", "the body is not JSON") from None
                    if not isinstance(body, dict):
                        raise _invalid("INVALID_JSON", "the body is not an object")
                with self.data.lock:
                    answer = (
                        handler(body, **request.path_params)
                        if request.method == "POST"
                        else handler(**request.path_params)
                    )
            except _Refusal as refusal:
                status = refusal.status
                error = {
                    "category": refusal.category,
                    "code": refusal.code,
                    "detail": refusal.detail,
                }
                if refusal.field:
                    error["field"] = refusal.field
                answer = {"errors": [error]}
            self.exchanges.append(Exchange(request.method, path, body, status, answer))
            return JSONResponse(answer, status)

        return endpoint

    def _page(
        self, kind: str, body: Mapping[str, Any], items: list[Any], limit: int
    ) -> tuple[list[Any], str | None]:
        """A page of ``items`` from ``body['cursor']``; the cursor of the next, if any."""
        query = json.dumps({k: v for k, v in body.items() if k != "cursor"}, sort_keys=True)
        offset = 0
        given = body.get("cursor")
        if given:
            with self._cursor_lock:
                found = self._cursors.get(str(given))
            expired = self.take_fault("expire_cursor") is not None
            if (
                found is None
                or found[0] != kind + query
                or expired
                or time.monotonic() - found[2] > self.cursor_ttl
            ):
                raise _invalid("INVALID_CURSOR", "The cursor is invalid or has expired.", "cursor")
            offset = found[1]
        page = items[offset : offset + limit]
        following = None
        if offset + limit < len(items):
            following = secrets.token_urlsafe(24)
            with self._cursor_lock:
                self._cursors[following] = (kind + query, offset + limit, time.monotonic())
        return page, following

    @staticmethod
    def _answer(key: str, page: list[Any], cursor: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = {key: page} if page else {}
        if cursor:
            answer["cursor"] = cursor
        return answer

    # -- endpoints

    def _locations(self) -> dict[str, Any]:
        return {"locations": self.data.locations}

    def _search_customers(self, body: Mapping[str, Any]) -> dict[str, Any]:
        limit = _limit(body, 100, 100)
        query = body.get("query") or {}
        flt = query.get("filter") or {}
        sort = query.get("sort") or {}
        field, order = sort.get("field") or "DEFAULT", sort.get("order") or "ASC"
        if field not in ("DEFAULT", "CREATED_AT"):
            raise _invalid(
                "INVALID_ENUM_VALUE",
                f"sort.field {field!r} is not DEFAULT or CREATED_AT",
                "query.sort.field",
            )
        if order not in ("ASC", "DESC"):
            raise _invalid(
                "INVALID_SORT_ORDER", f"sort.order {order!r} is not ASC or DESC", "query.sort.order"
            )
        found = [
            c
            for c in self.data.customers.values()
            if _in_range(c.get("created_at"), flt.get("created_at"), "query.filter.created_at")
            and _in_range(c.get("updated_at"), flt.get("updated_at"), "query.filter.updated_at")
        ]
        if field == "CREATED_AT":
            found.sort(key=lambda c: (c["created_at"], c["id"]), reverse=order == "DESC")
        else:  # Square's default: alphabetical by given and family name
            found.sort(
                key=lambda c: (c.get("given_name") or "", c.get("family_name") or "", c["id"]),
                reverse=order == "DESC",
            )
        page, cursor = self._page("customers", body, found, limit)
        answer = self._answer("customers", page, cursor)
        if body.get("count"):
            answer["count"] = len(found)
        return answer

    def _search_catalog(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """SearchCatalogObjects: ITEMs (and CATEGORYs) changed after ``begin_time``
        (exclusive), in no particular order, with their categories as related objects."""
        limit = _limit(body, 100, 1000)
        types = body.get("object_types") or ["ITEM", "CATEGORY"]
        if not isinstance(types, list) or not set(types) <= {"ITEM", "CATEGORY", "ITEM_VARIATION"}:
            raise _invalid(
                "INVALID_ENUM_VALUE", "object_types holds an unknown type", "object_types"
            )
        begin = body.get("begin_time")
        after = None if begin is None else _parse_time(begin, "begin_time")
        pool: list[dict[str, Any]] = []
        if "ITEM" in types:
            pool += self.data.items.values()
        if "CATEGORY" in types:
            pool += self.data.categories.values()
        if "ITEM_VARIATION" in types:
            pool += [v for i in self.data.items.values() for v in i["item_data"]["variations"]]
        found = [
            o
            for o in pool
            if (after is None or _parse_time(o["updated_at"], "updated_at") > after)
            and (body.get("include_deleted_objects") or not o.get("is_deleted"))
        ]
        # Square promises no order: by id here (not by update time).
        found.sort(key=lambda o: o["id"])
        page, cursor = self._page("catalog", body, found, limit)
        answer = self._answer("objects", page, cursor)
        if body.get("include_related_objects") and page:
            wanted = {
                c["id"] for o in page for c in (o.get("item_data") or {}).get("categories", [])
            }
            related = [c for c in self.data.categories.values() if c["id"] in wanted]
            if related:
                answer["related_objects"] = related
        if page:
            answer["latest_time"] = max(o["updated_at"] for o in found)
        return answer

    def _customer(self, customer_id: str) -> dict[str, Any]:
        found = self.data.customers.get(customer_id)
        if found is None:
            raise _Refusal(
                404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Customer {customer_id} not found."
            )
        return {"customer": found}

    def _search_orders(self, body: Mapping[str, Any]) -> dict[str, Any]:
        locations = body.get("location_ids")
        if not isinstance(locations, list) or not locations:
            raise _invalid(
                "ARRAY_LENGTH_TOO_SHORT",
                "location_ids must name at least one location",
                "location_ids",
            )
        if len(locations) > 10:
            raise _invalid(
                "ARRAY_LENGTH_TOO_LONG",
                f"location_ids has {len(locations)} ids; at most 10",
                "location_ids",
            )
        known = {loc["id"] for loc in self.data.locations}
        for n, location in enumerate(locations):
            if location not in known:
                raise _Refusal(
                    400,
                    "INVALID_REQUEST_ERROR",
                    "NOT_FOUND",
                    f"Location {location!r} not found.",
                    f"location_ids[{n}]",
                )
        limit = _limit(body, 500, 1000)
        query = body.get("query") or {}
        flt = query.get("filter") or {}
        sort = query.get("sort") or {}
        moments = flt.get("date_time_filter") or {}
        given = [k for k in ("created_at", "updated_at", "closed_at") if moments.get(k)]
        if len(given) > 1:
            raise _invalid(
                "INVALID_VALUE",
                "date_time_filter takes one time range",
                "query.filter.date_time_filter",
            )
        sort_field = sort.get("sort_field") or "CREATED_AT"
        if sort_field not in ("CREATED_AT", "UPDATED_AT", "CLOSED_AT"):
            raise _invalid(
                "INVALID_ENUM_VALUE",
                f"sort_field {sort_field!r} is not a sort field",
                "query.sort.sort_field",
            )
        if given and given[0].upper() != sort_field:
            raise _invalid(
                "INVALID_VALUE",
                f"sort_field must be {given[0].upper()} when date_time_filter uses {given[0]}",
                "query.sort.sort_field",
            )
        states = (flt.get("state_filter") or {}).get("states")
        customers = (flt.get("customer_filter") or {}).get("customer_ids")
        key = sort_field.lower()
        found = [
            o
            for o in self.data.orders.values()
            if o["location_id"] in locations
            and (not states or o.get("state") in states)
            and (not customers or o.get("customer_id") in customers)
            and all(
                _in_range(o.get(k), moments.get(k), f"query.filter.date_time_filter.{k}")
                for k in given
            )
        ]
        found.sort(
            key=lambda o: (o.get(key) or "", o["id"]),
            reverse=(sort.get("sort_order") or "DESC") == "DESC",
        )
        page, cursor = self._page("orders", body, found, limit)
        if body.get("return_entries"):
            entries = [
                {
                    "order_id": o["id"],
                    "version": o.get("version", 1),
                    "location_id": o["location_id"],
                }
                for o in page
            ]
            return self._answer("order_entries", entries, cursor)
        return self._answer("orders", page, cursor)

    def _order(self, order_id: str) -> dict[str, Any]:
        found = self.data.orders.get(order_id)
        if found is None:
            raise _Refusal(
                404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Order {order_id} not found."
            )
        return {"order": found}

    def _payment(self, payment_id: str) -> dict[str, Any]:
        found = self.data.payments.get(payment_id)
        if found is None:
            raise _Refusal(
                404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Payment {payment_id} not found."
            )
        return {"payment": found}

    def _program(self, program_id: str) -> dict[str, Any]:
        program = self.data.program
        if program is None or program_id not in ("main", program["id"]):
            raise _Refusal(
                404,
                "INVALID_REQUEST_ERROR",
                "NOT_FOUND",
                "Merchant does not have a loyalty program.",
            )
        return {"program": program}

    def _search_accounts(self, body: Mapping[str, Any]) -> dict[str, Any]:
        limit = _limit(body, 30, 200)
        query = body.get("query") or {}
        ids, mappings = query.get("customer_ids"), query.get("mappings")
        if ids and mappings:
            raise _invalid(
                "INVALID_VALUE", "customer_ids cannot be combined with mappings", "query"
            )
        for name, values in (("customer_ids", ids), ("mappings", mappings)):
            if values is not None and len(values) > 30:
                raise _invalid(
                    "ARRAY_LENGTH_TOO_LONG",
                    f"{name} has {len(values)} entries; at most 30",
                    f"query.{name}",
                )
        accounts = sorted(self.data.accounts.values(), key=lambda a: a["id"])
        if ids:
            accounts = [a for a in accounts if a["customer_id"] in ids]
        page, cursor = self._page("accounts", body, accounts, limit)
        return self._answer("loyalty_accounts", page, cursor)

    def _search_events(self, body: Mapping[str, Any]) -> dict[str, Any]:
        limit = _limit(body, 30, 30)
        flt = (body.get("query") or {}).get("filter") or {}
        order_id = (flt.get("order_filter") or {}).get("order_id")
        account_id = (flt.get("loyalty_account_filter") or {}).get("loyalty_account_id")
        types = (flt.get("type_filter") or {}).get("types")
        locations = (flt.get("location_filter") or {}).get("location_ids")
        span = (flt.get("date_time_filter") or {}).get("created_at")

        def of_order(event: Mapping[str, Any]) -> str | None:
            for part in ("accumulate_points", "redeem_reward"):
                if event.get(part):
                    return str(event[part].get("order_id") or "") or None
            return None

        events = [
            e
            for e in self.data.events
            if (not order_id or of_order(e) == order_id)
            and (not account_id or e["loyalty_account_id"] == account_id)
            and (not types or e["type"] in types)
            and (not locations or e.get("location_id") in locations)
            and _in_range(e["created_at"], span, "query.filter.date_time_filter.created_at")
        ]
        events.sort(key=lambda e: (e["created_at"], e["id"]), reverse=True)
        page, cursor = self._page("events", body, events, limit)
        return self._answer("events", page, cursor)

    def _reward(self, reward_id: str) -> dict[str, Any]:
        found = self.data.rewards.get(reward_id)
        if found is None:
            raise _Refusal(
                404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Reward {reward_id} not found."
            )
        return {"reward": found}

    # -- live changes (tests, the demo)

    def ring_up(
        self, customer_id: str | None, *, on_order: bool = True, amount: int = 1650
    ) -> tuple[str, str]:
        """A sale at the register now: (order id, payment id). ``on_order`` False puts the
        customer on the payment only, as when it is added at payment."""
        number = next(self._numbers)
        now = dt.datetime.now(dt.UTC)
        order_id, payment_id = square_id("order", number, 27), square_id("payment", number, 28)
        location = self.data.locations[0]["id"]
        order: dict[str, Any] = {
            "id": order_id,
            "location_id": location,
            "source": {"name": "Square Point of Sale"},
            "line_items": [
                {
                    "uid": f"{order_id[:20]}-0",
                    "name": "店内 抹茶ラテ",
                    "quantity": "1",
                    "base_price_money": yen(amount),
                    "gross_sales_money": yen(amount),
                    "total_discount_money": yen(0),
                    "total_tax_money": yen(amount * 10 // 110),
                    "total_money": yen(amount),
                }
            ],
            "created_at": stamp(now),
            "updated_at": stamp(now),
            "closed_at": stamp(now),
            "state": "COMPLETED",
            "version": 1,
            "total_money": yen(amount),
            "total_tax_money": yen(amount * 10 // 110),
            "total_discount_money": yen(0),
            "tenders": [
                {
                    "id": payment_id,
                    "location_id": location,
                    "created_at": stamp(now),
                    "amount_money": yen(amount),
                    "type": "CARD",
                    "payment_id": payment_id,
                }
            ],
        }
        payment: dict[str, Any] = {
            "id": payment_id,
            "created_at": stamp(now),
            "updated_at": stamp(now),
            "amount_money": yen(amount),
            "total_money": yen(amount),
            "status": "COMPLETED",
            "source_type": "CARD",
            "location_id": location,
            "order_id": order_id,
        }
        if customer_id and on_order:
            order["customer_id"] = customer_id
        if customer_id:
            payment["customer_id"] = customer_id
        with self.data.lock:
            self.data.orders[order_id] = order
            self.data.payments[payment_id] = payment
        return order_id, payment_id

    def refund(self, order_id: str, amount: int) -> str:
        """Refund ``amount`` yen of an order's payment now; returns the refund's id."""
        now = stamp(dt.datetime.now(dt.UTC))
        with self.data.lock:
            order = self.data.orders[order_id]
            refund_id = square_id("refund", f"{order_id}:{len(order.get('refunds') or [])}", 30)
            tender = (order.get("tenders") or [{}])[0]
            order.setdefault("refunds", []).append(
                {
                    "id": refund_id,
                    "location_id": order["location_id"],
                    "transaction_id": order_id,
                    "tender_id": tender.get("id"),
                    "created_at": now,
                    "reason": "返金",
                    "amount_money": yen(amount),
                    "status": "APPROVED",
                }
            )
            order["updated_at"] = now
            order["version"] = int(order.get("version") or 1) + 1
        return refund_id

    def notification(
        self, topic: str, data: Mapping[str, Any], *, url: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A webhook as Square sends it: (headers, body), signed for ``url`` (default the
        configured notification URL)."""
        body = json.dumps(
            {
                "merchant_id": MERCHANT_ID,
                "type": topic,
                "event_id": secrets.token_hex(16),
                "created_at": stamp(dt.datetime.now(dt.UTC)),
                "data": dict(data),
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-square-hmacsha256-signature": signature(
                self.signature_key, url or self.notification_url, body
            ),
        }
        return headers, body
