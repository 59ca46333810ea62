"""EC-CUBE's abandoned checkouts: carts left in the shopping flow (orders in status 7
決済処理中, 8 購入処理中) as the checkouts stream, and the profile's
abandoned_checkout_at they set until the order is completed."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from omnicrm import Checkout, Checkpoint, Stream
from omnicrm.app.config import Connection
from omnicrm.core.store import RunStatus, Store
from omnicrm.crm.refresh import refresh
from omnicrm.errors import DataError
from omnicrm.plugins.ec_cube import plugin
from omnicrm.plugins.ec_cube.api import channel
from omnicrm.plugins.ec_cube.api.mapping import checkout_from_node
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.sandbox.data import stamp
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox
from omnicrm.testing import stream_context
from tests.support.syncing import abandoned_at, engine_for


def _checkouts(settings: EccubeSettings, since: dt.datetime | None = None) -> list[Checkout]:
    values: BaseModel = settings
    ctx = stream_context("ec_cube", values, Stream.CHECKOUTS, since=since, connection="shop")
    return [c for c in channel.sync_checkouts(ctx) if not isinstance(c, Checkpoint)]


def test_the_carts_are_the_unfinished_orders(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    found = _checkouts(settings)
    unfinished = {str(i) for i, r in sandbox.orders.rows.items() if r.status in ("7", "8")}
    assert {c.id for c in found} == unfinished
    assert [c.updated_at for c in found] == sorted(c.updated_at for c in found)
    one = next(c for c in found if c.customer_id is not None)
    node = sandbox.orders.rows[int(one.id)].node
    lines = [i for i in node["OrderItems"] if i["OrderItemType"]["id"] == "1"]
    assert one.item_count == sum(int(i["quantity"]) for i in lines)
    # The cart's lines as an order's: the name (with its class categories), the price
    # with its tax, the product class.
    assert [(ln.quantity, ln.variant_id) for ln in one.lines] == [
        (int(i["quantity"]), str(i["ProductClass"]["id"])) for i in lines
    ]
    assert all(
        ln.product_name.startswith(i["product_name"])
        and ln.unit_price == Decimal(str(i["price"])) + Decimal(str(i["tax"]))
        for ln, i in zip(one.lines, lines, strict=True)
    )
    assert one.total == node["payment_total"] and one.completed_at is None


def test_a_sale_is_no_checkout() -> None:
    node: dict[str, Any] = {
        "id": "5",
        "create_date": "2026-11-30T10:00:00+09:00",
        "update_date": "2026-11-30T10:05:00+09:00",
        "OrderStatus": {"id": "5", "name": "発送済み"},
    }
    with pytest.raises(DataError, match="EC-CUBE checkout 5: OrderStatus is not an unfinished"):
        checkout_from_node(node)


def test_a_cart_left_marks_the_profile_until_the_order_is_completed(
    store: Store, sandbox: EccubeSandbox, live_connection: Connection
) -> None:
    engine = engine_for(store, "ec_cube", plugin)
    connection = live_connection
    # A member (status 2) with no order at all leaves a cart now.
    buyers = {r.node["Customer"]["id"] for r in sandbox.orders.rows.values() if r.node["Customer"]}
    member = next(
        str(i)
        for i, r in sandbox.customers.rows.items()
        if r.status == "2" and str(i) not in buyers
    )
    cart = next(i for i, r in sandbox.orders.rows.items() if r.status == "8")
    sandbox.update("order", cart, {"Customer": {"id": member}})
    time.sleep(1.1)
    first = engine.sync(connection)
    assert first.status is RunStatus.COMPLETE, first.error
    refresh(store)
    left = abandoned_at(store, member)
    assert left is not None

    # The member comes back and completes it: the order is a sale now (新規受付).
    sandbox.update(
        "order",
        cart,
        {"OrderStatus": {"id": "1", "name": "新規受付"}, "order_date": stamp(sandbox.clock())},
    )
    time.sleep(1.1)
    second = engine.sync(connection)
    assert second.status is RunStatus.COMPLETE, second.error
    refresh(store)
    assert abandoned_at(store, member) is None
