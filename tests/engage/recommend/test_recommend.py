"""Recommendations from the store: every channel of the shop, one person per profile,
cancelled orders out, merged recommenders, bought products left out unless repeat."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from omnicrm import Registrar, hookimpl
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.host import Host
from omnicrm.core.recommend import RecommendationRequest, Recommender, ScoredProduct
from omnicrm.core.records import Order, OrderLine, Product, ProductVariant
from omnicrm.core.store import Store
from omnicrm.crm.products import ProductSettings
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.recommend import (
    UnknownCustomerError,
    UnknownProductError,
    due_now,
    for_customer,
    for_product,
    load_history,
    repeat_products,
    shop_catalogue,
    shop_history,
)
from omnicrm.engage.settings import DEFAULT_WEIGHTS
from omnicrm.plugins.recommenders import plugin as recommenders
from tests.engage.conftest import NOW, person

SHOP = DEFAULT_SHOP
_n = iter(range(10_000))


def order(
    customer: str | None, days_ago: float, *lines: tuple[str | None, str | None], **fields: object
) -> Order:
    at = NOW - dt.timedelta(days=days_ago)
    values: dict[str, object] = {
        "id": f"O{next(_n)}",
        "customer_id": customer,
        "status": "paid",
        "placed_at": at,
        "updated_at": at,
        "subtotal": Decimal(1000),
        "total": Decimal(1000),
        "lines": [
            OrderLine(
                sku=sku,
                product_id=pid,
                product_name=f"name of {sku or pid}",
                quantity=1,
                unit_price=Decimal(1000),
            )
            for sku, pid in lines
        ],
    }
    values.update(fields)
    return Order(**values)  # type: ignore[arg-type]


TEA, CUP, MUG, KETTLE = ("TEA-1", None), ("", "cup-9"), ("MUG-2", None), ("KETTLE-3", None)


@pytest.fixture
def host() -> Iterator[Host]:
    loaded = Host.load(extra={"recommenders": recommenders}, use_entry_points=False)
    assert not loaded.failures, loaded.failures
    yield loaded


@pytest.fixture
def shop(store: Store) -> Store:
    """C1 bought tea online and a cup in the store; C2-C4 bought tea, cup and mug, C2-C4
    tea again a month apart; C5's kettle orders were cancelled or refunded."""
    people = [person(i) for i in range(1, 7)]
    store.write_batch("web", Stream.CUSTOMERS, people)
    store.write_batch("pos", Stream.CUSTOMERS, [person(1, id="POS-1")])
    web = [order("C1", 20, TEA)]
    for i in (2, 3, 4):
        web += [order(f"C{i}", 60, TEA, CUP, MUG), order(f"C{i}", 30, TEA)]
    web += [
        order("C5", 5, TEA, KETTLE, status="cancelled"),
        order("C5", 5, KETTLE, CUP, status="refunded"),
        order(None, 3, CUP, MUG),  # a guest's basket: no person, still bought together
    ]
    store.write_batch("web", Stream.ORDERS, web)
    store.write_batch("pos", Stream.ORDERS, [order("POS-1", 10, CUP)])
    refresh(store, CrmSettings(), now=NOW)
    return store


def pid(store: Store, connection: str, record: str) -> str:
    with store.engine.connect() as conn:
        found = profile_of(conn, connection, record, shop=SHOP)
    assert found is not None
    return str(found)


def test_the_history_joins_channels_by_profile_and_leaves_cancelled_orders_out(
    shop: Store,
) -> None:
    with shop.engine.connect() as conn:
        history = load_history(conn, SHOP, now=NOW)
    one = pid(shop, "web", "C1")
    assert pid(shop, "pos", "POS-1") == one
    assert history.bought_by(one) == {"TEA-1", "cup-9"}  # online and in the store
    assert "KETTLE-3" not in history.products  # only in cancelled or refunded orders
    assert history.names["cup-9"] == "name of cup-9"  # no SKU: the product id
    assert (history.customer < 0).sum() == 2  # the guest's two lines
    # Every profile has a segment label for popularity (gender unknown, no birth date:
    # none), and C5 (nothing kept) has no purchases.
    assert history.bought_by(pid(shop, "web", "C5")) == set()


