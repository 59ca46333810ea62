"""The EC-CUBE sandbox speaks the Api42 plugin's API: its schema is a subset of the
reference schema, every document it answered validates against the reference, and it
pages, hides and authorises as the plugin does."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from graphql import GraphQLNamedType, GraphQLObjectType, parse, print_type, validate

from omnicrm import Stream
from omnicrm.plugins.ec_cube.api import channel
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.api.tokens import TokenStore
from omnicrm.plugins.ec_cube.sandbox.data import generate
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox, schema
from omnicrm.testing import stream_context
from tests.plugins.ec_cube.test_queries import reference_schema


def _named(t: Any) -> str:
    return str(t)


def test_the_schema_is_a_subset_of_the_reference() -> None:
    reference = reference_schema()
    ours = schema()
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs: GraphQLNamedType | None = reference.type_map.get(name)
        assert theirs is not None, f"type {name} is not in the reference"
        assert type(theirs) is type(ours_type), name
        if not isinstance(ours_type, GraphQLObjectType):
            continue
        assert isinstance(theirs, GraphQLObjectType)
        for field_name, field in ours_type.fields.items():
            other = theirs.fields.get(field_name)
            assert other is not None, f"{name}.{field_name} is not in the reference"
            assert _named(field.type) == _named(other.type), f"{name}.{field_name}"
            assert set(field.args) == set(other.args), f"{name}.{field_name} arguments"
            for arg_name, arg in field.args.items():
                assert _named(arg.type) == _named(other.args[arg_name].type)
                assert arg.default_value == other.args[arg_name].default_value, arg_name
    assert print_type(ours.type_map["Customer"])  # printable: a real schema


def _post(sandbox: EccubeSandbox, token: str, query: str, variables: Any = None) -> Any:
    reply = httpx.post(
        sandbox.url + "/api",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return reply.status_code, reply.json()


def _token(settings: EccubeSettings) -> str:
    assert settings.token_file is not None
    tokens = TokenStore(settings.token_file).load()
    assert tokens is not None
    return tokens.access_token


def test_every_document_answered_validates_against_the_reference(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    for stream in (Stream.CUSTOMERS, Stream.ORDERS):
        ctx = stream_context("ec_cube", settings, stream, connection="shop")
        list((channel.sync_customers if stream is Stream.CUSTOMERS else channel.import_orders)(ctx))
    assert sandbox.queries
    for text in set(sandbox.queries):
        assert not validate(reference_schema(), parse(text))


def test_hidden_defaults_and_paging(sandbox: EccubeSandbox, settings: EccubeSettings) -> None:
    token = _token(settings)
    query = "{ customers(limit: 100) { totalCount nodes { id Status { id } } } }"
    status, body = _post(sandbox, token, query)
    assert status == 200
    withdrawn = sum(r.status == "3" for r in sandbox.customers.rows.values())
    assert (
        withdrawn
        and body["data"]["customers"]["totalCount"] == len(sandbox.customers.rows) - withdrawn
    )
    query = (
        "{ orders(limit: 100, page: 2) { totalCount pageInfo { hasNextPage hasPreviousPage }"
        " nodes { id update_date OrderStatus { id } } } }"
    )
    _, body = _post(sandbox, token, query)
    orders = body["data"]["orders"]
    unfinished = sum(r.status in ("7", "8") for r in sandbox.orders.rows.values())
    assert unfinished and orders["totalCount"] == len(sandbox.orders.rows) - unfinished
    assert orders["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": True}
    assert not {n["OrderStatus"]["id"] for n in orders["nodes"]} & {"7", "8"}
    keys = [(n["update_date"], int(n["id"])) for n in orders["nodes"]]
    assert keys == sorted(keys, reverse=True)  # update_date DESC
    _, body = _post(sandbox, token, '{ orders(status: ["8"], limit: 5) { totalCount } }')
    assert body["data"]["orders"]["totalCount"] == sum(
        r.status == "8" for r in sandbox.orders.rows.values()
    )
    _, body = _post(sandbox, token, '{ orders(multi: "x") { totalCount } }')
    assert "does not emulate" in body["errors"][0]["message"]
    _, body = _post(sandbox, token, "{ orders(limit: 500) { totalCount } }")
    assert "limit" in body["errors"][0]["message"]
    _, body = _post(sandbox, token, "{ orders { nope } }")
    assert body["errors"]
    assert _post(sandbox, "wrong", "{ orders { totalCount } }")[0] == 401


def test_authorisation_codes_and_rotating_refresh_tokens(sandbox: EccubeSandbox) -> None:
    with httpx.Client() as http:
        reply = http.get(
            f"{sandbox.url}/admin/authorize",
            params={
                "response_type": "code",
                "client_id": sandbox.client_id,
                "redirect_uri": sandbox.redirect_uri,
                "scope": "read",
                "state": "s1",
            },
        )
        assert reply.status_code == 302
        query = parse_qs(urlsplit(reply.headers["location"]).query)
        assert query["state"] == ["s1"]
        form = {
            "grant_type": "authorization_code",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "redirect_uri": sandbox.redirect_uri,
            "code": query["code"][0],
        }
        first = http.post(f"{sandbox.url}/token", data=form)
        assert first.status_code == 200 and first.json()["expires_in"] == 3600
        assert http.post(f"{sandbox.url}/token", data=form).status_code == 400  # used once
        wrong = http.post(f"{sandbox.url}/token", data=form | {"client_secret": "guess"})
        assert wrong.status_code == 401
        refresh = {
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": first.json()["refresh_token"],
        }
        second = http.post(f"{sandbox.url}/token", data=refresh)
        assert second.status_code == 200
        assert second.json()["refresh_token"] != refresh["refresh_token"]
        assert http.post(f"{sandbox.url}/token", data=refresh).json()["error"] == "invalid_grant"
        token = second.json()["access_token"]
        assert _post(sandbox, token, "{ orders(limit: 1) { totalCount } }")[0] == 200
        sandbox.expire_tokens()
        assert _post(sandbox, token, "{ orders(limit: 1) { totalCount } }")[0] == 401


def test_webhooks_are_signed_as_the_reference_says(sandbox: EccubeSandbox) -> None:
    body, headers = sandbox.signed([{"entity": "order", "id": 3, "action": "updated"}])
    assert body == b'[{"entity":"order","id":3,"action":"updated"}]'
    expected = hmac.new(sandbox.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-ECCUBE-Signature"] == expected


def test_the_seed_is_deterministic() -> None:
    end = generate(3, customers=20, orders=50).end
    one, two = (
        generate(3, customers=20, orders=50, end=end),
        generate(3, customers=20, orders=50, end=end),
    )
    assert [r.node for r in one.orders.values()] == [r.node for r in two.orders.values()]
    assert [r.node for r in one.customers.values()] == [r.node for r in two.customers.values()]


def test_withdrawing_replaces_the_email(sandbox: EccubeSandbox) -> None:
    ident = next(i for i, r in sandbox.customers.rows.items() if r.status == "2")
    node = sandbox.withdraw(ident)
    assert node["email"].endswith("@dummy.dummy") and node["Status"]["id"] == "3"


@pytest.mark.parametrize("entity", ["order", "customer"])
def test_a_delete_removes_the_record(sandbox: EccubeSandbox, entity: str) -> None:
    table = sandbox.orders if entity == "order" else sandbox.customers
    ident = next(iter(table.rows))
    sandbox.delete(entity, ident)
    assert ident not in table.rows and len(table.keys) == len(table.rows)


def test_documents_beyond_the_fast_path_are_executed_in_full(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    token = _token(settings)
    query = (
        'query Q($with: Boolean!) { customers(limit: 2, customer_status: ["3"]) '
        "{ __typename totalCount nodes { id email @include(if: $with) } } }"
    )
    status, body = _post(sandbox, token, query, {"with": True})
    assert status == 200, body
    found = body["data"]["customers"]
    assert found["__typename"] == "CustomerConnection"
    assert all(n["email"].endswith("@dummy.dummy") for n in found["nodes"])
