"""Query cost and the leaky bucket, as Shopify documents them for the Admin API.

Costs per field: scalars and enums 0, objects 1, a connection ``2 + size x (cost of one
node)`` where ``size`` is its ``first``/``last`` argument and a node costs 1 plus its
own selection, a mutation's root field 10. ``edges``, ``node``, ``nodes``, ``pageInfo``
and ``cursor`` only shape a connection and add nothing. Interfaces cost the most
expensive of their implementations. A plain list of objects (``refunds(first:)``,
``nodes(ids:)``) costs one element's cost times ``first``, or the number of ``ids``, or
once. The *requested* cost is computed from the document and variables before executing;
the *actual* cost by the same rules over what was returned: connections count the nodes
that came back, null objects count nothing.

The bucket: before executing, the requested cost must fit in what is available, else
the query is THROTTLED; it is taken, and the difference to the actual cost is refunded
after. The bucket refills at ``restore_rate`` points per second up to its size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.utilities import value_from_ast

MUTATION_COST = 10
CONNECTION_COST = 2
_SHAPE_ONLY = {"pageInfo", "cursor", "__typename"}

_Parent = GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType


def operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs (by name, or the only one)."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        ops = [o for o in ops if o.name and o.name.value == name]
    return ops[0] if len(ops) == 1 else None


class Cost:
    """Computes requested and actual costs of one operation."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        op: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.op = op
        self.variables = dict(variables)
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def requested(self) -> int:
        """The cost before execution: every connection at its full page size."""
        return self._root(None)

    def actual(self, data: Mapping[str, Any] | None) -> int:
        """The cost of what ``data`` holds."""
        return self._root(data or {})

    def _root(self, data: Mapping[str, Any] | None) -> int:
        if self.op.operation == OperationType.MUTATION:
            fields = self._fields(self.schema.mutation_type, self.op.selection_set)
            return MUTATION_COST * sum(1 for key, _ in fields if not key.startswith("__"))
        root = self.schema.query_type
        assert root is not None
        return self._selection(root, self.op.selection_set, data)

    # --- walking --------------------------------------------------------------------------

    def _included(self, node: FieldNode | FragmentSpreadNode | InlineFragmentNode) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            value = True
            for arg in directive.arguments or ():
                if arg.name.value == "if":
                    if isinstance(arg.value, BooleanValueNode):
                        value = arg.value.value
                    else:
                        value = bool(value_from_ast(arg.value, GraphQLBoolean, self.variables))
            if (name == "skip") == value:
                return False
        return True

    def _applies(self, condition: str | None, runtime: GraphQLObjectType) -> bool:
        if condition is None or condition == runtime.name:
            return True
        other = self.schema.get_type(condition)
        if isinstance(other, GraphQLInterfaceType | GraphQLUnionType):
            return self.schema.is_sub_type(other, runtime)
        return False

    def _fields(
        self, runtime: GraphQLObjectType | None, selections: SelectionSetNode
    ) -> list[tuple[str, FieldNode]]:
        """(response key, field) pairs selected on ``runtime``, fragments expanded."""
        out: list[tuple[str, FieldNode]] = []
        if runtime is None:
            return out
        for sel in selections.selections:
            if not self._included(sel):  # type: ignore[arg-type]
                continue
            if isinstance(sel, FieldNode):
                out.append(((sel.alias or sel.name).value, sel))
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag and self._applies(frag.type_condition.name.value, runtime):
                    out.extend(self._fields(runtime, frag.selection_set))
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition.name.value if sel.type_condition else None
                if self._applies(cond, runtime):
                    out.extend(self._fields(runtime, sel.selection_set))
        return out

    def _selection(
        self, parent: _Parent, selections: SelectionSetNode, value: Mapping[str, Any] | None
    ) -> int:
        """Cost of a selection on ``parent``: the most expensive implementation if abstract."""
        if isinstance(parent, GraphQLObjectType):
            return self._object(parent, selections, value)
        runtimes = self.schema.get_possible_types(parent)
        return max((self._object(t, selections, value) for t in runtimes), default=0)

    def _object(self, runtime: GraphQLObjectType, selections: SelectionSetNode, value: Any) -> int:
        total = 0
        for key, node in self._fields(runtime, selections):
            name = node.name.value
            if name.startswith("__"):
                continue
            field = runtime.fields.get(name)
            if field is None:
                continue
            named = get_named_type(field.type)
            if is_leaf_type(named) or node.selection_set is None:
                continue
            assert isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
            args = self._args(field.args, node)
            child = None if value is None else value.get(key)
            if _is_connection(named):
                total += self._connection(named, node.selection_set, args, value, child)
            else:
                total += self._objects(field.type, named, node.selection_set, args, value, child)
        return total

    def _connection(
        self,
        conn: _Parent,
        selections: SelectionSetNode,
        args: dict[str, Any],
        parent_value: Any,
        value: Any,
    ) -> int:
        assert isinstance(conn, GraphQLObjectType)
        node_type = get_named_type(conn.fields["nodes"].type)
        assert isinstance(node_type, GraphQLObjectType | GraphQLInterfaceType)
        parts: list[tuple[SelectionSetNode, Callable[[Any], list[Any]]]] = []
        for key, node in self._fields(conn, selections):
            if node.selection_set is None:
                continue
            if node.name.value == "nodes":
                parts.append((node.selection_set, _getter(key)))
            elif node.name.value == "edges":
                edge = get_named_type(conn.fields["edges"].type)
                assert isinstance(edge, GraphQLObjectType)
                for edge_key, edge_node in self._fields(edge, node.selection_set):
                    if edge_node.name.value == "node" and edge_node.selection_set:
                        parts.append((edge_node.selection_set, _edge_getter(key, edge_key)))
        if parent_value is None:
            size = args.get("first") or args.get("last") or 0
            per_node = sum(1 + self._selection(node_type, s, None) for s, _ in parts)
            return CONNECTION_COST + size * per_node
        if value is None:
            return 0
        total = CONNECTION_COST
        for sel, get in parts:
            for item in get(value):
                total += 1 + self._selection(node_type, sel, item)
        return total

    def _objects(
        self,
        field_type: Any,
        named: _Parent,
        selections: SelectionSetNode,
        args: dict[str, Any],
        parent_value: Any,
        value: Any,
    ) -> int:
        inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if isinstance(inner, GraphQLList):
            size = args.get("first") or len(args.get("ids") or ()) or 1
            if parent_value is None:
                return size * (1 + self._selection(named, selections, None))
            items = [v for v in (value or [])[:size] if v is not None]
            return sum(1 + self._selection(named, selections, v) for v in items)
        if parent_value is None:
            return 1 + self._selection(named, selections, None)
        if value is None:
            return 0
        return 1 + self._selection(named, selections, value)

    def _args(self, defs: Mapping[str, Any], node: FieldNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for arg in node.arguments or ():
            definition = defs.get(arg.name.value)
            if definition is not None:
                out[arg.name.value] = value_from_ast(arg.value, definition.type, self.variables)
        return out


def _is_connection(named: Any) -> bool:
    return (
        isinstance(named, GraphQLObjectType)
        and named.name.endswith("Connection")
        and "nodes" in named.fields
    )


def _getter(key: str) -> Callable[[Any], list[Any]]:
    return lambda conn: list(conn.get(key) or [])


def _edge_getter(key: str, node_key: str) -> Callable[[Any], list[Any]]:
    return lambda conn: [e.get(node_key) for e in (conn.get(key) or []) if e]


@dataclass(frozen=True)
class ThrottleStatus:
    """What ``extensions.cost.throttleStatus`` reports."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    def as_json(self) -> dict[str, float | int]:
        """The JSON shape Shopify sends (whole points available, floats otherwise)."""
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self.currently_available),
            "restoreRate": self.restore_rate,
        }


class LeakyBucket:
    """One app's cost budget on one shop; thread-safe."""

    def __init__(
        self, size: float, restore_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if size <= 0 or restore_rate <= 0:
            raise ValueError("bucket size and restore rate must be positive")
        self.size = float(size)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._available = float(size)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.size, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost: float) -> bool:
        """Take ``cost`` points if available (else take nothing and return False)."""
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points: float) -> None:
        """Give back points not used (requested minus actual cost)."""
        with self._lock:
            self._refill()
            self._available = min(self.size, self._available + points)

    def drain(self, points: float | None = None) -> None:
        """Empty the bucket (or take ``points``), as a burst of other calls would."""
        with self._lock:
            self._refill()
            self._available = max(0.0, self._available - (self.size if points is None else points))

    def status(self) -> ThrottleStatus:
        """The bucket now; availability rounded down to whole points like Shopify's."""
        with self._lock:
            self._refill()
            return ThrottleStatus(self.size, float(int(self._available)), self.restore_rate)
