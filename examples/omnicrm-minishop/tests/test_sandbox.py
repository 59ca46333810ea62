"""The emulator itself: reproducible, realistic data and the API contract the plugin relies on."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter

import httpx
import pytest
from omnicrm_minishop.plugin import MiniShopSettings
from omnicrm_minishop.sandbox import MiniShopServer, sandbox

from omnicrm.errors import ConfigError

KATAKANA = re.compile(r"^[\u30a0-\u30ffー]+$")


def test_same_seed_same_shop_other_seed_other_shop(anchor: dt.datetime) -> None:
    one = MiniShopServer(customers=50, seed=3, anchor=anchor)
    two = MiniShopServer(customers=50, seed=3, anchor=anchor)
    other = MiniShopServer(customers=50, seed=4, anchor=anchor)
    assert one.records("customers") == two.records("customers")
    assert one.records("orders") == two.records("orders")
    assert one.records("customers") != other.records("customers")


def test_customer_count_is_bounded() -> None:
    with pytest.raises(ValueError, match=r"10\.\.100000"):
        MiniShopServer(customers=9)
    with pytest.raises(ValueError, match=r"10\.\.100000"):
        MiniShopServer(customers=100_001)


def test_customers_look_like_a_japanese_shop(shop: MiniShopServer) -> None:
    customers = shop.records("customers")
    assert len(customers) == 2000
    assert all(re.fullmatch(r"c_\d{6}", c["id"]) for c in customers)
    kana = [c["last_name_kana"] for c in customers if c["last_name_kana"]]
    assert len(kana) > 1800 and all(KATAKANA.match(k) for k in kana)
    tels = [c["tel"] for c in customers if c["tel"]]
    assert any(re.fullmatch(r"0[789]0-\d{4}-\d{4}", t) for t in tels)
    assert any(re.fullmatch(r"0[789]0\d{8}", t) for t in tels)
    assert any(re.search(r"[\uff10-\uff19]", t) for t in tels)  # typed on a Japanese IME
    assert all(re.fullmatch(r"\d{3}-\d{4}", c["zip"]) for c in customers if c["zip"])
    assert {c["sex"] for c in customers} == {"male", "female", None}
    assert any(c["birthday"] is None for c in customers)
    assert all(c["updated_at"].endswith("+09:00") for c in customers)
    assert all(c["updated_at"] >= c["created_at"] for c in customers)  # same offset: sortable


def test_orders_add_up_in_whole_yen(shop: MiniShopServer) -> None:
    orders = shop.records("orders")
    assert {o["status"] for o in orders} >= {"shipped", "cancelled", "returned"}
    for order in orders:
        assert 1 <= len(order["items"]) <= 4
        lines = sum(i["price"] * i["quantity"] - i["discount"] for i in order["items"])
        assert order["subtotal"] == lines
        assert order["payment_total"] == (
            order["subtotal"] - order["discount"] + order["delivery_fee"]
        )
        assert order["tax"] == order["payment_total"] * 10 // 110
        assert all(500 <= i["price"] <= 20_000 for i in order["items"])
        assert (order["cancelled_at"] is not None) == (order["status"] == "cancelled")


def test_most_customers_buy_once_and_a_long_tail_many_times(shop: MiniShopServer) -> None:
    per_customer = Counter(o["customer_id"] for o in shop.records("orders"))
    guests = per_customer.pop(None)
    counts = Counter(per_customer.values())
    buyers = sum(counts.values())
    assert counts[1] / buyers > 0.5
    assert max(per_customer.values()) >= 10
    assert 0 < guests < len(shop.records("orders")) / 10
    assert buyers < 2000  # some registered and never bought


def test_api_needs_the_key(shop: MiniShopServer) -> None:
    url = f"{shop.base_url}/api/v1/customers"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"X-Api-Key": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert httpx.get(url, headers={"X-Api-Key": shop.api_key}).status_code == 200


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("limit=ten", "limit"),
        ("updated_since=2025-01-01T00:00:00", "updated_since"),  # no offset
        ("updated_since=2025-01-01T00:00:00+09:00", "updated_since"),  # '+' not encoded
        ("page_token=not-a-token", "page_token"),
    ],
)
def test_api_rejects_bad_parameters(shop: MiniShopServer, query: str, parameter: str) -> None:
    answer = httpx.get(
        f"{shop.base_url}/api/v1/customers?{query}", headers={"X-Api-Key": shop.api_key}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == parameter


def test_api_limit_bounds_are_inclusive(shop: MiniShopServer) -> None:
    for limit in (1, 250):
        answer = httpx.get(
            f"{shop.base_url}/api/v1/orders",
            params={"limit": limit},
            headers={"X-Api-Key": shop.api_key},
        )
        assert len(answer.json()["orders"]) == limit


def test_unknown_paths_are_404(shop: MiniShopServer) -> None:
    headers = {"X-Api-Key": shop.api_key}
    api = httpx.get(f"{shop.base_url}/api/v1/products", headers=headers)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    site = httpx.get(f"{shop.base_url}/admin", headers=headers)
    assert site.status_code == 404 and site.headers["content-type"].startswith("text/html")


def test_live_shop_keeps_changing_after_its_history(anchor: dt.datetime) -> None:
    with MiniShopServer(customers=20, seed=5, anchor=anchor, live=True, live_interval=0.02) as s:
        before = {r: len(s.records(r)) for r in ("customers", "orders")}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            changed = [
                r
                for r in s.records("customers") + s.records("orders")
                if r["updated_at"] > "2025-06-02"
            ]
            if len(changed) >= 5:
                break
            time.sleep(0.02)
        assert len(changed) >= 5
        after = {r: len(s.records(r)) for r in ("customers", "orders")}
    assert after["customers"] + after["orders"] > before["customers"] + before["orders"]


def test_sandbox_factory_yields_working_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISHOP_CUSTOMERS", "25")
    monkeypatch.setenv("MINISHOP_LIVE", "0")
    with sandbox() as raw:
        settings = MiniShopSettings.model_validate(raw)
        answer = httpx.get(
            f"{settings.base_url}api/v1/customers",
            params={"limit": 250},
            headers={"X-Api-Key": settings.api_key.get_secret_value()},
        )
        assert len(answer.json()["customers"]) == 25
    with pytest.raises(httpx.ConnectError):  # stopped on exit
        httpx.get(f"{settings.base_url}api/v1/customers")


def test_sandbox_factory_is_live_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISHOP_CUSTOMERS", "10")
    monkeypatch.delenv("MINISHOP_LIVE", raising=False)
    monkeypatch.setenv("MINISHOP_LIVE_INTERVAL", "0.05")

    def everything(base_url: str, key: str) -> list[object]:
        return [
            httpx.get(
                f"{base_url}/api/v1/{resource}",
                params={"updated_since": "2025-01-01T00:00:00+00:00", "limit": 250},
                headers={"X-Api-Key": key},
            ).json()[resource]
            for resource in ("customers", "orders")
        ]

    with sandbox() as raw:
        first = everything(raw["base_url"], raw["api_key"])
        time.sleep(0.5)
        later = everything(raw["base_url"], raw["api_key"])
    assert later != first


@pytest.mark.parametrize("value", ["many", "5", "200000"])
def test_sandbox_factory_rejects_a_bad_size(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MINISHOP_CUSTOMERS", value)
    with pytest.raises(ConfigError, match="MINISHOP_CUSTOMERS"), sandbox():
        pass
