"""``omnicrm shops``: each client shop with its connections, customer base, last sync
and segments, so an agency operator sees which shop needs attention; ``omnicrm shops
rename OLD NEW`` gives a shop the id the config now names it by.

Exit codes: 0 shown (renamed); 1 the store failed; 2 bad configuration, or a rename the
store refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli import STATUS_STYLE
from omnicrm.cli._common import Context, console, err_console, errors, fail
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


@click.group("shops", invoke_without_command=True)
@click.pass_context
def shops(ctx: click.Context) -> None:
    """Each client shop: its connections, profiles, last sync and segments."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            summaries = shop_summaries(runtime.config, runtime.store)
        finally:
            runtime.close()
    console.print(shops_table(summaries))
    for name, error in sorted(runtime.config.invalid.items()):
        err_console.print(f"[red]{escape(name)}:[/] {escape(str(error))}", highlight=False)


@shops.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_obj
def rename(obj: Context, old: str, new: str) -> None:
    """Give shop OLD the id NEW: all its data, in one transaction.

    For a store used before the config named its shop (its data is under `default`),
    or a shop whose id changes. NEW must be a shop of the config and hold no data: two
    shops' customers are never joined. Stop the scheduler (`omnicrm run`) first.
    """
    from omnicrm.core.store import Store
    from omnicrm.core.store.shop_rename import ShopRenameError

    with errors():
        runtime = obj.runtime()
        config = runtime.config
        configured = config.all_shops()
        if new not in configured:
            fail(
                f"{config.path}: no shop named {new!r} (shops: {', '.join(sorted(configured))});"
                f" add [shops.{new}] to the config first",
                2,
            )
        # Opened without the check of the config's connections: it refuses the very
        # config this rename is for.
        store = Store.open(
            config.store_url,
            shops=config.connection_shops(),
            default_shop=config.default_shop,
            check_shops=False,
        )
        try:
            moved = store.rename_shop(old, new)
        except ShopRenameError as exc:
            held = sorted(set(store.shops().values()))
            fail(f"{exc} (the store's shops: {', '.join(held) or 'none'})", 2)
        finally:
            store.close()
    rows = sum(moved.values())
    console.print(
        f"shop {escape(old)!r} is now {escape(new)!r}: {rows:,} rows in {len(moved)} tables",
        highlight=False,
    )
