"""The exporter writes a seeded shop as EC-CUBE's admin exports (cp932, 2.x and 4.x
header sets); the reader gives back what the shop holds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from graphql import GraphQLObjectType, GraphQLSchema, build_schema, get_named_type

from omnicrm import ConsentState, Customer, Order, OrderStatus
from omnicrm.plugins.ec_cube.csv import exports, read_export
from omnicrm.plugins.ec_cube.csv import masters_csv as masters
from omnicrm.plugins.ec_cube.csv.columns import CUSTOMERS_4, ORDERS_2, ORDERS_4
from omnicrm.plugins.ec_cube.csv.exports import seed_shop, write_customers, write_orders
from tests.support.reference import REFERENCE, require

TOKYO = ZoneInfo("Asia/Tokyo")
SCHEMA = REFERENCE / "eccube" / "api_schema.graphql"
PEOPLE, ORDERS = seed_shop(customers=18, orders=40)


def _read(path: Path) -> list[Any]:
    with read_export(path, timezone=TOKYO) as export:
        return [r for _, batch in export.batches() for r in batch]


def test_the_seed_is_deterministic_and_covers_the_cases() -> None:
    assert seed_shop(customers=18, orders=40) == (PEOPLE, ORDERS)
    assert seed_shop(customers=18, orders=40, seed=17) != (PEOPLE, ORDERS)
    statuses = {int(o["OrderStatus"]["id"]) for o in ORDERS}
    assert statuses >= masters.UNFINISHED and {3, 5, 9} <= statuses
    assert any(o["Customer"] is None for o in ORDERS)  # guests
    assert any(p["Status"]["id"] == "3" for p in PEOPLE)  # withdrawn members


@pytest.mark.parametrize("version", [4, 2])
def test_members_come_back_as_the_shop_holds_them(tmp_path: Path, version: int) -> None:
    path = write_customers(tmp_path / "customer.csv", PEOPLE, version=version)
    people = {c.id: c for c in _read(path) if isinstance(c, Customer)}
    assert set(people) == {p["id"] for p in PEOPLE}
    for seeded in PEOPLE:
        got = people[seeded["id"]]
        withdrawn = seeded["Status"]["id"] == "3"
        assert (got.family_name, got.given_name) == (seeded["name01"], seeded["name02"])
        assert (got.family_name_kana, got.given_name_kana) == (seeded["kana01"], seeded["kana02"])
        assert got.email == (None if withdrawn else seeded["email"])
        assert (got.withdrawn_at is not None) is withdrawn
        # The seed's birth is midnight in Tokyo: the same calendar day comes back.
        assert got.birth_date == dt.datetime.fromisoformat(seeded["birth"]).date()
        assert got.points == int(seeded["point"])
        assert got.address is not None and got.address.prefecture == seeded["Pref"]["name"]
        assert got.phone == seeded["phone_number"]
        assert got.updated_at == dt.datetime.fromisoformat(seeded["update_date"])
        if version == 2:
            flag = seeded["mailmaga_flg"]
            wanted = ConsentState.OPTED_IN if flag in (1, 2) and not withdrawn else None
            assert [c.state for c in got.consents] == [wanted or ConsentState.OPTED_OUT]
        else:
            assert [c.state for c in got.consents] == (
                [ConsentState.OPTED_OUT] if withdrawn else []
            )


def _finished(order: dict[str, Any]) -> bool:
    return int(order["OrderStatus"]["id"]) not in masters.UNFINISHED


@pytest.mark.parametrize("version", [4, 2])
def test_orders_come_back_without_unfinished_checkouts(tmp_path: Path, version: int) -> None:
    path = write_orders(tmp_path / "order.csv", ORDERS, version=version)
    orders = {o.id: o for o in _read(path) if isinstance(o, Order)}
    finished = [o for o in ORDERS if _finished(o)]
    assert set(orders) == {o["id"] for o in finished}
    for seeded in finished:
        got = orders[seeded["id"]]
        assert got.customer_id == (seeded["Customer"] or {}).get("id")
        assert got.subtotal == Decimal(str(seeded["subtotal"]))
        assert got.total == Decimal(str(seeded["payment_total"]))
        assert got.shipping_total == Decimal(str(seeded["delivery_fee_total"]))
        assert got.placed_at == dt.datetime.fromisoformat(seeded["order_date"])
        status = int(seeded["OrderStatus"]["id"])
        assert got.status is masters.order_status(status)
        use_point = int(seeded["use_point"])
        assert got.points_redeemed == use_point  # 4.x: from its point item (none: 0)
        if version == 2:
            assert got.lines == []  # 2.x's export has no items
            assert got.points_earned == int(seeded["add_point"])
            continue
        products = [
            i for i in seeded["OrderItems"] if i["OrderItemType"]["id"] == str(masters.PRODUCT)
        ]
        assert [(line.sku, line.quantity, line.unit_price) for line in got.lines] == [
            (i["product_code"], int(i["quantity"]), Decimal(int(i["price"] + i["tax"])))
            for i in products
        ]
        assert sum(line.unit_price * line.quantity for line in got.lines) == got.subtotal
    assert any(o.status is OrderStatus.RETURNED for o in orders.values())


def test_the_files_are_what_the_admin_screen_writes(tmp_path: Path) -> None:
    four = write_orders(tmp_path / "order4.csv", ORDERS[:3], version=4).read_bytes()
    two = write_orders(tmp_path / "order2.csv", ORDERS[:3], version=2).read_bytes()
    assert four.decode("cp932").split("\n")[0].split(",") == list(ORDERS_4)
    assert not four.startswith(b"\xef\xbb\xbf") and b"\r\n" not in four
    header = two.decode("cp932").split("\r\n")[0]
    assert header == ",".join(f'"{h}"' for h in ORDERS_2)
    rows = four.decode("cp932").strip().split("\n")[1:]
    assert len(rows) == sum(len(o["OrderItems"]) for o in ORDERS[:3])  # one per item


def test_an_operators_column_choice_reads_the_same(tmp_path: Path) -> None:
    chosen = ["更新日", "メールアドレス", "会員ID", "お名前(名)", "お名前(姓)", "誕生日"]
    path = write_customers(tmp_path / "customer.csv", PEOPLE, header=chosen)
    full = write_customers(tmp_path / "full.csv", PEOPLE)
    for got, whole in zip(_read(path), _read(full), strict=True):
        assert (got.id, got.email, got.family_name, got.birth_date) == (
            whole.id,
            whole.email,
            whole.family_name,
            whole.birth_date,
        )
        assert got.address is None and got.points is None  # dropped columns
    assert set(CUSTOMERS_4) > set(chosen)


def test_an_unknown_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such column in an EC-CUBE export: 会員番号"):
        write_customers(tmp_path / "c.csv", PEOPLE, header=["会員ID", "会員番号"])


def _resolves(schema: GraphQLSchema, type_name: str, path: tuple[str, ...]) -> bool:
    current: Any = schema.type_map[type_name]
    for key in path:
        if not isinstance(current, GraphQLObjectType) or key not in current.fields:
            return False
        current = get_named_type(current.fields[key].type)
    return True


@pytest.mark.parametrize(
    ("table", "types"),
    [
        (exports._CUSTOMER, {"record": "Customer"}),
        (exports._ORDER, {"record": "Order", "item": "OrderItem", "shipping": "Shipping"}),
    ],
    ids=["Customer", "Order"],
)
def test_every_column_reads_a_field_of_the_api_schema(
    table: dict[str, Any], types: dict[str, str]
) -> None:
    """The exporter takes what the Web API's types hold, by the schema's own names: an
    emulator's records feed it as they are."""
    schema = build_schema(require(SCHEMA).read_text(encoding="utf-8"))
    paths = [g for g in table.values() if isinstance(g, exports.FieldPath)]
    assert len(paths) > 20
    unknown = [(g.source, g.path) for g in paths if not _resolves(schema, types[g.source], g.path)]
    assert unknown == []
