"""omnicrm: CRM for the EC platforms a shop already runs.

The public API for plugin authors. Everything else lives in private modules under
``omnicrm.core`` and may change between releases.
"""

from omnicrm import errors
from omnicrm.core.channels import ChannelType, Checkpoint, Stream, StreamContext
from omnicrm.core.dispatch import DeliveryStatus, Dispatcher, DispatchOutcome, Message
from omnicrm.core.hookspecs import hookimpl
from omnicrm.core.recommend import Purchase, RecommendationRequest, Recommender, ScoredProduct
from omnicrm.core.records import (
    Address,
    Consent,
    ConsentState,
    Customer,
    Gender,
    Medium,
    Order,
    OrderLine,
    OrderStatus,
)

__version__ = "0.1.0"

__all__ = [
    "Address",
    "ChannelType",
    "Checkpoint",
    "Consent",
    "ConsentState",
    "Customer",
    "DeliveryStatus",
    "DispatchOutcome",
    "Dispatcher",
    "Gender",
    "Medium",
    "Message",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Purchase",
    "RecommendationRequest",
    "Recommender",
    "ScoredProduct",
    "Stream",
    "StreamContext",
    "errors",
    "hookimpl",
]
