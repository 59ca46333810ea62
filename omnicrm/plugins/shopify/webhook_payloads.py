"""What each Shopify webhook topic's body must be, as pydantic models.

Shopify signs the body but not the ``X-Shopify-Topic`` header, so a genuine body can be
replayed under another topic. Every body is therefore parsed as its topic's payload
(Shopify's documented shapes, ``../shared/reference/shopify/webhooks``) before anything
is queued. The records' topics hold what the mapping needs and allow the rest (Shopify
adds fields between API versions); the topics that destroy data (deletes, redactions)
allow nothing else, so no other topic's body can pass for one of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints

CustomerGid = Annotated[str, StringConstraints(pattern=r"^gid://shopify/Customer/[0-9]+$")]
ProductGid = Annotated[str, StringConstraints(pattern=r"^gid://shopify/Product/[0-9]+$")]
OrderGid = Annotated[str, StringConstraints(pattern=r"^gid://shopify/Order/[0-9]+$")]
ShopDomain = Annotated[str, StringConstraints(max_length=255, strip_whitespace=True)]
Id = StrictInt  # never a string or a float: a float has lost digits already


class _Open(BaseModel):
    """A record's topic: its own fields checked, later additions let through."""

    model_config = ConfigDict(extra="allow", frozen=True)


class _Closed(BaseModel):
    """A destructive topic: exactly Shopify's fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerPayload(_Open):
    """customers/create, update, enable and disable."""

    id: Id
    admin_graphql_api_id: CustomerGid
    updated_at: dt.datetime
    created_at: dt.datetime | None = None


class OrderCustomer(_Open):
    id: Id | None = None
    admin_graphql_api_id: CustomerGid | None = None


class OrderPayload(_Open):
    """orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled."""

    id: Id
    admin_graphql_api_id: OrderGid
    created_at: dt.datetime
    updated_at: dt.datetime
    line_items: list[dict[str, Any]]
    total_price_set: dict[str, Any]
    customer: OrderCustomer | None = None


class CustomerDeletePayload(_Closed):
    """customers/delete."""

    id: Id
    admin_graphql_api_id: CustomerGid
    tax_exemptions: list[str] = []


class ProductPayload(_Open):
    """products/create and products/update: only the id is read (the product itself is
    fetched by GraphQL, whose shape is checked against the Admin API schema)."""

    id: Id
    admin_graphql_api_id: ProductGid


class ProductDeletePayload(_Closed):
    """products/delete: only the id."""

    id: Id


class OrderDeletePayload(_Closed):
    """orders/delete: only the id."""

    id: Id


class PrivacyCustomer(_Closed):
    id: Id
    email: str | None = None
    phone: str | None = None


class DataRequestRef(_Closed):
    id: Id


class ShopRedactPayload(_Closed):
    """shop/redact: 48 hours after the shop uninstalled the app."""

    shop_id: Id
    shop_domain: ShopDomain


class CustomerRedactPayload(ShopRedactPayload):
    """customers/redact."""

    customer: PrivacyCustomer
    orders_to_redact: list[Id]


class DataRequestPayload(ShopRedactPayload):
    """customers/data_request."""

    customer: PrivacyCustomer
    orders_requested: list[Id]
    data_request: DataRequestRef


CUSTOMER_UPSERTS = frozenset(
    {"customers/create", "customers/update", "customers/enable", "customers/disable"}
)
ORDER_UPSERTS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)

PRODUCT_UPSERTS = frozenset({"products/create", "products/update"})

# Every topic the channel applies, with the model its body must parse as.
MODELS: dict[str, type[BaseModel]] = {
    **dict.fromkeys(CUSTOMER_UPSERTS, CustomerPayload),
    **dict.fromkeys(ORDER_UPSERTS, OrderPayload),
    "customers/delete": CustomerDeletePayload,
    "orders/delete": OrderDeletePayload,
    **dict.fromkeys(PRODUCT_UPSERTS, ProductPayload),
    "products/delete": ProductDeletePayload,
    "customers/redact": CustomerRedactPayload,
    "customers/data_request": DataRequestPayload,
    "shop/redact": ShopRedactPayload,
}
