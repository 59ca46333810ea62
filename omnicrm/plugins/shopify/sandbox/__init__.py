"""A local emulator of Shopify's Admin API (2024-12) for the demo and the tests.

``sandbox()`` is the channel's :data:`~omnicrm.SandboxFactory`: it starts a
:class:`~.server.ShopifySandbox` on loopback and yields settings for a connection to it.
Heavy imports (Starlette, uvicorn, graphql-core, Faker) wait until a sandbox starts, so
loading the plugin stays cheap. Environment variables tune the factory's sandbox:

=================================  =======  =================================================
``SHOPIFY_SANDBOX_CUSTOMERS``      3000     customers (10..1,000,000; orders follow, ~2.2x);
                                           another client's shop has half
``SHOPIFY_SANDBOX_SEED``           1        the same seed gives the same shop
``SHOPIFY_SANDBOX_BUCKET_SIZE``    2000     cost bucket size (points)
``SHOPIFY_SANDBOX_RESTORE_RATE``   100      points restored per second
``SHOPIFY_SANDBOX_LIVE``           3        seconds between live changes; 0 keeps it still
                                           (new orders come at a month of the seeded
                                           history's sales a day)
=================================  =======  =================================================

The bucket is a standard shop's as Shopify documents it today (100 points restored per
second; the bucket holds 20 seconds of that), so the demo and the benchmarks pace
against the real figure. Advanced shops restore 200/s, Plus 1,000/s: set the two
variables to try those.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from omnicrm.testing import env_number

if TYPE_CHECKING:
    from .server import ShopifySandbox

__all__ = [
    "DEFAULT_LIVE_INTERVAL",
    "STANDARD_BUCKET",
    "STANDARD_RESTORE_RATE",
    "ShopifySandbox",
    "sandbox",
]

DEFAULT_LIVE_INTERVAL = 3.0  # seconds between a live shop's changes

# A standard shop's GraphQL Admin API limit as Shopify documents it today
# (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: Standard 100 points/s,
# Advanced 200, Plus 1,000); its throttleStatus reports a bucket of 20 s of restore.
STANDARD_RESTORE_RATE = 100.0
STANDARD_BUCKET = 2000.0


def __getattr__(name: str) -> Any:
    if name == "ShopifySandbox":
        from .server import ShopifySandbox

        return ShopifySandbox
    raise AttributeError(name)


# The demo's further client shops: half the first's size, and this share of their
# customers also buy from the first (the same people: name, email, phone, address).
CLIENT_SIZE = 0.5
CLIENT_SHARED = 0.3


@contextmanager
def sandbox(
    *, client: int = 0, line_users: Mapping[int, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Start a Shopify sandbox; yield settings that reach it (validated).

    ``client`` 0 is the shop the variables describe; another number is another client
    business's Shopify store (its own domain, seed and orders, half the size), some of
    whose customers are client 0's too: the demo's overlapping customer bases.
    ``line_users`` (customer index -> LINE user id, e.g. the LINE emulator's demo
    friends): those customers have it in the metafield a LINE-connect app keeps it in
    (:data:`~.data.LINE_METAFIELD`), and the settings read it.
    """
    from ..settings import ShopifySettings
    from .data import LINE_METAFIELD
    from .server import DEFAULT_SHOP, ShopifySandbox

    if client < 0:
        raise ValueError(f"client must be 0 or more, not {client}")
    live = env_number("SHOPIFY_SANDBOX_LIVE", DEFAULT_LIVE_INTERVAL, 0, 3600)
    customers = int(env_number("SHOPIFY_SANDBOX_CUSTOMERS", 3000, 10, 1_000_000))
    seed = int(env_number("SHOPIFY_SANDBOX_SEED", 1, 0, 2**31))
    others: dict[str, Any] = {}
    if client:
        customers = max(10, int(customers * CLIENT_SIZE))
        domain = DEFAULT_SHOP.replace(".myshopify.com", f"-{client + 1}.myshopify.com")
        others = {
            "shop": domain,
            "shop_name": f"OmniCRM デモ商店 {client + 1}",
            "shared_with": seed,
            "shared": CLIENT_SHARED,
        }
        seed += client
    shop = ShopifySandbox(
        customers=customers,
        seed=seed,
        **others,
        bucket_size=env_number("SHOPIFY_SANDBOX_BUCKET_SIZE", STANDARD_BUCKET, 1, 10**9),
        restore_rate=env_number("SHOPIFY_SANDBOX_RESTORE_RATE", STANDARD_RESTORE_RATE, 1, 10**9),
        live_interval=live or None,
    )
    if line_users:
        shop.data.link_line_users(line_users)
    with shop:
        settings = shop.settings()
        if line_users:
            settings["line_user_id_metafield"] = ".".join(LINE_METAFIELD)
        ShopifySettings.model_validate(settings)
        yield settings