def test_for_a_product_bought_together_across_channels_with_the_reason(
    shop: Store, host: Host
) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    found = for_product(host, history, "TEA-1")
    assert [r.product_id for r in found] == ["cup-9", "MUG-2"]
    cup = found[0]
    # C1 (cup in the store, tea online) and C2-C4: 4 of the 4 tea buyers.
    assert cup.reason.startswith("「name of TEA-1」を買った人の 4 人が一緒に購入, lift ")
    assert cup.recommenders == ("also-bought",)
    with pytest.raises(UnknownProductError, match="KETTLE-3"):
        for_product(host, history, "KETTLE-3")


def test_for_a_customer_bought_products_are_left_out_unless_bought_repeatedly(
    shop: Store, host: Host
) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    assert repeat_products(history) == {"TEA-1"}
    found = {r.product_id: r for r in for_customer(host, history, pid(shop, "web", "C1"))}
    assert "cup-9" not in found  # bought, and nobody buys it twice
    assert "MUG-2" in found and "also-bought" in found["MUG-2"].recommenders
    assert "TEA-1" in found  # bought, but a repeat product: due again
    assert "reorder" in found["TEA-1"].recommenders
    assert "日ごとに購入" in found["TEA-1"].reason


def test_someone_with_no_history_gets_what_the_shop_buys(shop: Store, host: Host) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    six = pid(shop, "web", "C6")
    found = for_customer(host, history, six)
    assert found and found[0].recommenders == ("segment-popular",)
    assert found[0].product_id == "TEA-1" and "人が購入" in found[0].reason
    with pytest.raises(UnknownCustomerError):
        for_customer(host, history, "999999", known=False)


def test_the_history_is_kept_until_the_shop_changes(shop: Store) -> None:
    first = shop_history(shop.engine, SHOP, now=NOW)
    assert shop_history(shop.engine, SHOP, now=NOW) is first
    shop.write_batch("web", Stream.ORDERS, [order("C6", 1, MUG)])
    again = shop_history(shop.engine, SHOP, now=NOW)
    assert again is not first and pid(shop, "web", "C6") in again.customer_index


def test_who_is_due_now(shop: Store, host: Host) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    due = due_now(host, history)
    # C2-C4 buy tea every 30 days and last did 30 days ago; C1 bought it 20 days ago.
    assert sorted(d.customer_id for d in due) == sorted(
        pid(shop, "web", f"C{i}") for i in (2, 3, 4)
    )
    assert {d.product_id for d in due} == {"TEA-1"}
    assert due_now(host, history, product_id="MUG-2") == []
    with pytest.raises(UnknownProductError):
        due_now(host, history, product_id="KETTLE-3")


def _product(pid: str, sku: str, *, available: bool = True, **fields: object) -> Product:
    return Product(
        id=pid,
        title=f"{sku} の名前",
        url=f"https://shop.example.jp/products/{pid}",
        updated_at=NOW,
        variants=[ProductVariant(id=f"V{pid}", sku=sku, price=Decimal(1200), available=available)],
        **fields,  # type: ignore[arg-type]
    )


