"""The sandbox's GraphQL schema (``schema.graphql``) with its resolvers, and the service
that answers one request the way Shopify does: validation, cost, bucket, execution.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLSyntaxError,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from . import search as search_syntax
from .cost import Cost, LeakyBucket, operation
from .data import (
    CUSTOMER_BASE,
    EPOCH,
    MASK,
    ORDER_BASE,
    SHIFT,
    STRIDE,
    ShopData,
    customer_number,
    gid,
    order_number,
)
from .writes import Writes

if TYPE_CHECKING:
    from typing import TypeAlias

    from .bulk import BulkManager

    Info: TypeAlias = "GraphQLResolveInfo[Context]"

SDL = Path(__file__).with_name("schema.graphql")
MAX_PAGE = 250
MAX_COUNT = 10_000
"""Counts stop there, as Shopify's do in 2024-12 (precision AT_LEAST beyond)."""
DOCS = "https://shopify.dev/api/usage/rate-limits"

SCOPES = {
    "read_customers": "Read customers",
    "read_orders": "Read orders, transactions, and fulfillments",
    "read_all_orders": "Read all orders beyond the last 60 days",
}


@cache
def sandbox_schema() -> GraphQLSchema:
    """The schema with the sandbox's resolvers attached (built once per process)."""
    schema = build_schema(SDL.read_text(encoding="utf-8"))
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None and mutation is not None
    query.fields["customers"].resolve = _customers
    query.fields["orders"].resolve = _orders
    query.fields["customer"].resolve = _customer
    query.fields["customersCount"].resolve = _customers_count
    query.fields["ordersCount"].resolve = _orders_count
    query.fields["order"].resolve = _order
    query.fields["products"].resolve = _products
    query.fields["product"].resolve = _product
    query.fields["node"].resolve = _node
    query.fields["nodes"].resolve = _nodes
    query.fields["shop"].resolve = _shop
    query.fields["currentAppInstallation"].resolve = _installation
    query.fields["currentBulkOperation"].resolve = _current_bulk
    mutation.fields["bulkOperationRunQuery"].resolve = _bulk_run
    mutation.fields["discountCodeBasicCreate"].resolve = _discount_create
    mutation.fields["discountRedeemCodeBulkAdd"].resolve = _discount_codes_add
    mutation.fields["metafieldsSet"].resolve = _metafields_set
    query.fields["codeDiscountNodeByCode"].resolve = _discount_by_code
    query.fields["discountRedeemCodeBulkCreation"].resolve = _discount_creation
    creation = schema.get_type("DiscountRedeemCodeBulkCreation")
    union = schema.get_type("DiscountCode")
    assert creation is not None and union is not None
    creation.fields["codes"].resolve = _creation_codes  # type: ignore[attr-defined]
    union.resolve_type = lambda obj, _info, _type: obj.get("__typename")  # type: ignore[attr-defined]
    customer = schema.get_type("Customer")
    assert customer is not None
    customer.fields["metafield"].resolve = _metafield  # type: ignore[attr-defined]
    order = schema.get_type("Order")
    node = schema.get_type("Node")
    assert order is not None and node is not None
    order.fields["lineItems"].resolve = _line_items  # type: ignore[attr-defined]
    order.fields["customer"].resolve = _order_customer  # type: ignore[attr-defined]
    order.fields["refunds"].resolve = _refunds  # type: ignore[attr-defined]
    order.fields["discountCodes"].resolve = _discount_codes  # type: ignore[attr-defined]
    product = schema.get_type("Product")
    assert product is not None
    product.fields["variants"].resolve = _variants  # type: ignore[attr-defined]
    # Imported here: the checkouts module builds on this one's helpers.
    from .checkouts import abandoned_checkouts, line_items

    query.fields["abandonedCheckouts"].resolve = abandoned_checkouts
    checkout = schema.get_type("AbandonedCheckout")
    assert checkout is not None
    checkout.fields["lineItems"].resolve = line_items  # type: ignore[attr-defined]
    node.resolve_type = lambda obj, _info, _type: obj.get("__typename")  # type: ignore[attr-defined]
    return schema


@dataclass
class Context:
    """What resolvers of one request see."""

    data: ShopData
    bulk: BulkManager
    shop: str
    shop_name: str
    scopes: list[str]
    writes: Writes = field(default_factory=Writes)
    later: Callable[[float, Callable[[], None]], None] = field(default=lambda _s, fn: fn())
    warnings: list[dict[str, Any]] = field(default_factory=list)


