"""What the engagement layer holds of a person, erased and exported with the rest.

A redaction (or the erasure of a connection) clears the addresses the person's messages
went to, unlinks their LINE user ids, cancels the cart recovery messages of their
checkouts not sent yet (and forgets what was decided about those checkouts), deletes the
storefront visitors who signed in as them (with what they saw and clicked) and deletes
the consent statements made through omnicrm on their records: with no statement left
there is no opt-in, so nothing more is sent to what remains of them, and the shop's
suppression list (an address, not a person) still keeps an unsubscribed
address from being mailed again. What the recommendation write-back recorded of their
platform record goes too. The outbox rows themselves stay, without the address,
so a campaign's counts do not change after the fact. Registered with the store on import
(:mod:`omnicrm.core.store.personal`), after the CRM's holder, whose profile links it reads.

Some media keep messages in files of their own (the postal dispatcher's recipient lists
and label PDFs): the store's transaction cannot reach those, so whoever redacts with the
host and the shop's settings at hand (:meth:`omnicrm.app.runtime.Runtime.redact_customer`)
finds the person's messages (:func:`messages_of_records`) and has each dispatcher take
them out of its files (:func:`forget_files`), and a data request names the files that
hold them (:func:`files_holding`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, update

from omnicrm.core import links
from omnicrm.core.host import Host
from omnicrm.core.records import Medium
from omnicrm.core.store.personal import chunks, register_holder
from omnicrm.core.store.schema import address_links, connection_shops, consent_records
from omnicrm.crm.personal import profiles_of_records
from omnicrm.crm.schema import profile_members
from omnicrm.engage import recovery
from omnicrm.engage.campaigns import dispatcher_for
from omnicrm.engage.onsite import visitors
from omnicrm.engage.schema import (
    campaigns,
    message_events,
    onsite_visitors,
    outbox,
    writeback_state,
)
from omnicrm.engage.settings import MessagingSettings
from omnicrm.errors import ConfigError

log = logging.getLogger("omnicrm.engage")


def _shop_of(conn: Connection, connection: str) -> str | None:
    return conn.execute(
        select(connection_shops.c.shop).where(connection_shops.c.connection == connection)
    ).scalar_one_or_none()


class EngagePersonalData:
    """The engagement layer's :class:`~omnicrm.core.store.personal.PersonalDataHolder`."""

    def forget(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """Clear the addresses of the records' profiles' messages; drop the records'
        consent statements."""
        shop = _shop_of(conn, connection)
        if shop is None:
            return
        for chunk in chunks(sorted(profiles_of_records(conn, shop, connection, record_ids))):
            conn.execute(
                update(outbox)
                .where(outbox.c.shop == shop, outbox.c.profile_id.in_(chunk))
                .values(address=None)
            )
        for chunk in chunks(sorted(set(record_ids))):
            recovery.forget(conn, shop, connection, chunk)
            visitors.forget(conn, shop, connection, chunk)
            links.unlink_records(conn, shop=shop, connection=connection, record_ids=chunk)
            # What the write-back stored on them: the next one finds nothing to compare.
            conn.execute(
                delete(writeback_state).where(
                    writeback_state.c.shop == shop,
                    writeback_state.c.connection == connection,
                    writeback_state.c.owner == "customer",
                    writeback_state.c.owner_id.in_(chunk),
                )
            )
            conn.execute(
                delete(consent_records).where(
                    consent_records.c.shop == shop,
                    consent_records.c.connection == connection,
                    consent_records.c.record_id.in_(chunk),
                )
            )

    def erase(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """As :meth:`forget`, for every record the connection holds or held."""
        shop = _shop_of(conn, connection)
        if shop is None:
            return
        members = conn.execute(
            select(profile_members.c.record_id).where(
                profile_members.c.shop == shop, profile_members.c.connection == connection
            )
        ).scalars()
        signed_in = conn.execute(
            select(onsite_visitors.c.record_id).where(
                onsite_visitors.c.shop == shop, onsite_visitors.c.connection == connection
            )
        ).scalars()
        self.forget(conn, connection, sorted({*record_ids, *members, *signed_in}))
        conn.execute(
            delete(consent_records).where(
                consent_records.c.shop == shop, consent_records.c.connection == connection
            )
        )

    def export(self, conn: Connection, connection: str, customer_id: str) -> dict[str, Any]:
        """The consent statements made on the record, the messages sent to its profile
        (with when each was first opened and clicked), the addresses (LINE user ids)
        linked to it and the storefront visitors who signed in as it."""
        shop = _shop_of(conn, connection)
        if shop is None:
            return {
                "consent_statements": [],
                "messages": [],
                "linked_addresses": [],
                "storefront_visitors": [],
            }
        statements = conn.execute(
            select(
                consent_records.c.medium,
                consent_records.c.state,
                consent_records.c.stated_at,
                consent_records.c.source,
                consent_records.c.method,
            )
            .where(
                consent_records.c.shop == shop,
                consent_records.c.connection == connection,
                consent_records.c.record_id == customer_id,
            )
            .order_by(consent_records.c.stated_at)
        ).mappings()
        profile_ids = sorted(profiles_of_records(conn, shop, connection, [customer_id]))
        opens, clicks = message_events.alias("opens"), message_events.alias("clicks")
        messages = conn.execute(
            select(
                campaigns.c.name.label("campaign"),
                outbox.c.medium,
                outbox.c.status,
                outbox.c.address,
                outbox.c.handed_at,
                opens.c.first_at.label("first_opened_at"),
                clicks.c.first_at.label("first_clicked_at"),
            )
            .join(campaigns, campaigns.c.id == outbox.c.campaign_id)
            .outerjoin(
                opens,
                (opens.c.shop == outbox.c.shop)
                & (opens.c.outbox_id == outbox.c.id)
                & (opens.c.kind == "open"),
            )
            .outerjoin(
                clicks,
                (clicks.c.shop == outbox.c.shop)
                & (clicks.c.outbox_id == outbox.c.id)
                & (clicks.c.kind == "click"),
            )
            .where(outbox.c.shop == shop, outbox.c.profile_id.in_(profile_ids))
            .order_by(outbox.c.id)
        ).mappings()
        linked = conn.execute(
            select(
                address_links.c.medium,
                address_links.c.address,
                address_links.c.linked_at,
                address_links.c.method,
            )
            .where(
                address_links.c.shop == shop,
                address_links.c.connection == connection,
                address_links.c.record_id == customer_id,
            )
            .order_by(address_links.c.linked_at)
        ).mappings()
        return {
            "consent_statements": [_plain(row) for row in statements],
            "messages": [_plain(row) for row in messages],
            "linked_addresses": [_plain(row) for row in linked],
            "storefront_visitors": visitors.export(conn, shop, connection, customer_id),
        }


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def messages_of_records(
    conn: Connection, connection: str, record_ids: Sequence[str]
) -> tuple[str | None, dict[Medium, list[str]]]:
    """The shop of ``connection`` and the ids of every message to the profiles of
    ``record_ids`` (outbox rows, whatever became of them), by medium."""
    shop = _shop_of(conn, connection)
    found: dict[Medium, list[str]] = {}
    if shop is None:
        return None, found
    for chunk in chunks(sorted(profiles_of_records(conn, shop, connection, record_ids))):
        for medium, message_id in conn.execute(
            select(outbox.c.medium, outbox.c.message_id)
            .where(outbox.c.shop == shop, outbox.c.profile_id.in_(chunk))
            .order_by(outbox.c.id)
        ):
            found.setdefault(Medium(medium), []).append(message_id)
    return shop, found


def _keepers(
    host: Host, settings: MessagingSettings, shop: str, messages: Mapping[Medium, Collection[str]]
) -> list[tuple[str, Any, Collection[str]]]:
    """(dispatcher, its settings, the messages) for each medium whose dispatcher keeps
    files of its own."""
    found = []
    for medium, ids in messages.items():
        if not ids or medium not in settings.dispatchers:
            continue
        try:
            name, chosen = dispatcher_for(host, settings, medium, shop=shop)
        except ConfigError as exc:  # its files cannot be found: said, not hidden
            log.warning("shop %s: the %s dispatcher's files not reached: %s", shop, medium, exc)
            continue
        spec = host.dispatchers[name]
        if spec.forget is not None or spec.holding is not None:
            found.append((name, chosen, ids))
    return found


def forget_files(
    host: Host, settings: MessagingSettings, shop: str, messages: Mapping[Medium, Collection[str]]
) -> list[str]:
    """Have each dispatcher take ``messages`` (a redacted person's, by medium) out of
    the files it keeps; the files changed or deleted."""
    changed: list[str] = []
    for name, chosen, ids in _keepers(host, settings, shop, messages):
        forget = host.dispatchers[name].forget
        if forget is not None:
            changed += forget(chosen, shop, ids)
    return changed


def files_holding(
    host: Host, settings: MessagingSettings, shop: str, messages: Mapping[Medium, Collection[str]]
) -> list[dict[str, Any]]:
    """The files of each dispatcher that hold any of ``messages``, for a data request."""
    found: list[dict[str, Any]] = []
    for name, chosen, ids in _keepers(host, settings, shop, messages):
        holding = host.dispatchers[name].holding
        if holding is not None:
            found += [{"dispatcher": name, "run": run} for run in holding(chosen, shop, ids)]
    return found


HOLDER = EngagePersonalData()
register_holder("engage", HOLDER)
