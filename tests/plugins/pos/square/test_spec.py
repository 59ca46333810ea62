"""Everything the plugin sends Square and everything the emulator answers validates
against Square's own OpenAPI spec (Square-Version 2025-08-20), $refs resolved."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from omnicrm import Stream
from omnicrm.plugins.pos.square import channel
from omnicrm.plugins.pos.square.sandbox import SquareSandbox
from omnicrm.plugins.pos.square.settings import API_VERSION, SquareSettings
from omnicrm.plugins.pos.square.webhooks import SquareWebhooks
from omnicrm.testing import stream_context
from omnicrm.webhooks import Upsert
from tests.support.reference import REFERENCE, require

SPEC = REFERENCE / "square" / "api.offline.json"
BASE = "urn:square:api"


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(require(SPEC).read_text(encoding="utf-8"))
    return loaded


@cache
def registry() -> Registry:  # type: ignore[type-arg]
    return Registry().with_resource(
        BASE, Resource.from_contents(spec(), default_specification=DRAFT4)
    )


def check(schema: dict[str, Any], instance: Any, *, request: bool) -> None:
    """Validate ``instance`` against a schema of the spec (a request may not set a
    read-only field; a response may)."""
    kind = OAS30WriteValidator if request else OAS30ReadValidator
    ref = schema["$ref"].replace("#/", f"{BASE}#/", 1)
    kind({"$ref": ref}, registry=registry()).validate(instance)


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = spec()["paths"][path][method.lower()]
    return found


def schema_of(content: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = content["content"]["application/json"]["schema"]
    return found


def test_the_spec_is_the_version_the_plugin_names() -> None:
    assert API_VERSION in json.dumps(spec()["x-fern-global-headers"])


def test_the_validator_catches_what_is_wrong() -> None:
    search = schema_of(operation("POST", "/v2/orders/search")["requestBody"])
    check(search, {"location_ids": ["L1"], "limit": 10}, request=True)
    with pytest.raises(ValidationError):
        check(search, {"location_ids": "L1"}, request=True)
    with pytest.raises(ValidationError):
        check(search, {"query": {"sort": {"sort_field": "NAME"}}}, request=True)
    answer = schema_of(operation("POST", "/v2/orders/search")["responses"]["200"])
    with pytest.raises(ValidationError):
        check(answer, {"orders": [{"id": "O1"}]}, request=False)  # location_id is required


def test_every_exchange_of_a_sync_and_of_webhooks_validates(
    sandbox: SquareSandbox, settings: SquareSettings
) -> None:
    small = settings.model_copy(update={"customers_page_size": 9, "orders_page_size": 40})
    for stream, read in (
        (Stream.CUSTOMERS, channel.sync_customers),
        (Stream.ORDERS, channel.import_orders),
        (Stream.PRODUCTS, channel.sync_products),
    ):
        assert list(read(stream_context("square", small, stream)))
    # Webhook fetches, and the errors Square answers with: an expired cursor, a bad limit.
    customer = next(iter(sandbox.data.customers))
    order_id, _ = sandbox.ring_up(customer, on_order=False)
    receiver = SquareWebhooks()
    from omnicrm import Connection

    connection = Connection(name="square", channel="square", settings=settings)
    headers, body = sandbox.notification(
        "payment.created",
        {
            "type": "payment",
            "id": "P",
            "object": {"payment": sandbox.data.payments[next(reversed(sandbox.data.payments))]},
        },
    )
    event = receiver.verify(headers, body, [connection])
    assert any(isinstance(a, Upsert) for a in receiver.actions(event, connection))
    sandbox.expire_cursors_next(1)
    assert list(channel.import_orders(stream_context("square", small, Stream.ORDERS)))
    with pytest.raises(Exception, match="VALUE_TOO_HIGH"):
        list(
            channel.import_orders(
                stream_context(
                    "square", small.model_copy(update={"orders_page_size": 5000}), Stream.ORDERS
                )
            )
        )
    assert order_id in sandbox.data.orders

    seen: set[tuple[str, str, int]] = set()
    error_schema = {"$ref": "#/components/schemas/Error"}
    for exchange in sandbox.exchanges:
        op = operation(exchange.method, exchange.path)
        where = f"{exchange.method} {exchange.path} ({exchange.status})"
        if exchange.request is not None:
            try:
                check(schema_of(op["requestBody"]), exchange.request, request=True)
            except ValidationError as exc:
                pytest.fail(f"the plugin sent {where} a body outside the spec: {exc.message}")
        try:
            if exchange.status == 200:
                check(schema_of(op["responses"]["200"]), exchange.response, request=False)
            else:
                for error in exchange.response["errors"]:
                    check(error_schema, error, request=False)
        except ValidationError as exc:
            pytest.fail(
                f"the sandbox answered {where} outside the spec: {exc.message} "
                f"at {list(exc.absolute_path)}"
            )
        seen.add((exchange.method, exchange.path, exchange.status))
    paths = {p for _, p, _ in seen}
    assert {
        "/v2/locations",
        "/v2/customers/search",
        "/v2/orders/search",
        "/v2/orders/{order_id}",
        "/v2/loyalty/programs/{program_id}",
        "/v2/loyalty/accounts/search",
        "/v2/loyalty/events/search",
        "/v2/loyalty/rewards/{reward_id}",
        "/v2/catalog/search",
    } <= paths
    assert ("POST", "/v2/orders/search", 400) in seen


def test_the_webhook_bodies_the_sandbox_sends_are_squares(sandbox: SquareSandbox) -> None:
    schemas = spec()["components"]["schemas"]
    payment = next(iter(sandbox.data.payments.values()))
    customer = next(iter(sandbox.data.customers.values()))
    for topic, name, data in (
        (
            "payment.created",
            "PaymentCreatedEvent",
            {"type": "payment", "id": payment["id"], "object": {"payment": payment}},
        ),
        (
            "customer.updated",
            "CustomerUpdatedEvent",
            {"type": "customer", "id": customer["id"], "object": {"customer": customer}},
        ),
        (
            "order.updated",
            "OrderUpdatedEvent",
            {
                "type": "order_updated",
                "id": payment["order_id"],
                "object": {
                    "order_updated": {
                        "order_id": payment["order_id"],
                        "version": 2,
                        "location_id": payment["location_id"],
                        "state": "COMPLETED",
                        "created_at": payment["created_at"],
                        "updated_at": payment["updated_at"],
                    }
                },
            },
        ),
    ):
        assert name in schemas
        _, body = sandbox.notification(topic, data)
        check({"$ref": f"#/components/schemas/{name}"}, json.loads(body), request=False)
