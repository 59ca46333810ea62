"""A LINE user id a Shopify LINE-connect app keeps in a customer metafield: read by the
sync (paged and bulk) from the namespace and key the connection names, in Shopify's
own shape, and linked to the customer in the store; never a consent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from graphql import parse, validate
from sqlalchemy import select

from omnicrm.core.consent import consent_of
from omnicrm.core.records import Medium
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import address_links
from omnicrm.core.sync import SyncEngine
from omnicrm.plugins.line.sandbox import demo_user
from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.data import LINE_METAFIELD, customer_number
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.plugins.shopify.test_plugin import connection, engine
from tests.support.reference import shopify_schema

__all__ = ["engine"]  # the fixture, shared with test_plugin

END = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
LINKED = 6
METAFIELD = ".".join(LINE_METAFIELD)


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(
        customers=30, seed=8, end=END, bucket_size=4000, restore_rate=40_000
    ) as server:
        users = {n: demo_user(0, n) for n in range(LINKED)}
        users[LINKED] = "line-id-of-another-format"  # an app's own format: not linked
        server.data.link_line_users(users)
        yield server


def links(store: Store) -> dict[str, tuple[str, str, str]]:
    a = address_links.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(a.address, a.connection, a.record_id, a.method).where(a.medium == "line")
        )
        return {address: (c, r, m) for address, c, r, m in rows}


def expected() -> dict[str, tuple[str, str, str]]:
    return {
        demo_user(0, n): ("tokyo-tea", f"gid://shopify/Customer/{customer_number(n)}", "channel")
        for n in range(LINKED)
    }


@pytest.mark.parametrize("bulk", [False, True], ids=["paged", "bulk"])
def test_the_sync_links_the_metafields_line_user_ids(
    engine: SyncEngine, store: Store, shop: ShopifySandbox, bulk: bool
) -> None:
    conn = connection(shop, line_user_id_metafield=METAFIELD, bulk_threshold=0 if bulk else 10**6)
    result = engine.sync(conn)
    assert result.status is RunStatus.COMPLETE, result.error
    wanted = "BulkRun" if bulk else "CustomersLine"
    assert shop.stats.operations[wanted] >= 1
    assert shop.stats.operations.get("Customers", 0) == 0
    assert links(store) == expected()
    customers = {c.id: c for c in store.customers("tokyo-tea")}
    first = customers[f"gid://shopify/Customer/{customer_number(0)}"]
    assert first.line_user_id == demo_user(0, 0)
    assert customers[f"gid://shopify/Customer/{customer_number(LINKED)}"].line_user_id is None
    with store.engine.connect() as db:
        verdict = consent_of(
            db,
            shop="default",
            members=[("tokyo-tea", first.id)],
            medium=Medium.LINE,
            address=demo_user(0, 0),
        )
    assert not verdict.allowed  # the app's link is no opt-in
    # Again: the links stay as they were (not re-linked, not moved).
    before = links(store)
    assert engine.sync(conn).status is RunStatus.COMPLETE
    assert links(store) == before


def test_without_the_setting_nothing_is_read_nor_linked(
    engine: SyncEngine, store: Store, shop: ShopifySandbox
) -> None:
    result = engine.sync(connection(shop, bulk_threshold=10**6))
    assert result.status is RunStatus.COMPLETE, result.error
    assert shop.stats.operations.get("CustomersLine", 0) == 0
    assert links(store) == {}


@pytest.mark.parametrize(
    "value", ["line_user_id", "ab.line_user_id", "line.x", "line connect.user", "a.b.c"]
)
def test_a_metafield_that_is_not_namespace_dot_key_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"NAMESPACE\.KEY"):
        ShopifySettings(domain="x.myshopify.com", access_token="t", line_user_id_metafield=value)


def test_the_bulk_query_with_the_metafield_validates_against_shopifys_schema() -> None:
    text = queries.bulk_query("customers", "updated_at:>='2026-01-01'", line=LINE_METAFIELD)
    assert 'metafield(namespace: "line_connect", key: "line_user_id")' in text
    errors = validate(shopify_schema(), parse(text))
    assert not errors, [e.message for e in errors]
