"""Another client's sandbox store: its own shop, some of whose customers are the same
people as client 0's (the demo's overlapping customer bases)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from omnicrm.plugins.shopify import queries
from omnicrm.plugins.shopify.sandbox import sandbox
from omnicrm.plugins.shopify.sandbox.data import ShopData
from omnicrm.plugins.shopify.settings import ShopifySettings

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
PERSON = ("firstName", "lastName", "email", "phone", "defaultAddress", "_kana")


def _person(record: dict[str, object]) -> tuple[object, ...]:
    return tuple(record[k] for k in PERSON)


def test_a_shared_share_of_customers_are_the_other_shops_people_with_their_own_orders() -> None:
    first = ShopData(400, 1, end=END)
    second = ShopData(200, 2, end=END, shared_with=1, shared=0.3)
    alone = ShopData(200, 2, end=END)
    same = [c for c in range(200) if _person(second.customer(c)) == _person(first.customer(c))]
    assert 0.2 * 200 < len(same) < 0.4 * 200
    for c in same:
        assert second.customer(c)["email"] or second.customer(c)["phone"]
    # The others are this shop's own people, as the shop without sharing has them.
    others = [c for c in range(200) if c not in same]
    assert all(_person(second.customer(c)) == _person(alone.customer(c)) for c in others)
    assert not any(_person(alone.customer(c)) == _person(first.customer(c)) for c in range(200))
    # Orders are the shop's own: the same person spends differently in each.
    spent = [second.customer(c)["amountSpent"] != first.customer(c)["amountSpent"] for c in same]
    assert sum(spent) > len(same) // 2
    with pytest.raises(ValueError, match="shared"):
        ShopData(10, 1, end=END, shared_with=2, shared=1.5)


def test_the_factory_starts_another_clients_store_half_the_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPIFY_SANDBOX_CUSTOMERS", "120")
    monkeypatch.setenv("SHOPIFY_SANDBOX_LIVE", "0")
    with sandbox(client=1) as settings:
        parsed = ShopifySettings.model_validate(dict(settings))
        assert parsed.domain == "omnicrm-demo-2.myshopify.com"
        response = httpx.post(
            f"{parsed.base_url}/admin/api/{queries.API_VERSION}/graphql.json",
            json={"query": queries.CUSTOMERS_COUNT},
            headers={"X-Shopify-Access-Token": settings["access_token"]},
        )
        assert response.json()["data"]["customersCount"]["count"] == 60
    with pytest.raises(ValueError, match="client"), sandbox(client=-1):
        pass
