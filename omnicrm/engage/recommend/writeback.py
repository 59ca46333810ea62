"""The write-back: a shop's recommendations stored on its platforms, for its theme.

For each connection whose channel type stores recommendations
(``ChannelType.recommendations``; Shopify: metafields), :func:`write_back` computes

* for every customer of the connection who belongs to a profile, that profile's merged
  recommendations (:func:`~omnicrm.engage.recommend.for_customer`);
* for every product of the connection, what is bought with it
  (:func:`~omnicrm.engage.recommend.for_product` over its variants' keys, best score
  per product),

keeps what the connection itself sells (its product ids and handles), and hands over only
the targets whose items changed since the last write (a digest per target in
``writeback_state``). A target the platform refuses (deleted since the last sync) is
left out and tried again next time. Withdrawn customers (退会) get nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select

from omnicrm.core.channels import Connection as PlatformConnection
from omnicrm.core.host import Host
from omnicrm.core.recommend import PurchaseHistory
from omnicrm.core.records import ProductStatus
from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers, product_variants, products
from omnicrm.core.writeback import Owner, RecommendedItem, WriteContext, WriteTarget
from omnicrm.crm.products import ProductSettings
from omnicrm.crm.schema import profile_members
from omnicrm.engage.recommend.baskets import shop_history
from omnicrm.engage.recommend.merge import (
    Catalogue,
    Recommendation,
    for_customer,
    for_product,
    shop_catalogue,
)
from omnicrm.engage.schema import writeback_state
from omnicrm.errors import ConfigError

log = logging.getLogger("omnicrm.engage")

_CHUNK = 5000


@dataclass
class WriteBackResult:
    """What one write-back of one connection did, per owner kind."""

    connection: str
    written: dict[str, int] = field(default_factory=lambda: {"customer": 0, "product": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"customer": 0, "product": 0})
    refused: dict[str, str] = field(default_factory=dict)  # owner id -> the platform's reason
    rate_limit_wait: float = 0.0


@dataclass(frozen=True)
class _Listed:
    """A product of the connection: its platform id and handle."""

    product_id: str
    handle: str | None


def writing_connections(
    host: Host, connections: Iterable[PlatformConnection], *, shop: str
) -> list[PlatformConnection]:
    """The enabled connections of ``shop`` whose channel type stores recommendations."""
    return [
        c
        for c in connections
        if c.shop == shop
        and c.enabled
        and c.channel in host.channel_types
        and host.channel_types[c.channel].recommendations is not None
    ]


def _catalogue_of(conn: Connection, connection: str) -> tuple[dict[str, _Listed], list[str]]:
    """The connection's products by product key (SKU, else product id), and its active
    products' ids."""
    p, v = products.c, product_variants.c
    rows = conn.execute(
        select(p.id, p.handle, p.status, v.sku)
        .select_from(
            products.outerjoin(
                product_variants, and_(v.connection == p.connection, v.product_id == p.id)
            )
        )
        .where(p.connection == connection)
        .order_by(p.id)
    ).all()
    by_key: dict[str, _Listed] = {}
    active: list[str] = []
    for product_id, handle, status, sku in rows:
        listed = _Listed(product_id, handle)
        by_key.setdefault(product_id, listed)
        if sku:
            by_key.setdefault(sku, listed)
        if status == ProductStatus.ACTIVE.value and (not active or active[-1] != product_id):
            active.append(product_id)
    return by_key, active


def _items(
    found: Iterable[Recommendation],
    listed: Mapping[str, _Listed],
    limit: int,
    leave_out: str | None = None,
) -> tuple[RecommendedItem, ...]:
    """The recommendations the connection sells, one per platform product (its best
    score), best first, at most ``limit``."""
    best: dict[str, RecommendedItem] = {}
    for rec in found:
        product = listed.get(rec.product_id)
        if product is None or product.product_id == leave_out:
            continue
        held = best.get(product.product_id)
        if held is None or rec.score > held.score:
            best[product.product_id] = RecommendedItem(
                product.product_id, product.handle, rec.score, rec.reason
            )
    ranked = sorted(best.values(), key=lambda i: (-i.score, i.product_id))
    return tuple(ranked[:limit])


def digest(items: tuple[RecommendedItem, ...]) -> str:
    """A digest of what a target stores: equal items, equal digest."""
    plain = [[i.product_id, i.handle, round(i.score, 4), i.reason] for i in items]
    return hashlib.sha256(json.dumps(plain, ensure_ascii=False).encode()).hexdigest()


