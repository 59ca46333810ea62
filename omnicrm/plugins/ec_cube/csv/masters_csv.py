"""The EC-CUBE masters as the admin CSV exports write them: by id (4.x's ``(ID)``
columns, 2.x's order export) or by name (4.x's ``(名称)`` columns, 2.x's customer
export). The tables are :mod:`omnicrm.plugins.ec_cube.masters`'s, with 2.x's order status
2 (入金待ち) and its other names for 3 and 4 added; each function raises ValueError for a
value the master does not have, which the reader reports with its file, line and column.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from omnicrm import Gender, OrderStatus
from omnicrm.plugins.ec_cube import masters
from omnicrm.plugins.ec_cube.masters import (
    CUSTOMER_STATUSES,
    JOBS,
    ORDER_ITEM_TYPES,
    PREFECTURES,
    PRODUCT,
    PRODUCT_STATUSES,
    SEXES,
    UNFINISHED,
    WITHDRAWN,
)

__all__ = [
    "CUSTOMER_STATUSES",
    "JOBS",
    "ORDER_ITEM_TYPES",
    "ORDER_STATUSES",
    "PREFECTURES",
    "PRODUCT",
    "PRODUCT_STATUSES",
    "SEXES",
    "UNFINISHED",
    "WITHDRAWN",
]

ORDER_STATUSES: Mapping[int, str] = {**masters.ORDER_STATUSES, 2: "入金待ち"}
"""mtb_order_status (4.x) with 2.x's 2 (入金待ち); 2.x calls 3 キャンセル, 4 取り寄せ中."""
_ORDER_STATUS_ALIASES = {"キャンセル": 3, "取り寄せ中": 4}


def _id(text: str, table: Mapping[int, str], what: str, aliases: Mapping[str, int]) -> int:
    value = unicodedata.normalize("NFKC", text).strip()
    if value.isdigit() and int(value) in table:
        return int(value)
    for number, name in table.items():
        if unicodedata.normalize("NFKC", name) == value:
            return number
    if value in aliases:
        return aliases[value]
    known = ", ".join(f"{k} {v}" for k, v in table.items())
    raise ValueError(f"not {what}: {text!r} (known: {known})")


def prefecture(text: str) -> str:
    """A prefecture's name from its id or name ('13' or '東京都' -> '東京都')."""
    return PREFECTURES[_id(text, PREFECTURES, "a prefecture", {})]


def gender(text: str) -> Gender:
    """mtb_sex by id or name; 回答しない is unknown."""
    return masters.gender(_id(text, SEXES, "a sex", {}))


def customer_status(text: str) -> int:
    """mtb_customer_status id, by id or name (3 is 退会, withdrawn)."""
    return _id(text, CUSTOMER_STATUSES, "a customer status", {})


def order_status_id(text: str) -> int:
    """mtb_order_status id, by id or name (2.x's names too)."""
    return _id(text, ORDER_STATUSES, "an order status", _ORDER_STATUS_ALIASES)


def order_status(status_id: int) -> OrderStatus:
    """Our status for an EC-CUBE one, as the Web API half maps it; 2.x's 入金待ち is
    pending. Not for :data:`UNFINISHED` ones (no order)."""
    return OrderStatus.PENDING if status_id == 2 else masters.order_status(status_id)


def order_item_type(text: str) -> int:
    """mtb_order_item_type id, by id or name."""
    return _id(text, ORDER_ITEM_TYPES, "an order item type", {})


def product_status_id(text: str) -> int:
    """公開ステータス id by id or name (1 公開, 2 非公開, 3 廃止; 2.x has 1 and 2)."""
    return _id(text, PRODUCT_STATUSES, "a product status", {})
