"""omnicrm: CRM for the EC platforms a shop already runs.

The public API for plugin authors: this module, ``omnicrm.errors``, ``omnicrm.webhooks``,
``omnicrm.csvfiles`` and ``omnicrm.testing``. Everything else (``omnicrm.core``, ``omnicrm.crm``,
``omnicrm.app``, ...) is private and may change between releases; a plugin imports
nothing from it (tests/test_public_api.py holds the built-in ones to that).
"""

import importlib
from typing import TYPE_CHECKING, Any

from omnicrm import errors

if TYPE_CHECKING:
    from omnicrm.core.channels import (
        ChannelModules,
        ChannelType,
        Checkpoint,
        Connection,
        SandboxFactory,
        Stream,
        StreamContext,
    )
    from omnicrm.core.dispatch import (
        DeliveryStatus,
        Dispatcher,
        DispatchOutcome,
        Message,
        MessageParts,
        Renderer,
        is_hard_bounce,
    )
    from omnicrm.core.hookspecs import hookimpl
    from omnicrm.core.host import Registrar
    from omnicrm.core.http import error_for_status, is_loopback, retry_after
    from omnicrm.core.recommend import (
        Purchase,
        PurchaseHistory,
        RecommendationRequest,
        Recommender,
        ScoredProduct,
    )
    from omnicrm.core.records import (
        Address,
        Checkout,
        Consent,
        ConsentState,
        Customer,
        Gender,
        Medium,
        Order,
        OrderLine,
        OrderStatus,
        Product,
        ProductStatus,
        ProductVariant,
    )
    from omnicrm.core.settings import TimeZoneName, data_dir
    from omnicrm.core.writeback import (
        CouponIssuer,
        CouponsCreated,
        CouponSpec,
        DiscountKind,
        Owner,
        RecommendationWriter,
        RecommendedItem,
        WriteContext,
        WriteTarget,
    )

__version__ = "0.1.0"

# The public names, each imported from its module on first use: the command line's
# `--help` needs only __version__, not the pydantic record models.
_EXPORTS = {
    "Address": "omnicrm.core.records",
    "ChannelModules": "omnicrm.core.channels",
    "ChannelType": "omnicrm.core.channels",
    "Checkpoint": "omnicrm.core.channels",
    "Connection": "omnicrm.core.channels",
    "Consent": "omnicrm.core.records",
    "ConsentState": "omnicrm.core.records",
    "CouponIssuer": "omnicrm.core.writeback",
    "CouponSpec": "omnicrm.core.writeback",
    "CouponsCreated": "omnicrm.core.writeback",
    "Customer": "omnicrm.core.records",
    "DeliveryStatus": "omnicrm.core.dispatch",
    "DiscountKind": "omnicrm.core.writeback",
    "DispatchOutcome": "omnicrm.core.dispatch",
    "Dispatcher": "omnicrm.core.dispatch",
    "Gender": "omnicrm.core.records",
    "Medium": "omnicrm.core.records",
    "Message": "omnicrm.core.dispatch",
    "MessageParts": "omnicrm.core.dispatch",
    "Checkout": "omnicrm.core.records",
    "Order": "omnicrm.core.records",
    "OrderLine": "omnicrm.core.records",
    "OrderStatus": "omnicrm.core.records",
    "Owner": "omnicrm.core.writeback",
    "Product": "omnicrm.core.records",
    "ProductStatus": "omnicrm.core.records",
    "ProductVariant": "omnicrm.core.records",
    "Purchase": "omnicrm.core.recommend",
    "PurchaseHistory": "omnicrm.core.recommend",
    "RecommendationRequest": "omnicrm.core.recommend",
    "RecommendationWriter": "omnicrm.core.writeback",
    "RecommendedItem": "omnicrm.core.writeback",
    "Recommender": "omnicrm.core.recommend",
    "Registrar": "omnicrm.core.host",
    "Renderer": "omnicrm.core.dispatch",
    "SandboxFactory": "omnicrm.core.channels",
    "ScoredProduct": "omnicrm.core.recommend",
    "Stream": "omnicrm.core.channels",
    "StreamContext": "omnicrm.core.channels",
    "TimeZoneName": "omnicrm.core.settings",
    "WriteContext": "omnicrm.core.writeback",
    "WriteTarget": "omnicrm.core.writeback",
    "data_dir": "omnicrm.core.settings",
    "error_for_status": "omnicrm.core.http",
    "hookimpl": "omnicrm.core.hookspecs",
    "is_hard_bounce": "omnicrm.core.dispatch",
    "is_loopback": "omnicrm.core.http",
    "retry_after": "omnicrm.core.http",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'omnicrm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "Address",
    "ChannelModules",
    "ChannelType",
    "Checkout",
    "Checkpoint",
    "Connection",
    "Consent",
    "ConsentState",
    "CouponIssuer",
    "CouponSpec",
    "CouponsCreated",
    "Customer",
    "DeliveryStatus",
    "DiscountKind",
    "DispatchOutcome",
    "Dispatcher",
    "Gender",
    "Medium",
    "Message",
    "MessageParts",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Owner",
    "Product",
    "ProductStatus",
    "ProductVariant",
    "Purchase",
    "PurchaseHistory",
    "RecommendationRequest",
    "RecommendationWriter",
    "RecommendedItem",
    "Recommender",
    "Registrar",
    "Renderer",
    "SandboxFactory",
    "ScoredProduct",
    "Stream",
    "StreamContext",
    "TimeZoneName",
    "WriteContext",
    "WriteTarget",
    "data_dir",
    "error_for_status",
    "errors",
    "hookimpl",
    "is_hard_bounce",
    "is_loopback",
    "retry_after",
]
