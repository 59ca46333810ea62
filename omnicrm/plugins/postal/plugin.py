"""The postal dispatcher: registration, the dispatch hook and the end of a run.

This module is what the ``omnicrm`` entry point ``postal`` names. Each message becomes a
row of its campaign run's journal (see :mod:`~omnicrm.plugins.postal.runs` for why a
journal, and how a restart neither repeats nor loses a row); ``finish`` builds the
run's recipient CSV, address labels PDF and unaddressable list from it. A message that
cannot make a label (no valid postal code, no street, no name, a character the CSV's
encoding or the label font lacks, too long for a label) is ``rejected`` with the reason
and listed in the run's ``-unaddressable.csv``, never dropped silently.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

import omnicrm
from omnicrm import DeliveryStatus, Dispatcher, DispatchOutcome, Medium, Message
from omnicrm.errors import PluginError
from omnicrm.plugins.postal.address import (
    Recipient,
    Unaddressable,
    check_encodable,
    given_address,
    recipient_of,
)
from omnicrm.plugins.postal.sandbox import sandbox
from omnicrm.plugins.postal.settings import PostalSettings

DISPATCHER_NAME = "postal"
DIRECTORY = "postal"
"""The default directory of the files, under the data dir."""

log = logging.getLogger("omnicrm.plugins.postal")


def directory_of(settings: PostalSettings) -> Path:
    """Where ``settings`` put the files: their ``directory``, or postal/ in the data dir."""
    return settings.directory if settings.directory is not None else omnicrm.data_dir() / DIRECTORY


def _settings(settings: BaseModel) -> PostalSettings:
    if not isinstance(settings, PostalSettings):
        raise PluginError(f"postal got settings of type {type(settings).__name__}")
    return settings


def _run_of(message: Message) -> tuple[str, str]:
    """The shop and campaign a message belongs to (a message sent outside a campaign:
    the run ``direct``)."""
    shop = str(message.metadata.get("shop") or "shop")
    return shop, str(message.metadata.get("campaign") or "direct")


def finish(settings: BaseModel, shop: str, campaign: str) -> None:
    """Build the files of ``shop``'s ``campaign``'s open run (see the module)."""
    from omnicrm.plugins.postal.runs import runs_in  # reportlab: only when a run ends

    chosen = _settings(settings)
    written = runs_in(directory_of(chosen)).finish(shop, campaign, chosen)
    if written:
        log.info("postal DM of %s/%s: %s", shop, campaign, ", ".join(str(p) for p in written))


def forget(settings: BaseModel, shop: str, message_ids: Collection[str]) -> list[str]:
    """Take a redacted person's messages out of ``shop``'s runs and rebuild (or delete)
    the files that held them; the names of those files."""
    from omnicrm.plugins.postal.runs import runs_in

    chosen = _settings(settings)
    changed = runs_in(directory_of(chosen)).forget(shop, message_ids, chosen)
    if changed:
        log.info("postal DM of %s: rebuilt without a redacted person: %s", shop, ", ".join(changed))
    return changed


def holding(settings: BaseModel, shop: str, message_ids: Collection[str]) -> list[str]:
    """The runs of ``shop`` that hold any of ``message_ids`` (a data request)."""
    from omnicrm.plugins.postal.runs import runs_in

    directory = directory_of(_settings(settings))
    if not directory.is_dir():
        return []  # nothing was ever written
    return runs_in(directory).holding(shop, message_ids)


DISPATCHER = Dispatcher(
    name=DISPATCHER_NAME,
    medium=Medium.POSTAL,
    settings=PostalSettings,
    title="Postal DM (print files)",
    sandbox=sandbox,
    finish=finish,
    forget=forget,
    holding=holding,
)


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    """Register the ``postal`` dispatcher."""
    register.dispatcher(DISPATCHER)


def _label(message: Message, settings: PostalSettings) -> Recipient | str:
    """The recipient of ``message`` if a label can be made for it, else why not."""
    # reportlab is imported when a message is sent, not for every command that loads
    # the plugins.
    from omnicrm.plugins.postal.labels import layout

    try:
        recipient = recipient_of(message, settings.honorific)
        check_encodable(recipient, settings.encoding, settings.columns)
        layout(recipient, settings.labels)
    except Unaddressable as exc:
        return exc.reason
    return recipient


def _unaddressable_row(message: Message, reason: str) -> list[str]:
    """The row of the unaddressable list: what the message said, and why it failed."""
    given = given_address(message)
    name = " ".join(str(message.metadata.get(k) or "") for k in ("family_name", "given_name"))
    return [
        message.id,
        message.customer_id,
        reason,
        given["postal_code"],
        given["address"],
        name.strip(),
    ]


@omnicrm.hookimpl
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    """Add ``message``'s label to its campaign run; ``sent`` with the run and the label's
    number, or ``rejected`` with why no label can be made."""
    chosen = _settings(settings)
    shop, campaign = _run_of(message)
    today = dt.datetime.now(ZoneInfo(chosen.timezone)).date()
    directory = directory_of(chosen)
    label = _label(message, chosen)
    from omnicrm.plugins.postal.runs import runs_in

    try:
        runs = runs_in(directory)
        if isinstance(label, Recipient):
            recorded = runs.record(
                shop=shop, campaign=campaign, today=today, message_id=message.id, recipient=label
            )
        else:
            recorded = runs.record(
                shop=shop,
                campaign=campaign,
                today=today,
                message_id=message.id,
                unaddressable=_unaddressable_row(message, label),
            )
    except OSError as exc:
        return DispatchOutcome(
            DeliveryStatus.FAILED,
            error=f"cannot write the postal DM files in {directory}: {exc.strerror or exc}",
        )
    if recorded.label is not None:
        return DispatchOutcome(DeliveryStatus.SENT, provider_id=f"{recorded.run}#{recorded.label}")
    reason = label if isinstance(label, str) else "listed before as unaddressable"
    return DispatchOutcome(
        DeliveryStatus.REJECTED,
        error=f"message {message.id}: {reason}; listed in {recorded.run}-unaddressable.csv",
    )
