"""Shopify payloads -> omnicrm records: GraphQL nodes, and every webhook sample Shopify
publishes (../shared/reference/shopify/webhooks/2026-04)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    SelectionSetNode,
    parse,
)
from pydantic import BaseModel

from omnicrm import ConsentState, Medium, OrderStatus, Stream
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.refresh import refresh
from omnicrm.crm.segments import count_segments
from omnicrm.errors import DataError
from omnicrm.plugins.shopify import plugin, queries
from omnicrm.plugins.shopify.mapping import (
    PREFECTURES,
    channel,
    customer_from_node,
    customer_from_webhook,
    customer_merge_from_webhook,
    deleted_customer_id,
    deleted_order_id,
    order_from_node,
    order_from_webhook,
    order_status,
    prefecture,
    privacy_request_from_webhook,
    purchasing_summary_from_webhook,
)
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from omnicrm.testing import stream_context
from tests.support.reference import (
    SHOPIFY_WEBHOOKS,
    require,
    shopify_schema,
    shopify_webhook_sample,
)

WEBHOOKS = SHOPIFY_WEBHOOKS


def _money(amount: str, currency: str = "JPY") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


CUSTOMER: dict[str, Any] = {
    "id": "gid://shopify/Customer/7390000000001",
    "firstName": "花子",
    "lastName": "山田",
    "familyNameKana": {"value": "ヤマダ"},
    "givenNameKana": None,  # a reading only for the family name
    "email": "hanako.yamada@example.jp",
    "phone": "+819012345678",
    "tags": ["VIP", "定期便"],
    "note": "のし希望",
    "state": "ENABLED",
    "numberOfOrders": "12",
    "amountSpent": {"amount": "48600.0", "currencyCode": "JPY"},
    "emailMarketingConsent": {
        "marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "CONFIRMED_OPT_IN",
        "consentUpdatedAt": "2024-03-01T01:00:00Z",
    },
    "smsMarketingConsent": {
        "marketingState": "NOT_SUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN",
        "consentUpdatedAt": None,
        "consentCollectedFrom": "SHOPIFY",
    },
    "defaultAddress": {
        "address1": "神南1-2-3",
        "address2": "神南コーポ201",
        "city": "渋谷区",
        "province": "Tokyo",
        "provinceCode": "JP-13",
        "zip": "150-0041",
        "countryCodeV2": "JP",
        "company": "山田商店",
        "phone": "03-1234-5678",
    },
    "createdAt": "2023-01-15T00:30:00Z",
    "updatedAt": "2024-03-01T01:00:00Z",
}


def _line(n: int, *, quantity: int = 1, price: str = "1080.0", off: str = "0.0") -> dict[str, Any]:
    return {
        "id": f"gid://shopify/LineItem/90000{n}",
        "sku": f"TEA-{n:03d}",
        "name": f"有機ほうじ茶 {n}",
        "quantity": quantity,
        "product": {"id": f"gid://shopify/Product/80000{n}"},
        "variant": {"id": f"gid://shopify/ProductVariant/70000{n}"},
        "originalUnitPriceSet": _money(price),
        "discountedUnitPriceSet": _money(price),
        "totalDiscountSet": _money(off),
    }


ORDER: dict[str, Any] = {
    "id": "gid://shopify/Order/5600000000007",
    "name": "#1007",
    "createdAt": "2024-03-02T12:15:00Z",
    "processedAt": "2024-03-02T12:14:00Z",
    "updatedAt": "2024-03-04T02:00:00Z",
    "cancelledAt": None,
    "customer": {"id": "gid://shopify/Customer/7390000000001"},
    "currencyCode": "JPY",
    "taxesIncluded": True,
    "subtotalPriceSet": _money("2660.0"),
    "totalDiscountsSet": _money("500.0"),
    "totalShippingPriceSet": _money("660.0"),
    "totalTaxSet": _money("302.0"),
    "totalPriceSet": _money("3320.0"),
    "displayFinancialStatus": "PAID",
    "displayFulfillmentStatus": "FULFILLED",
    "sourceName": "pos",
    "retailLocation": {"id": "gid://shopify/Location/1", "name": "渋谷店"},
    "refunds": [],
    "lineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "nodes": [_line(1, quantity=2), _line(2, price="1000.0", off="500.0")],
    },
}


# -- the fixtures above have exactly the shape the queries ask for


def _selected(
    selection: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for node in selection.selections:
        if isinstance(node, FieldNode):
            key = node.alias.value if node.alias else node.name.value
            fields[key] = _selected(node.selection_set, fragments) if node.selection_set else None
        else:  # a fragment spread
            fields.update(_selected(fragments[node.name.value].selection_set, fragments))  # type: ignore[attr-defined]
    return fields


def _shape(document: str, fragment: str) -> dict[str, Any]:
    parsed = parse(document)
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _selected(fragments[fragment].selection_set, fragments)


def _assert_shape(value: Any, shape: Any, path: str = "") -> None:
    if shape is None or value is None:
        return
    if isinstance(value, list):
        for item in value:
            _assert_shape(item, shape, path + "[]")
        return
    assert isinstance(value, dict), path
    assert set(value) <= set(shape), f"{path}: not selected by the query: {set(value) - set(shape)}"
    for key, item in value.items():
        _assert_shape(item, shape[key], f"{path}.{key}")


def test_the_fixtures_match_the_queries() -> None:
    _assert_shape(CUSTOMER, _shape(queries.CUSTOMERS, "CustomerFields"))
    order_shape = _shape(queries.ORDERS, "OrderFields")
    order_shape["lineItems"] = {
        "pageInfo": {"hasNextPage": None, "endCursor": None},
        "nodes": _shape(queries.ORDERS, "LineItemFields"),
    }
    _assert_shape(ORDER, order_shape)
    assert set(_shape(queries.CUSTOMERS, "CustomerFields")) == set(CUSTOMER)


# -- customers


def test_a_customer_maps_every_field() -> None:
    customer = customer_from_node(CUSTOMER)
    assert customer.id == "gid://shopify/Customer/7390000000001"
    assert (customer.family_name, customer.given_name) == ("山田", "花子")
    assert customer.email == "hanako.yamada@example.jp"
    assert customer.phone == "+819012345678"
    assert customer.tags == ["VIP", "定期便"]
    assert (customer.family_name_kana, customer.given_name_kana) == ("ヤマダ", None)
    assert customer.company == "山田商店"
    assert customer.address is not None
    assert customer.address.model_dump() == {
        "postal_code": "150-0041",
        "prefecture": "東京都",
        "city": "渋谷区",
        "line1": "神南1-2-3",
        "line2": "神南コーポ201",
        "country_code": "JP",
    }
    email, sms = customer.consents
    assert (email.medium, email.state, email.opt_in_level) == (
        Medium.EMAIL,
        ConsentState.OPTED_IN,
        "confirmed_opt_in",
    )
    assert email.updated_at == dt.datetime(2024, 3, 1, 1, tzinfo=dt.UTC)
    assert email.source == "shopify"
    # NOT_SUBSCRIBED: never asked, not opted out (was OPTED_OUT before issue 9).
    assert (sms.medium, sms.state, sms.updated_at) == (Medium.SMS, ConsentState.UNKNOWN, None)
    assert customer.created_at == dt.datetime(2023, 1, 15, 0, 30, tzinfo=dt.UTC)
    assert customer.updated_at == dt.datetime(2024, 3, 1, 1, tzinfo=dt.UTC)
    # Everything omnicrm has no field for stays in raw, as Shopify sent it.
    assert customer.raw == CUSTOMER
    assert customer.raw["note"] == "のし希望"
    assert customer.raw["numberOfOrders"] == "12"
    assert customer.raw["amountSpent"]["amount"] == "48600.0"
    assert customer.raw["state"] == "ENABLED"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("SUBSCRIBED", ConsentState.OPTED_IN),
        ("NOT_SUBSCRIBED", ConsentState.UNKNOWN),  # never asked (issue 9: not an opt-out)
        ("UNSUBSCRIBED", ConsentState.OPTED_OUT),
        ("INVALID", ConsentState.OPTED_OUT),
        ("PENDING", ConsentState.PENDING),
        ("REDACTED", ConsentState.UNKNOWN),
    ],
)
def test_marketing_states(state: str, expected: ConsentState) -> None:
    node = copy.deepcopy(CUSTOMER)
    node["emailMarketingConsent"]["marketingState"] = state
    assert customer_from_node(node).consents[0].state is expected


# What each of Shopify's marketing states means (the schema's own descriptions): only a
# subscription is an opt-in; "never subscribed" is never asked, not an opt-out.
MEANING = {
    "SUBSCRIBED": ConsentState.OPTED_IN,
    "NOT_SUBSCRIBED": ConsentState.UNKNOWN,
    "UNSUBSCRIBED": ConsentState.OPTED_OUT,
    "PENDING": ConsentState.PENDING,
    "INVALID": ConsentState.OPTED_OUT,
    "REDACTED": ConsentState.UNKNOWN,
}


@pytest.mark.parametrize(
    ("enum", "graphql_field", "webhook_field", "medium"),
    [
        ("CustomerEmailMarketingState", "emailMarketingConsent", "email_marketing_consent", 0),
        ("CustomerSmsMarketingState", "smsMarketingConsent", "sms_marketing_consent", 1),
    ],
)
def test_every_marketing_state_of_the_schema_keeps_its_meaning(
    enum: str, graphql_field: str, webhook_field: str, medium: int
) -> None:
    """Every state Shopify's schema has, in a GraphQL node and in its own webhook sample
    (lower case, as webhooks send it), maps to what it means."""
    states = shopify_schema().get_type(enum)
    assert isinstance(states, GraphQLEnumType)
    assert set(states.values) <= set(MEANING), "a marketing state without a meaning"
    for state in states.values:
        node = copy.deepcopy(CUSTOMER)
        node[graphql_field]["marketingState"] = state
        assert customer_from_node(node).consents[medium].state is MEANING[state], state
        body = {
            **_sample("customers/create"),
            "phone": "+819012345678",
            "email_marketing_consent": None,
            "sms_marketing_consent": None,
        }
        body[webhook_field] = {
            "state": state.lower(),
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
        }
        [consent] = customer_from_webhook(body).consents
        assert consent.state is MEANING[state], state
    assert not any(m is ConsentState.OPTED_IN for s, m in MEANING.items() if s != "SUBSCRIBED")


def test_a_customer_without_email_or_address_claims_no_consent() -> None:
    node = {
        **CUSTOMER,
        "email": None,
        "phone": None,
        "emailMarketingConsent": None,
        "smsMarketingConsent": None,
        "defaultAddress": None,
        "tags": [],
    }
    customer = customer_from_node(node)
    assert customer.consents == []
    assert customer.address is None and customer.company is None
    assert customer.email is None and customer.phone is None


def test_the_address_phone_stands_in_for_a_missing_customer_phone() -> None:
    assert customer_from_node({**CUSTOMER, "phone": None}).phone == "03-1234-5678"


@pytest.mark.parametrize(
    ("province", "code", "country", "expected"),
    [
        ("Tokyo", "JP-13", "JP", "東京都"),
        ("Hokkaidō", "JP-01", "JP", "北海道"),
        ("Okinawa", "JP-47", "JP", "沖縄県"),
        ("大阪府", "27", "JP", "大阪府"),
        ("京都府", None, "JP", "京都府"),  # no code: as written
        ("Ontario", "ON", "CA", "Ontario"),
        (None, None, None, None),
    ],
)
def test_prefectures(
    province: str | None, code: str | None, country: str | None, expected: str | None
) -> None:
    assert prefecture(province, code, country) == expected


def test_all_47_prefectures() -> None:
    assert len(PREFECTURES) == 47 and len(set(PREFECTURES)) == 47
    assert PREFECTURES[12] == "東京都" and PREFECTURES[26] == "大阪府"


# -- orders


def test_an_order_maps_every_field() -> None:
    order = order_from_node(ORDER)
    assert order.id == "gid://shopify/Order/5600000000007"
    assert order.name == "#1007"
    assert order.customer_id == "gid://shopify/Customer/7390000000001"
    assert (order.channel, order.location) == ("pos", "渋谷店")
    assert order.status is OrderStatus.FULFILLED
    assert order.placed_at == dt.datetime(2024, 3, 2, 12, 14, tzinfo=dt.UTC)  # processedAt
    assert order.cancelled_at is None
    assert order.updated_at == dt.datetime(2024, 3, 4, 2, tzinfo=dt.UTC)
    assert order.currency == "JPY"
    assert (order.subtotal, order.discount_total, order.shipping_total) == (
        Decimal("2660"),
        Decimal("500"),
        Decimal("660"),
    )
    assert (order.tax_total, order.total) == (Decimal("302"), Decimal("3320"))
    first, second = order.lines
    assert first.model_dump() == {
        "sku": "TEA-001",
        "product_id": "gid://shopify/Product/800001",
        "variant_id": "gid://shopify/ProductVariant/700001",
        "product_name": "有機ほうじ茶 1",
        "quantity": 2,
        "unit_price": Decimal("1080"),
        "discount": Decimal("0"),
    }
    assert (second.unit_price, second.discount) == (Decimal("1000"), Decimal("500"))
    assert order.raw == ORDER


def test_lines_given_apart_replace_the_nested_ones() -> None:
    node = {k: v for k, v in ORDER.items() if k != "lineItems"}
    order = order_from_node(node, [_line(n) for n in range(1, 6)])
    assert [line.sku for line in order.lines] == [f"TEA-{n:03d}" for n in range(1, 6)]


def test_edges_work_as_well_as_nodes() -> None:
    node = {**ORDER, "lineItems": {"edges": [{"node": _line(3)}]}}
    assert [line.sku for line in order_from_node(node).lines] == ["TEA-003"]


def test_placed_at_falls_back_to_created_at_and_guests_have_no_customer() -> None:
    order = order_from_node({**ORDER, "processedAt": None, "customer": None})
    assert order.placed_at == dt.datetime(2024, 3, 2, 12, 15, tzinfo=dt.UTC)
    assert order.customer_id is None


def test_a_null_subtotal_is_summed_from_the_lines() -> None:
    order = order_from_node({**ORDER, "subtotalPriceSet": None})
    assert order.subtotal == Decimal("2660")  # 2 x 1080 + 1000 - 500


@pytest.mark.parametrize(
    ("financial", "fulfillment", "cancelled", "expected"),
    [
        ("PAID", "UNFULFILLED", False, OrderStatus.PAID),
        ("PAID", "FULFILLED", False, OrderStatus.FULFILLED),
        ("PAID", "PARTIALLY_FULFILLED", False, OrderStatus.PAID),
        ("PAID", "RESTOCKED", False, OrderStatus.RETURNED),
        ("PARTIALLY_REFUNDED", "FULFILLED", False, OrderStatus.FULFILLED),
        ("PARTIALLY_REFUNDED", "UNFULFILLED", False, OrderStatus.PAID),
        ("REFUNDED", "FULFILLED", False, OrderStatus.REFUNDED),
        ("PENDING", "UNFULFILLED", False, OrderStatus.PENDING),
        ("AUTHORIZED", "FULFILLED", False, OrderStatus.PENDING),
        ("PARTIALLY_PAID", None, False, OrderStatus.PENDING),
        ("VOIDED", None, False, OrderStatus.CANCELLED),
        ("EXPIRED", None, False, OrderStatus.CANCELLED),
        ("PAID", "FULFILLED", True, OrderStatus.CANCELLED),
        ("REFUNDED", None, True, OrderStatus.CANCELLED),
        (None, None, False, OrderStatus.PENDING),
        ("paid", "fulfilled", False, OrderStatus.FULFILLED),  # webhooks: lower case
    ],
)
def test_order_status(
    financial: str | None, fulfillment: str | None, cancelled: bool, expected: OrderStatus
) -> None:
    assert order_status(financial, fulfillment, cancelled) is expected


def test_a_cancelled_order() -> None:
    order = order_from_node({**ORDER, "cancelledAt": "2024-03-03T00:00:00+09:00"})
    assert order.status is OrderStatus.CANCELLED
    assert order.cancelled_at == dt.datetime(2024, 3, 2, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("web", "web"),
        ("pos", "pos"),
        ("shopify_draft_order", "draft"),
        ("iphone", "other"),
        ("1234567", "other"),
        (None, "other"),
    ],
)
def test_channels(source: str | None, expected: str) -> None:
    assert channel(source) == expected


# -- what cannot be read is named


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"updatedAt": None}, "'updatedAt' is required"),
        ({"updatedAt": "2024-03-01T10:00:00"}, "'updatedAt' has no UTC offset"),
        ({"updatedAt": "yesterday"}, "'updatedAt' is not an ISO 8601"),
        ({"id": 7390000000001}, "'id' is not a string"),
        ({"id": "7390000000001"}, "'id' is not a Shopify GID"),
        ({"tags": "VIP"}, None),  # REST style is accepted
        (
            {"emailMarketingConsent": {"marketingState": "MAYBE"}},
            "'emailMarketingConsent.marketingState'",
        ),
        ({"defaultAddress": {"countryCodeV2": "JPN", "zip": "1"}}, "country_code"),
    ],
)
def test_customer_errors_name_record_and_field(change: dict[str, Any], field: str | None) -> None:
    node = {**CUSTOMER, **change}
    if field is None:
        customer_from_node(node)
        return
    with pytest.raises(DataError) as caught:
        customer_from_node(node)
    assert field in str(caught.value)
    if isinstance(node["id"], str) and node["id"].startswith("gid://"):
        assert "gid://shopify/Customer/7390000000001" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"totalPriceSet": None}, "'totalPriceSet' is required"),
        ({"totalPriceSet": {"shopMoney": {"amount": 3320.5}}}, "'totalPriceSet.shopMoney.amount'"),
        ({"totalPriceSet": _money("3,320")}, "'totalPriceSet.shopMoney.amount'"),
        ({"processedAt": None, "createdAt": None}, "'createdAt' is required"),
    ],
)
def test_order_errors_name_record_and_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        order_from_node({**ORDER, **change})
    assert "gid://shopify/Order/5600000000007" in str(caught.value)
    assert field in str(caught.value)


def test_a_bad_line_is_named_by_its_position() -> None:
    bad = _line(2)
    bad["quantity"] = -1
    node = {**ORDER, "lineItems": {"nodes": [_line(1), bad]}}
    with pytest.raises(DataError, match=r"Order/5600000000007.*'lineItems\[1\]\.quantity'"):
        order_from_node(node)


# -- webhooks: every sample Shopify publishes for customers and orders


_sample = shopify_webhook_sample


def test_every_customer_and_order_sample_is_covered() -> None:
    found = {f"{p.parent.name}/{p.stem}" for p in require(WEBHOOKS).glob("*/*.json")}
    found -= {"shop/redact"}
    assert found == set(CUSTOMER_TOPICS) | set(ORDER_TOPICS) | set(OTHER_TOPICS)


CUSTOMER_TOPICS = ["customers/create", "customers/update"]
ORDER_TOPICS = ["orders/create", "orders/updated", "orders/paid", "orders/cancelled"]
OTHER_TOPICS = [
    "customers/delete",
    "orders/delete",
    "customers/merge",
    "customers/purchasing_summary",
    "customers/redact",
    "customers/data_request",
]


@pytest.mark.parametrize("topic", CUSTOMER_TOPICS)
def test_customer_webhooks(topic: str) -> None:
    body = _sample(topic)
    customer = customer_from_webhook(body)
    # The numeric id lost precision where the sample was made; the GID did not.
    assert body["id"] == 706405506930370000
    assert customer.id == "gid://shopify/Customer/706405506930370084"
    assert (customer.given_name, customer.family_name) == ("Bob", "Biller")
    assert customer.email == "bob@biller.com"
    assert customer.phone == "555-555-5555"  # the default address's
    assert customer.address is not None
    assert customer.address.model_dump() == {
        "postal_code": "K2P 2L8",
        "prefecture": "ON",
        "city": "Ottawa",
        "line1": "151 O'Connor Street",
        "line2": None,
        "country_code": "CA",
    }
    assert customer.updated_at == dt.datetime(2022, 1, 1, 0, 0, tzinfo=dt.UTC)
    assert customer.raw["note"] == "This customer loves ice cream"
    assert customer.raw == body


def test_customer_webhook_reads_furigana_from_its_metafields() -> None:
    body = {
        **_sample("customers/update"),
        "metafields": [
            {"namespace": "custom", "key": "family_name_kana", "value": "ヤマダ"},
            {"namespace": "custom", "key": "given_name_kana", "value": " ハナコ "},
            {"namespace": "other", "key": "family_name_kana", "value": "x"},
        ],
    }
    customer = customer_from_webhook(body)
    assert (customer.family_name_kana, customer.given_name_kana) == ("ヤマダ", "ハナコ")
    assert customer_from_webhook(_sample("customers/update")).family_name_kana is None


def test_customer_webhook_consents_and_tags() -> None:
    body = {
        **_sample("customers/update"),
        "tags": "VIP, 定期便",
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2024-03-01T10:00:00+09:00",
        },
        "sms_marketing_consent": None,
    }
    customer = customer_from_webhook(body)
    assert customer.tags == ["VIP", "定期便"]
    [email] = customer.consents
    assert (email.medium, email.state, email.opt_in_level) == (
        Medium.EMAIL,
        ConsentState.OPTED_IN,
        "single_opt_in",
    )


@pytest.mark.parametrize("topic", ORDER_TOPICS)
def test_order_webhooks(topic: str) -> None:
    body = _sample(topic)
    order = order_from_webhook(body)
    assert order.id == "gid://shopify/Order/820982911946154508"
    assert order.name == "#9999"
    assert order.customer_id == "gid://shopify/Customer/115310627314723954"
    assert order.status is OrderStatus.CANCELLED  # cancelled_at is set in every sample
    assert order.cancelled_at == dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    assert order.channel == "web"
    assert order.currency == "USD"
    assert (order.subtotal, order.total) == (Decimal("404.95"), Decimal("404.95"))
    assert (order.discount_total, order.shipping_total, order.tax_total) == (
        Decimal("20.00"),
        Decimal("10.00"),
        Decimal("0.00"),
    )
    assert len(order.lines) == len(body["line_items"])
    first = order.lines[0]
    assert (first.sku, first.product_name, first.quantity) == (
        "SKU2006-001",
        "Aviator sunglasses",
        1,
    )
    assert first.unit_price == Decimal("89.99")
    assert first.product_id is not None and first.product_id.startswith("gid://shopify/Product/")
    assert first.variant_id is None
    assert order.raw == body


def test_deletions_name_the_record() -> None:
    assert deleted_customer_id(_sample("customers/delete")) == (
        "gid://shopify/Customer/706405506930370084"
    )
    # orders/delete sends only the number; Python reads a real body's number exactly.
    assert deleted_order_id(_sample("orders/delete")) == "gid://shopify/Order/820982911946154500"
    assert deleted_order_id({"id": 820982911946154508}) == "gid://shopify/Order/820982911946154508"
    with pytest.raises(DataError, match="'id'"):
        deleted_order_id({"id": 8.209829119461545e17})


def test_merge_webhook() -> None:
    merge = customer_merge_from_webhook(_sample("customers/merge"))
    assert (merge.kept_id, merge.deleted_id) == (
        "gid://shopify/Customer/1",
        "gid://shopify/Customer/2",
    )
    assert not merge.succeeded
    assert merge.errors == ["John Doe is currently being merged."]


def test_purchasing_summary_webhook() -> None:
    summary = purchasing_summary_from_webhook(_sample("customers/purchasing_summary"))
    assert summary.customer_id == "gid://shopify/Customer/1"
    assert (summary.number_of_orders, summary.amount_spent, summary.currency) == (
        1,
        Decimal("100.00"),
        "USD",
    )
    assert summary.last_order_id == "gid://shopify/Order/1"
    assert summary.occurred_at == dt.datetime(2005, 5, 5, 6, tzinfo=dt.UTC)


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request"])
def test_privacy_webhooks(topic: str) -> None:
    request = privacy_request_from_webhook(_sample(topic))
    assert request.customer_id == "gid://shopify/Customer/191167"
    assert (request.email, request.phone) == ("john@example.com", "555-625-1199")
    assert request.order_ids == [
        "gid://shopify/Order/299938",
        "gid://shopify/Order/280263",
        "gid://shopify/Order/220458",
    ]
    assert request.shop_domain == "{shop}.myshopify.com"
    assert request.data_request_id == ("9999" if topic.endswith("data_request") else None)


# -- the sandbox's webhook bodies map to what its GraphQL API says of the same record


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(customers=30, seed=12, bucket_size=10**6, restore_rate=10**6) as server:
        yield server


def _graphql(shop: ShopifySandbox, stream: Stream) -> list[Any]:
    settings: BaseModel = ShopifySettings(**shop.settings())
    ctx = stream_context("shopify", settings, stream, since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    hook = (
        plugin.omnicrm_import_orders if stream is Stream.ORDERS else plugin.omnicrm_sync_customers
    )
    return list(hook(ctx))


def test_webhook_customers_match_the_api(shop: ShopifySandbox) -> None:
    for record in _graphql(shop, Stream.CUSTOMERS):
        hooked = customer_from_webhook(shop.webhook_payload("customers/update", record.id))
        # Not tags: Shopify's customer webhook sample carries none, nor does the sandbox.
        same = (
            "id",
            "family_name",
            "given_name",
            "email",
            "phone",
            "address",
            "company",
            "created_at",
            "updated_at",
        )
        assert {k: getattr(hooked, k) for k in same} == {k: getattr(record, k) for k in same}


def test_webhook_orders_match_the_api(shop: ShopifySandbox) -> None:
    for record in _graphql(shop, Stream.ORDERS):
        hooked = order_from_webhook(shop.webhook_payload("orders/updated", record.id))
        same = (
            "id",
            "name",
            "customer_id",
            "channel",
            "status",
            "placed_at",
            "cancelled_at",
            "updated_at",
            "currency",
            "subtotal",
            "discount_total",
            "shipping_total",
            "tax_total",
            "total",
            "lines",
        )
        assert {k: getattr(hooked, k) for k in same} == {k: getattr(record, k) for k in same}
        assert deleted_order_id(shop.webhook_payload("orders/delete", record.id)) == record.id


def test_a_customer_never_asked_is_never_asked_in_segments(store: Store) -> None:
    """Shopify's own customers/create sample, with the consent a new customer has
    (NOT_SUBSCRIBED), lands as never asked: it matches NOT_SUBSCRIBED, not
    UNSUBSCRIBED, and has no opt-in to message it by."""
    body = {
        **_sample("customers/create"),
        "email_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
        },
    }
    never_asked = customer_from_webhook(body)
    left = customer_from_webhook(
        {
            **body,
            "id": 1,
            "admin_graphql_api_id": "gid://shopify/Customer/1",
            "email": "left@example.jp",
            "email_marketing_consent": {**body["email_marketing_consent"], "state": "unsubscribed"},
        }
    )
    store.write_batch("shopify", Stream.CUSTOMERS, [never_asked, left])
    refresh(store)
    with store.engine.connect() as conn:
        counts = count_segments(
            conn,
            {
                "never": "email_subscription_status = NOT_SUBSCRIBED",
                "out": "email_subscription_status = UNSUBSCRIBED",
                "in": "email_subscription_status = SUBSCRIBED",
            },
            dt.datetime.now(dt.UTC),
            shop=DEFAULT_SHOP,
        )
    assert counts == {"never": 1, "out": 1, "in": 0}
    assert all(c.state is not ConsentState.OPTED_IN for c in never_asked.consents)
