"""Every GraphQL document the EC-CUBE plugin sends, in one place.

Each validates against the Api42 plugin's schema (a test checks them against the SDL in
the shared reference). The statuses asked for are written into the documents, not left
to the API's defaults: ``customers`` hides withdrawn members (status 3) unless asked, and
``orders`` must leave out unfinished checkouts (7 決済処理中, 8 購入処理中), which are not
sales (``Checkouts`` asks for exactly those: carts left in the shopping flow);
``products`` hides discontinued products (status 3 廃止), which must arrive to
stop being offered. Update-date windows are ``update_datetime_start`` (inclusive) and
``update_datetime_end`` (exclusive), as EC-CUBE's admin search repositories compare
them, sent as ``YYYY-MM-DDThh:mm:ss+09:00`` in the shop's zone.
"""

from __future__ import annotations

from omnicrm.plugins.ec_cube.masters import (
    CUSTOMER_STATUS_IDS,
    PRODUCT_STATUS_IDS,
    SALES_STATUSES,
    UNFINISHED,
)


def _strings(ids: tuple[int, ...]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in ids) + "]"


CUSTOMER_STATUSES_ARG = _strings(CUSTOMER_STATUS_IDS)
ORDER_STATUSES_ARG = _strings(SALES_STATUSES)
PRODUCT_STATUSES_ARG = _strings(PRODUCT_STATUS_IDS)
UNFINISHED_ARG = _strings(tuple(sorted(UNFINISHED)))

CUSTOMER_FIELDS = """
fragment CustomerFields on Customer {
  id
  name01
  name02
  kana01
  kana02
  company_name
  postal_code
  addr01
  addr02
  email
  phone_number
  birth
  first_buy_date
  last_buy_date
  buy_times
  buy_total
  point
  create_date
  update_date
  Status { id name }
  Sex { id name }
  Job { id name }
  Pref { id name }
}
"""

# An order's items, as an order's lines and an abandoned cart's: each line's product,
# product class, name, price and tax; 送料, 手数料 and the like come too and are told
# apart by OrderItemType.
ORDER_ITEM_FIELDS = """
fragment OrderItemFields on OrderItem {
  id
  product_name
  product_code
  class_category_name1
  class_category_name2
  price
  quantity
  tax
  tax_rate
  OrderItemType { id name }
  Product { id }
  ProductClass { id code }
}
"""

ORDER_FIELDS = (
    """
fragment OrderFields on Order {
  id
  order_no
  name01
  name02
  kana01
  kana02
  company_name
  email
  phone_number
  postal_code
  addr01
  addr02
  subtotal
  discount
  delivery_fee_total
  charge
  tax
  total
  payment_total
  payment_method
  currency_code
  create_date
  update_date
  order_date
  payment_date
  add_point
  use_point
  Customer { id }
  Pref { id name }
  OrderStatus { id name }
  OrderItems { ...OrderItemFields }
  Shippings { id shipping_date }
}
"""
    + ORDER_ITEM_FIELDS
)

PRODUCT_FIELDS = """
fragment ProductFields on Product {
  id
  name
  create_date
  update_date
  Status { id name }
  ProductImage { file_name sort_no }
  ProductTag { Tag { name } }
  ProductClasses {
    id
    code
    stock
    stock_unlimited
    price01
    price02
    visible
    currency_code
    update_date
    ClassCategory1 { id name }
    ClassCategory2 { id name }
    TaxRule { tax_rate tax_adjust RoundingType { id } }
  }
}
"""


# A checkout left in the shopping flow: its order row in status 7 or 8, with its items
# (no address).
CHECKOUT_FIELDS = (
    """
fragment CheckoutFields on Order {
  id
  create_date
  update_date
  payment_total
  currency_code
  Customer { id }
  OrderStatus { id name }
  OrderItems { ...OrderItemFields }
}
"""
    + ORDER_ITEM_FIELDS
)


def _window_list(operation: str, root: str, status: str, fragment: str) -> str:
    """A list read by update-date window, page by page, in the statuses written in."""
    name = fragment.split()[1]
    return (
        f"""
query {operation}($page: Int!, $limit: Int!, $start: DateTime, $end: DateTime) {{
  {root}(
    page: $page
    limit: $limit
    {status}
    update_datetime_start: $start
    update_datetime_end: $end
  ) {{
    totalCount
    pageInfo {{ hasNextPage hasPreviousPage }}
    nodes {{ ...{name} }}
  }}
}}
"""
        + fragment
    )


CUSTOMERS = _window_list(
    "Customers", "customers", f"customer_status: {CUSTOMER_STATUSES_ARG}", CUSTOMER_FIELDS
)
ORDERS = _window_list("Orders", "orders", f"status: {ORDER_STATUSES_ARG}", ORDER_FIELDS)
PRODUCTS = _window_list("Products", "products", f"status: {PRODUCT_STATUSES_ARG}", PRODUCT_FIELDS)
CHECKOUTS = _window_list("Checkouts", "orders", f"status: {UNFINISHED_ARG}", CHECKOUT_FIELDS)

CUSTOMER_IDS = f"""
query CustomerIds($page: Int!, $limit: Int!, $end: DateTime) {{
  customers(
    page: $page
    limit: $limit
    customer_status: {CUSTOMER_STATUSES_ARG}
    update_datetime_end: $end
  ) {{
    totalCount
    nodes {{ id update_date }}
  }}
}}
"""

ORDER_IDS = f"""
query OrderIds($page: Int!, $limit: Int!, $end: DateTime) {{
  orders(page: $page, limit: $limit, status: {ORDER_STATUSES_ARG}, update_datetime_end: $end) {{
    totalCount
    nodes {{ id update_date }}
  }}
}}
"""

CUSTOMER = (
    """
query Customer($id: ID!) {
  customer(id: $id) { ...CustomerFields }
}
"""
    + CUSTOMER_FIELDS
)

ORDER = (
    """
query Order($id: ID!) {
  order(id: $id) { ...OrderFields }
}
"""
    + ORDER_FIELDS
)

PRODUCT = (
    """
query Product($id: ID!) {
  product(id: $id) { ...ProductFields }
}
"""
    + PRODUCT_FIELDS
)

OPERATIONS = {
    "Customers": CUSTOMERS,
    "Orders": ORDERS,
    "Products": PRODUCTS,
    "Product": PRODUCT,
    "Checkouts": CHECKOUTS,
    "CustomerIds": CUSTOMER_IDS,
    "OrderIds": ORDER_IDS,
    "Customer": CUSTOMER,
    "Order": ORDER,
}
"""The documents sent as requests, by operation name."""

LISTS = {
    "Customers": "customers",
    "Orders": "orders",
    "Products": "products",
    "Checkouts": "orders",
    "CustomerIds": "customers",
    "OrderIds": "orders",
}
"""The root field each list operation reads."""
