"""The vendors' reference material in ../shared/reference, for tests.

Every test that reads it skips, saying where it looked, when the folder is absent
(a user's checkout has no shared/ beside it).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema, build_schema

from omnicrm.plugins.shopify.queries import API_VERSION

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
SHOPIFY_SCHEMA = REFERENCE / "shopify" / f"admin_schema_{API_VERSION}.graphql"
SHOPIFY_WEBHOOKS = REFERENCE / "shopify" / "webhooks" / "2026-04"


def require(path: Path) -> Path:
    """``path``, or skip the test saying it is missing."""
    if not path.exists():
        pytest.skip(f"reference material not found at {path} (../shared/reference is absent)")
    return path


def shopify_webhook_sample(topic: str) -> dict[str, Any]:
    """The body of Shopify's own sample for ``topic`` (e.g. 'orders/create')."""
    path = require(SHOPIFY_WEBHOOKS / f"{topic}.json")
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["response"]
    return body


@cache
def _shopify_schema(path: Path) -> GraphQLSchema:
    # Shopify's SDL breaks a newer rule of schema validation (deprecated implementations
    # of non-deprecated interface fields); trust the schema, validate the documents.
    return build_schema(path.read_text(encoding="utf-8"), assume_valid_sdl=True, assume_valid=True)


def shopify_schema() -> GraphQLSchema:
    """Shopify's Admin API schema of the plugin's pinned version."""
    return _shopify_schema(require(SHOPIFY_SCHEMA))
