"""``omnicrm products``: the shop's catalogue as recommendations see it: what may be
offered (name, price, link), with ``--unavailable`` what cannot be bought now too; the
shop's exclusions (``[shops.ID.products]``) are never listed.

Exit codes: 0 shown; 1 the store failed; 2 bad configuration or an unknown shop.
"""

from __future__ import annotations

from decimal import Decimal

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, shop_option
from omnicrm.render import Col, FitTable


@click.command("products")
@shop_option
@click.option("--unavailable", is_flag=True, help="Also list what cannot be bought now.")
@click.pass_obj
def products(obj: Context, shop: str | None, unavailable: bool) -> None:
    """A shop's products that recommendations may offer, with price and link."""
    from omnicrm.crm.products import available_products

    with errors():
        runtime = obj.runtime()
        try:
            chosen = runtime.config.shop(shop)
            with runtime.store.engine.connect() as conn:
                found = available_products(
                    conn, chosen.id, chosen.products, include_unavailable=unavailable
                )
        finally:
            runtime.close()
    table = FitTable(
        [
            Col("key"),
            Col("name", 2),
            Col("price", justify="right", keep=True),
            Col("available", keep=True),
            Col("link", 1),
            Col("connection", 3),
        ],
        title=f"products of {escape(chosen.name)}",
    )
    for key in sorted(found):
        entry = found[key]
        table.add_row(
            escape(key),
            escape(entry.name),
            _money(entry.price, entry.currency),
            "[green]yes[/]" if entry.available else "[red]no[/]",
            escape(entry.url or "-"),
            escape(entry.connection),
        )
    console.print(table)
    if not found:
        console.print("no products: sync a connection whose channel has a catalogue")


def _money(amount: Decimal, currency: str) -> str:
    # Yen has no minor unit: 5,680 JPY, not 5,680.00 JPY.
    return f"{amount:,.0f} {currency}" if currency == "JPY" else f"{amount:,.2f} {currency}"