def targets(
    conn: Connection,
    host: Host,
    history: PurchaseHistory,
    catalogue: Catalogue | None,
    *,
    shop: str,
    connection: str,
    limit: int,
    weights: Mapping[str, float] | None = None,
) -> list[WriteTarget]:
    """Every customer's and product's recommendations for ``connection`` (see the
    module), empty ones included; ``weights`` the shop's (None: the defaults)."""
    listed, active = _catalogue_of(conn, connection)
    c, pm = customers.c, profile_members.c
    people = conn.execute(
        select(c.id, pm.profile_id)
        .join(profile_members, and_(pm.connection == c.connection, pm.record_id == c.id))
        .where(c.connection == connection, c.shop == shop, c.withdrawn_at.is_(None))
        .order_by(c.id)
    ).all()
    wide = limit * 2  # the connection may not sell all of a shop's products
    found: list[WriteTarget] = []
    for record_id, profile_id in people:
        recs = for_customer(
            host, history, str(profile_id), limit=wide, catalogue=catalogue, weights=weights
        )
        found.append(WriteTarget(Owner.CUSTOMER, record_id, _items(recs, listed, limit)))
    keys_of: dict[str, list[str]] = {}
    for key, product in listed.items():
        if key in history.product_index:
            keys_of.setdefault(product.product_id, []).append(key)
    for product_id in active:
        recs = [
            rec
            for key in sorted(keys_of.get(product_id, ()))
            for rec in for_product(
                host, history, key, limit=wide, catalogue=catalogue, weights=weights
            )
        ]
        found.append(
            WriteTarget(Owner.PRODUCT, product_id, _items(recs, listed, limit, product_id))
        )
    return found


def _written(conn: Connection, shop: str, connection: str) -> dict[tuple[str, str], str]:
    w = writeback_state.c
    rows = conn.execute(
        select(w.owner, w.owner_id, w.digest).where(w.shop == shop, w.connection == connection)
    )
    return {(owner, owner_id): value for owner, owner_id, value in rows}


def write_back(
    store: Store,
    host: Host,
    connection: PlatformConnection,
    *,
    products_settings: ProductSettings | None = None,
    limit: int = 10,
    weights: Mapping[str, float] | None = None,
    now: dt.datetime,
) -> WriteBackResult:
    """Write what changed of ``connection``'s recommendations to its platform (see the
    module), merged with the shop's ``weights`` (None: the defaults); one write-back of
    a connection at a time."""
    writer = host.channel_type(connection.channel).recommendations
    if writer is None:
        raise ConfigError(
            f"channel {connection.channel!r} of connection {connection.name!r} does not "
            "store recommendations"
        )
    shop = connection.shop
    result = WriteBackResult(connection.name)
    with store.lock(f"writeback:{connection.name}"):
        history = shop_history(store.engine, shop)
        with store.engine.connect() as conn:
            catalogue = shop_catalogue(conn, shop, products_settings)
            wanted = targets(
                conn,
                host,
                history,
                catalogue,
                shop=shop,
                connection=connection.name,
                limit=limit,
                weights=weights,
            )
            held = _written(conn, shop, connection.name)
        changed: list[tuple[WriteTarget, str]] = []
        for target in wanted:
            value = digest(target.items)
            before = held.get((target.owner.value, target.owner_id))
            if before == value or (before is None and not target.items):
                result.unchanged[target.owner.value] += 1
            else:
                changed.append((target, value))
        if not changed:
            return result
        ctx: WriteContext[Any] = WriteContext(
            connection.name, connection.channel, connection.settings, log
        )
        refused = writer.write(ctx, [t for t, _ in changed])
        result.refused = dict(refused)
        result.rate_limit_wait = ctx.rate_limit_wait
        done = [(t, value) for t, value in changed if t.owner_id not in refused]
        w = writeback_state.c
        with store.engine.begin() as conn:
            for start in range(0, len(done), _CHUNK):
                part = done[start : start + _CHUNK]
                for owner in Owner:
                    ids = [t.owner_id for t, _ in part if t.owner is owner]
                    if ids:
                        conn.execute(
                            delete(writeback_state).where(
                                w.shop == shop,
                                w.connection == connection.name,
                                w.owner == owner.value,
                                w.owner_id.in_(ids),
                            )
                        )
                conn.execute(
                    insert(writeback_state),
                    [
                        {
                            "shop": shop,
                            "connection": connection.name,
                            "owner": t.owner.value,
                            "owner_id": t.owner_id,
                            "digest": value,
                            "written_at": now,
                        }
                        for t, value in part
                    ],
                )
        for t, _ in done:
            result.written[t.owner.value] += 1
    log.info(
        "write-back of %s: %s written, %s unchanged, %d refused",
        connection.name,
        result.written,
        result.unchanged,
        len(result.refused),
    )
    return result