def test_with_a_catalogue_nothing_sold_out_or_excluded_is_offered(shop: Store, host: Host) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    with shop.engine.connect() as conn:
        assert shop_catalogue(conn, SHOP) is None  # no catalogue synced: lines' names
    assert {r.product_id for r in for_product(host, history, "TEA-1")} == {"cup-9", "MUG-2"}

    shop.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            _product("1", "TEA-1"),
            _product("9", "cup-9", available=False),  # sold out
            _product("2", "MUG-2"),
        ],
    )
    with shop.engine.connect() as conn:
        catalogue = shop_catalogue(conn, SHOP)
        excluding = shop_catalogue(conn, SHOP, ProductSettings(exclude=["mug-*"]))
    [mug] = for_product(host, history, "TEA-1", catalogue=catalogue)
    assert (mug.product_id, mug.name, mug.price) == ("MUG-2", "MUG-2 の名前", Decimal(1200))
    assert mug.url == "https://shop.example.jp/products/2"
    assert for_product(host, history, "TEA-1", catalogue=excluding) == []
    customer = for_customer(host, history, pid(shop, "web", "C1"), catalogue=catalogue)
    assert "cup-9" not in {r.product_id for r in customer}


class Counted:
    """A recommender plugin that keeps every request it is asked."""

    def __init__(self) -> None:
        self.asked: list[RecommendationRequest] = []

    @hookimpl
    def omnicrm_register(self, register: Registrar) -> None:
        register.recommender(Recommender("counted"))

    @hookimpl
    def omnicrm_recommend(self, request: RecommendationRequest) -> list[ScoredProduct]:
        self.asked.append(request)
        return []


def test_the_weights_decide_how_much_each_recommender_counts(shop: Store, host: Host) -> None:
    history = shop_history(shop.engine, SHOP, now=NOW)
    one = pid(shop, "web", "C1")
    default = {r.product_id: r for r in for_customer(host, history, one)}
    assert for_customer(host, history, one, weights=DEFAULT_WEIGHTS) == list(default.values())
    # Each recommender's best counts its weight: reorder's TEA-1, also-bought's MUG-2.
    assert default["TEA-1"].recommenders == ("reorder", "segment-popular")
    assert default["MUG-2"].recommenders == ("also-bought", "segment-popular")
    tuned = {**DEFAULT_WEIGHTS, "reorder": 0.5, "also-bought": 3.0}
    found = {r.product_id: r for r in for_customer(host, history, one, weights=tuned)}
    assert found["TEA-1"].score == pytest.approx(default["TEA-1"].score - 0.5)
    assert found["MUG-2"].score == pytest.approx(default["MUG-2"].score + 2.0)
    assert list(found) == ["MUG-2", "TEA-1"]
    reorder_first = for_customer(host, history, one, weights={**DEFAULT_WEIGHTS, "reorder": 10})
    assert [r.product_id for r in reorder_first] == ["TEA-1", "MUG-2"]
    assert reorder_first[0].score == pytest.approx(default["TEA-1"].score + 9.0)
    # Weights name every recommender that counts other than 1: unnamed, popularity counts 1.
    plain = {r.product_id: r for r in for_customer(host, history, one, weights={})}
    assert plain["TEA-1"].score - 1 == pytest.approx(5 * (default["TEA-1"].score - 1))


def test_a_weight_of_0_leaves_the_recommender_out_unasked(shop: Store) -> None:
    counted = Counted()
    host = Host.load(
        extra={"recommenders": recommenders, "counted": counted}, use_entry_points=False
    )
    assert not host.failures, host.failures
    history = shop_history(shop.engine, SHOP, now=NOW)
    one = pid(shop, "web", "C1")
    for_customer(host, history, one)
    for_product(host, history, "TEA-1")
    assert [r.recommender for r in counted.asked] == ["counted", "counted"]
    counted.asked.clear()
    off = {"counted": 0.0, "also-bought": 0.0}
    found = for_customer(host, history, one, weights=off)
    assert found and all(set(r.recommenders) <= {"reorder", "segment-popular"} for r in found)
    assert for_product(host, history, "TEA-1", weights=off) == []
    assert counted.asked == []
    # Someone with no history of their own: segment popularity counts fully, unless off.
    six = pid(shop, "web", "C6")
    assert for_customer(host, history, six)[0].score == pytest.approx(1.0)
    assert for_customer(host, history, six, weights={"segment-popular": 0}) == []
