"""``omnicrm shops``: each client shop with its connections, customer base, last sync
and segments, so an agency operator sees which shop needs attention.

Exit codes: 0 shown; 1 the store failed; 2 bad configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli import STATUS_STYLE
from omnicrm.cli._common import Context, console, err_console, errors
from omnicrm.render import Col, FitTable, local_time

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from omnicrm.app.config import Config
    from omnicrm.core.store import Run, Store


@dataclass
class ShopSummary:
    """What ``omnicrm shops`` shows of one shop."""

    id: str
    name: str
    timezone: str
    currency: str
    connections: list[str] = field(default_factory=list)
    profiles: int = 0
    segments: int = 0
    last: dict[str, Run] = field(default_factory=dict)  # each connection's last run


def shop_summaries(config: Config, store: Store) -> list[ShopSummary]:
    """Every configured shop (and any other the store holds data of), by id."""
    from sqlalchemy import func, select

    from omnicrm.crm.schema import profiles, segments

    summaries = {
        shop.id: ShopSummary(shop.id, shop.name, shop.timezone, shop.currency)
        for shop in config.all_shops().values()
    }

    def summary(shop_id: str) -> ShopSummary:
        # A shop the config no longer names still holds its customers: show it.
        if shop_id not in summaries:
            summaries[shop_id] = ShopSummary(shop_id, "(not in the config)", "-", "-")
        return summaries[shop_id]

    # Where the store recorded a connection's shop, that is where its records are.
    owners = {name: conn.shop for name, conn in config.connections.items()}
    owners.update(store.shops())
    for name in config.invalid:
        owners.setdefault(name, config.default_shop)
    for name, shop_id in sorted(owners.items()):
        summary(shop_id).connections.append(name)
    last = store.last_runs()
    for name, run in last.items():
        summary(owners.get(name, config.default_shop)).last[name] = run
    with store.engine.connect() as conn:
        # One grouped count per table, each read through its shop-led key.
        for shop_id, count in conn.execute(
            select(profiles.c.shop, func.count()).group_by(profiles.c.shop)
        ):
            summary(shop_id).profiles = count
        for shop_id, count in conn.execute(
            select(segments.c.shop, func.count()).group_by(segments.c.shop)
        ):
            summary(shop_id).segments = count
    return [summaries[k] for k in sorted(summaries)]


def _last_sync(shop: ShopSummary) -> str:
    """The latest run of the shop's connections; a failed last run of any comes first,
    as that is what the operator acts on."""
    from zoneinfo import ZoneInfo

    if not shop.last:
        return "never synced"
    tz = ZoneInfo(shop.timezone) if shop.timezone != "-" else ZoneInfo("UTC")
    failing = sorted(n for n, r in shop.last.items() if r.status in ("failed", "rate_limited"))
    if failing:
        names = ", ".join(failing)
        return f"[{STATUS_STYLE['failed']}]failed[/]: {escape(names)}"
    latest = max(shop.last.values(), key=lambda run: run.started_at)
    style = STATUS_STYLE[latest.status]
    return (
        f"[{style}]{latest.status.value}[/] {local_time(latest.started_at, tz, '%m-%d %H:%M %Z')}"
    )


def shops_table(summaries: list[ShopSummary]) -> FitTable:
    table = FitTable(
        [
            Col("shop"),
            Col("name", 2),
            Col("timezone", 5),
            Col("currency", 6, keep=True),
            Col("connections", 3),
            Col("profiles", 0, "right", keep=True),
            Col("last sync", 0),
            Col("segments", 1, "right", keep=True),
        ],
        title="shops",
    )
    for shop in summaries:
        table.add_row(
            escape(shop.id),
            escape(shop.name),
            escape(shop.timezone),
            escape(shop.currency),
            escape(", ".join(shop.connections) or "-"),
            f"{shop.profiles:,}",
            _last_sync(shop),
            str(shop.segments),
        )
    return table


@click.command("shops")
@click.pass_obj
def shops(obj: Context) -> None:
    """Each client shop: its connections, profiles, last sync and segments."""
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            summaries = shop_summaries(runtime.config, runtime.store)
        finally:
            runtime.close()
    console.print(shops_table(summaries))
    for name, error in sorted(runtime.config.invalid.items()):
        err_console.print(f"[red]{escape(name)}:[/] {escape(str(error))}", highlight=False)
