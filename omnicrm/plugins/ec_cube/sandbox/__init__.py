"""A local emulator of an EC-CUBE 4 shop's Web API for the demo and the tests.

``sandbox()`` is the channel's :data:`~omnicrm.SandboxFactory`: it generates a seeded
shop (:mod:`.data`), starts an :class:`~.server.EccubeSandbox` on loopback, authorises
the connection through the emulator's own OAuth2 endpoints (as ``omnicrm connect``
would) into a token file of a temporary directory, and yields settings that reach it.
Environment variables size it:

=============================  =======  ===========================================
``ECCUBE_SANDBOX_CUSTOMERS``   500      members (some provisional, some withdrawn)
``ECCUBE_SANDBOX_ORDERS``      3000     orders over the year up to now (some unfinished)
``ECCUBE_SANDBOX_PRODUCTS``    300      products (some sold out, hidden or discontinued)
``ECCUBE_SANDBOX_SEED``        1        the same seed gives the same shop
=============================  =======  ===========================================
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from omnicrm.testing import env_number

if TYPE_CHECKING:
    from .data import ShopData
    from .server import EccubeSandbox

__all__ = ["authorise", "sandbox", "seeded"]


@functools.cache
def seeded(seed: int, customers: int, orders: int, products: int = 300) -> ShopData:
    """The seed's shop, generated once per process (each sandbox copies what it changes)."""
    from .data import generate

    return generate(seed, customers=customers, orders=orders, products=products)


def authorise(server: EccubeSandbox, token_file: Path, **extra: Any) -> dict[str, Any]:
    """Walk the authorization-code flow against ``server`` (the operator approving), keep
    the tokens in ``token_file``; the connection's settings."""
    from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
    from omnicrm.plugins.ec_cube.api.tokens import (
        TokenStore,
        authorize_url,
        exchange_code,
        new_state,
    )

    settings = EccubeSettings.model_validate(server.settings(token_file=str(token_file), **extra))
    state = new_state()
    with httpx.Client() as http:
        reply = http.get(authorize_url(settings, state), follow_redirects=False)
        query = parse_qs(urlsplit(reply.headers["location"]).query)
        if query.get("state") != [state]:
            raise RuntimeError("the sandbox's redirect lost the state")
        TokenStore(token_file).save(exchange_code(http, settings, query["code"][0]))
    return settings.model_dump(mode="json", exclude_none=True) | {
        "client_secret": server.client_secret,
        "webhook_secret": server.webhook_secret,
    }


@contextmanager
def sandbox() -> Iterator[dict[str, Any]]:
    """Start an EC-CUBE sandbox; yield settings that reach it, already authorised."""
    import copy

    from .server import EccubeSandbox

    data = seeded(
        int(env_number("ECCUBE_SANDBOX_SEED", 1, 0, 2**31, whole=True)),
        int(env_number("ECCUBE_SANDBOX_CUSTOMERS", 500, 1, 1_000_000, whole=True)),
        int(env_number("ECCUBE_SANDBOX_ORDERS", 3000, 0, 5_000_000, whole=True)),
        int(env_number("ECCUBE_SANDBOX_PRODUCTS", 300, 1, 100_000, whole=True)),
    )
    with (
        tempfile.TemporaryDirectory(prefix="omnicrm-eccube-") as folder,
        EccubeSandbox(copy.deepcopy(data)) as server,
    ):
        yield authorise(server, Path(folder) / "tokens.json")
