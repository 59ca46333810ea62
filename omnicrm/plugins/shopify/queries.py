"""Every GraphQL document the Shopify plugin sends, in one place.

Each validates against Shopify's Admin API schema of :data:`API_VERSION` (a test checks
them against the vendor's SDL). Page sizes are variables so the client can fit a page to
the cost budget it is given.
"""

from __future__ import annotations

API_VERSION = "2024-12"
"""The Admin API version this plugin is written and tested against."""

_MONEY = "shopMoney { amount currencyCode }"

_CUSTOMER_FIELDS = """
fragment CustomerFields on Customer {
  id
$LINE  firstName
  lastName
  familyNameKana: metafield(namespace: "custom", key: "family_name_kana") { value }
  givenNameKana: metafield(namespace: "custom", key: "given_name_kana") { value }
  email
  phone
  tags
  note
  state
  numberOfOrders
  amountSpent { amount currencyCode }
  emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
  smsMarketingConsent {
    marketingState
    marketingOptInLevel
    consentUpdatedAt
    consentCollectedFrom
  }
  defaultAddress {
    address1
    address2
    city
    province
    provinceCode
    zip
    countryCodeV2
    company
    phone
  }
  createdAt
  updatedAt
}
"""
CUSTOMER_FIELDS = _CUSTOMER_FIELDS.replace("$LINE", "")
# With the metafield where a LINE-connect app keeps the customer's LINE user id, read
# by alias; its namespace and key are the connection's (variables in a paged query,
# written in by bulk_query in a bulk one, which takes no variables).
LINE_USER_ID = "  lineUserId: metafield(namespace: $lineNamespace, key: $lineKey) { value }\n"
CUSTOMER_LINE_FIELDS = _CUSTOMER_FIELDS.replace("$LINE", LINE_USER_ID)

LINE_ITEM_FIELDS = f"""
fragment LineItemFields on LineItem {{
  id
  sku
  name
  quantity
  product {{ id }}
  variant {{ id }}
  originalUnitPriceSet {{ {_MONEY} }}
  discountedUnitPriceSet {{ {_MONEY} }}
  totalDiscountSet {{ {_MONEY} }}
}}
"""

ORDER_FIELDS = f"""
fragment OrderFields on Order {{
  id
  name
  createdAt
  processedAt
  updatedAt
  cancelledAt
  customer {{ id }}
  currencyCode
  taxesIncluded
  subtotalPriceSet {{ {_MONEY} }}
  totalDiscountsSet {{ {_MONEY} }}
  totalShippingPriceSet {{ {_MONEY} }}
  totalTaxSet {{ {_MONEY} }}
  totalPriceSet {{ {_MONEY} }}
  displayFinancialStatus
  displayFulfillmentStatus
  discountCodes
  sourceName
  retailLocation {{ id name }}
  refunds {{ id createdAt totalRefundedSet {{ {_MONEY} }} }}
}}
"""

VARIANT_FIELDS = """
fragment VariantFields on ProductVariant {
  id
  sku
  title
  price
  compareAtPrice
  availableForSale
  inventoryQuantity
  updatedAt
}
"""

PRODUCT_FIELDS = """
fragment ProductFields on Product {
  id
  title
  handle
  onlineStoreUrl
  productType
  vendor
  tags
  status
  createdAt
  updatedAt
}
"""

CUSTOMERS = (
    """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...CustomerFields }
  }
}
"""
    + CUSTOMER_FIELDS
)

CUSTOMERS_LINE = (
    """
query CustomersLine(
  $first: Int!
  $after: String
  $query: String
  $lineNamespace: String!
  $lineKey: String!
) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...CustomerFields }
  }
}
"""
    + CUSTOMER_LINE_FIELDS
)
"""``Customers`` with each customer's LINE user id from the connection's metafield."""

ORDERS = (
    """
query Orders($first: Int!, $lines: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      ...OrderFields
      lineItems(first: $lines) {
        pageInfo { hasNextPage endCursor }
        nodes { ...LineItemFields }
      }
    }
  }
}
"""
    + ORDER_FIELDS
    + LINE_ITEM_FIELDS
)

ORDER_LINE_ITEMS = (
    """
query OrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...LineItemFields }
    }
  }
}
"""
    + LINE_ITEM_FIELDS
)

PRODUCTS = (
    """
query Products($first: Int!, $variants: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      ...ProductFields
      variants(first: $variants) {
        pageInfo { hasNextPage endCursor }
        nodes { ...VariantFields }
      }
    }
  }
}
"""
    + PRODUCT_FIELDS
    + VARIANT_FIELDS
)

PRODUCT = (
    """
query Product($id: ID!, $variants: Int!) {
  product(id: $id) {
    ...ProductFields
    variants(first: $variants) {
      pageInfo { hasNextPage endCursor }
      nodes { ...VariantFields }
    }
  }
}
"""
    + PRODUCT_FIELDS
    + VARIANT_FIELDS
)

PRODUCT_VARIANTS = (
    """
query ProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...VariantFields }
    }
  }
}
"""
    + VARIANT_FIELDS
)

ACCESS_SCOPES = """
query AccessScopes {
  currentAppInstallation { accessScopes { handle } }
  shop { name myshopifyDomain currencyCode ianaTimezone }
}
"""