class UserFacingError(GraphQLError):
    """An error in the request, reported in ``errors`` with the field's path."""


# --- cursors ---------------------------------------------------------------------------


def _encode_cursor(number: int, value: str) -> str:
    raw = json.dumps({"last_id": number, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = json.loads(base64.b64decode(cursor.encode(), validate=True))
        number, value = raw["last_id"], raw["last_value"]
        if not isinstance(number, int) or not isinstance(value, str):
            raise TypeError
        return number, value
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise UserFacingError(f"Invalid cursor: {cursor!r}") from exc


def _cursor(stream: str, sort: str, index: int, key: float) -> str:
    number = customer_number(index) if stream == "customers" else order_number(index)
    if sort == "UPDATED_AT":
        sec = int(key) >> 23
        stamp = dt.datetime.fromtimestamp(EPOCH + sec, dt.UTC)
        return _encode_cursor(number, stamp.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return _encode_cursor(number, str(number))


def _cursor_key(stream: str, sort: str, cursor: str | None) -> float | None:
    """The listing key a cursor points at; stable whatever changed since."""
    if cursor is None:
        return None
    number, value = _decode_cursor(cursor)
    base = CUSTOMER_BASE if stream == "customers" else ORDER_BASE
    index = (number - base) // STRIDE
    if not 0 <= index <= MASK:
        raise UserFacingError(f"Invalid cursor: {cursor!r}")
    if sort != "UPDATED_AT":
        return float(index)
    try:
        stamp = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise UserFacingError(f"Invalid cursor for this sort key: {cursor!r}") from exc
    return float((int(stamp.timestamp()) - EPOCH) * SHIFT + index)


def _page_size(first: int | None, last: int | None) -> None:
    if first is None and last is None:
        raise UserFacingError("you must provide one of first or last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise UserFacingError(f"The '{name}' argument must be between 0 and {MAX_PAGE}.")


# --- resolvers ---------------------------------------------------------------------------


def _listing(stream: str, info: Info, args: dict[str, Any]) -> dict[str, Any]:
    ctx: Context = info.context
    first, last = args.get("first"), args.get("last")
    _page_size(first, last)
    sort = "UPDATED_AT" if args.get("sortKey") == "UPDATED_AT" else "ID"
    found = search_syntax.parse(args.get("query"), id_fields={"id"}, now=ctx.data.clock())
    if found.warnings:
        ctx.warnings.append(
            {"path": [info.field_name], "query": args.get("query"), "warnings": found.warnings}
        )
    data = ctx.data
    if stream == "orders":
        data.wait_for_orders()
    with data.lock:
        page = data.page(
            stream,
            sort,
            found,
            first=first,
            last=last,
            after=_cursor_key(stream, sort, args.get("after")),
            before=_cursor_key(stream, sort, args.get("before")),
            reverse=bool(args.get("reverse")),
        )
        make = data.customer if stream == "customers" else data.order
        nodes = [make(index) for index, _ in page.items]
    cursors = [_cursor(stream, sort, index, key) for index, key in page.items]
    return _connection(nodes, cursors, page.has_next, page.has_previous)


def _connection(
    nodes: list[dict[str, Any]], cursors: list[str], has_next: bool, has_previous: bool
) -> dict[str, Any]:
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _customers(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    return _listing("customers", info, args)


def _orders(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    return _listing("orders", info, args)


def _count(stream: str, info: Info, query: str | None, limit: int | None) -> dict[str, Any]:
    ctx = info.context
    found = search_syntax.parse(query, id_fields={"id"}, now=ctx.data.clock())
    if found.warnings:
        ctx.warnings.append({"path": [info.field_name], "query": query, "warnings": found.warnings})
    cap = MAX_COUNT if limit is None else max(0, min(limit, MAX_COUNT))
    if stream == "orders":
        ctx.data.wait_for_orders()  # before the lock: other requests go on meanwhile
    with ctx.data.lock:
        count, exact = ctx.data.count(stream, found, cap)
    return {"count": count, "precision": "EXACT" if exact else "AT_LEAST"}


def _customers_count(_root: Any, info: Info, query: str | None = None) -> dict[str, Any]:
    return _count("customers", info, query, None)


def _orders_count(
    _root: Any, info: Info, query: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    return _count("orders", info, query, limit)


def _customer_by_gid(ctx: Context, value: str) -> dict[str, Any] | None:
    with ctx.data.lock:
        c = ctx.data.customer_index(value)
        return None if c is None else ctx.data.customer(c)


def _order_by_gid(ctx: Context, value: str) -> dict[str, Any] | None:
    data = ctx.data
    data.wait_for_orders()
    with data.lock:
        rank = data.order_rank(value)
        if rank is None:
            return None
        cutoff = data.clock() - 60 * 86_400
        if not data.read_all_orders and data.order_created(rank) + EPOCH < cutoff:
            return None  # as Shopify: older orders are invisible without read_all_orders
        return data.order(rank)


def _customer(_root: Any, info: Info, id: str) -> dict[str, Any] | None:
    return _customer_by_gid(info.context, id)


def _order(_root: Any, info: Info, id: str) -> dict[str, Any] | None:
    return _order_by_gid(info.context, id)


def _products(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    """Products by updatedAt or id, filtered by ``updated_at`` and ``id`` searches."""
    ctx: Context = info.context
    first, last = args.get("first"), args.get("last")
    _page_size(first, last)
    by_updated = args.get("sortKey") == "UPDATED_AT"
    found = search_syntax.parse(args.get("query"), id_fields={"id"}, now=ctx.data.clock())
    if found.warnings:
        ctx.warnings.append(
            {"path": [info.field_name], "query": args.get("query"), "warnings": found.warnings}
        )
    reverse = bool(args.get("reverse"))
    after = None if args.get("after") is None else _product_key(args["after"])
    before = None if args.get("before") is None else _product_key(args["before"])

    def past(key: tuple[int, int], mark: tuple[int, int]) -> bool:
        """Whether ``key`` comes after ``mark`` in the listing's order (a cursor keeps
        its place even when its product changed or went since)."""
        return key < mark if reverse else key > mark

    catalogue = ctx.data.products
    with catalogue.lock:
        listed = catalogue.listing(found, by_updated)
        if reverse:
            listed.reverse()
        window = [
            (key, number)
            for key, number in listed
            if (after is None or past(key, after)) and (before is None or past(before, key))
        ]
        front = after is not None and any(not past(key, after) for key, _ in listed)
        back = before is not None and any(not past(before, key) for key, _ in listed)
        if first is not None:
            chosen = window[:first]
            has_next, has_previous = len(window) > first or back, front
        else:
            size = last or 0
            chosen = window[max(0, len(window) - size) :]
            has_next, has_previous = back, len(window) > size or front
        nodes = [catalogue.node(number, ctx.shop) for _, number in chosen]
    cursors = [_encode_cursor(key[1], str(key[0])) for key, _ in chosen]
    return _connection(nodes, cursors, has_next, has_previous)


def _product_key(cursor: str) -> tuple[int, int]:
    number, value = _decode_cursor(cursor)
    try:
        return int(value), number
    except ValueError as exc:
        raise UserFacingError(f"Invalid cursor: {cursor!r}") from exc


def _product_by_gid(ctx: Context, value: str) -> dict[str, Any] | None:
    catalogue = ctx.data.products
    with catalogue.lock:
        number = catalogue.number(value)
        return None if number is None else catalogue.node(number, ctx.shop)


def _product(_root: Any, info: Info, id: str) -> dict[str, Any] | None:
    return _product_by_gid(info.context, id)


def _variants(product: dict[str, Any], _info: Info, **args: Any) -> Any:
    return _nested_page(product["_variants"], args)


def _by_gid(ctx: Context, value: str) -> dict[str, Any] | None:
    if value.startswith("gid://shopify/Product/"):
        return _product_by_gid(ctx, value)
    if value.startswith("gid://shopify/Customer/"):
        return _customer_by_gid(ctx, value)
    if value.startswith("gid://shopify/Order/"):
        return _order_by_gid(ctx, value)
    return None


def _node(_root: Any, info: Info, id: str) -> dict[str, Any] | None:
    return _by_gid(info.context, id)


def _nodes(_root: Any, info: Info, ids: list[str]) -> list[dict[str, Any] | None]:
    if len(ids) > MAX_PAGE:
        raise UserFacingError(f"The 'ids' argument accepts at most {MAX_PAGE} ids.")
    return [_by_gid(info.context, value) for value in ids]


def _shop(_root: Any, info: Info) -> dict[str, Any]:
    ctx: Context = info.context
    return {
        "__typename": "Shop",
        "id": gid("Shop", 60_150_000_000),
        "name": ctx.shop_name,
        "myshopifyDomain": ctx.shop,
        "currencyCode": "JPY",
        "ianaTimezone": "Asia/Tokyo",
    }


def _installation(_root: Any, info: Info) -> dict[str, Any]:
    ctx: Context = info.context
    return {
        "__typename": "AppInstallation",
        "id": gid("AppInstallation", 51_800_000_000),
        "accessScopes": [{"handle": s, "description": SCOPES.get(s, s)} for s in ctx.scopes],
    }


def _current_bulk(_root: Any, info: Info, type: str = "QUERY") -> Any:
    ctx: Context = info.context
    op = ctx.bulk.current(type)
    return None if op is None else op.as_json()


def _bulk_run(_root: Any, info: Info, query: str) -> dict[str, Any]:
    ctx: Context = info.context
    created, errors = ctx.bulk.run(query)
    return {"bulkOperation": created, "userErrors": errors}


def _only_id(info: Info) -> bool:
    """True when the field selects nothing but ``id`` (and ``__typename``)."""
    for node in info.field_nodes:
        for sel in node.selection_set.selections if node.selection_set else ():
            if not isinstance(sel, FieldNode) or sel.name.value not in ("id", "__typename"):
                return False
    return True


def _order_customer(order: dict[str, Any], info: Info) -> Any:
    owner = order.get("_owner")
    ctx: Context = info.context
    if owner is None or owner in ctx.data.deleted_customers:
        return None
    if _only_id(info):  # the usual ``customer { id }``: no need to build the customer
        return {"__typename": "Customer", "id": gid("Customer", customer_number(owner))}
    with ctx.data.lock:
        return ctx.data.customer(owner)


def _metafield(
    customer: dict[str, Any], info: Info, key: str, namespace: str | None = None
) -> dict[str, Any] | None:
    """A customer's metafield (the furigana a Japanese shop keeps there, or one an app
    set), if it has one."""
    ctx: Context = info.context
    written = ctx.writes.metafield(customer["id"], namespace or "", key)
    if written is not None:
        return written
    value = (customer.get("_metafields") or {}).get((namespace, key))
    if value is None:
        return None
    return {"namespace": namespace, "key": key, "type": "single_line_text_field", "value": value}


def _discount_codes(order: dict[str, Any], _info: Info) -> list[str]:
    return list(order.get("discountCodes") or [])


def _discount_create(_root: Any, info: Info, basicCodeDiscount: dict[str, Any]) -> Any:
    ctx: Context = info.context
    return ctx.writes.create_discount(basicCodeDiscount)


def _discount_codes_add(
    _root: Any, info: Info, discountId: str, codes: list[dict[str, Any]]
) -> Any:
    ctx: Context = info.context
    return ctx.writes.add_codes(discountId, codes, later=ctx.later)


def _discount_by_code(_root: Any, info: Info, code: str) -> Any:
    ctx: Context = info.context
    return ctx.writes.by_code(code)


def _discount_creation(_root: Any, info: Info, id: str) -> Any:
    ctx: Context = info.context
    return ctx.writes.creation(id)


def _creation_codes(creation: dict[str, Any], _info: Info, **args: Any) -> Any:
    codes = creation["_codes"]
    first, after = args.get("first"), args.get("after")
    _page_size(first, args.get("last"))
    start = 0 if after is None else _decode_cursor(after)[0] + 1
    size = first if first is not None else len(codes)
    chosen = list(range(start, min(len(codes), start + size)))
    cursors = [_encode_cursor(i, str(i)) for i in chosen]
    return _connection([codes[i] for i in chosen], cursors, start + size < len(codes), start > 0)


def _metafields_set(_root: Any, info: Info, metafields: list[dict[str, Any]]) -> Any:
    ctx: Context = info.context

    def exists(value: str) -> bool:
        return _by_gid(ctx, value) is not None

    return ctx.writes.set_metafields(metafields, exists)


def _refunds(order: dict[str, Any], _info: Info, first: int | None = None) -> Any:
    refunds = order.get("refunds") or []
    return refunds if first is None else refunds[:first]


def _line_items(order: dict[str, Any], _info: Info, **args: Any) -> Any:
    return _nested_page(order["_lines"], args)


def _nested_page(lines: list[dict[str, Any]], args: dict[str, Any]) -> Any:
    """A page of an object's own list (an order's lines, a product's variants), its
    cursors the items' numeric ids."""
    first, last = args.get("first"), args.get("last")
    _page_size(first, last)
    numbers = [int(line["id"].rsplit("/", 1)[1]) for line in lines]
    order_ = list(range(len(lines)))
    if args.get("reverse"):
        order_.reverse()
    after, before = args.get("after"), args.get("before")
    lo, hi = 0, len(order_)
    if after is not None:
        number, _ = _decode_cursor(after)
        lo = next((i + 1 for i, k in enumerate(order_) if numbers[k] == number), hi)
    if before is not None:
        number, _ = _decode_cursor(before)
        hi = next((i for i, k in enumerate(order_) if numbers[k] == number), hi)
    window = order_[lo:hi]
    if first is not None:
        chosen = window[:first]
        has_next, has_previous = len(window) > first or hi < len(order_), lo > 0
    else:
        size = last or 0
        chosen = window[max(0, len(window) - size) :]
        has_next, has_previous = hi < len(order_), len(window) > size or lo > 0
    cursors = [_encode_cursor(numbers[k], str(numbers[k])) for k in chosen]
    return _connection([lines[k] for k in chosen], cursors, has_next, has_previous)


# --- the service -------------------------------------------------------------------------


@dataclass
class Outcome:
    """One answered request: the JSON body and what it cost."""

    body: dict[str, Any]
    requested: int | None = None
    actual: int | None = None
    throttled: bool = False


class GraphQLService:
    """Answers Admin API GraphQL requests against a :class:`ShopData`."""

    def __init__(
        self,
        context_factory: Callable[[], Context],
        bucket: LeakyBucket,
        *,
        max_cost: int = 1000,
    ) -> None:
        self.schema = sandbox_schema()
        self.context_factory = context_factory
        self.bucket = bucket
        self.max_cost = max_cost
        self._documents: OrderedDict[str, tuple[DocumentNode, list[GraphQLError]]] = OrderedDict()
        self._lock = threading.Lock()

    def _document(self, text: str) -> tuple[DocumentNode, list[GraphQLError]]:
        with self._lock:
            cached = self._documents.get(text)
        if cached is None:
            document = parse(text)
            cached = (document, list(validate(self.schema, document)))
            with self._lock:
                self._documents[text] = cached
                if len(self._documents) > 256:
                    self._documents.popitem(last=False)
        return cached

    def answer(self, body: Mapping[str, Any], *, force_throttle: bool = False) -> Outcome:
        """The response to one request body (``query``, ``variables``, ``operationName``)."""
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            return Outcome({"errors": [{"message": "No query string was present"}]})
        try:
            document, errors = self._document(text)
        except GraphQLSyntaxError as exc:
            return Outcome({"errors": [exc.formatted]})
        if errors:
            return Outcome({"errors": [e.formatted for e in errors]})
        name = body.get("operationName")
        op = operation(document, name if isinstance(name, str) else None)
        if op is None:
            message = "An operation name is required" if not name else f"No operation {name!r}"
            return Outcome({"errors": [{"message": message}]})
        raw_variables = body.get("variables") or {}
        if not isinstance(raw_variables, dict):
            return Outcome({"errors": [{"message": "Variables must be a JSON object"}]})
        coerced = get_variable_values(self.schema, op.variable_definitions or (), raw_variables)
        if isinstance(coerced, list):
            return Outcome({"errors": [e.formatted for e in coerced]})
        # graphql-core 3.3 wraps the coerced values; 3.2 returns them as a dict
        variables: Mapping[str, Any] = (
            coerced if isinstance(coerced, dict) else getattr(coerced, "coerced", {})
        )
        cost = Cost(self.schema, document, op, variables)
        requested = cost.requested()
        if requested > self.max_cost:
            return Outcome(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the single "
                            f"query max cost limit ({self.max_cost}). Ask for smaller pages, "
                            "or use a bulk operation for large amounts of data.",
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": self.max_cost,
                                "documentation": DOCS,
                            },
                        }
                    ]
                },
                requested=requested,
            )
        if force_throttle:
            self.bucket.drain()
        if force_throttle or not self.bucket.take(requested):
            return Outcome(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {"code": "THROTTLED", "documentation": DOCS},
                        }
                    ],
                    "extensions": {"cost": self._cost(requested, None)},
                },
                requested=requested,
                throttled=True,
            )
        ctx = self.context_factory()
        result = execute(
            self.schema, document, context_value=ctx, variable_values=raw_variables,
            operation_name=name if isinstance(name, str) else None,
        )  # fmt: skip
        assert isinstance(result, ExecutionResult), "resolvers are synchronous"
        data = result.data
        actual = cost.actual(data)
        if actual < requested:
            self.bucket.refund(requested - actual)
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        out["data"] = data
        extensions: dict[str, Any] = {"cost": self._cost(requested, actual)}
        if ctx.warnings:
            extensions["search"] = ctx.warnings
        out["extensions"] = extensions
        return Outcome(out, requested=requested, actual=actual)

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status().as_json(),
        }
