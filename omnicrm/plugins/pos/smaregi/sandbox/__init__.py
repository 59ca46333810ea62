"""A local emulator of Smaregi's Platform API for the demo and the tests.

``sandbox()`` is the channel's :data:`~omnicrm.SandboxFactory`: it generates the POS
seed (:mod:`omnicrm.plugins.pos.seed`), starts a :class:`~.server.SmaregiSandbox` on
loopback and yields settings that reach it. Environment variables size it:

===============================  =======  ==============================================
``SMAREGI_SANDBOX_MEMBERS``      600      members (a share are the EC sandbox's customers)
``SMAREGI_SANDBOX_SALES``        6000     receipts over the year up to now (~2.1 lines each)
``SMAREGI_SANDBOX_SEED``         1        the same seed gives the same stores and sales
===============================  =======  ==============================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from omnicrm.testing import env_number

if TYPE_CHECKING:
    from omnicrm.plugins.pos.seed import StoreData

__all__ = ["sandbox", "seeded"]


@functools.cache
def seeded(seed: int, members: int, sales: int) -> StoreData:
    """The seed's data up to the first call's now, generated once per process (the
    sandbox only reads it)."""
    from omnicrm.plugins.pos.seed import generate

    return generate(seed, members=members, sales=sales)


@contextmanager
def sandbox() -> Iterator[dict[str, Any]]:
    """Start a Smaregi sandbox; yield settings that reach it (validated)."""
    from ..settings import SmaregiSettings
    from .server import SmaregiSandbox

    data = seeded(
        int(env_number("SMAREGI_SANDBOX_SEED", 1, 0, 2**31, whole=True)),
        int(env_number("SMAREGI_SANDBOX_MEMBERS", 600, 1, 1_000_000, whole=True)),
        int(env_number("SMAREGI_SANDBOX_SALES", 6000, 0, 5_000_000, whole=True)),
    )
    with SmaregiSandbox(data) as server:
        settings = server.settings()
        SmaregiSettings.model_validate(settings)
        yield settings