BULK_RUN = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

CUSTOMERS_COUNT = """
query CustomersCount($query: String) {
  customersCount(query: $query) { count precision }
}
"""

ORDERS_COUNT = """
query OrdersCount($query: String, $limit: Int) {
  ordersCount(query: $query, limit: $limit) { count precision }
}
"""

BULK_CURRENT = """
query BulkCurrent {
  currentBulkOperation(type: QUERY) {
    id
    status
    errorCode
    createdAt
    completedAt
    objectCount
    rootObjectCount
    fileSize
    url
    partialDataUrl
    query
  }
}
"""

BULK_CUSTOMERS = (
    """
{
  customers(query: $QUERY, sortKey: UPDATED_AT) {
    edges { node { ...CustomerFields } }
  }
}
"""
    + CUSTOMER_FIELDS
)
"""Bulk query text; ``$QUERY`` is replaced by a quoted search string before it is sent."""

BULK_ORDERS = (
    """
{
  orders(query: $QUERY, sortKey: UPDATED_AT) {
    edges {
      node {
        ...OrderFields
        lineItems { edges { node { ...LineItemFields } } }
      }
    }
  }
}
"""
    + ORDER_FIELDS
    + LINE_ITEM_FIELDS
)

DISCOUNT_CREATE = """
mutation DiscountCreate($discount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $discount) {
    codeDiscountNode { id }
    userErrors { field message code extraInfo }
  }
}
"""

DISCOUNT_CODES_ADD = """
mutation DiscountCodesAdd($id: ID!, $codes: [DiscountRedeemCodeInput!]!) {
  discountRedeemCodeBulkAdd(discountId: $id, codes: $codes) {
    bulkCreation { id done codesCount importedCount failedCount }
    userErrors { field message code }
  }
}
"""

DISCOUNT_CODES_CREATION = """
query DiscountCodesCreation($id: ID!, $first: Int!, $after: String) {
  discountRedeemCodeBulkCreation(id: $id) {
    id
    done
    codesCount
    importedCount
    failedCount
    codes(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { code errors { code message } }
    }
  }
}
"""

DISCOUNT_BY_CODE = """
query DiscountByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount {
      __typename
      ... on DiscountCodeBasic { title }
    }
  }
}
"""

METAFIELDS_SET = """
mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { namespace key }
    userErrors { field message code elementIndex }
  }
}
"""

# Carts customers left, by id (the only sort key beside createdAt): the reader sorts
# them by updatedAt itself. Ids, times, amounts and the cart's products: no address.
ABANDONED_CHECKOUTS = f"""
query AbandonedCheckouts($first: Int!, $lines: Int!, $after: String, $query: String) {{
  abandonedCheckouts(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id
      createdAt
      updatedAt
      completedAt
      abandonedCheckoutUrl
      customer {{ id }}
      totalPriceSet {{ {_MONEY} }}
      lineItems(first: $lines) {{
        pageInfo {{ hasNextPage }}
        nodes {{
          quantity
          title
          variantTitle
          sku
          product {{ id }}
          variant {{ id }}
          originalUnitPriceSet {{ {_MONEY} }}
        }}
      }}
    }}
  }}
}}
"""

OPERATIONS = {
    "Customers": CUSTOMERS,
    "CustomersLine": CUSTOMERS_LINE,
    "Orders": ORDERS,
    "OrderLineItems": ORDER_LINE_ITEMS,
    "Products": PRODUCTS,
    "ProductVariants": PRODUCT_VARIANTS,
    "Product": PRODUCT,
    "AbandonedCheckouts": ABANDONED_CHECKOUTS,
    "AccessScopes": ACCESS_SCOPES,
    "CustomersCount": CUSTOMERS_COUNT,
    "OrdersCount": ORDERS_COUNT,
    "BulkRun": BULK_RUN,
    "BulkCurrent": BULK_CURRENT,
    "DiscountCreate": DISCOUNT_CREATE,
    "DiscountCodesAdd": DISCOUNT_CODES_ADD,
    "DiscountCodesCreation": DISCOUNT_CODES_CREATION,
    "DiscountByCode": DISCOUNT_BY_CODE,
    "MetafieldsSet": METAFIELDS_SET,
}
"""The documents sent as requests, by operation name."""

BULK_QUERIES = {"customers": BULK_CUSTOMERS, "orders": BULK_ORDERS}
"""The queries run inside bulk operations, by stream."""


def _quoted(text: str) -> str:
    """A GraphQL string literal of ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bulk_query(stream: str, search: str, *, line: tuple[str, str] | None = None) -> str:
    """The bulk query text for ``stream`` filtered by the search string ``search``;
    customers with ``line`` read the LINE user id from that (namespace, key) metafield."""
    text = BULK_QUERIES[stream]
    if line is not None and stream == "customers":
        namespace, key = line
        field = LINE_USER_ID.replace("$lineNamespace", _quoted(namespace))
        text = BULK_CUSTOMERS.replace(CUSTOMER_FIELDS, CUSTOMER_LINE_FIELDS).replace(
            LINE_USER_ID, field.replace("$lineKey", _quoted(key))
        )
    return text.replace("$QUERY", _quoted(search))
