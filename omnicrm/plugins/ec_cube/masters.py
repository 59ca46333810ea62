"""EC-CUBE 4's master data (mtb_*): ids to names, and what omnicrm makes of them.

The tables were generated once from EC-CUBE's own seed CSVs
(``src/Eccube/Resource/doctrine/import_csv/ja``, in the shared reference as
``eccube/masters/``); a test holds them equal. Both halves of the plugin use them: the
Web API gives master rows as ``{id, name}`` objects, the admin CSV exports as ids or
names. Shops may rename or add master rows: the functions fall back to ``None`` (an
unknown prefecture, sex or job) or raise :class:`KeyError` where an unknown id cannot
be guessed at (an order status).
"""

from __future__ import annotations

from omnicrm import Gender, OrderStatus, ProductStatus

PREFECTURES: dict[int, str] = {
    1: "北海道",
    2: "青森県",
    3: "岩手県",
    4: "宮城県",
    5: "秋田県",
    6: "山形県",
    7: "福島県",
    8: "茨城県",
    9: "栃木県",
    10: "群馬県",
    11: "埼玉県",
    12: "千葉県",
    13: "東京都",
    14: "神奈川県",
    15: "新潟県",
    16: "富山県",
    17: "石川県",
    18: "福井県",
    19: "山梨県",
    20: "長野県",
    21: "岐阜県",
    22: "静岡県",
    23: "愛知県",
    24: "三重県",
    25: "滋賀県",
    26: "京都府",
    27: "大阪府",
    28: "兵庫県",
    29: "奈良県",
    30: "和歌山県",
    31: "鳥取県",
    32: "島根県",
    33: "岡山県",
    34: "広島県",
    35: "山口県",
    36: "徳島県",
    37: "香川県",
    38: "愛媛県",
    39: "高知県",
    40: "福岡県",
    41: "佐賀県",
    42: "長崎県",
    43: "熊本県",
    44: "大分県",
    45: "宮崎県",
    46: "鹿児島県",
    47: "沖縄県",
}
"""都道府県 (mtb_pref), by id."""

SEXES: dict[int, str] = {
    1: "男性",
    2: "女性",
    3: "その他",
    4: "回答しない",
}
"""性別 (mtb_sex), by id."""

JOBS: dict[int, str] = {
    1: "公務員",
    2: "コンサルタント",
    3: "コンピューター関連技術職",
    4: "コンピューター関連以外の技術職",
    5: "金融関係",
    6: "医師",
    7: "弁護士",
    8: "総務・人事・事務",
    9: "営業・販売",
    10: "研究・開発",
    11: "広報・宣伝",
    12: "企画・マーケティング",
    13: "デザイン関係",
    14: "会社経営・役員",
    15: "出版・マスコミ関係",
    16: "学生・フリーター",
    17: "主婦",
    18: "その他",
}
"""職業 (mtb_job), by id."""

ORDER_STATUSES: dict[int, str] = {
    1: "新規受付",
    3: "注文取消し",
    4: "対応中",
    5: "発送済み",
    6: "入金済み",
    7: "決済処理中",
    8: "購入処理中",
    9: "返品",
}
"""対応状況 (mtb_order_status), by id."""

CUSTOMER_STATUSES: dict[int, str] = {
    1: "仮会員",
    2: "本会員",
    3: "退会",
}
"""会員種別 (mtb_customer_status), by id."""

ORDER_ITEM_TYPES: dict[int, str] = {
    1: "商品",
    2: "送料",
    3: "手数料",
    4: "割引",
    5: "税",
    6: "ポイント",
}
"""明細区分 (mtb_order_item_type), by id."""

WITHDRAWN = 3
"""customer status id of a withdrawn member (退会)."""
PRODUCT = 1
"""order item type id of a product line (商品); the others stay on the order's totals."""
UNFINISHED = frozenset({7, 8})
"""order statuses of checkouts not completed (決済処理中, 購入処理中): never sales."""
SALES_STATUSES = tuple(sorted(set(ORDER_STATUSES) - UNFINISHED))
"""Every order status that is a sale, in any state: what the plugin asks the API for."""
CUSTOMER_STATUS_IDS = tuple(sorted(CUSTOMER_STATUSES))
"""Every customer status (the API hides withdrawn members unless asked)."""

