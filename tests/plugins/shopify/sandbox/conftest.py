"""Fixtures for the Shopify sandbox tests: a running sandbox, a client, the real schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, build_schema

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox

REFERENCE = Path(__file__).resolve().parents[4].parent / "shared" / "reference" / "shopify"
END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
"""A fixed end of the shop's history, so the data is the same every day."""


@cache
def _reference_schema() -> GraphQLSchema | None:
    path = REFERENCE / f"admin_schema_{queries.API_VERSION}.graphql"
    if not path.exists():
        return None
    # Shopify's SDL breaks a newer validation rule; trust it (as test_queries does).
    return build_schema(path.read_text(encoding="utf-8"), assume_valid_sdl=True, assume_valid=True)


@pytest.fixture(scope="session")
def shopify_schema() -> GraphQLSchema:
    """Shopify's own 2024-12 Admin schema."""
    schema = _reference_schema()
    if schema is None:
        pytest.skip(f"Shopify's reference schema is not under {REFERENCE}")
    return schema


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
