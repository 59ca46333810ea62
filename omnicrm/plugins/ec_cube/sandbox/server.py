"""The EC-CUBE emulator: the Api42 plugin's GraphQL API, OAuth2 endpoints and WebHooks.

What it holds to, as EC-CUBE 4.2 with the Api42 plugin does:

* ``POST /api``: GraphQL over :file:`schema.graphql` (the reference schema's types, a
  subset); a bearer access token is required (401 without a valid one). ``customers``,
  ``orders`` and ``products`` page by ``page`` (from 1) and ``limit`` (1..100) in ``update_date``
  DESC order (then id DESC) with ``totalCount``; ``update_datetime_start`` is inclusive
  and ``update_datetime_end`` exclusive (``Y-m-d\\TH:i:sP``). Hidden unless asked:
  withdrawn members (``customer_status`` defaults to ["1", "2"]), unfinished
  checkouts (``status`` null leaves out 7 and 8) and discontinued products (``status``
  defaults to ["1", "2"]). An argument it does not emulate is an
  error, never silently ignored.
* ``GET /{admin}/authorize`` (the operator is taken as logged in and approving): a code
  valid ten minutes, once, redirected to the registered ``redirect_uri`` with ``state``.
  ``POST /token``: ``authorization_code`` and ``refresh_token`` grants; access tokens
  live ``token_lifetime`` seconds (an hour); a refresh token is revoked when used
  (rotation, as league/oauth2-server does) and a new one issued.
* WebHooks: :meth:`EccubeSandbox.deliver` POSTs ``[{entity, id, action}, ...]`` signed
  with ``X-ECCUBE-Signature`` (hex HMAC-SHA256 of the body) to ``webhook_url``.
* Fault switches from :class:`omnicrm.testing.Emulator` (5xx, 429, slow answers, cut
  bodies) and :meth:`expire_tokens` (every access token handed out stops working).

Changes (for tests): :meth:`update` re-stamps a record at the clock's now and may send
the webhook; ``after_query`` is called after each list answer is computed (to change
rows while a client pages).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

import httpx
import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from omnicrm.plugins.ec_cube import masters
from omnicrm.plugins.ec_cube.sandbox.data import JST, Row, ShopData, stamp
from omnicrm.testing import Emulator

SDL = Path(__file__).with_name("schema.graphql")
MAX_LIMIT = 100
CODE_LIFETIME = 600.0
HIDDEN_ORDER_STATUSES = frozenset({"7", "8"})
# The arguments each list field answers; any other given is refused.
EMULATED = {
    "customers": {
        "customer_status",
        "update_datetime_start",
        "update_datetime_end",
        "page",
        "limit",
    },
    "orders": {"status", "update_datetime_start", "update_datetime_end", "page", "limit"},
    "products": {"status", "update_datetime_start", "update_datetime_end", "page", "limit"},
}


@cache
def schema() -> GraphQLSchema:
    """The sandbox's schema (a subset of the reference's)."""
    return build_schema(SDL.read_text(encoding="utf-8"))


Plan = list[tuple[str, str, Any]]
"""A selection compiled: (response key, field name, the sub-plan or None) per field."""


def _selections(
    selections: Iterable[Any], fragments: Mapping[str, FragmentDefinitionNode]
) -> Plan | None:
    plan: Plan = []
    for selection in selections:
        if selection.directives:
            return None
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                return None
            sub = None
            if selection.selection_set is not None:
                sub = _selections(selection.selection_set.selections, fragments)
                if sub is None:
                    return None
            key = selection.alias.value if selection.alias else name
            if any(k == key for k, _, _ in plan):
                return None  # the same key twice (merged selections): the full executor
            plan.append((key, name, sub))
        else:
            if isinstance(selection, FragmentSpreadNode):
                inner = fragments[selection.name.value].selection_set.selections
            else:
                inner = selection.selection_set.selections
            more = _selections(inner, fragments)
            if more is None:
                return None
            plan.extend(more)
    return plan


_plans: dict[tuple[int, str | None], Any] = {}


def _plan(
    document: DocumentNode, operation: str | None
) -> tuple[Any, list[tuple[str, FieldNode, Plan | None]]] | None:
    """The operation's variable definitions and its root fields with their plans."""
    cache_key = (id(document), operation)
    if cache_key in _plans:
        return _plans[cache_key]  # type: ignore[no-any-return]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    chosen = [o for o in operations if operation is None or (o.name and o.name.value == operation)]
    found: Any = None
    if len(chosen) == 1 and chosen[0].operation == OperationType.QUERY:
        roots = []
        for selection in chosen[0].selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives:
                break
            sub = None
            if selection.selection_set is not None:
                sub = _selections(selection.selection_set.selections, fragments)
                if sub is None:
                    break
            key = selection.alias.value if selection.alias else selection.name.value
            roots.append((key, selection, sub))
        else:
            found = (chosen[0].variable_definitions, roots)
    _plans[cache_key] = found
    return found  # type: ignore[no-any-return]


