"""Reading EC-CUBE admin exports: hand-written files with the quirks shops send
(reordered and dropped columns, a BOM, CRLF, quoted commas and newlines, full-width
digits, repeated headers) in 2.x and 4.x shapes, and every bad file refused naming its
file, line and column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omnicrm import ConsentState, Customer, Gender, Order, OrderStatus
from omnicrm.csvfiles import CsvImportError
from omnicrm.plugins.ec_cube.csv import Kind, read_export
from omnicrm.plugins.ec_cube.csv.reader import birth_date

TOKYO = ZoneInfo("Asia/Tokyo")
DATA = Path(__file__).with_name("data")


def fixture(tmp_path: Path, name: str, encoding: str, *, newline: str = "\n") -> Path:
    """A data/ file (kept in UTF-8) saved as the shop saved it."""
    text = (DATA / name).read_text(encoding="utf-8")
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def _customers(path: Path) -> dict[str, Customer]:
    with read_export(path, timezone=TOKYO) as export:
        assert export.kind is Kind.CUSTOMERS
        found = [r for _, batch in export.batches() for r in batch]
    assert all(isinstance(c, Customer) for c in found)
    return {c.id: c for c in found if isinstance(c, Customer)}


def _orders(path: Path) -> tuple[dict[str, Order], int]:
    with read_export(path, timezone=TOKYO) as export:
        assert export.kind is Kind.ORDERS
        found = [r for _, batch in export.batches() for r in batch]
        skipped = export.skipped
    return {o.id: o for o in found if isinstance(o, Order)}, skipped


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp932"])
def test_a_4x_member_export_reordered_with_columns_dropped(tmp_path: Path, encoding: str) -> None:
    path = fixture(tmp_path, "eccube4_会員_reordered.csv", encoding, newline="\r\n")
    people = _customers(path)
    assert set(people) == {"1", "2", "3"}
    hanako = people["1"]
    assert (hanako.family_name, hanako.given_name) == ("山田", "花子")
    assert (hanako.family_name_kana, hanako.given_name_kana) == ("ヤマダ", "ハナコ")
    assert hanako.phone == "03-1234-5678"  # full-width digits and dashes
    assert hanako.address is not None
    assert hanako.address.postal_code == "150-0001"
    assert hanako.address.prefecture == "東京都"
    assert hanako.address.line2 == "1丁目2-3, 茶舗ビル 4F"  # a quoted comma
    assert "ショップ用メモ欄" not in hanako.raw["row"]  # read past: no field of ours
    assert hanako.gender is Gender.FEMALE
    assert hanako.points == 1200
    assert hanako.birth_date == dt.date(1985, 4, 2)  # not the day before (UTC)
    assert hanako.created_at == dt.datetime(2024, 1, 5, 1, 0, tzinfo=dt.UTC)
    assert hanako.updated_at == dt.datetime(2025, 3, 1, 0, 30, tzinfo=dt.UTC)
    assert hanako.withdrawn_at is None and hanako.email == "yamada@example.jp"
    assert hanako.address.line1 == "渋谷区神宮前 裏参道"  # a quoted line break, as a space
    assert hanako.consents == []  # 4.x's export says nothing of the mail magazine


def test_a_withdrawn_4x_member_keeps_no_dummy_address_and_is_opted_out(tmp_path: Path) -> None:
    ichiro = _customers(fixture(tmp_path, "eccube4_会員_reordered.csv", "cp932"))["2"]
    assert ichiro.withdrawn_at == dt.datetime(2025, 2, 20, 9, 45, tzinfo=dt.UTC)
    assert ichiro.email is None  # x7Ad9QpL2mZk@dummy.dummy: no key to match anyone by
    assert [c.state for c in ichiro.consents] == [ConsentState.OPTED_OUT]
    assert ichiro.birth_date == dt.date(1970, 12, 31)


def test_a_2x_member_export_with_mailmaga_and_del_flg(tmp_path: Path) -> None:
    people = _customers(fixture(tmp_path, "eccube2_顧客.csv", "cp932", newline="\r\n"))
    ken, sakura, makoto, yu = (people[i] for i in ("101", "102", "103", "104"))
    assert ken.phone == "011-222-3333"  # TEL1-TEL3, one of them full-width
    assert ken.address is not None and ken.address.postal_code == "060-0001"
    assert ken.created_at == dt.datetime(2012, 5, 1, 1, 0, 0, 123456, tzinfo=dt.UTC)
    assert (ken.consents[0].state, ken.consents[0].opt_in_level) == (ConsentState.OPTED_IN, "html")
    assert (sakura.consents[0].state, sakura.consents[0].opt_in_level) == (
        ConsentState.OPTED_IN,
        "text",
    )
    assert sakura.birth_date is None and sakura.gender is Gender.FEMALE
    assert makoto.consents[0].state is ConsentState.OPTED_OUT  # 3: none
    assert makoto.address is None
    # del_flg 1: withdrawn, at its update time (PostgreSQL's "+09" offset), no email.
    assert yu.withdrawn_at == dt.datetime(2013, 9, 1, 2, 0, tzinfo=dt.UTC)
    assert yu.email is None
    assert yu.consents[0].state is ConsentState.OPTED_OUT


def test_a_4x_order_export_one_row_per_item(tmp_path: Path) -> None:
    orders, skipped = _orders(fixture(tmp_path, "eccube4_受注.csv", "cp932", newline="\r\n"))
    assert set(orders) == {"1001", "1002", "1004"}
    assert skipped == 1  # 1003: 購入処理中, a checkout never completed
    first = orders["1001"]
    # Its rows are not next to each other; only the product items are lines.
    assert [(line.sku, line.quantity, line.unit_price) for line in first.lines] == [
        ("TEA-001", 2, Decimal(1296)),  # 1200 + 8%
        ("CUP-001", 1, Decimal(935)),  # 850 + 10%
    ]
    # A line names its 規格 in brackets, as the Web API half does.
    assert first.lines[1].product_name == '有田焼 湯呑み "藍" (藍)'
    assert (first.lines[0].product_id, first.lines[0].variant_id) == ("1", "1")
    assert sum(line.unit_price * line.quantity for line in first.lines) == first.subtotal
    # 送料 twice: the order's (800), not the shipping's (999).
    assert (first.subtotal, first.discount_total, first.shipping_total) == (3527, 100, 800)
    assert (first.tax_total, first.total) == (350, 4227)
    assert first.points_redeemed == 100  # the ポイント item
    assert first.customer_id == "1" and first.status is OrderStatus.FULFILLED
    assert first.placed_at == dt.datetime(2025, 3, 1, 14, 30, tzinfo=dt.UTC)
    assert orders["1002"].customer_id is None  # a guest
    assert orders["1002"].status is OrderStatus.PENDING
    assert orders["1004"].status is OrderStatus.CANCELLED
    assert orders["1004"].cancelled_at is not None


def test_the_4x_export_has_no_update_time_so_the_files_time_stands_for_it(
    tmp_path: Path,
) -> None:
    path = fixture(tmp_path, "eccube4_受注.csv", "utf-8")
    first, _ = _orders(path)
    again, _ = _orders(path)
    assert first == again  # the same file: the same records, to the microsecond
    stamp = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC).timestamp()
    import os

    os.utime(path, (stamp, stamp))
    later, _ = _orders(path)
    assert {o.updated_at for o in later.values()} == {dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)}


def test_a_2x_order_export_one_row_per_order_with_repeated_headers(tmp_path: Path) -> None:
    orders, skipped = _orders(fixture(tmp_path, "eccube2_受注_repeated.csv", "cp932"))
    assert set(orders) == {"21", "22"} and skipped == 1  # 23: 7 決済処理中
    first = orders["21"]
    assert first.lines == []  # 2.x writes no items
    assert (first.subtotal, first.shipping_total, first.total) == (3000, 500, 3600)
    assert (first.points_redeemed, first.points_earned) == (200, 30)
    assert first.updated_at == dt.datetime(2013, 5, 3, 0, 0, tzinfo=dt.UTC)
    assert orders["22"].customer_id is None  # 2.x writes 0 for a guest
    assert orders["22"].status is OrderStatus.PENDING  # 2: 入金待ち


def _problems(path: Path) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        read_export(path, timezone=TOKYO)
    return [str(p) for p in caught.value.problems]


def test_an_unknown_encoding_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = fixture(tmp_path, "eccube2_受注_repeated.csv", "euc_jp")
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:1: ") and "EUC-JP" in problem
    wide = fixture(tmp_path, "eccube2_顧客.csv", "utf-16")
    [problem] = _problems(wide)
    assert problem.startswith(f"{wide}:1: ") and "UTF-16" in problem


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    text = (DATA / "eccube4_受注.csv").read_text(encoding="utf-8")
    path = tmp_path / "受注.csv"
    path.write_text(text.replace("受注日,", "受付日,", 1), encoding="utf-8")
    assert _problems(path) == [f"{path}:1:受注日 or 注文日時: required column is missing"]
    members = tmp_path / "会員.csv"
    members.write_text("お名前(姓),お名前(名)\n山田,花子\n", encoding="utf-8")
    assert _problems(members) == [f"{members}:1:会員ID or 顧客ID: required column is missing"]


def test_a_bad_date_a_short_row_and_a_bad_value_are_each_named(tmp_path: Path) -> None:
    lines = (DATA / "eccube4_受注.csv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("2025-03-02 10:00:00", "2025-13-02 10:00:00")
    lines[4] = ",".join(lines[4].split(",")[:10])  # cut short
    lines[8] = lines[8].replace(",3,注文取消し,", ",42,謎,")
    path = tmp_path / "受注.csv"
    path.write_text("\n".join(lines) + "\n", encoding="cp932")
    problems = _problems(path)
    assert problems[0].startswith(f"{path}:3:受注日: not a date or time: '2025-13-02 10:00:00'")
    assert problems[1] == f"{path}:5:支払合計: 10 values, the header has 28"
    assert problems[2].startswith(f"{path}:9:対応状況(ID): not an order status: '42'")
    assert len(problems) == 3


def test_birth_dates_are_calendar_dates() -> None:
    assert birth_date("1985-04-02 00:00:00") == dt.date(1985, 4, 2)
    assert birth_date("１９８５/４/２") == dt.date(1985, 4, 2)  # noqa: RUF001
    with pytest.raises(ValueError, match="not a date"):
        birth_date("1985-02-30")


def test_the_dummy_address_alone_marks_a_withdrawn_member(tmp_path: Path) -> None:
    """An export without 会員ステータス still tells EC-CUBE 4's withdrawal by its dummy
    address, which must not become a key to match people by."""
    path = tmp_path / "会員.csv"
    path.write_text(
        "会員ID,メールアドレス,更新日\n"
        "7,Zq8xY2kLmN4p@DUMMY.dummy,2025-02-01 10:00:00\n"
        "8,real@example.jp,2025-02-01 10:00:00\n",
        encoding="utf-8",
    )
    people = _customers(path)
    assert people["7"].email is None
    assert people["7"].withdrawn_at == dt.datetime(2025, 2, 1, 1, 0, tzinfo=dt.UTC)
    assert people["8"].email == "real@example.jp" and people["8"].withdrawn_at is None


def test_ec_cube_3_layouts_read_too(tmp_path: Path) -> None:
    """3.x's headers as a third-party importer and a hosting manual list them:
    郵便番号1/2, TEL1-3, one row per product and no 明細区分."""
    yoko = _customers(fixture(tmp_path, "eccube3_会員.csv", "cp932"))["501"]
    assert yoko.address is not None
    assert (yoko.address.postal_code, yoko.address.prefecture) == ("460-0008", "愛知県")
    assert yoko.phone == "052-123-4567" and yoko.birth_date == dt.date(1979, 11, 3)
    orders, _ = _orders(fixture(tmp_path, "eccube3_受注.csv", "cp932"))
    [line] = orders["77"].lines
    assert (line.sku, line.quantity, line.unit_price) == ("TEA-002", 2, Decimal(1944))
    assert orders["77"].customer_id == "501" and orders["77"].subtotal == Decimal(3888)


def test_consent_and_deletion_written_as_words(tmp_path: Path) -> None:
    path = tmp_path / "会員.csv"
    path.write_text(
        "会員ID,メールアドレス,メールマガジン設定,会員削除フラグ\n"
        "1,a@example.jp,HTMLメール,稼働中\n"
        "2,b@example.jp,受け取らない,稼働中\n"
        "3,c@example.jp,設定無し,稼働中\n"
        "4,d@example.jp,テキストメール,削除\n",
        encoding="utf-8",
    )
    people = _customers(path)
    assert [people[i].consents[0].state for i in "1234"] == [
        ConsentState.OPTED_IN,
        ConsentState.OPTED_OUT,
        ConsentState.UNKNOWN,
        ConsentState.OPTED_OUT,  # deleted: withdrawn, never messaged
    ]
    assert people["4"].withdrawn_at is not None and people["4"].email is None


def test_an_order_row_without_its_id_is_named(tmp_path: Path) -> None:
    lines = (DATA / "eccube4_受注.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("1001,1001,", ",1001,", 1)
    path = tmp_path / "受注.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _problems(path) == [f"{path}:4:注文ID: a value is required"]


def test_a_connections_own_column_names(tmp_path: Path) -> None:
    path = tmp_path / "会員.csv"
    path.write_text("会員ID,メルマガ希望,Eメール\n1,2,a@example.jp\n", encoding="utf-8")
    columns = {"メルマガ希望": "mailmaga", "Eメール": "email"}
    with read_export(path, timezone=TOKYO, columns=columns) as export:
        [(_, [person])] = list(export.batches())
    assert isinstance(person, Customer)
    assert person.email == "a@example.jp"
    assert [(c.state, c.opt_in_level) for c in person.consents] == [(ConsentState.OPTED_IN, "text")]
