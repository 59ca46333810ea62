"""``omnicrm offers``: the on-site offers of ``[offers]`` and what each variant did.

Exit codes: 0 done; 1 the store failed; 2 an unknown shop, offer or variant, or bad
usage.
"""

from __future__ import annotations

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.render import Col, FitTable, difference_text, percent


@click.group("offers")
def offers_group() -> None:
    """On-site offers: what each variant did (impressions, clicks, conversions, revenue)."""


@offers_group.command("report")
@click.argument("offer", required=False)
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=None,
    help="An order this many days after an impression converts (default: the shop's "
    "[storefront] conversion_days, 7).",
)
@click.option(
    "--control",
    metavar="VARIANT",
    help="The variant others are compared with (default: the first by name).",
)
@shop_option
@click.pass_obj
def report(
    obj: Context, offer: str | None, days: int | None, control: str | None, shop: str | None
) -> None:
    """Impressions, clicks, CTR, conversions (orders from any channel within --days of
    the first impression), CVR and revenue per variant of each offer (or OFFER), with
    each variant's difference from the control and its 95% interval (* where it leaves
    out zero)."""
    from omnicrm.engage.onsite.report import offer_report

    with errors():
        runtime = obj.runtime()
        try:
            chosen = runtime.shop(shop)
            offers = chosen.offers
            if offer is not None and offer not in offers:
                known = ", ".join(sorted(offers)) or "none configured"
                fail(f"shop {chosen.id!r} has no offer {offer!r} (offers: {known})", 2)
            names = [offer] if offer is not None else sorted(offers)
            if not names:
                console.print(
                    f"shop {escape(chosen.id)} has no offers: add [offers.NAME] to the config "
                    "(docs/onsite.md)",
                    highlight=False,
                )
                return
            window = days or chosen.storefront.conversion_days
            results = []
            with runtime.store.engine.connect() as conn:
                for name in names:
                    try:
                        results.append(
                            offer_report(
                                conn, chosen.id, name, offers[name], days=window, control=control
                            )
                        )
                    except ValueError as exc:
                        fail(str(exc), 2)
        finally:
            runtime.close()
    for found in results:
        table = FitTable(
            [
                Col("variant", keep=True),
                Col("impressions", justify="right", keep=True),
                Col("people", justify="right", keep=True),
                Col("clicks", justify="right", keep=True),
                Col("CTR", justify="right", keep=True),
                Col("conversions", justify="right", keep=True),
                Col("CVR", justify="right", keep=True),
                Col("revenue", justify="right", keep=True),
            ],
            title=f"{found.offer} (conversions within {window} days)",
        )
        for v in found.variants:
            table.add_row(
                escape(v.variant),
                f"{v.impressions:,}",
                f"{v.people:,}",
                f"{v.clicks:,}",
                percent(v.ctr),
                f"{v.conversions:,}",
                percent(v.cvr),
                f"{v.revenue:,.0f}",
            )
        console.print(table)
        # The differences on lines of their own: intervals do not fit a table's column.
        for v in found.variants:
            if v.ctr_difference is None:
                continue
            console.print(
                f"  {escape(v.variant)} vs {escape(found.control)} (95% interval; * leaves out 0):"
                f" CTR {difference_text(v.ctr_difference)},"
                f" CVR {difference_text(v.cvr_difference)},"
                f" revenue/person {difference_text(v.revenue_difference, money=True)}",
                highlight=False,
            )
