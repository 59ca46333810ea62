"""The ``pos_csv`` channel type: a register whose sales arrive as exported files.

Its records are the customers and orders that ``omnicrm import pos-csv`` writes, so it
offers both streams (the TUI, status and the CRM find them there). There is no API to
read: a sync reads nothing and moves no cursor, and a scheduled one is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

import omnicrm
from omnicrm import Checkpoint, Customer, Order, StreamContext
from omnicrm.plugins.pos.csv.settings import PosCsvSettings

NAME = "pos_csv"


def _describe(settings: BaseModel) -> str:
    assert isinstance(settings, PosCsvSettings)
    where = f" ({settings.store_name})" if settings.store_name else ""
    return f"{settings.format.value} CSV exports{where}"


CHANNEL = omnicrm.ChannelType(
    name=NAME,
    settings=PosCsvSettings,
    streams=(omnicrm.Stream.CUSTOMERS, omnicrm.Stream.ORDERS),
    title="POS (CSV export)",
    describe=_describe,
)


def sync_customers(ctx: StreamContext[BaseModel]) -> Iterator[Customer | Checkpoint]:
    """Nothing to fetch: members arrive with the imported exports."""
    ctx.logger.debug("%s: members arrive by `omnicrm import pos-csv`", ctx.connection)
    yield from ()


def import_orders(ctx: StreamContext[BaseModel]) -> Iterator[Order | Checkpoint]:
    """Nothing to fetch: receipts arrive with the imported exports."""
    ctx.logger.debug("%s: receipts arrive by `omnicrm import pos-csv`", ctx.connection)
    yield from ()
