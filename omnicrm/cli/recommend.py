"""``omnicrm recommend``: what to offer a customer, or what goes with a product.

Exit codes: 0 done; 1 the store failed; 2 an unknown shop, customer or product, or bad
usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.render import Col, FitTable

if TYPE_CHECKING:  # the engagement layer loads when the command runs, not for --help
    from omnicrm.engage.recommend import DueCustomer


def _print_due(found: list[DueCustomer]) -> None:
    if not found:
        console.print("nobody is due now", highlight=False)
        return
    table = FitTable(
        [
            Col("profile", justify="right", keep=True),
            Col("product", keep=True),
            Col("name", 2),
            Col("score", justify="right", keep=True),
            Col("reason", 1),
        ],
        title="due now",
    )
    for item in found:
        table.add_row(
            escape(item.customer_id),
            escape(item.product_id),
            escape(item.name),
            f"{item.score:.2f}",
            escape(item.reason),
        )
    console.print(table)


def _write_back(obj: Context, shop: str | None) -> None:
    with errors():
        runtime = obj.runtime()
        try:
            if not runtime.host.recommenders:
                fail("no recommender installed (omnicrm plugins lists what is)", 2)
            results = runtime.write_back(shop)
        finally:
            runtime.close()
    if not results:
        fail(
            "no connection of the shop stores recommendations (a Shopify connection does)",
            2,
        )
    for result in results:
        console.print(
            f"{escape(result.connection)}: customers {result.written['customer']:,} written, "
            f"{result.unchanged['customer']:,} unchanged; products "
            f"{result.written['product']:,} written, {result.unchanged['product']:,} "
            f"unchanged; refused {len(result.refused):,}",
            highlight=False,
        )


@click.command("recommend")
@click.argument("customer", type=int, required=False)
@click.option("--product", "product", metavar="SKU", help="What goes with this product instead.")
@click.option(
    "--due",
    is_flag=True,
    help="Who is due to buy a repeat product again now (of --product, if given).",
)
@click.option(
    "--write-back",
    "write_back",
    is_flag=True,
    help="Store every customer's and product's recommendations on the shop's platforms "
    "that keep them (Shopify metafields); only what changed since the last write.",
)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@shop_option
@click.pass_obj
def recommend(
    obj: Context,
    customer: int | None,
    product: str | None,
    due: bool,
    write_back: bool,
    limit: int,
    shop: str | None,
) -> None:
    """Recommended products for a customer (profile id) or alongside --product, scored
    by the installed recommenders, each with its reason.

    With --due: the customers due to buy a repeat product again now. With --write-back:
    store them on the shop's platforms for its theme to show."""
    if write_back:
        if due or customer is not None or product is not None:
            fail("--write-back writes every customer's and product's: give nothing else", 2)
        _write_back(obj, shop)
        return
    from sqlalchemy import select

    from omnicrm.crm.schema import profiles
    from omnicrm.engage.recommend import (
        UnknownProductError,
        due_now,
        for_customer,
        for_product,
        shop_catalogue,
        shop_history,
    )

    if due and customer is not None:
        fail("--due lists customers: give no CUSTOMER with it", 2)
    if not due and (customer is None) == (product is None):
        fail("give a CUSTOMER (profile id) or --product SKU, not both", 2)
    with errors():
        runtime = obj.runtime()
        try:
            chosen = runtime.crm_settings(shop).shop
            settings = runtime.config.shop(chosen)
            weights = settings.recommend.weights
            engine = runtime.store.engine
            with engine.connect() as conn:
                catalogue = shop_catalogue(conn, chosen, settings.products)
            if customer is not None:
                with engine.connect() as conn:
                    found = conn.execute(
                        select(profiles.c.id).where(
                            profiles.c.shop == chosen, profiles.c.id == customer
                        )
                    ).scalar_one_or_none()
                if found is None:
                    fail(f"no customer {customer} in shop {chosen!r}", 2)
            history = shop_history(engine, chosen)
            if not runtime.host.recommenders:
                fail("no recommender installed (omnicrm plugins lists what is)", 2)
            try:
                if due:
                    _print_due(due_now(runtime.host, history, product_id=product, limit=limit))
                    return
                if customer is not None:
                    found_items = for_customer(
                        runtime.host,
                        history,
                        str(customer),
                        limit=limit,
                        catalogue=catalogue,
                        weights=weights,
                    )
                    title = f"profile {customer}"
                else:
                    assert product is not None
                    found_items = for_product(
                        runtime.host,
                        history,
                        product,
                        limit=limit,
                        catalogue=catalogue,
                        weights=weights,
                    )
                    title = f"with {product}"
            except UnknownProductError as exc:
                fail(f"{exc} ({chosen!r})", 2)
        finally:
            runtime.close()
    if not found_items:
        console.print(f"nothing to recommend for {escape(title)}", highlight=False)
        return
    table = FitTable(
        [
            Col("#", justify="right", keep=True),
            Col("product", keep=True),
            Col("name", 2),
            Col("price", justify="right", keep=True),
            Col("score", justify="right", keep=True),
            Col("by", 3),
            Col("reason", 1),
        ],
        title=title,
    )
    for rank, item in enumerate(found_items, 1):
        table.add_row(
            str(rank),
            escape(item.product_id),
            escape(item.name),
            "" if item.price is None else f"{item.price:,.0f} {item.currency or ''}".strip(),
            f"{item.score:.2f}",
            escape(", ".join(item.recommenders)),
            escape(item.reason),
        )
    console.print(table)
