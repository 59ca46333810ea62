"""Recommendations: a shop's purchases across all its channels, the installed
recommenders asked through the hook, and their answers merged by score.

:mod:`.baskets` reads the history (one person per CRM profile, product key = SKU where
present), :mod:`.merge` asks and merges.
"""

from omnicrm.engage.recommend.baskets import load_history, shop_history
from omnicrm.engage.recommend.merge import (
    DueCustomer,
    Recommendation,
    UnknownCustomerError,
    UnknownProductError,
    due_now,
    for_customer,
    for_product,
    repeat_products,
    shop_catalogue,
)

__all__ = [
    "DueCustomer",
    "Recommendation",
    "UnknownCustomerError",
    "UnknownProductError",
    "due_now",
    "for_customer",
    "for_product",
    "load_history",
    "repeat_products",
    "shop_catalogue",
    "shop_history",
]
