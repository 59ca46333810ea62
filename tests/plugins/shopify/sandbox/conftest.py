"""Fixtures for the Shopify sandbox tests: a running sandbox, a client, the real schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from tests.support import reference

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
"""A fixed end of the shop's history, so the data is the same every day."""


@pytest.fixture(scope="session")
def shopify_schema() -> GraphQLSchema:
    """Shopify's own Admin schema of the pinned version."""
    return reference.shopify_schema()


class Admin:
    """A bare Admin API client for tests: POSTs documents, returns the JSON body."""

    def __init__(self, shop: ShopifySandbox, token: str | None = None) -> None:
        self.shop = shop
        self.http = httpx.Client(
            base_url=shop.url,
            headers={"X-Shopify-Access-Token": token or shop.access_token},
            timeout=30,
        )

    def post(self, document: str, name: str | None = None, **variables: Any) -> httpx.Response:
        body: dict[str, Any] = {"query": document, "variables": variables}
        if name:
            body["operationName"] = name
        return self.http.post(f"/admin/api/{queries.API_VERSION}/graphql.json", json=body)

    def run(self, document: str, name: str | None = None, **variables: Any) -> dict[str, Any]:
        response = self.post(document, name, **variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, document: str, name: str | None = None, **variables: Any) -> dict[str, Any]:
        body = self.run(document, name, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopifySandbox]:
    """A running sandbox of 400 customers with a bucket that never gets in the way."""
    with ShopifySandbox(customers=400, seed=7, end=END, bucket_size=10**7, restore_rate=10**7) as s:
        yield s


@pytest.fixture(scope="module")
def admin(shop: ShopifySandbox) -> Iterator[Admin]:
    """A client of ``shop``."""
    client = Admin(shop)
    yield client
    client.http.close()


@pytest.fixture(scope="session")
def client_for() -> type[Admin]:
    """Make a client for another sandbox: ``client_for(sandbox, token=None)``."""
    return Admin
