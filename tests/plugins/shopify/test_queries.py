"""Every document the Shopify plugin sends validates against Shopify's own schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from omnicrm.plugins.shopify import queries

SCHEMA = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "shopify"
    / "admin_schema_2024-12.graphql"
)


@cache
def shopify_schema() -> GraphQLSchema:
    if not SCHEMA.exists():
        pytest.skip(f"Shopify's reference schema is not at {SCHEMA}")
    # Shopify's SDL breaks a newer rule of schema validation (deprecated implementations
    # of non-deprecated interface fields); trust the schema, validate the documents.
    return build_schema(
        SCHEMA.read_text(encoding="utf-8"), assume_valid_sdl=True, assume_valid=True
    )


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
    assert queries.API_VERSION in SCHEMA.name
