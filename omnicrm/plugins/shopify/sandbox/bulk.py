"""Bulk query operations: run in the background, results as JSONL like Shopify's.

One bulk query runs at a time per shop (API 2024-12); a second gets a userError. The
query's root must be the ``customers`` or ``orders`` connection, with ``Order.lineItems``
as the one nested connection allowed. Each node is one JSON line without its nested
connections; their nodes follow as lines of their own carrying ``__parentId``. Parents
always come before their children, but children of different parents are deliberately
interleaved (Shopify makes no promise of grouping), so a client must join by id.

Operations belong to the sandbox, not to a client connection: a client that crashed
finds its operation again through ``currentBulkOperation``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast

from . import search as search_syntax
from .data import ShopData, customer_number, gid

BULK_BASE = 5_190_000_000_000
_CHUNK = 250


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class BulkOperation:
    """One bulk operation and its progress."""

    number: int
    query: str
    status: str = "CREATED"
    created_at: str = field(default_factory=_now_iso)
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    url: str | None = None
    partial_data_url: str | None = None
    error_code: str | None = None
    type: str = "QUERY"

    @property
    def id(self) -> str:
        """Its GID."""
        return gid("BulkOperation", self.number)

    def as_json(self) -> dict[str, Any]:
        """The BulkOperation object of the API."""
        return {
            "__typename": "BulkOperation",
            "id": self.id,
            "status": self.status,
            "errorCode": self.error_code,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_object_count),
            "fileSize": None if self.file_size is None else str(self.file_size),
            "url": self.url,
            "partialDataUrl": self.partial_data_url,
            "query": self.query,
            "type": self.type,
        }


@dataclass
class _Step:
    """One selected field of a projection plan."""

    key: str
    name: str
    kind: str  # leaf | object | list | connection | customer | metafield | typename
    plan: list[_Step] | None = None
    limit: int | None = None
    metafield: tuple[str | None, str] | None = None  # (namespace, key) of a metafield
    whole: bool | None = None
    """For objects: the plan selects exactly the record's keys, so the record is reused
    as is (decided on the first value seen; records of one type share their keys)."""


class BulkQueryError(ValueError):
    """The bulk query cannot run (reported as a userError)."""


class _Planner:
    """Turns a validated bulk query into projection plans over the sandbox's records."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.connections = 0

    def fields(self, type_: GraphQLObjectType, sel: SelectionSetNode) -> list[FieldNode]:
        out: list[FieldNode] = []
        for s in sel.selections:
            if isinstance(s, FieldNode):
                out.append(s)
            elif isinstance(s, FragmentSpreadNode):
                frag = self.fragments[s.name.value]
                if frag.type_condition.name.value == type_.name:
                    out.extend(self.fields(type_, frag.selection_set))
            elif isinstance(s, InlineFragmentNode):
                cond = s.type_condition.name.value if s.type_condition else type_.name
                if cond == type_.name:
                    out.extend(self.fields(type_, s.selection_set))
        return out

    def node_selection(
        self, conn: GraphQLObjectType, sel: SelectionSetNode
    ) -> tuple[GraphQLObjectType, SelectionSetNode]:
        """The node type and selection of a connection (``edges { node }`` or ``nodes``)."""
        node_type = get_named_type(conn.fields["nodes"].type)
        assert isinstance(node_type, GraphQLObjectType)
        for f in self.fields(conn, sel):
            if f.name.value == "nodes" and f.selection_set:
                return node_type, f.selection_set
            if f.name.value == "edges" and f.selection_set:
                edge = get_named_type(conn.fields["edges"].type)
                assert isinstance(edge, GraphQLObjectType)
                for e in self.fields(edge, f.selection_set):
                    if e.name.value == "node" and e.selection_set:
                        return node_type, e.selection_set
        raise BulkQueryError("A connection in a bulk query must select edges { node } or nodes.")

    def plan(self, type_: GraphQLObjectType, sel: SelectionSetNode, depth: int) -> list[_Step]:
        steps: list[_Step] = []
        for f in self.fields(type_, sel):
            name, key = f.name.value, (f.alias or f.name).value
            if name == "__typename":
                steps.append(_Step(key, type_.name, "typename"))
                continue
            definition = type_.fields[name]
            named = get_named_type(definition.type)
            if is_leaf_type(named) or f.selection_set is None:
                steps.append(_Step(key, name, "leaf"))
                continue
            assert isinstance(named, GraphQLObjectType)
            if named.name.endswith("Connection") and "nodes" in named.fields:
                self.connections += 1
                if depth >= 2:
                    raise BulkQueryError("Bulk queries support a nesting depth of two levels.")
                if (type_.name, name) != ("Order", "lineItems"):
                    raise BulkQueryError(
                        f"The sandbox's bulk queries support Order.lineItems as the only "
                        f"nested connection, not {type_.name}.{name}."
                    )
                node_type, node_sel = self.node_selection(named, f.selection_set)
                steps.append(
                    _Step(key, name, "connection", self.plan(node_type, node_sel, depth + 1))
                )
                continue
            sub = self.plan(named, f.selection_set, depth)
            if name == "metafield":
                args = {
                    a.name.value: value_from_ast(a.value, definition.args[a.name.value].type)
                    for a in f.arguments or ()
                }
                where = (args.get("namespace"), str(args["key"]))
                steps.append(_Step(key, name, "metafield", sub, metafield=where))
                continue
            if (type_.name, name) == ("Order", "customer"):
                steps.append(_Step(key, name, "customer", sub))
                continue
            inner = definition.type
            if isinstance(inner, GraphQLNonNull):
                inner = inner.of_type
            if isinstance(inner, GraphQLList):
                limit = None
                for arg in f.arguments or ():
                    if arg.name.value == "first":
                        limit = value_from_ast(arg.value, definition.args["first"].type)
                steps.append(_Step(key, name, "list", sub, limit))
            else:
                steps.append(_Step(key, name, "object", sub))
        return steps