def _project(plan: Plan | None, value: Any) -> Any:
    if plan is None or value is None:
        return value
    if isinstance(value, list):
        return [_project(plan, v) for v in value]
    return {key: _project(sub, value.get(name)) for key, name, sub in plan}


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _Table:
    """One kind's rows, ordered by (update time, id) for range reads."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = {row.id: row for row in rows}
        self.keys = sorted((row.updated, row.id) for row in self.rows.values())

    def restamp(self, row: Row, updated: int) -> None:
        index = bisect.bisect_left(self.keys, (row.updated, row.id))
        del self.keys[index]
        row.updated = updated
        bisect.insort(self.keys, (updated, row.id))

    def remove(self, ident: int) -> None:
        row = self.rows.pop(ident)
        del self.keys[bisect.bisect_left(self.keys, (row.updated, row.id))]

    def newest_first(
        self, start: int | None, end: int | None, statuses: frozenset[str] | None, keep: bool
    ) -> list[Row]:
        """Rows with start <= updated < end, newest first; ``statuses`` kept (``keep``)
        or left out."""
        low = 0 if start is None else bisect.bisect_left(self.keys, (start, -1))
        high = len(self.keys) if end is None else bisect.bisect_left(self.keys, (end, -1))
        found = []
        for _, ident in reversed(self.keys[low:high]):
            row = self.rows[ident]
            if statuses is None or (row.status in statuses) == keep:
                found.append(row)
        return found


class EccubeSandbox(Emulator):
    """An EC-CUBE shop with the Web API plugin on loopback, serving ``data``."""

    name: ClassVar[str] = "ec_cube-sandbox"

    def __init__(
        self,
        data: ShopData,
        *,
        admin_path: str = "admin",
        client_id: str = "sandbox-client",
        client_secret: str | None = None,
        redirect_uri: str = "http://127.0.0.1:8765/callback",
        token_lifetime: float = 3600.0,
        refresh_lifetime: float = 30 * 86400.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.data = data
        self.admin_path = admin_path
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uri = redirect_uri
        self.token_lifetime = token_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.webhook_secret = secrets.token_urlsafe(24)
        self.webhook_url: str | None = None
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        """"Now" for the records :meth:`update` changes."""
        self.lock = threading.RLock()
        self.customers = _Table(data.customers.values())
        self.orders = _Table(data.orders.values())
        self.products = _Table(data.products.values())
        self.codes: dict[str, tuple[float, str]] = {}  # code -> (expiry, redirect_uri)
        self.access: dict[str, float] = {}  # access token -> expiry (time.time())
        self.refresh: dict[str, float] = {}  # live refresh token -> expiry
        self.refreshes = 0
        self.queries: list[str] = []
        """The GraphQL documents answered, in order (for tests)."""
        self.after_query: Callable[[], None] | None = None
        self._documents: dict[str, DocumentNode | list[GraphQLError]] = {}
        self.app = Starlette(
            routes=[
                Route("/api", self._api, methods=["POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route(f"/{admin_path}/authorize", self._authorize, methods=["GET"]),
            ]
        )

    # --- connection -----------------------------------------------------------------------

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A connection's settings that reach this sandbox (tokens come from authorising)."""
        return {
            "url": self.url,
            "admin_path": self.admin_path,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "webhook_secret": self.webhook_secret,
            "settle_seconds": 0,
            **extra,
        }

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        return JSONResponse(
            {"errors": [{"message": f"HTTP {status}"}]}, status, headers=dict(headers)
        )

    def expire_tokens(self) -> None:
        """Every access token handed out so far stops working (refresh tokens still do)."""
        with self.lock:
            self.access = dict.fromkeys(self.access, 0.0)

    # --- OAuth2 ---------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return JSONResponse({"error": "invalid_client"}, 401)
        redirect = q.get("redirect_uri", self.redirect_uri)
        if redirect != self.redirect_uri:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "redirect_uri"}, 400
            )
        if q.get("response_type") != "code":
            return JSONResponse({"error": "unsupported_response_type"}, 400)
        if not set(q.get("scope", "read").split()) <= {"read", "write"}:
            return JSONResponse({"error": "invalid_scope"}, 400)
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = (time.time() + CODE_LIFETIME, redirect)
        query = {"code": code} | ({"state": q["state"]} if "state" in q else {})
        return RedirectResponse(f"{redirect}?{urlencode(query)}", 302)

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(48), "def5" + secrets.token_hex(64)
        now = time.time()
        self.access[access] = now + self.token_lifetime
        self.refresh[refresh] = now + self.refresh_lifetime
        return {
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "access_token": access,
            "refresh_token": refresh,
        }

    async def _token(self, request: Request) -> Response:
        # Parsed here: Starlette's form parser needs python-multipart, not a dependency.
        pairs = parse_qs((await request.body()).decode("utf-8", "replace"))
        form = {k: v[0] for k, v in pairs.items()}
        if form.get("client_id") != self.client_id or not hmac.compare_digest(
            str(form.get("client_secret", "")), self.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = form.get("grant_type")
        now = time.time()
        with self.lock:
            if grant == "authorization_code":
                found = self.codes.pop(str(form.get("code", "")), None)
                if found is None or found[0] < now or form.get("redirect_uri") != found[1]:
                    return JSONResponse({"error": "invalid_grant"}, 400)
                return _Json(self._issue())
            if grant == "refresh_token":
                expiry = self.refresh.pop(str(form.get("refresh_token", "")), None)  # revoked
                if expiry is None or expiry < now:
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "revoked"}, 400
                    )
                self.refreshes += 1
                return _Json(self._issue())
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    # --- GraphQL --------------------------------------------------------------------------

    def _document(self, text: str) -> DocumentNode | list[GraphQLError]:
        found = self._documents.get(text)
        if found is None:
            try:
                document = parse(text)
            except GraphQLError as exc:
                found = [exc]
            else:
                errors = validate(schema(), document)
                found = errors or document
            self._documents[text] = found
        return found

    async def _api(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self.lock:
            valid = self.access.get(token, 0.0) > time.time()
        if not valid:
            return JSONResponse(
                {"error": "access_denied", "message": "invalid or expired token"}, 401
            )
        try:
            body = orjson.loads(await request.body())
            text = body["query"]
            variables = body.get("variables") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return JSONResponse(
                {"errors": [{"message": "a JSON body with a query is required"}]}, 400
            )
        document = self._document(str(text))
        if isinstance(document, list):
            return _Json({"errors": [{"message": e.message} for e in document]})
        with self.lock:
            self.queries.append(str(text))
            answer = self._execute(document, variables, body.get("operationName"))
        if self.after_query is not None:
            self.after_query()
        return _Json(answer)

    def _execute(self, document: DocumentNode, variables: Any, operation: Any) -> dict[str, Any]:
        """The answer to a validated document: its root fields resolved here, the nodes
        projected on the selections (plain data, no per-field resolvers: graphql-core's
        executor is what would make the sandbox, not the client, the benchmark's limit)."""
        plan = _plan(document, str(operation) if operation else None)
        if plan is None:  # directives, __typename or the like: the full executor
            result = execute_sync(
                schema(),
                document,
                root_value=self._roots(),
                variable_values=variables,
                operation_name=operation,
            )
            answer: dict[str, Any] = {"data": result.data}
            if result.errors:
                answer["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
            return answer
        definitions, fields = plan
        coerced = get_variable_values(schema(), definitions or (), variables or {})
        if isinstance(coerced, list):
            return {"errors": [{"message": e.message} for e in coerced]}
        data: dict[str, Any] = {}
        roots = self._roots()
        query = schema().query_type
        assert query is not None
        for key, node, selection in fields:
            name = node.name.value
            try:
                args = get_argument_values(query.fields[name], node, coerced)
                value = roots[name](None, **args)
            except GraphQLError as exc:
                return {"data": None, "errors": [{"message": exc.message, "path": [key]}]}
            data[key] = _project(selection, value)
        return {"data": data}

    def _roots(self) -> dict[str, Callable[..., Any]]:
        return {
            "customers": self._customers,
            "orders": self._orders,
            "products": self._products,
            "customer": self._customer,
            "order": self._order,
            "product": self._product,
        }

    @staticmethod
    def _when(args: Mapping[str, Any], name: str) -> int | None:
        raw = args.get(name)
        if raw is None:
            return None
        try:
            value = dt.datetime.fromisoformat(str(raw))
        except ValueError:
            raise GraphQLError(f"{name}: not a date-time (Y-m-d\\TH:i:sP)") from None
        if value.tzinfo is None:
            raise GraphQLError(f"{name}: a time zone offset is required")
        return int(value.timestamp())

    def _list(
        self,
        field: str,
        table: _Table,
        statuses: frozenset[str] | None,
        keep: bool,
        args: Mapping[str, Any],
    ) -> dict[str, Any]:
        odd = {k for k, v in args.items() if v is not None} - EMULATED[field]
        if odd:
            raise GraphQLError(f"the sandbox does not emulate {field}({', '.join(sorted(odd))})")
        page, limit = int(args.get("page") or 1), int(args.get("limit") or 50)
        if not 1 <= limit <= MAX_LIMIT or page < 1:
            raise GraphQLError(f"limit must be 1..{MAX_LIMIT} and page 1 or more")
        rows = table.newest_first(
            self._when(args, "update_datetime_start"),
            self._when(args, "update_datetime_end"),
            statuses,
            keep,
        )
        chunk = rows[(page - 1) * limit : page * limit]
        return {
            "totalCount": len(rows),
            "nodes": [row.node for row in chunk],
            "pageInfo": {"hasNextPage": page * limit < len(rows), "hasPreviousPage": page > 1},
        }

    def _customers(self, info: Any, **args: Any) -> dict[str, Any]:
        wanted = args.get("customer_status")
        statuses = frozenset(str(s) for s in wanted) if wanted else None
        return self._list("customers", self.customers, statuses, True, args)

    def _orders(self, info: Any, **args: Any) -> dict[str, Any]:
        wanted = args.get("status")
        if wanted:
            return self._list("orders", self.orders, frozenset(str(s) for s in wanted), True, args)
        return self._list("orders", self.orders, HIDDEN_ORDER_STATUSES, False, args)

    def _products(self, info: Any, **args: Any) -> dict[str, Any]:
        # The API's default (status ["1", "2"]) hides discontinued products (3 廃止).
        wanted = args.get("status") or ["1", "2"]
        return self._list("products", self.products, frozenset(str(s) for s in wanted), True, args)

    def _product(self, info: Any, id: str) -> dict[str, Any] | None:
        row = self.products.rows.get(int(id)) if str(id).isdigit() else None
        return row.node if row else None

    def _customer(self, info: Any, id: str) -> dict[str, Any] | None:
        row = self.customers.rows.get(int(id)) if str(id).isdigit() else None
        return row.node if row else None

    def _order(self, info: Any, id: str) -> dict[str, Any] | None:
        row = self.orders.rows.get(int(id)) if str(id).isdigit() else None
        return row.node if row else None

    # --- changes and webhooks ---------------------------------------------------------------

    def _table(self, entity: str) -> _Table:
        return {"customer": self.customers, "product": self.products}.get(entity, self.orders)

    def update(
        self,
        entity: str,
        ident: int,
        changes: Mapping[str, Any] | None = None,
        *,
        at: dt.datetime | None = None,
        notify: bool = False,
    ) -> dict[str, Any]:
        """Change a customer, order or product (``entity``) and stamp it ``at`` (default
        the clock's now), as the admin screen saving it would; returns its node."""
        when = (at or self.clock()).replace(microsecond=0)
        with self.lock:
            table = self._table(entity)
            row = table.rows[ident]
            row.node = {**row.node, **(changes or {}), "update_date": stamp(when)}
            if entity in ("customer", "product"):
                row.status = str(row.node["Status"]["id"])
            else:
                row.status = str(row.node["OrderStatus"]["id"])
            table.restamp(row, int(when.timestamp()))
        if notify:
            self.deliver([{"entity": entity, "id": ident, "action": "updated"}])
        return row.node

    def sell(self, product: int, class_id: str, quantity: int) -> dict[str, Any]:
        """A sale takes ``quantity`` from a product class's stock, as an order does: the
        class is stamped now, the product keeps its update date (EC-CUBE saves only the
        class), so the product stays where it was in ``update_date`` order."""
        when = stamp(self.clock().replace(microsecond=0))
        with self.lock:
            row = self.products.rows[product]
            classes = []
            for item in row.node["ProductClasses"]:
                if item["id"] == class_id and not item["stock_unlimited"]:
                    item = {**item, "stock": max(0.0, item["stock"] - quantity)}
                    item["update_date"] = when
                classes.append(item)
            row.node = {**row.node, "ProductClasses": classes}
        return row.node

    def withdraw(self, ident: int, *, notify: bool = False) -> dict[str, Any]:
        """A member withdraws (退会): status 3, the email replaced by a dummy address."""
        dummy = f"{secrets.token_hex(30)}@dummy.dummy"
        changes = {"Status": {"id": str(masters.WITHDRAWN), "name": "退会"}, "email": dummy}
        return self.update("customer", ident, changes, notify=notify)

    def delete(self, entity: str, ident: int, *, notify: bool = False) -> None:
        """Delete a record outright (EC-CUBE deletes orders; a plugin may delete members)."""
        with self.lock:
            self._table(entity).remove(ident)
        if notify:
            self.deliver([{"entity": entity, "id": ident, "action": "deleted"}])

    def signed(self, items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        """A WebHook's body and headers, as EC-CUBE sends them."""
        body = orjson.dumps(items)
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-ECCUBE-URL": self.url + "/",
            "X-ECCUBE-Signature": digest,
        }
        return body, headers

    def deliver(self, items: list[dict[str, Any]]) -> int | None:
        """POST a WebHook to ``webhook_url`` (none set: nothing); its HTTP status.
        EC-CUBE does not retry: a failed delivery is lost."""
        if self.webhook_url is None:
            return None
        body, headers = self.signed(items)
        try:
            return httpx.post(
                self.webhook_url, content=body, headers=headers, timeout=10
            ).status_code
        except httpx.HTTPError:
            return None

    def now_jst(self) -> str:
        return self.clock().astimezone(JST).isoformat(timespec="seconds")
