"""Paging Shopify's GraphQL connections: a page's nodes and the cursor of the next."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from omnicrm.errors import DataError, SyncError
from omnicrm.plugins.shopify.client import ShopifyClient


def connection_page(data: Mapping[str, Any], name: str) -> tuple[list[Any], str | None]:
    """A page's nodes and the cursor of the next page (None on the last)."""
    connection = data.get(name)
    if not isinstance(connection, Mapping) or not isinstance(connection.get("nodes"), list):
        raise DataError(f"Shopify's answer has no {name} connection")
    info = connection.get("pageInfo") or {}
    cursor = info.get("endCursor") if info.get("hasNextPage") else None
    return connection["nodes"], cursor


def pages(
    client: ShopifyClient, operation: str, name: str, variables: Callable[[], dict[str, Any]]
) -> Iterator[Any]:
    """Every node of the connection ``name`` that ``operation`` lists, page by page
    (``variables`` is asked afresh for each page: its sizes are refitted)."""
    after: str | None = None
    while True:
        page = client.execute(operation, {**variables(), "after": after}).data
        nodes, cursor = connection_page(page, name)
        yield from nodes
        if cursor is None:
            return
        if cursor == after:
            # Asking again would loop for ever; stop the run and say so.
            raise SyncError(f"Shopify returned the same {name} page cursor twice")
        after = cursor


def rest_of(
    client: ShopifyClient,
    operation: str,
    owner: str,
    name: str,
    owner_id: str,
    after: Any,
    *,
    desired: int,
) -> list[Any] | None:
    """The nodes of ``owner_id``'s connection ``name`` after the cursor ``after``, read
    by ``operation`` (which takes ``id``, ``first`` and ``after`` and answers ``owner``):
    the rest of an order's lines, of a product's variants. None if the owner is gone."""
    found: list[Any] = []
    while True:
        base = {"id": owner_id}
        first = client.fit(operation, base, desired=desired)
        data = client.execute(operation, {**base, "first": first, "after": after}).data
        held = data.get(owner)
        if held is None:
            return None
        nodes, cursor = connection_page(held, name)
        found.extend(nodes)
        if cursor is None:
            return found
        if cursor == after:
            raise SyncError(f"Shopify returned the same {name} cursor twice for {owner_id}")
        after = cursor