def _project(record: dict[str, Any], plan: list[_Step], data: ShopData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step in plan:
        kind = step.kind
        if kind == "leaf":
            out[step.key] = record.get(step.name)
        elif kind == "typename":
            out[step.key] = step.name
        elif kind == "object":
            value = record.get(step.name)
            if value is None:
                out[step.key] = None
                continue
            if step.whole is None:
                step.whole = _selects_all(value, step.plan or [])
            out[step.key] = value if step.whole else _project(value, step.plan or [], data)
        elif kind == "metafield":
            assert step.metafield is not None
            namespace, key = step.metafield
            value = (record.get("_metafields") or {}).get(step.metafield)
            field = None
            if value is not None:
                field = {
                    "namespace": namespace,
                    "key": key,
                    "type": "single_line_text_field",
                    "value": value,
                }
            out[step.key] = None if field is None else _project(field, step.plan or [], data)
        elif kind == "list":
            items = record.get(step.name) or []
            if step.limit is not None:
                items = items[: step.limit]
            out[step.key] = [_project(v, step.plan or [], data) for v in items]
        elif kind == "customer":
            owner = record.get("_owner")
            if owner is None or owner in data.deleted_customers:
                out[step.key] = None
            elif all(s.name == "id" for s in step.plan or []):
                ref = {"id": gid("Customer", customer_number(owner))}
                out[step.key] = _project(ref, step.plan or [], data)
            else:
                with data.lock:
                    customer = data.customer(owner)
                out[step.key] = _project(customer, step.plan or [], data)
    return out


def _selects_all(record: dict[str, Any], plan: list[_Step]) -> bool:
    """True when projecting ``record`` with ``plan`` would copy it unchanged."""
    if {s.key for s in plan} != set(record):
        return False
    for step in plan:
        if step.key != step.name:
            return False
        if step.kind == "object":
            value = record[step.name]
            if value is not None and not _selects_all(value, step.plan or []):
                return False
        elif step.kind != "leaf":
            return False
    return True


class BulkManager:
    """The shop's bulk operations; results are files served by the sandbox."""

    def __init__(
        self,
        data: ShopData,
        schema: GraphQLSchema,
        directory: Path,
        url_for: Callable[[int], str],
        *,
        seed: int = 1,
    ) -> None:
        self.data = data
        self.schema = schema
        self.directory = directory
        self.url_for = url_for
        self.operations: dict[int, BulkOperation] = {}
        self.latest: BulkOperation | None = None
        self.min_seconds = 0.0
        """Every operation stays RUNNING at least this long (to let tests see it run)."""
        self.fail_next = 0
        """Operations still to fail half-way (a fault switch)."""
        self._lock = threading.Lock()
        self._next = BULK_BASE + seed % 1000 * 1000
        self._threads: list[threading.Thread] = []

    def current(self, type_: str = "QUERY") -> BulkOperation | None:
        """The most recent operation of that type, whatever its status."""
        return self.latest if type_ == "QUERY" else None

    def path(self, number: int) -> Path | None:
        """The result file of an operation, when it has one."""
        op = self.operations.get(number)
        if op is None:
            return None
        path = self.directory / f"{number}.jsonl"
        return path if path.exists() else None

    def run(self, query: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Start a bulk query: (the operation as created, userErrors), as the API answers."""
        with self._lock:
            busy = self.latest
            if busy is not None and busy.status in ("CREATED", "RUNNING"):
                return None, [
                    {
                        "field": None,
                        "message": "A bulk query operation for this app and shop is already "
                        f"in progress: {busy.id}.",
                        "code": "OPERATION_IN_PROGRESS",
                    }
                ]
            try:
                job = self._compile(query)
            except (BulkQueryError, GraphQLError) as exc:
                return None, [{"field": ["query"], "message": str(exc), "code": "INVALID"}]
            op = BulkOperation(self._next, query)
            self._next += 1000 + self._next % 7
            self.operations[op.number] = op
            self.latest = op
            created = op.as_json()
        thread = threading.Thread(
            target=self._run, args=(op, *job), name=f"bulk-{op.number}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return created, []

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every operation started so far (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _compile(self, query: str) -> tuple[str, dict[str, Any], list[_Step], _Step | None]:
        document = parse(query)
        errors = validate(self.schema, document)
        if errors:
            raise BulkQueryError("Invalid bulk query: " + "; ".join(e.message for e in errors))
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation.value != "query":
            raise BulkQueryError("A bulk query must be a single query operation.")
        if ops[0].variable_definitions:
            raise BulkQueryError("Bulk queries cannot take variables.")
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        planner = _Planner(self.schema, fragments)
        root = self.schema.query_type
        assert root is not None
        tops = planner.fields(root, ops[0].selection_set)
        if len(tops) != 1 or tops[0].name.value not in ("customers", "orders"):
            raise BulkQueryError(
                "The sandbox's bulk queries run on the customers or orders connection."
            )
        top = tops[0]
        args = {
            a.name.value: value_from_ast(
                a.value, root.fields[top.name.value].args[a.name.value].type
            )
            for a in top.arguments or ()
        }
        conn = get_named_type(root.fields[top.name.value].type)
        assert isinstance(conn, GraphQLObjectType) and top.selection_set is not None
        node_type, node_sel = planner.node_selection(conn, top.selection_set)
        plan = planner.plan(node_type, node_sel, 1)
        if planner.connections + 1 > 5:
            raise BulkQueryError("Bulk queries support at most five connections.")
        children = next((s for s in plan if s.kind == "connection"), None)
        return top.name.value, args, [s for s in plan if s.kind != "connection"], children

    def _run(
        self,
        op: BulkOperation,
        stream: str,
        args: dict[str, Any],
        plan: list[_Step],
        children: _Step | None,
    ) -> None:
        started = time.monotonic()
        op.status = "RUNNING"
        data = self.data
        path = self.directory / f"{op.number}.jsonl"
        fail = False
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                fail = True
        sort = "UPDATED_AT" if args.get("sortKey") == "UPDATED_AT" else "ID"
        found = search_syntax.parse(args.get("query"), id_fields={"id"}, now=data.clock())
        # Children wait in a pool and leave it in random order, mixed with later parents,
        # so those of one parent are neither contiguous nor next to it.
        pool: list[str] = []
        shuffle = random.Random(op.number)
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        if stream == "orders":
            data.wait_for_orders()
        try:
            with path.open("w", encoding="utf-8") as out:
                after = None
                while True:
                    with data.lock:
                        page = data.page(
                            stream, sort, found, first=_CHUNK, last=None, after=after,
                            before=None, reverse=bool(args.get("reverse")),
                        )  # fmt: skip
                        make = data.customer if stream == "customers" else data.order
                        records = [make(index) for index, _ in page.items]
                    for record in records:
                        parent = _project(record, plan, data)
                        out.write(dumps(parent) + "\n")
                        op.object_count += 1
                        op.root_object_count += 1
                        if children is not None:
                            for line in record.get("_lines", ()):
                                child = _project(line, children.plan or [], data)
                                child["__parentId"] = record["id"]
                                pool.append(dumps(child))
                                op.object_count += 1
                        for _ in range(shuffle.randint(0, 3)):
                            if pool:
                                out.write(pool.pop(shuffle.randrange(len(pool))) + "\n")
                    if fail:  # the fault switch: fail after the first chunk
                        out.flush()
                        raise RuntimeError("injected failure")
                    if not page.has_next:
                        break
                    after = page.items[-1][1]
                shuffle.shuffle(pool)
                for line in pool:
                    out.write(line + "\n")
        except Exception:
            op.status = "FAILED"
            op.error_code = "INTERNAL_SERVER_ERROR"
            op.partial_data_url = self.url_for(op.number)
            op.completed_at = None
            return
        rest = self.min_seconds - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)
        size = path.stat().st_size
        op.file_size = size if op.object_count else None
        op.url = self.url_for(op.number) if op.object_count else None
        op.completed_at = _now_iso()
        op.status = "COMPLETED"
