"""Every document the Shopify plugin sends validates against Shopify's own schema."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from omnicrm.plugins.shopify import queries
from tests.support.reference import SHOPIFY_SCHEMA, require, shopify_schema


@pytest.mark.parametrize("name", sorted(queries.OPERATIONS))
def test_request_documents_validate(name: str) -> None:
    errors = validate(shopify_schema(), parse(queries.OPERATIONS[name]))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("stream", sorted(queries.BULK_QUERIES))
def test_bulk_queries_validate(stream: str) -> None:
    text = queries.bulk_query(stream, "updated_at:>='2026-01-01T00:00:00Z'")
    errors = validate(shopify_schema(), parse(text))
    assert not errors, [e.message for e in errors]


def test_the_api_version_matches_the_reference_schema() -> None:
    require(SHOPIFY_SCHEMA.parent)
    assert SHOPIFY_SCHEMA.exists(), f"no reference schema for API {queries.API_VERSION}"
