"""A local emulator of Square's API (2025-08-20) for the demo and the tests.

``sandbox()`` is the channel's :data:`~omnicrm.SandboxFactory`: it starts a
:class:`~.server.SquareSandbox` on loopback, rendering the shared POS seed
(:mod:`omnicrm.plugins.pos.seed`: 渋谷店 and 梅田店, members, a year of sales), and
yields settings for a connection to it. Environment variables tune it:

==============================  =======  ==============================================
``SQUARE_SANDBOX_MEMBERS``      600      members (customers and loyalty accounts)
``SQUARE_SANDBOX_SALES``        6000     register sales over the year
``SQUARE_SANDBOX_SEED``         1        the same seed gives the same seller
``SQUARE_SANDBOX_CURSOR_TTL``   300      seconds a page cursor lives
==============================  =======  ==============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from omnicrm.testing import env_number

if TYPE_CHECKING:
    from .server import SquareSandbox

__all__ = ["SquareSandbox", "sandbox"]


def __getattr__(name: str) -> Any:
    if name == "SquareSandbox":
        from .server import SquareSandbox

        return SquareSandbox
    raise AttributeError(name)


@contextmanager
def sandbox(*, client: int = 0) -> Iterator[dict[str, Any]]:
    """Start a Square sandbox; yield settings that reach it (validated).

    ``client`` > 0 is another client business's seller (its own seed)."""
    from ..settings import SquareSettings
    from .server import SquareSandbox

    if client < 0:
        raise ValueError(f"client must be 0 or more, not {client}")
    seller = SquareSandbox(
        members=int(env_number("SQUARE_SANDBOX_MEMBERS", 600, 1, 1_000_000)),
        sales=int(env_number("SQUARE_SANDBOX_SALES", 6000, 0, 10_000_000)),
        seed=int(env_number("SQUARE_SANDBOX_SEED", 1, 0, 2**31)) + client,
        cursor_ttl=env_number("SQUARE_SANDBOX_CURSOR_TTL", 300, 0.001, 86_400),
    )
    with seller:
        settings = seller.settings()
        SquareSettings.model_validate(settings)
        yield settings
