"""Reading POS exports: each format in Shift_JIS and UTF-8 (with and without a BOM),
columns reordered and dropped, a connection's column mapping, and every kind of bad
file named by file, line and column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from omnicrm import Customer, Order, OrderStatus, Stream
from omnicrm.csvfiles import CsvImportError
from omnicrm.plugins.pos.csv import Format, PosCsvSettings, read_export
from omnicrm.plugins.pos.csv.reader import kind, money, whole
from tests.plugins.pos.csv.exports import AIRREGI, GENERIC, SMAREGI, columns, write

TOKYO = ZoneInfo("Asia/Tokyo")
ENCODINGS = ["cp932", "utf-8", "utf-8-sig"]


def _read(
    path: Path, format: Format, **kwargs: object
) -> tuple[dict[str, Customer], dict[str, Order]]:
    people: dict[str, Customer] = {}
    orders: dict[str, Order] = {}
    with read_export(path, format, timezone=TOKYO, **kwargs) as export:  # type: ignore[arg-type]
        for stream, records in export.batches():
            for record in records:
                if stream is Stream.CUSTOMERS:
                    assert isinstance(record, Customer)
                    people[record.id] = record
                else:
                    assert isinstance(record, Order)
                    orders[record.id] = record
    return people, orders


def _jst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO).astimezone(dt.UTC)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_airregi_export_is_receipts_and_members(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "会計明細.csv", AIRREGI, encoding)
    people, orders = _read(path, Format.AIRREGI)

    sale = orders["0000123"]
    assert sale.channel == "pos" and sale.location == "渋谷店"
    assert sale.status is OrderStatus.FULFILLED
    assert sale.placed_at == _jst(2026, 5, 1, 10, 42, 15)
    assert [(line.product_name, line.quantity, line.unit_price) for line in sale.lines] == [
        ("静岡煎茶 深蒸し 100g", 2, Decimal(1080)),
        ("抹茶ラテ", 1, Decimal(550)),
    ]
    assert sale.subtotal == Decimal(2710) and sale.discount_total == Decimal(110)
    assert sale.total == Decimal(2600) and sale.tax_total == Decimal(200)
    assert sale.customer_id == "A-0001"

    assert orders["0000124"].customer_id is None  # a sale to nobody: still a store sale
    back = orders["0000125"]
    assert back.status is OrderStatus.RETURNED and back.total == Decimal(-1080)
    assert [(line.quantity, line.unit_price) for line in back.lines] == [(1, Decimal(-1080))]
    cancelled = orders["0000126"]
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancelled_at == _jst(2026, 5, 1, 16, 45, 9)

    hanako = people["A-0001"]
    assert (hanako.family_name, hanako.given_name) == ("山田", "花子")
    assert (hanako.family_name_kana, hanako.given_name_kana) == ("ヤマダ", "ハナコ")
    assert hanako.member_code == "A-0001"
    assert set(people) == {"A-0001", "A-0002"}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_smaregi_export_takes_the_registers_time_returns_and_cancels(
    tmp_path: Path, encoding: str
) -> None:
    path = write(tmp_path / "取引履歴.csv", SMAREGI, encoding)
    people, orders = _read(path, Format.SMAREGI)

    assert set(orders) == {"20010", "20012"}  # 20011 is a 入金, not a sale
    sale = orders["20010"]
    assert sale.placed_at == _jst(2026, 5, 2, 11, 58, 2)  # 端末取引日時, not 取引日時
    assert sale.location == "梅田店" and sale.status is OrderStatus.FULFILLED
    assert [(line.sku, line.quantity, line.unit_price) for line in sale.lines] == [
        ("4901777300156", 2, Decimal(756)),
        ("4901777300163", 1, Decimal(1320)),
        ("4901777300170", 1, Decimal(-456)),  # 取引明細区分 2: returned
    ]
    assert sale.subtotal == Decimal(2376) and sale.discount_total == Decimal(150)
    assert sale.total == Decimal(2226)
    assert (sale.points_earned, sale.points_redeemed) == (22, 50)
    assert sale.customer_id == "1207"
    assert people["1207"].member_code == "M0001207"

    assert orders["20012"].status is OrderStatus.CANCELLED
    assert orders["20012"].customer_id is None  # 会員ID 0: nobody
    assert set(people) == {"1207"}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_generic_format(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "sales.csv", GENERIC, encoding)
    people, orders = _read(path, Format.GENERIC)
    assert orders["R-000101"].total == Decimal(1080 * 2 + 3300 - 330)
    assert orders["R-000101"].placed_at == _jst(2026, 5, 1, 10, 42)
    assert orders["R-000102"].status is OrderStatus.RETURNED
    hanako = people["M-0007"]
    assert (hanako.phone, hanako.email) == ("090-1234-5678", "hanako@example.jp")


def test_columns_are_found_by_name_in_any_order_and_may_be_dropped(tmp_path: Path) -> None:
    # The operator turned off the customer, tax and total columns and moved others.
    keep = ["商品名", "数量", "会計時間", "伝票番号", "単価", "会計日", "店舗名", "取引種別"]
    path = write(tmp_path / "会計明細.csv", columns(AIRREGI, keep), "cp932")
    people, orders = _read(path, Format.AIRREGI)
    assert people == {}
    assert orders["0000123"].total == Decimal(2710)  # the lines' sum: no total column
    assert orders["0000123"].customer_id is None
    assert orders["0000123"].placed_at == _jst(2026, 5, 1, 10, 42, 15)


def test_a_connections_column_mapping_names_renamed_columns(tmp_path: Path) -> None:
    text = AIRREGI.replace("伝票番号", "レシートNo").replace("顧客番号", "会員No")
    path = write(tmp_path / "会計明細.csv", text, "utf-8")
    with pytest.raises(CsvImportError, match="1:伝票番号: required column is missing"):
        _read(path, Format.AIRREGI)
    settings = PosCsvSettings(columns={"レシートNo": "receipt", "会員No": "member_code"})
    people, orders = _read(path, Format.AIRREGI, columns=settings.columns)
    assert "0000123" in orders and "A-0001" in people


def test_the_store_name_setting_is_the_location_when_the_file_has_none(tmp_path: Path) -> None:
    keep = ["伝票番号", "会計日", "会計時間", "商品名", "単価", "数量"]
    path = write(tmp_path / "会計明細.csv", columns(AIRREGI, keep), "utf-8")
    _, orders = _read(path, Format.AIRREGI, store_name="表参道店")
    assert {o.location for o in orders.values()} == {"表参道店"}


def test_a_mapping_to_no_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="'会員No': 'member' is no field"):
        PosCsvSettings(columns={"会員No": "member"})


def _problems(path: Path, format: Format = Format.AIRREGI) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        _read(path, format)
    return [str(p) for p in caught.value.problems]


def test_a_missing_required_column(tmp_path: Path) -> None:
    keep = ["伝票番号", "会計日", "会計時間", "商品名", "数量"]
    path = write(tmp_path / "a.csv", columns(AIRREGI, keep), "cp932")
    assert _problems(path) == [f"{path}:1:単価: required column is missing"]


def test_bad_dates_numbers_and_short_rows_are_named_by_line_and_column(tmp_path: Path) -> None:
    lines = AIRREGI.splitlines()
    lines[2] = lines[2].replace("2026/05/01", "2026/13/01")
    lines[3] = lines[3].replace(",648,1,", ",六百円,1,")
    lines[4] = lines[4].replace('"1,080",-1,', '"1,080",一,')
    lines[5] = lines[5].split(",電子マネー")[0]  # cut short after 合計
    lines[1] = lines[1].replace("10:42:15", "25:61")
    path = write(tmp_path / "bad.csv", "\n".join(lines) + "\n", "cp932")
    problems = _problems(path)
    assert problems[0].startswith(f"{path}:2:会計時間: not a date or time: '2026/05/01 25:61'")
    assert problems[1].startswith(f"{path}:3:会計日: not a date or time: '2026/13/01'")
    assert problems[2:] == [
        f"{path}:4:単価: not an amount in yen: '六百円'",
        f"{path}:5:数量: not a whole number: '一'",
        f"{path}:6:支払方法: 15 values, the header has 21",
    ]


def test_a_file_in_another_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "euc.csv"
    path.write_bytes(AIRREGI.encode("euc_jp"))
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:1: the file looks like EUC-JP")


def test_an_empty_receipt_number_or_price_is_named(tmp_path: Path) -> None:
    lines = AIRREGI.splitlines()
    lines[1] = lines[1].replace(",0000123,", ",,")
    lines[2] = lines[2].replace(",550,1,", ",,1,")
    path = write(tmp_path / "gaps.csv", "\n".join(lines) + "\n", "utf-8")
    assert _problems(path) == [
        f"{path}:2:伝票番号: a value is required",
        f"{path}:3:単価: a value is required",
    ]


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1,200", "1200"),
        ("¥1,200", "1200"),
        ("１２００円", "1200"),
        ("▲300", "-300"),
        ("-300", "-300"),
        ("1200.5", "1200.5"),
    ],
)
def test_amounts_read_as_registers_and_spreadsheets_write_them(text: str, amount: str) -> None:
    assert money(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["千円", "1.2.3", "12e3", "0.00001", "1" * 15])
def test_what_is_no_amount_says_so(text: str) -> None:
    with pytest.raises(ValueError, match=r"not an amount"):
        money(text)


def test_whole_numbers_and_kinds() -> None:
    full_width = "\uff11,\uff10\uff10\uff10"  # 1,000 as a Japanese keyboard types it
    assert (whole("3"), whole("-1"), whole(full_width), whole("2.0")) == (3, -1, 1000, 2)
    with pytest.raises(ValueError, match=r"not a whole number: '1\.5'"):
        whole("1.5")
    assert [kind(k) for k in ("売上", "返品", "取消", "キャンセル")] == [
        "sale",
        "return",
        "cancel",
        "cancel",
    ]
    with pytest.raises(ValueError, match="not a kind of receipt: '両替'"):
        kind("両替")
