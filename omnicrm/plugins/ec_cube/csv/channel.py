"""The ``ec_cube_csv`` channel type: an EC-CUBE shop (2.x, or 4.x without the Web API)
whose customers and orders arrive as the admin screen's CSV exports.

Its records are what ``omnicrm import ec_cube-csv`` writes, so it offers both streams;
there is no API to read: a sync reads nothing and moves no cursor.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

import omnicrm
from omnicrm import Checkpoint, Customer, Order, StreamContext
from omnicrm.plugins.ec_cube.csv.settings import EcCubeCsvSettings

NAME = "ec_cube_csv"


def _describe(settings: BaseModel) -> str:
    assert isinstance(settings, EcCubeCsvSettings)
    where = f" ({settings.site_name})" if settings.site_name else ""
    return f"EC-CUBE admin CSV exports{where}"


CHANNEL = omnicrm.ChannelType(
    name=NAME,
    settings=EcCubeCsvSettings,
    streams=(omnicrm.Stream.CUSTOMERS, omnicrm.Stream.ORDERS),
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
