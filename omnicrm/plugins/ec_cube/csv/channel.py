"""The ``ec_cube_csv`` channel type: an EC-CUBE shop (2.x, or 4.x without the Web API)
whose customers, orders and products arrive as the admin screen's CSV exports.

Its records are what ``omnicrm import ec_cube-csv`` writes, so it offers the three
streams;
there is no API to read: a sync reads nothing and moves no cursor.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

import omnicrm
from omnicrm import Checkpoint, Customer, Order, Product, StreamContext
from omnicrm.plugins.ec_cube.csv.settings import EcCubeCsvSettings

NAME = "ec_cube_csv"


def _describe(settings: BaseModel) -> str:
    assert isinstance(settings, EcCubeCsvSettings)
    where = f" ({settings.site_name})" if settings.site_name else ""
    return f"EC-CUBE admin CSV exports{where}"


CHANNEL = omnicrm.ChannelType(
    name=NAME,
    settings=EcCubeCsvSettings,
    streams=(omnicrm.Stream.CUSTOMERS, omnicrm.Stream.ORDERS, omnicrm.Stream.PRODUCTS),
    title="EC-CUBE (CSV export)",
    describe=_describe,
)


def sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Nothing to fetch: members arrive with the imported 会員CSV."""
    ctx.logger.debug("%s: members arrive by `omnicrm import ec_cube-csv`", ctx.connection)
    yield from ()


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Nothing to fetch: orders arrive with the imported 受注CSV."""
    ctx.logger.debug("%s: orders arrive by `omnicrm import ec_cube-csv`", ctx.connection)
    yield from ()


def sync_products(ctx: StreamContext[BaseModel]) -> Iterator[Product | Checkpoint]:
    """Nothing to fetch: products arrive with the imported 商品CSV."""
    ctx.logger.debug("%s: products arrive by `omnicrm import ec_cube-csv`", ctx.connection)
    yield from ()
