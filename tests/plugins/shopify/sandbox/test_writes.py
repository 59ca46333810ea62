"""The sandbox's discount codes and metafields answer as Shopify's Admin API does."""

from __future__ import annotations

import json
import time
from typing import Any

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from tests.plugins.shopify.sandbox.conftest import Admin


def _discount(code: str, title: str = "冬のクーポン", **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "code": code,
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2027-01-31T15:00:00Z",
        "customerSelection": {"all": True},
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        **extra,
    }


def _create(admin: Admin, code: str, **extra: Any) -> dict[str, Any]:
    data = admin.data(queries.DISCOUNT_CREATE, "DiscountCreate", discount=_discount(code, **extra))
    payload: dict[str, Any] = data["discountCodeBasicCreate"]
    return payload


def _wait_done(admin: Admin, creation: str) -> dict[str, Any]:
    for _ in range(100):
        node: dict[str, Any] = admin.data(
            queries.DISCOUNT_CODES_CREATION, "DiscountCodesCreation", id=creation, first=100
        )["discountRedeemCodeBulkCreation"]
        if node["done"]:
            return node
        time.sleep(0.05)
    raise AssertionError("the code import never finished")


def test_a_discount_is_created_and_a_taken_code_refused(admin: Admin) -> None:
    created = _create(admin, "WRT-FIRST")
    assert created["userErrors"] == []
    discount = created["codeDiscountNode"]["id"]
    assert discount.startswith("gid://shopify/DiscountCodeNode/")
    again = _create(admin, "wrt-first")  # codes are case-insensitive
    assert again["codeDiscountNode"] is None
    assert again["userErrors"] == [
        {
            "field": ["basicCodeDiscount", "code"],
            "message": "Code must be unique. Please try a different code.",
            "code": "TAKEN",
            "extraInfo": None,
        }
    ]
    found = admin.data(queries.DISCOUNT_BY_CODE, "DiscountByCode", code="Wrt-First")
    node = found["codeDiscountNodeByCode"]
    assert node["id"] == discount and node["codeDiscount"]["title"] == "冬のクーポン"


def test_bad_discounts_are_user_errors(admin: Admin) -> None:
    wrong = _create(
        admin, "WRT-BAD", customerGets={"value": {"percentage": 10}, "items": {"all": True}}
    )
    assert [e["code"] for e in wrong["userErrors"]] == ["VALUE_OUTSIDE_RANGE"]
    backwards = _create(admin, "WRT-BAD2", endsAt="2025-01-01T00:00:00Z")
    assert [e["code"] for e in backwards["userErrors"]] == ["GREATER_THAN"]


def test_codes_are_added_in_the_background_and_duplicates_fail(admin: Admin) -> None:
    discount = _create(admin, "WRT-BULK-0")["codeDiscountNode"]["id"]
    other = _create(admin, "WRT-OTHER")["codeDiscountNode"]["id"]
    assert other != discount
    codes = [{"code": f"WRT-BULK-{i}"} for i in range(1, 6)] + [
        {"code": "WRT-OTHER"},  # another discount's
        {"code": "WRT-BULK-1"},  # twice in the call
    ]
    added = admin.data(queries.DISCOUNT_CODES_ADD, "DiscountCodesAdd", id=discount, codes=codes)[
        "discountRedeemCodeBulkAdd"
    ]
    assert added["userErrors"] == []
    assert added["bulkCreation"]["done"] is False  # Shopify imports them asynchronously
    node = _wait_done(admin, added["bulkCreation"]["id"])
    assert (node["codesCount"], node["importedCount"], node["failedCount"]) == (7, 5, 2)
    failed = {n["code"]: n["errors"] for n in node["codes"]["nodes"] if n["errors"]}
    assert set(failed) == {"WRT-OTHER", "WRT-BULK-1"}
    assert failed["WRT-OTHER"][0]["code"] == "TAKEN"


def test_more_than_100_codes_are_refused_whole(admin: Admin, shop: ShopifySandbox) -> None:
    discount = _create(admin, "WRT-MANY-0")["codeDiscountNode"]["id"]
    codes = [{"code": f"WRT-MANY-{i}"} for i in range(1, 102)]
    added = admin.data(queries.DISCOUNT_CODES_ADD, "DiscountCodesAdd", id=discount, codes=codes)[
        "discountRedeemCodeBulkAdd"
    ]
    assert added["bulkCreation"] is None
    assert added["userErrors"][0]["code"] == "EXCEEDED_MAX"
    assert shop.writes.by_code("WRT-MANY-1") is None


def _metafield(owner: str, value: Any, kind: str = "json", key: str = "recs") -> dict[str, Any]:
    return {
        "ownerId": owner,
        "namespace": "omnicrm",
        "key": key,
        "type": kind,
        "value": json.dumps(value),
    }


def test_metafields_are_set_atomically_with_the_index_of_what_failed(
    admin: Admin, shop: ShopifySandbox
) -> None:
    customer = admin.data("query { customers(first: 1) { nodes { id } } }")["customers"]["nodes"][
        0
    ]["id"]
    product = admin.data("query { products(first: 2) { nodes { id } } }")["products"]["nodes"]
    good = _metafield(customer, [{"product_id": product[0]["id"], "score": 1.0}])
    refs = _metafield(product[0]["id"], [product[1]["id"]], "list.product_reference", "also_bought")
    missing = _metafield("gid://shopify/Product/1", [], "json")
    answer = admin.data(queries.METAFIELDS_SET, "MetafieldsSet", metafields=[good, refs, missing])[
        "metafieldsSet"
    ]
    assert answer["metafields"] is None
    assert [(e["elementIndex"], e["code"]) for e in answer["userErrors"]] == [(2, "INVALID_VALUE")]
    assert shop.metafield(customer, "omnicrm", "recs") is None  # nothing was written
    answer = admin.data(queries.METAFIELDS_SET, "MetafieldsSet", metafields=[good, refs])[
        "metafieldsSet"
    ]
    assert answer["userErrors"] == []
    stored = shop.metafield(product[0]["id"], "omnicrm", "also_bought")
    assert stored is not None and stored["type"] == "list.product_reference"
    assert json.loads(stored["value"]) == [product[1]["id"]]
    # The customer's is read back through the API, as a theme's app would.
    read = admin.data(
        'query($id: ID!) { customer(id: $id) { metafield(namespace: "omnicrm", key: "recs") '
        "{ type value } } }",
        id=customer,
    )
    assert json.loads(read["customer"]["metafield"]["value"])[0]["product_id"] == product[0]["id"]


def test_a_reference_to_no_product_and_too_many_inputs_are_refused(admin: Admin) -> None:
    product = admin.data("query { products(first: 1) { nodes { id } } }")["products"]["nodes"][0]
    dangling = _metafield(
        product["id"], ["gid://shopify/Product/1"], "list.product_reference", "also_bought"
    )
    answer = admin.data(queries.METAFIELDS_SET, "MetafieldsSet", metafields=[dangling])
    assert answer["metafieldsSet"]["userErrors"][0]["field"] == ["metafields", "0", "value"]
    many = [_metafield(product["id"], [], "json", f"k{i}") for i in range(26)]
    answer = admin.data(queries.METAFIELDS_SET, "MetafieldsSet", metafields=many)
    assert answer["metafieldsSet"]["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
