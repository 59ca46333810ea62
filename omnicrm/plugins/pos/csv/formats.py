"""The export formats: which header names hold which field, per POS.

Columns are found by header name, never by position: operators reorder and drop them
in the POS's CSV settings. Each format lists, for each field, the headers that may hold
it (the first present wins); a connection's ``columns`` setting adds its own. Headers
are matched as :func:`omnicrm.csvfiles.header_name` reads them (NFKC: full-width
brackets and ASCII ones are one header). The fields are documented in docs/pos.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from omnicrm.csvfiles import header_fields


class Format(StrEnum):
    """The exports ``omnicrm import pos-csv --format`` reads."""

    AIRREGI = "airregi"  # Airレジ バックオフィス: 会計明細 CSV
    SMAREGI = "smaregi"  # スマレジ 管理画面: 取引履歴 CSV, with the 明細 columns
    GENERIC = "generic"  # ours, for any POS without an API (docs/pos.md)


FIELDS: Mapping[str, str] = {
    "receipt": "the receipt number (one receipt is one order)",
    "datetime": "when the sale was made, date and time in one column",
    "terminal_datetime": "the register's own time of the sale (preferred to datetime)",
    "date": "the sale's date, with its time in 'time'",
    "time": "the sale's time of day",
    "kind": "売上 / 返品 / 取消 (a sale, a return, a cancelled receipt)",
    "transaction_kind": "Smaregi 取引区分: only 1 (通常) is a sale; others are no order",
    "cancelled": "Smaregi 取消区分: 1 is a cancelled receipt",
    "line_kind": "Smaregi 取引明細区分: 2 is a returned line",
    "store": "the store's name (the order's location)",
    "sku": "the product code (JAN or the shop's own)",
    "product_id": "the POS's product id",
    "product_name": "the product's name",
    "unit_price": "the unit price in yen, tax included as the register charged it",
    "quantity": "how many; a negative number is a returned line",
    "discount": "the line's discount in yen (the line's total off)",
    "receipt_discount": "the receipt's discount in yen (off its subtotal)",
    "point_discount": "points spent, in yen off the receipt",
    "tax": "the receipt's consumption tax in yen (included in its total)",
    "total": "the receipt's total in yen",
    "points_earned": "points the register granted for the receipt",
    "points_redeemed": "points spent on the receipt",
    "member_id": "the POS's member id",
    "member_code": "the member's number (point card)",
    "name": "the member's name, family name first",
    "name_kana": "the member's name in kana",
    "phone": "the member's phone number",
    "email": "the member's email address",
}

_AIRREGI: dict[str, tuple[str, ...]] = {
    "receipt": ("伝票番号", "会計ID", "レシート番号"),
    "datetime": ("会計日時",),
    "date": ("会計日",),
    "time": ("会計時間", "会計時刻"),
    "kind": ("取引種別", "会計区分", "取引区分"),
    "store": ("店舗名",),
    "sku": ("商品コード", "バーコード"),
    "product_id": ("商品ID",),
    "product_name": ("商品名",),
    "unit_price": ("単価", "商品単価", "販売単価"),
    "quantity": ("数量", "個数"),
    "discount": ("値引き", "値引", "値引額", "商品値引き"),
    "receipt_discount": ("小計値引き", "会計値引き"),
    "tax": ("消費税", "内消費税", "消費税額"),
    "total": ("合計", "合計金額", "会計金額"),
    "member_code": ("顧客番号", "お客様番号"),
    "name": ("顧客名",),
    "name_kana": ("顧客名(カナ)", "顧客名カナ"),
}

_SMAREGI: dict[str, tuple[str, ...]] = {
    "receipt": ("取引ID",),
    "terminal_datetime": ("端末取引日時",),
    "datetime": ("取引日時",),
    "transaction_kind": ("取引区分",),
    "cancelled": ("取消区分",),
    "line_kind": ("取引明細区分", "明細区分"),
    "store": ("店舗名",),
    "sku": ("商品コード",),
    "product_id": ("商品ID",),
    "product_name": ("商品名",),
    "unit_price": ("販売単価", "商品単価", "単価"),
    "quantity": ("数量",),
    "discount": ("単品値引き", "単価値引き", "値引き"),
    "receipt_discount": ("小計値引き",),
    "point_discount": ("ポイント値引き",),
    "tax": ("内消費税", "外税額", "消費税"),
    "total": ("合計",),
    "points_earned": ("付与ポイント",),
    "points_redeemed": ("使用ポイント",),
    "member_id": ("会員ID",),
    "member_code": ("会員コード",),
    "name": ("会員名", "会員氏名"),
    "name_kana": ("会員名カナ", "会員氏名カナ", "会員名(カナ)"),
}

_GENERIC: dict[str, tuple[str, ...]] = {
    "receipt": ("レシート番号", "receipt"),
    "datetime": ("日時", "datetime"),
    "kind": ("区分", "kind"),
    "store": ("店舗", "store"),
    "sku": ("商品コード", "sku"),
    "product_name": ("商品名", "product_name"),
    "unit_price": ("単価", "unit_price"),
    "quantity": ("数量", "quantity"),
    "discount": ("値引", "discount"),
    "total": ("合計", "total"),
    "member_code": ("会員番号", "member_code"),
    "name": ("氏名", "name"),
    "name_kana": ("氏名カナ", "name_kana"),
    "phone": ("電話番号", "phone"),
    "email": ("メールアドレス", "email"),
}


@dataclass(frozen=True)
class Layout:
    """Where one format keeps its fields, and what a file of it must hold."""

    headers: Mapping[str, tuple[str, ...]]
    # Each entry: a file must have a column of at least one of these fields.
    required: tuple[tuple[str, ...], ...]


_LINES = (("receipt",), ("product_name",), ("unit_price",), ("quantity",))
LAYOUTS: Mapping[Format, Layout] = {
    Format.AIRREGI: Layout(_AIRREGI, (*_LINES, ("datetime", "date"))),
    Format.SMAREGI: Layout(_SMAREGI, (*_LINES, ("terminal_datetime", "datetime"))),
    Format.GENERIC: Layout(_GENERIC, (*_LINES, ("datetime",))),
}


def column_names(layout: Layout, header: list[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """How the columns of ``header`` (as the file writes them) read: header name ->
    field (:func:`omnicrm.csvfiles.header_fields` over the format's headers)."""
    return header_fields(layout.headers, header, overrides)
