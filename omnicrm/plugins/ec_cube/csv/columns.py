"""The headers EC-CUBE's admin CSV exports write, and which field each holds.

Columns are found by header, never by position: the admin screen's CSV出力項目設定
lets operators reorder and drop them. ``CUSTOMER_FIELDS`` and ``ORDER_FIELDS`` list,
per field, the headers that may hold it in either version (the first present wins);
headers match as :func:`omnicrm.csvfiles.header_name` reads them (full-width brackets
are ASCII ones). The ``*_4`` and ``*_2`` tuples are the default header sets in their
default order: EC-CUBE 4's ``dtb_csv`` (csv_type 2 会員CSV, 3 受注CSV) and EC-CUBE
2.13's (csv_id 2 and 3). They are what :mod:`.exports` writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from omnicrm.csvfiles import header_name

CUSTOMERS_4: tuple[str, ...] = (
    "会員ID", "お名前(姓)", "お名前(名)", "お名前(セイ)", "お名前(メイ)", "会社名",
    "郵便番号", "都道府県(ID)", "都道府県(名称)", "住所1", "住所2", "メールアドレス",
    "TEL", "性別(ID)", "性別(名称)", "職業(ID)", "職業(名称)", "誕生日", "初回購入日",
    "最終購入日", "購入回数", "ショップ用メモ欄", "会員ステータス(ID)",
    "会員ステータス(名称)", "登録日", "更新日", "ポイント",
)  # fmt: skip
"""EC-CUBE 4 会員CSV, every column dtb_csv enables, in its sort order."""

ORDERS_4: tuple[str, ...] = (
    "注文ID", "注文番号", "会員ID", "お名前(姓)", "お名前(名)", "お名前(セイ)",
    "お名前(メイ)", "会社名", "郵便番号", "都道府県(ID)", "都道府県(名称)", "住所1",
    "住所2", "メールアドレス", "TEL", "性別(ID)", "性別(名称)", "職業(ID)", "職業(名称)",
    "誕生日", "ショップ用メモ欄", "小計", "値引き", "送料", "税金", "合計", "支払合計",
    "対応状況(ID)", "対応状況(名称)", "支払方法(ID)", "支払方法(名称)", "受注日", "入金日",
    "注文詳細ID", "商品ID", "商品規格ID", "商品名", "商品コード", "規格名1", "規格名2",
    "規格分類名1", "規格分類名2", "価格", "個数", "税率", "税率ルール(ID)",
    "明細区分(ID)", "明細区分(名称)", "出荷ID", "配送先_お名前(姓)", "配送先_お名前(名)",
    "配送先_お名前(セイ)", "配送先_お名前(メイ)", "配送先_会社名", "配送先_郵便番号",
    "配送先_都道府県(ID)", "配送先_都道府県(名称)", "配送先_住所1", "配送先_住所2",
    "配送先_TEL", "配送業者(ID)", "配送業者(名称)", "お届け時間ID", "お届け時間(名称)",
    "お届け希望日", "送料", "発送日", "出荷伝票番号", "配達用メモ", "出荷メール送信日",
)  # fmt: skip
"""EC-CUBE 4 受注CSV: one row per order item (products, and the delivery fee, charge,
discount, tax and point items). 送料 appears twice: the order's, then the shipping's."""

CUSTOMERS_2: tuple[str, ...] = (
    "会員ID", "お名前(姓)", "お名前(名)", "お名前(フリガナ・姓)", "お名前(フリガナ・名)",
    "会社名", "郵便番号1", "郵便番号2", "都道府県", "住所1", "住所2", "E-MAIL", "TEL1",
    "TEL2", "TEL3", "FAX1", "FAX2", "FAX3", "性別", "職業", "誕生日", "初回購入日",
    "最終購入日", "購入回数", "ポイント残高", "備考", "登録日", "更新日",
)  # fmt: skip
"""EC-CUBE 2.13 顧客CSV (csv_id 2, the enabled columns); 性別, 職業 and 都道府県 by name."""

CUSTOMERS_2_FLAGS: tuple[str, ...] = (*CUSTOMERS_2, "メルマガ種別", "削除フラグ")
"""The 2.x customer export with dtb_customer's mailmaga_flg and del_flg added, as shops
add them (高度な設定 / an SQL export) to hand over consent and withdrawn members."""

ORDERS_2: tuple[str, ...] = (
    "注文番号", "会員ID", "要望等", "お名前(姓)", "お名前(名)", "お名前(フリガナ・姓)",
    "お名前(フリガナ名)", "会社名", "メールアドレス", "電話番号1", "電話番号2",
    "電話番号3", "FAX1", "FAX2", "FAX3", "郵便番号1", "郵便番号2", "都道府県", "住所1",
    "住所2", "性別", "生年月日", "職種", "小計", "値引き", "送料", "手数料", "使用ポイント",
    "加算ポイント", "税金", "合計", "お支払い合計", "配送業者ID", "支払い方法", "SHOPメモ",
    "対応状況", "注文日時", "更新日時", "発送完了日時", "端末種別ID", "配送情報ID",
)  # fmt: skip
"""EC-CUBE 2.13 受注CSV (csv_id 3): one row per order, no lines; 対応状況 is the status id."""

CUSTOMER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "id": ("会員ID", "顧客ID"),
    "family_name": ("お名前(姓)", "姓"),
    "given_name": ("お名前(名)", "名"),
    "family_kana": ("お名前(セイ)", "お名前(フリガナ・姓)", "セイ"),
    "given_kana": ("お名前(メイ)", "お名前(フリガナ・名)", "お名前(フリガナ名)", "メイ"),
    "company": ("会社名",),
    "postal_code": ("郵便番号",),
    "zip01": ("郵便番号1",),
    "zip02": ("郵便番号2",),
    "pref_id": ("都道府県(ID)",),
    "pref": ("都道府県(名称)", "都道府県"),
    "addr01": ("住所1",),
    "addr02": ("住所2",),
    "email": ("メールアドレス", "E-MAIL"),
    "phone": ("TEL", "電話番号"),
    "tel01": ("TEL1", "電話番号1"),
    "tel02": ("TEL2", "電話番号2"),
    "tel03": ("TEL3", "電話番号3"),
    "sex_id": ("性別(ID)",),
    "sex": ("性別(名称)", "性別"),
    "birth": ("誕生日", "生年月日"),
    "points": ("ポイント", "ポイント残高"),
    "status_id": ("会員ステータス(ID)",),
    "status": ("会員ステータス(名称)", "会員ステータス"),
    "mailmaga": (
        "メルマガ種別",
        "メールマガジン",
        "メールマガジン設定",
        "メルマガ",
        "メルマガ配信",
        "mailmaga_flg",
    ),
    "deleted": ("削除フラグ", "会員削除フラグ", "del_flg", "退会フラグ"),
    "created": ("登録日",),
    "updated": ("更新日",),
}

ORDER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "order_id": ("注文ID", "受注ID"),
    "order_no": ("注文番号",),
    "customer_id": ("会員ID", "顧客ID"),
    "subtotal": ("小計",),
    "discount": ("値引き",),
    "delivery_fee": ("送料",),
    "charge": ("手数料",),
    "tax": ("税金",),
    "total": ("合計",),
    "payment_total": ("支払合計", "お支払い合計"),
    "use_point": ("使用ポイント",),
    "add_point": ("加算ポイント",),
    "status_id": ("対応状況(ID)",),
    "status": ("対応状況(名称)", "対応状況"),
    "order_date": ("受注日", "注文日時"),
    "payment_date": ("入金日",),
    "updated": ("更新日時",),
    "shipped": ("発送日", "発送完了日時"),
    "item_id": ("注文詳細ID",),
    "product_id": ("商品ID",),
    "product_class_id": ("商品規格ID",),
    "product_name": ("商品名",),
    "product_code": ("商品コード",),
    "class_category1": ("規格分類名1",),
    "class_category2": ("規格分類名2",),
    "price": ("価格",),
    "quantity": ("個数", "数量"),
    "tax_rate": ("税率",),
    "item_type_id": ("明細区分(ID)",),
    "item_type": ("明細区分(名称)", "明細区分"),
}

# Each entry: a file must have a column of at least one of these fields.
CUSTOMER_REQUIRED: tuple[tuple[str, ...], ...] = (("id",),)
ORDER_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("order_id", "order_no"),
    ("order_date",),
    ("status_id", "status"),
)
# With line items (a 4.x export), these make a line.
LINE_REQUIRED: tuple[tuple[str, ...], ...] = (("product_name",), ("price",), ("quantity",))


def is_orders(header: list[str]) -> bool:
    """Whether a header is an order export's (it names the order), else a customer one."""
    names = {header_name(h) for h in header}
    wanted = ORDER_FIELDS["order_id"] + ORDER_FIELDS["order_no"]
    return any(header_name(h) in names for h in wanted)