PRODUCT_STATUSES: dict[int, str] = {1: "公開", 2: "非公開", 3: "廃止"}
"""公開ステータス (mtb_product_status), by id, as EC-CUBE 4 seeds it."""
PRODUCT_STATUS_IDS = tuple(sorted(PRODUCT_STATUSES))
"""Every product status (the API hides discontinued products, 3, unless asked)."""
ROUNDING_TYPES: dict[int, str] = {1: "四捨五入", 2: "切り捨て", 3: "切り上げ"}
"""丸め規則 (mtb_rounding_type) of a tax rule, by id."""
ROUND_HALF_UP = 1

_PRODUCT_STATUSES = {1: ProductStatus.ACTIVE, 2: ProductStatus.DRAFT, 3: ProductStatus.ARCHIVED}
_GENDERS = {1: Gender.MALE, 2: Gender.FEMALE, 3: Gender.OTHER, 4: Gender.UNKNOWN}
_ORDER_STATUSES = {
    1: OrderStatus.PENDING,  # 新規受付: placed, not yet paid
    3: OrderStatus.CANCELLED,  # 注文取消し
    4: OrderStatus.PAID,  # 対応中: being prepared, payment taken or due on delivery
    5: OrderStatus.FULFILLED,  # 発送済み
    6: OrderStatus.PAID,  # 入金済み
    9: OrderStatus.RETURNED,  # 返品
}


def _id(value: int | str | None) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def prefecture(value: int | str | None) -> str | None:
    """The prefecture's name for its id (1..47), else None."""
    key = _id(value)
    return PREFECTURES.get(key) if key is not None else None


def sex(value: int | str | None) -> str | None:
    """The name of a sex id (男性, 女性, その他, 回答しない), else None."""
    key = _id(value)
    return SEXES.get(key) if key is not None else None


def gender(value: int | str | None) -> Gender:
    """omnicrm's gender for a sex id; unknown for none or an id the shop added."""
    key = _id(value)
    return _GENDERS.get(key, Gender.UNKNOWN) if key is not None else Gender.UNKNOWN


def job(value: int | str | None) -> str | None:
    """The name of a job id, else None."""
    key = _id(value)
    return JOBS.get(key) if key is not None else None


def customer_status(value: int | str | None) -> str | None:
    """The name of a customer status id (仮会員, 本会員, 退会), else None."""
    key = _id(value)
    return CUSTOMER_STATUSES.get(key) if key is not None else None


def is_withdrawn(value: int | str | None) -> bool:
    """Whether a customer status id is 退会."""
    return _id(value) == WITHDRAWN


def order_item_type(value: int | str | None) -> str | None:
    """The name of an order item type id (商品, 送料, 手数料, 割引, 税, ポイント), else None."""
    key = _id(value)
    return ORDER_ITEM_TYPES.get(key) if key is not None else None


def is_product_line(value: int | str | None) -> bool:
    """Whether an order item type id is a product line (商品)."""
    return _id(value) == PRODUCT


def order_status(value: int | str | None) -> OrderStatus:
    """omnicrm's status for an order status id. KeyError for 7, 8 (not sales) and for an
    id EC-CUBE does not define (a shop's own status cannot be guessed)."""
    key = _id(value)
    if key is None or key not in _ORDER_STATUSES:
        raise KeyError(value)
    return _ORDER_STATUSES[key]


def order_status_name(value: int | str | None) -> str | None:
    """The name of an order status id, else None."""
    key = _id(value)
    return ORDER_STATUSES.get(key) if key is not None else None


def product_status(value: int | str | None) -> ProductStatus:
    """omnicrm's status for a product status id; a status the shop added is taken as not
    shown (draft), so nothing of unknown standing is ever offered."""
    key = _id(value)
    return (
        _PRODUCT_STATUSES.get(key, ProductStatus.DRAFT) if key is not None else ProductStatus.DRAFT
    )
