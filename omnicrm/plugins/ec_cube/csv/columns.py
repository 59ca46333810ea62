"""The headers EC-CUBE's admin CSV exports write, and which field each holds.

Columns are found by header, never by position: the admin screen's CSV出力項目設定
lets operators reorder and drop them. ``CUSTOMER_FIELDS``, ``ORDER_FIELDS`` and
``PRODUCT_FIELDS`` list,
per field, the headers that may hold it in either version (the first present wins);
headers match as :func:`omnicrm.csvfiles.header_name` reads them (full-width brackets
are ASCII ones). The ``*_4`` and ``*_2`` tuples are the default header sets in their
default order: EC-CUBE 4's ``dtb_csv`` (csv_type 1 商品CSV, 2 会員CSV, 3 受注CSV) and
EC-CUBE 2.13's (csv_id 1, 2 and 3). They are what :mod:`.exports` writes.
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

PRODUCTS_4: tuple[str, ...] = (
    "商品ID", "公開ステータス(ID)", "公開ステータス(名称)", "商品名", "ショップ用メモ欄",
    "商品説明(一覧)", "商品説明(詳細)", "検索ワード", "フリーエリア", "商品規格ID",
    "販売種別(ID)", "販売種別(名称)", "規格分類1(ID)", "規格分類1(名称)", "規格分類2(ID)",
    "規格分類2(名称)", "発送日目安(ID)", "発送日目安(名称)", "商品コード", "在庫数",
    "在庫数無制限フラグ", "販売制限数", "通常価格", "販売価格", "商品画像",
    "商品カテゴリ(ID)", "商品カテゴリ(名称)", "タグ(ID)", "タグ(名称)",
)  # fmt: skip
"""EC-CUBE 4 商品CSV, every column dtb_csv enables, in its sort order: one row per
product class (商品規格). Prices are before tax; no tax rate, no visibility."""

PRODUCTS_4_ALL: tuple[str, ...] = (
    *PRODUCTS_4[:24], "送料", *PRODUCTS_4[24:], "税率", "商品規格表示フラグ",
)  # fmt: skip
"""Every column dtb_csv lists for the 4.x 商品CSV: the default set with the three it
leaves disabled (送料, 税率 the class's own tax rule, 商品規格表示フラグ) enabled."""

PRODUCTS_2: tuple[str, ...] = (
    "商品ID", "商品規格ID", "親規格分類ID", "規格分類ID", "親規格分類名", "規格分類名",
    "メーカーID", "メーカー名", "商品名", "表示ステータス(公開・非公開)",
    "メーカーURL(コメント1)", "コメント2", "検索ワード(コメント3)", "コメント4", "コメント5",
    "コメント6", "備考欄(SHOP専用)", "一覧-メインコメント", "一覧-メイン画像",
    "詳細-メインコメント", "詳細-メイン画像", "詳細-メイン拡大画像",
    *(f"詳細-{kind}({n})" for n in range(1, 6)
      for kind in ("サブタイトル", "サブコメント", "サブ画像", "サブ拡大画像")),
    "発送日目安ID", "削除フラグ", "商品種別ID", "商品コード", "在庫数", "在庫無制限フラグ",
    "販売制限数", "通常価格", "販売価格", "送料", "ポイント付与率", "ダウンロードファイル名",
    "ダウンロード実ファイル",
    *(f"関連商品{kind}({n})" for n in range(1, 7) for kind in ("ID", "コメント")),
    "商品ステータス", "商品ステータス名", "カテゴリID", "カテゴリ名",
)  # fmt: skip
"""EC-CUBE 2.13 商品CSV (csv_id 1): one row per product class; 表示ステータス 1 公開,
2 非公開; 削除フラグ (del_flg) 1 deleted; 規格分類名 names classcategory_id1, 親規格分類名
classcategory_id2. Prices are before tax."""

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

PRODUCT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "product_id": ("商品ID",),
    "class_id": ("商品規格ID",),
    "name": ("商品名",),
    "status_id": ("公開ステータス(ID)", "表示ステータス(公開・非公開)", "表示ステータス"),
    "status": ("公開ステータス(名称)",),
    "code": ("商品コード",),
    "category1": ("規格分類1(名称)", "規格分類名"),
    "category2": ("規格分類2(名称)", "親規格分類名"),
    "stock": ("在庫数",),
    "unlimited": ("在庫数無制限フラグ", "在庫無制限フラグ"),
    "price01": ("通常価格",),
    "price02": ("販売価格",),
    "tax_rate": ("税率",),
    "visible": ("商品規格表示フラグ",),
    "deleted": ("削除フラグ",),
    "image": ("商品画像", "一覧-メイン画像", "詳細-メイン画像"),
    "tags": ("タグ(名称)",),
}

# Each entry: a file must have a column of at least one of these fields.
CUSTOMER_REQUIRED: tuple[tuple[str, ...], ...] = (("id",),)
ORDER_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("order_id", "order_no"),
    ("order_date",),
    ("status_id", "status"),
)
PRODUCT_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("product_id",),
    ("class_id", "code"),
    ("name",),
    ("price02",),
    ("stock", "unlimited"),
    ("status_id", "status"),
)
# With line items (a 4.x export), these make a line.
LINE_REQUIRED: tuple[tuple[str, ...], ...] = (("product_name",), ("price",), ("quantity",))


def is_orders(header: list[str]) -> bool:
    """Whether a header is an order export's (it names the order)."""
    names = {header_name(h) for h in header}
    wanted = ORDER_FIELDS["order_id"] + ORDER_FIELDS["order_no"]
    return any(header_name(h) in names for h in wanted)


def is_products(header: list[str]) -> bool:
    """Whether a header is a product export's: it names a product and no order or member
    (an order export names products too, a member export never does)."""
    names = {header_name(h) for h in header}
    member = any(header_name(h) in names for h in CUSTOMER_FIELDS["id"])
    product = ("product_id", "name", "price02", "class_id")
    wanted = [h for f in product for h in PRODUCT_FIELDS[f]]
    return not member and not is_orders(header) and any(header_name(h) in names for h in wanted)


def is_version_2(header: list[str]) -> bool:
    """Whether a product export is EC-CUBE 2's (its status and image headers are)."""
    names = {header_name(h) for h in header}
    only_2 = ("表示ステータス(公開・非公開)", "一覧-メイン画像", "規格分類名")
    return any(header_name(h) in names for h in only_2)
