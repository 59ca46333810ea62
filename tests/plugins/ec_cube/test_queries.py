"""Every document the EC-CUBE plugin sends validates against the Api42 schema, and asks
for the statuses explicitly."""

from __future__ import annotations

from functools import cache

import pytest
from graphql import (
    FieldNode,
    GraphQLSchema,
    ListValueNode,
    OperationDefinitionNode,
    StringValueNode,
    build_schema,
    parse,
    validate,
)

from omnicrm.plugins.ec_cube.api import queries
from tests.support.reference import REFERENCE, require

ECCUBE_SCHEMA = REFERENCE / "eccube" / "api_schema.graphql"


@cache
def reference_schema() -> GraphQLSchema:
    """The Api42 plugin's schema from the shared reference."""
    return build_schema(require(ECCUBE_SCHEMA).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(queries.OPERATIONS))
def test_documents_validate_against_the_reference_schema(name: str) -> None:
    document = parse(queries.OPERATIONS[name])
    errors = validate(reference_schema(), document)
    assert not errors, [e.message for e in errors]
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert operation.name is not None and operation.name.value == name


def _root_argument(name: str, argument: str) -> list[str] | str | None:
    document = parse(queries.OPERATIONS[name])
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    (root,) = operation.selection_set.selections
    assert isinstance(root, FieldNode)
    for arg in root.arguments:
        if arg.name.value == argument:
            value = arg.value
            if isinstance(value, ListValueNode):
                return [v.value for v in value.values if isinstance(v, StringValueNode)]
            return type(value).__name__  # a variable
    return None


@pytest.mark.parametrize("name", ["Customers", "CustomerIds"])
def test_customers_are_asked_for_in_every_status(name: str) -> None:
    # The API's default is ["1", "2"]: withdrawn members (3) would stay hidden.
    assert _root_argument(name, "customer_status") == ["1", "2", "3"]


@pytest.mark.parametrize("name", ["Orders", "OrderIds"])
def test_orders_are_asked_for_by_status_without_unfinished_checkouts(name: str) -> None:
    assert _root_argument(name, "status") == ["1", "3", "4", "5", "6", "9"]


def test_products_are_asked_for_in_every_status() -> None:
    # The API's default is ["1", "2"]: a discontinued product (3) would stay offered.
    assert _root_argument("Products", "status") == ["1", "2", "3"]


@pytest.mark.parametrize("name", ["Customers", "Orders", "Products"])
def test_lists_read_by_update_date_windows(name: str) -> None:
    assert _root_argument(name, "update_datetime_start") == "VariableNode"
    assert _root_argument(name, "update_datetime_end") == "VariableNode"
