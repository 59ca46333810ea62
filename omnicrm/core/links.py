"""Addresses of a medium linked to a shop's source customers: which customer a LINE
user id belongs to.

LINE's account link flow, as the shop runs it: the bot asks LINE for a link token for
the user; the user opens the shop's login page with it and signs in; the shop issues a
nonce for that customer (:func:`issue_nonce`) and sends the user to LINE's account link
endpoint with the token and the nonce; LINE then posts an ``accountLink`` event with the
user id and the nonce, and :func:`link_by_nonce` links the two. A nonce is used once and
expires, so a replayed or forged event links nobody. A link made another way (a file of
links, a platform's field) goes through :func:`link`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from omnicrm.core.consent import Member
from omnicrm.core.records import Medium
from omnicrm.core.store.schema import address_links, link_nonces
from omnicrm.errors import DataError

NONCE_TTL = dt.timedelta(minutes=10)
"""How long an issued nonce may be used (LINE's link token lives as long)."""


def issue_nonce(
    conn: Connection,
    *,
    shop: str,
    medium: Medium,
    member: Member,
    now: dt.datetime,
    ttl: dt.timedelta = NONCE_TTL,
) -> str:
    """A new nonce naming ``member`` (the customer who signed in on the shop's site):
    128 bits of randomness, base64url, as LINE asks."""
    nonce = secrets.token_urlsafe(24)
    conn.execute(
        insert(link_nonces).values(
            nonce=nonce,
            shop=shop,
            medium=Medium(medium).value,
            connection=member[0],
            record_id=member[1],
            issued_at=now,
            expires_at=now + ttl,
        )
    )
    return nonce


def link_by_nonce(
    conn: Connection, *, shop: str, medium: Medium, address: str, nonce: str, at: dt.datetime
) -> Member:
    """Link ``address`` to the customer ``nonce`` was issued for; DataError if the nonce
    is not this shop's, was used, or expired before ``at``."""
    n = link_nonces.c
    row = conn.execute(
        select(n.connection, n.record_id, n.expires_at, n.used_at).where(
            n.nonce == nonce, n.shop == shop, n.medium == Medium(medium).value
        )
    ).first()
    if row is None:
        raise DataError(f"the account link names a nonce shop {shop!r} did not issue")
    if row.used_at is not None:
        raise DataError("the account link's nonce was used before")
    if at > row.expires_at:
        raise DataError("the account link's nonce had expired")
    claimed = conn.execute(
        update(link_nonces).where(n.nonce == nonce, n.used_at.is_(None)).values(used_at=at)
    )
    if claimed.rowcount != 1:
        raise DataError("the account link's nonce was used before")
    member = (row.connection, row.record_id)
    link(conn, shop=shop, medium=medium, address=address, member=member, at=at, method="line_link")
    return member


def link(
    conn: Connection,
    *,
    shop: str,
    medium: Medium,
    address: str,
    member: Member,
    at: dt.datetime,
    method: str,
) -> None:
    """Link ``address`` to ``member``; an address linked before moves to ``member``."""
    address = address.strip()
    if not address:
        raise DataError("an empty address cannot be linked")
    a = address_links.c
    conn.execute(
        delete(address_links).where(
            a.shop == shop, a.medium == Medium(medium).value, a.address == address
        )
    )
    conn.execute(
        insert(address_links).values(
            shop=shop,
            medium=Medium(medium).value,
            address=address,
            connection=member[0],
            record_id=member[1],
            linked_at=at,
            method=method,
        )
    )


def linked_members(conn: Connection, *, shop: str, medium: Medium, address: str) -> list[Member]:
    """The source customers ``address`` is linked to in ``shop`` (none or one)."""
    a = address_links.c
    rows = conn.execute(
        select(a.connection, a.record_id).where(
            a.shop == shop, a.medium == Medium(medium).value, a.address == address.strip()
        )
    )
    return [(c, r) for c, r in rows]


def addresses_of_members(
    conn: Connection, *, shop: str, medium: Medium, members: Collection[Member]
) -> list[tuple[Member, str]]:
    """The addresses linked to ``members``, oldest link first."""
    if not members:
        return []
    a = address_links.c
    wanted = set(members)
    rows = conn.execute(
        select(a.connection, a.record_id, a.address)
        .where(
            a.shop == shop,
            a.medium == Medium(medium).value,
            a.connection.in_(sorted({c for c, _ in wanted})),
            a.record_id.in_(sorted({r for _, r in wanted})),
        )
        .order_by(a.linked_at)
    )
    return [((c, r), address) for c, r, address in rows if (c, r) in wanted]


def unlink_records(
    conn: Connection, *, shop: str, connection: str, record_ids: Sequence[str]
) -> None:
    """Forget the links and nonces of ``connection``'s records (a redaction)."""
    for table in (address_links, link_nonces):
        conn.execute(
            delete(table).where(
                table.c.shop == shop,
                table.c.connection == connection,
                table.c.record_id.in_(list(record_ids)),
            )
        )
