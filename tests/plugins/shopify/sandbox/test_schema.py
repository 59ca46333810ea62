"""The sandbox's schema is a strict subset of Shopify's, and it answers like Shopify."""

from __future__ import annotations

import re
from typing import Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_introspection_query,
    graphql_sync,
    parse,
    print_ast,
    validate,
)

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox.data import LINE_METAFIELD
from omnicrm.plugins.shopify.sandbox.schema import sandbox_schema

GID = re.compile(r"^gid://shopify/[A-Za-z]+/\d+$")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DECIMAL = re.compile(r"^-?\d+\.\d+$")
DIGITS = re.compile(r"^\d+$")


def _type_ref(ref: dict[str, Any]) -> str:
    if ref["kind"] == "NON_NULL":
        return _type_ref(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return "[" + _type_ref(ref["ofType"]) + "]"
    return str(ref["name"])


def _introspect(schema: GraphQLSchema) -> dict[str, dict[str, Any]]:
    result = graphql_sync(schema, get_introspection_query(descriptions=False))
    assert not result.errors, result.errors
    assert result.data is not None
    return {t["name"]: t for t in result.data["__schema"]["types"]}


def test_every_declared_type_field_argument_and_value_exists_in_shopifys_schema(
    shopify_schema: GraphQLSchema,
) -> None:
    ours, theirs = _introspect(sandbox_schema()), _introspect(shopify_schema)
    problems: list[str] = []
    for name, mine in ours.items():
        if name.startswith("__"):
            continue
        real = theirs.get(name)
        if real is None:
            problems.append(f"type {name} is not Shopify's")
            continue
        if mine["kind"] != real["kind"]:
            problems.append(f"{name} is a {mine['kind']}, Shopify's a {real['kind']}")
            continue
        real_interfaces = {i["name"] for i in real.get("interfaces") or ()}
        for iface in mine.get("interfaces") or ():
            if iface["name"] not in real_interfaces:
                problems.append(f"{name} implements {iface['name']}, Shopify's does not")
        real_fields = {f["name"]: f for f in real.get("fields") or ()}
        for f in mine.get("fields") or ():
            rf = real_fields.get(f["name"])
            if rf is None:
                problems.append(f"{name}.{f['name']} is not Shopify's")
                continue
            if _type_ref(f["type"]) != _type_ref(rf["type"]):
                problems.append(
                    f"{name}.{f['name']}: {_type_ref(f['type'])} != {_type_ref(rf['type'])}"
                )
            real_args = {a["name"]: a for a in rf["args"]}
            for a in f["args"]:
                ra = real_args.get(a["name"])
                if ra is None:
                    problems.append(f"{name}.{f['name']}({a['name']}) is not Shopify's")
                elif (_type_ref(a["type"]), a["defaultValue"]) != (
                    _type_ref(ra["type"]),
                    ra["defaultValue"],
                ):
                    problems.append(f"{name}.{f['name']}({a['name']}) differs from Shopify's")
            missing = {n for n, ra in real_args.items() if ra["type"]["kind"] == "NON_NULL"} - {
                a["name"] for a in f["args"]
            }
            if missing:
                problems.append(f"{name}.{f['name']} lacks required arguments {missing}")
        real_values = {v["name"] for v in real.get("enumValues") or ()}
        for v in mine.get("enumValues") or ():
            if v["name"] not in real_values:
                problems.append(f"{name}.{v['name']} is not one of Shopify's values")
    assert not problems, "\n".join(problems)


def test_the_roots_are_shopifys(shopify_schema: GraphQLSchema) -> None:
    ours = sandbox_schema()
    assert ours.query_type and shopify_schema.query_type
    assert ours.query_type.name == shopify_schema.query_type.name == "QueryRoot"
    assert ours.mutation_type and shopify_schema.mutation_type
    assert ours.mutation_type.name == shopify_schema.mutation_type.name


@pytest.mark.parametrize("name", sorted(queries.OPERATIONS))
def test_every_plugin_document_validates_against_the_sandbox(name: str) -> None:
    errors = validate(sandbox_schema(), parse(queries.OPERATIONS[name]))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("stream", sorted(queries.BULK_QUERIES))
def test_the_bulk_queries_validate_against_the_sandbox(stream: str) -> None:
    text = queries.bulk_query(stream, "updated_at:>='2026-01-01T00:00:00Z'")
    errors = validate(sandbox_schema(), parse(text))
    assert not errors, [e.message for e in errors]


# --- responses checked against Shopify's schema -------------------------------------------


class Shape:
    """Checks a response against Shopify's schema: nullability, scalars, no extra keys."""

    def __init__(self, schema: GraphQLSchema, document: str) -> None:
        self.schema = schema
        self.doc = parse(document)
        self.fragments = {
            d.name.value: d for d in self.doc.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.problems: list[str] = []
        self.seen: dict[str, int] = {}

    def check(self, data: dict[str, Any]) -> list[str]:
        op = next(d for d in self.doc.definitions if isinstance(d, OperationDefinitionNode))
        root = (
            self.schema.mutation_type
            if op.operation.value == "mutation"
            else self.schema.query_type
        )
        assert root is not None
        self._object(root, op.selection_set, data, "data")
        return self.problems

    def _fields(self, type_: GraphQLObjectType, sel: SelectionSetNode) -> list[FieldNode]:
        out: list[FieldNode] = []
        for s in sel.selections:
            if isinstance(s, FieldNode):
                out.append(s)
            elif isinstance(s, FragmentSpreadNode):
                out.extend(self._fields(type_, self.fragments[s.name.value].selection_set))
            elif isinstance(s, InlineFragmentNode):
                on = s.type_condition.name.value if s.type_condition else type_.name
                if on == type_.name or on in {i.name for i in type_.interfaces}:
                    out.extend(self._fields(type_, s.selection_set))
        return out

    def _object(
        self, type_: GraphQLObjectType, sel: SelectionSetNode, value: Any, path: str
    ) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{path}: expected an object, got {value!r}")
            return
        fields = self._fields(type_, sel)
        keys = {(f.alias or f.name).value for f in fields}
        if set(value) != keys:
            self.problems.append(f"{path}: keys {sorted(value)} != selection {sorted(keys)}")
        for f in fields:
            key = (f.alias or f.name).value
            if f.name.value == "__typename":
                continue
            self._value(type_.fields[f.name.value].type, f, value.get(key), f"{path}.{key}")

    def _value(self, type_: Any, f: FieldNode, value: Any, path: str) -> None:
        self.seen[path.split(".", 1)[-1]] = self.seen.get(path, 0) + 1
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                self.problems.append(f"{path}: null where Shopify's schema says non-null")
                return
            type_ = type_.of_type
        if value is None:
            return
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                self.problems.append(f"{path}: expected a list")
                return
            for i, item in enumerate(value):
                self._value(type_.of_type, f, item, f"{path}[{i}]")
            return
        if isinstance(type_, GraphQLEnumType):
            if value not in type_.values:
                self.problems.append(f"{path}: {value!r} is not a {type_.name}")
            return
        if isinstance(type_, GraphQLScalarType):
            self._scalar(type_.name, value, path)
            return
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            # An abstract type is checked as the object type its __typename names.
            name = value.get("__typename") if isinstance(value, dict) else None
            concrete = self.schema.get_type(name) if isinstance(name, str) else None
            if not isinstance(concrete, GraphQLObjectType) or not self.schema.is_sub_type(
                type_, concrete
            ):
                self.problems.append(f"{path}: {name!r} is not a {type_.name}")
                return
            type_ = concrete
        assert isinstance(type_, GraphQLObjectType) and f.selection_set is not None
        self._object(type_, f.selection_set, value, path)

    def _scalar(self, name: str, value: Any, path: str) -> None:
        ok = {
            "ID": lambda v: isinstance(v, str) and bool(GID.match(v)),
            "String": lambda v: isinstance(v, str),
            "Int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "Boolean": lambda v: isinstance(v, bool),
            "DateTime": lambda v: isinstance(v, str) and bool(DATETIME.match(v)),
            "Decimal": lambda v: isinstance(v, str) and bool(DECIMAL.match(v)),
            "Money": lambda v: isinstance(v, str) and bool(DECIMAL.match(v)),
            "UnsignedInt64": lambda v: isinstance(v, str) and bool(DIGITS.match(v)),
            "URL": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
        }[name](value)
        if not ok:
            self.problems.append(f"{path}: {value!r} is not a valid {name}")


def _sample_documents(admin: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each request document with variables that make it return real data."""
    orders = admin.data(queries.ORDERS, "Orders", first=5, lines=5)["orders"]["nodes"]
    several = max(orders, key=lambda o: len(o["lineItems"]["nodes"]))
    products = admin.data(queries.PRODUCTS, "Products", first=5, variants=5)["products"]["nodes"]
    customer = admin.data(queries.CUSTOMERS, "Customers", first=1)["customers"]["nodes"][0]
    discount = {
        "title": "サンプル",
        "code": "SHAPE-1",
        "startsAt": "2026-01-01T00:00:00Z",
        "customerSelection": {"all": True},
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
        "usageLimit": 1,
    }
    made = admin.data(queries.DISCOUNT_CREATE, "DiscountCreate", discount=discount)
    discount_id = made["discountCodeBasicCreate"]["codeDiscountNode"]["id"]
    added = admin.data(
        queries.DISCOUNT_CODES_ADD, "DiscountCodesAdd", id=discount_id, codes=[{"code": "SHAPE-2"}]
    )
    creation = added["discountRedeemCodeBulkAdd"]["bulkCreation"]["id"]
    metafield = {
        "ownerId": customer["id"],
        "namespace": "omnicrm",
        "key": "recommendations",
        "type": "json",
        "value": "[]",
    }
    return {
        "Customers": (queries.CUSTOMERS, {"first": 50, "query": "updated_at:>='2020-01-01'"}),
        "CustomersLine": (
            queries.CUSTOMERS_LINE,
            {"first": 20, "lineNamespace": LINE_METAFIELD[0], "lineKey": LINE_METAFIELD[1]},
        ),
        "Orders": (queries.ORDERS, {"first": 10, "lines": 5}),
        "OrderLineItems": (queries.ORDER_LINE_ITEMS, {"id": several["id"], "first": 2}),
        "Products": (
            queries.PRODUCTS,
            {"first": 20, "variants": 2, "query": "updated_at:>='2020-01-01'"},
        ),
        "ProductVariants": (queries.PRODUCT_VARIANTS, {"id": products[0]["id"], "first": 2}),
        "Product": (queries.PRODUCT, {"id": products[0]["id"], "variants": 3}),
        "AbandonedCheckouts": (
            queries.ABANDONED_CHECKOUTS,
            {"first": 10, "lines": 5, "query": "updated_at:>='2020-01-01'"},
        ),
        "AccessScopes": (queries.ACCESS_SCOPES, {}),
        "CustomersCount": (queries.CUSTOMERS_COUNT, {"query": "updated_at:>='2025-01-01'"}),
        "OrdersCount": (queries.ORDERS_COUNT, {"query": "updated_at:>='2025-01-01'", "limit": 50}),
        "BulkRun": (queries.BULK_RUN, {"query": queries.bulk_query("customers", "")}),
        "BulkCurrent": (queries.BULK_CURRENT, {}),
        "DiscountCreate": (queries.DISCOUNT_CREATE, {"discount": {**discount, "code": "SHAPE-3"}}),
        "DiscountCodesAdd": (
            queries.DISCOUNT_CODES_ADD,
            {"id": discount_id, "codes": [{"code": "SHAPE-4"}]},
        ),
        "DiscountCodesCreation": (
            queries.DISCOUNT_CODES_CREATION,
            {"id": creation, "first": 10},
        ),
        "DiscountByCode": (queries.DISCOUNT_BY_CODE, {"code": "shape-1"}),
        "MetafieldsSet": (queries.METAFIELDS_SET, {"metafields": [metafield]}),
    }


def test_every_request_document_answers_in_shopifys_shape(
    admin: Any, shop: Any, shopify_schema: GraphQLSchema
) -> None:
    # A few customers a LINE-connect app linked: their metafield is set, the rest null.
    shop.data.link_line_users({n: "U" + f"{n:x}" * 32 for n in range(1, 4)})
    samples = _sample_documents(admin)
    assert set(samples) == set(queries.OPERATIONS), "a new document needs a sample here"
    nodes = admin.run(*samples["CustomersLine"][:1], "CustomersLine", **samples["CustomersLine"][1])
    users = [n["lineUserId"] for n in nodes["data"]["customers"]["nodes"]]
    assert None in users and {u["value"][:2] for u in users if u} <= {"U1", "U2", "U3"}
    assert any(users)
    for name in sorted(samples):
        document, variables = samples[name]
        body = admin.run(document, name, **variables)
        assert "errors" not in body, (name, body["errors"])
        cost = body["extensions"]["cost"]
        assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
        problems = Shape(shopify_schema, document).check(body["data"])
        assert not problems, (name, problems[:10])
    shop.bulk.wait()
    body = admin.run(queries.BULK_CURRENT, "BulkCurrent")
    problems = Shape(shopify_schema, queries.BULK_CURRENT).check(body["data"])
    assert not problems and body["data"]["currentBulkOperation"]["status"] == "COMPLETED"


def test_shapes_cover_nulls_and_values(admin: Any, shopify_schema: GraphQLSchema) -> None:
    """Across a few pages every nullable field of the documents is seen null and set."""
    values: dict[str, set[bool]] = {}
    after = None
    for _ in range(10):  # pages of 25 (cost 902): a page of 100 would exceed the limit
        body = admin.data(queries.ORDERS, "Orders", first=25, lines=2, after=after)
        assert not Shape(shopify_schema, queries.ORDERS).check(body)
        for order in body["orders"]["nodes"]:
            for key in ("cancelledAt", "customer", "retailLocation"):
                values.setdefault(key, set()).add(order[key] is None)
        after = body["orders"]["pageInfo"]["endCursor"]
    assert values["customer"] == {True, False}, "guest orders and customers' orders"
    assert values["retailLocation"] == {True, False}, "POS orders have a retail location"
    assert values["cancelledAt"] == {True, False}, "some orders are cancelled"
    body = admin.data(
        queries.CUSTOMERS, "Customers", first=130
    )  # cost 912: two metafields a customer
    assert not Shape(shopify_schema, queries.CUSTOMERS).check(body)
    nodes = body["customers"]["nodes"]
    for key in ("email", "phone", "note", "defaultAddress", "smsMarketingConsent"):
        assert {n[key] is None for n in nodes} == {True, False}, key


def test_gids_are_strings_and_money_is_decimal_text(admin: Any) -> None:
    order = admin.data(queries.ORDERS, "Orders", first=1, lines=1)["orders"]["nodes"][0]
    assert isinstance(order["id"], str) and order["id"].startswith("gid://shopify/Order/")
    money = order["totalPriceSet"]["shopMoney"]
    assert money["currencyCode"] == "JPY" and money["amount"].endswith(".0")
    customer = admin.data(queries.CUSTOMERS, "Customers", first=1)["customers"]["nodes"][0]
    assert isinstance(customer["numberOfOrders"], str) and customer["numberOfOrders"].isdigit()


def test_validation_errors_look_like_graphql_errors(admin: Any) -> None:
    body = admin.run("{ shop { nope } }")
    assert "data" not in body
    assert "nope" in body["errors"][0]["message"]
    assert body["errors"][0]["locations"]
    body = admin.run("{ shop { name ")
    assert body["errors"][0]["message"].startswith("Syntax Error")


def test_print_is_stable_for_the_sdl() -> None:
    """The SDL file parses on its own (no resolvers needed to read it)."""
    from omnicrm.plugins.shopify.sandbox.schema import SDL

    assert print_ast(parse(SDL.read_text(encoding="utf-8")))


def test_input_types_are_only_the_write_backs() -> None:
    """Input objects exist for the mutations omnicrm writes with, and nothing else."""
    schema = sandbox_schema()
    inputs = {t.name for t in schema.type_map.values() if isinstance(t, GraphQLInputObjectType)}
    assert inputs == {
        "DiscountAmountInput",
        "DiscountCodeBasicInput",
        "DiscountCombinesWithInput",
        "DiscountCustomerGetsInput",
        "DiscountCustomerGetsValueInput",
        "DiscountCustomerSelectionInput",
        "DiscountItemsInput",
        "DiscountMinimumRequirementInput",
        "DiscountMinimumSubtotalInput",
        "DiscountRedeemCodeInput",
        "MetafieldsSetInput",
    }
