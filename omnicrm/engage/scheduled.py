"""Campaigns sent without anyone running ``send``: by the scheduler at their time, or
from the terminal UI.

:func:`start` plans a draft or scheduled campaign (its recipients fixed) the way
``omnicrm campaigns send`` does; :func:`send_due` is the scheduler's job for one shop:
it plans each scheduled campaign whose time has come and sends every campaign the
scheduler owns (one with a scheduled time) that still has rows to send. A campaign sent
by hand (``omnicrm campaigns send``, the terminal UI) that the quiet hours stop is
handed to it by the sender, which sets its scheduled time to their end
(:meth:`~omnicrm.engage.sender.Sender.send`). It honours what
the sender honours: the quiet hours (outside them only; a campaign stopped by them goes
on once they end), a pause (not sent until resumed) and a cancel (never sent). Rows are
claimed by the sender as ever, so a send from the command line or the terminal UI of
the same campaign never sends a row twice; on SQLite, where one sender per shop runs, a
check that finds another sender at work leaves the shop to it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from omnicrm.engage.campaigns import Campaign, CampaignError, Plan, get, plan
from omnicrm.engage.schema import campaigns, outbox
from omnicrm.engage.sender import Sender, SendResult
from omnicrm.engage.templates import TemplateError
from omnicrm.errors import ConfigError, LockedError

log = logging.getLogger("omnicrm.engage")

OWNED = ("scheduled", "planned", "sending")
"""The states of a campaign the scheduler may still have to send."""
OPEN = ("planned", "claimed", "handed_over")
"""The states of a row not settled yet (a dead sender's are settled by the next run)."""


def start(sender: Sender, name_or_id: str | int, *, now: dt.datetime) -> Plan | None:
    """Plan ``sender``'s shop's campaign if it is a draft or scheduled (its recipients
    fixed now); None if it was planned already. Two processes starting it at once plan
    it once: each first writes the campaign's row where it is still unplanned, which on
    either backend waits for the other's transaction and then finds it planned."""
    with sender.store.engine.begin() as conn:
        c = campaigns.c
        key = c.id == int(name_or_id) if str(name_or_id).isdigit() else c.name == name_or_id
        claimed = conn.execute(
            update(campaigns)
            .where(c.shop == sender.shop, key, c.status.in_(("draft", "scheduled")))
            .values(status=c.status)
        ).rowcount
        campaign = get(conn, name_or_id, shop=sender.shop)  # says which, if there is none
        if not claimed:
            return None
        return plan(
            conn,
            campaign,
            sender.settings,
            now=now,
            tz=sender.policy.tz,
            base_url=sender.links.base_url if sender.links else None,
        )


@dataclass(frozen=True)
class Sent:
    """What the scheduler did with one campaign: its plan (if it planned it now) and the
    sender's run, or why it could not."""

    campaign: str
    plan: Plan | None = None
    result: SendResult | None = None
    error: str | None = None


def owned(sender: Sender, now: dt.datetime) -> list[Campaign]:
    """The shop's campaigns with a scheduled time that has come and rows still to send
    (or still to plan), oldest time first."""
    c, o = campaigns.c, outbox.c
    waiting = (
        select(o.id).where(o.shop == c.shop, o.campaign_id == c.id, o.status.in_(OPEN)).exists()
    )
    with sender.store.engine.connect() as conn:
        ids = conn.execute(
            select(c.id)
            .where(
                c.shop == sender.shop,
                c.scheduled_at.is_not(None),
                c.scheduled_at <= now,
                c.status.in_(OWNED),
                (c.status == "scheduled") | waiting,
            )
            .order_by(c.scheduled_at, c.id)
        ).scalars()
        return [get(conn, i, shop=sender.shop) for i in list(ids)]


def send_due(sender: Sender, *, now: dt.datetime | None = None) -> list[Sent]:
    """Plan and send ``sender``'s shop's campaigns whose time has come (see the module);
    what became of each. Nothing is sent in the quiet hours. A campaign that cannot be
    planned (its segment or template no longer valid, its medium no longer configured)
    goes back to draft with the reason in the log, so it is not tried again every check."""
    now = now or sender.clock()
    if sender.policy.quiet_until(now) is not None:
        return []
    done: list[Sent] = []
    for campaign in owned(sender, now):
        try:
            planned = start(sender, campaign.id, now=now)
        except (CampaignError, ConfigError, TemplateError) as exc:
            log.error(
                "scheduled campaign %s of shop %s cannot be sent, back to draft: %s",
                campaign.name,
                sender.shop,
                exc,
            )
            _back_to_draft(sender, campaign)
            done.append(Sent(campaign.name, error=str(exc)))
            continue
        try:
            result = sender.send(campaign.id)
        except LockedError as exc:
            # SQLite: another sender has the shop's outbox; it sends these rows too.
            log.info("campaign %s of shop %s waits: %s", campaign.name, sender.shop, exc)
            done.append(Sent(campaign.name, planned, error=str(exc)))
            break
        except (CampaignError, ConfigError) as exc:
            # Paused or cancelled between the look and the send (honoured), or its medium
            # no longer configured: said, and tried again at the next check.
            log.warning("campaign %s of shop %s not sent: %s", campaign.name, sender.shop, exc)
            done.append(Sent(campaign.name, planned, error=str(exc)))
            continue
        log.info(
            "campaign %s of shop %s sent at its time: %d sent, %d rejected, %d failed",
            campaign.name,
            sender.shop,
            result.sent,
            result.rejected,
            result.failed,
        )
        done.append(Sent(campaign.name, planned, result))
        if result.waiting_until is not None:
            break  # the quiet hours began: the next check after them goes on
    return done


def _back_to_draft(sender: Sender, campaign: Campaign) -> None:
    c = campaigns.c
    with sender.store.engine.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(c.shop == sender.shop, c.id == campaign.id, c.status == "scheduled")
            .values(status="draft")
        )


__all__ = ["OWNED", "Sent", "owned", "send_due", "start"]
