"""Bounces stop further sends: a 5xx for the recipient at send time, and a delivery
report (RFC 3464) that comes back later, both put the address on the suppression list
as bounced; a temporary failure does not. A real SMTP server (aiosmtpd) answers."""

from __future__ import annotations

import datetime as dt
import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

import omnicrm.plugins.email.plugin as email_plugin
from omnicrm.core import consent
from omnicrm.core.consent import Refusal
from omnicrm.core.host import Host
from omnicrm.core.records import Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import suppressions
from omnicrm.engage import campaigns
from omnicrm.engage.bounces import Outcome, apply, read_reports
from omnicrm.engage.results import campaign_results
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.plugins.email.smtp import POOL
from tests.engage.conftest import NOW, SHOP, TOKYO, build, person
from tests.engage.test_campaigns import make


@pytest.fixture
def catcher() -> Iterator[SmtpCatcher]:
    POOL.close()
    with SmtpCatcher() as server:
        yield server
    POOL.close()


@pytest.fixture
def smtp_host() -> Host:
    loaded = Host.load(extra={"email": email_plugin}, use_entry_points=False)
    assert not loaded.failures, loaded.failures
    return loaded


def mail_settings(catcher: SmtpCatcher) -> MessagingSettings:
    return MessagingSettings.model_validate(
        {"dispatchers": {"email": {"dispatcher": "email", "settings": catcher.settings()}}}
    )


def send(store: Store, host: Host, catcher: SmtpCatcher, name: str) -> campaigns.Campaign:
    settings = mail_settings(catcher)
    campaign = make(store, host, Path("."), name=name, settings=settings)
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, settings, now=NOW, tz=TOKYO)
    Sender(
        store,
        host,
        shop=SHOP,
        shop_name="見本店",
        settings=settings,
        tz=TOKYO,
        clock=lambda: NOW,
    ).send(campaign.id)
    return campaign


def listed(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(suppressions.c.address, suppressions.c.reason, suppressions.c.detail).where(
                suppressions.c.shop == SHOP, suppressions.c.medium == Medium.EMAIL.value
            )
        )
        return {address: (reason, detail) for address, reason, detail in rows}


def bounced(conn: Connection, campaign: campaigns.Campaign) -> int:
    """The bounced count of the campaign's report."""
    found = campaign_results(
        conn,
        campaigns.get(conn, campaign.id, shop=SHOP),
        window=dt.timedelta(days=7),
        tracked=False,
    )
    return sum(g.bounced for g in found.groups)


def outbox_reasons(store: Store, campaign: campaigns.Campaign) -> dict[str, str | None]:
    from omnicrm.engage.schema import outbox

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.message_id, outbox.c.status, outbox.c.reason).where(
                outbox.c.campaign_id == campaign.id
            )
        )
        return {mid: f"{status}:{reason}" for mid, status, reason in rows}


def test_a_hard_bounce_at_send_suppresses_the_address_and_a_deferral_does_not(
    store: Store, smtp_host: Host, catcher: SmtpCatcher
) -> None:
    build(
        store,
        [
            person(1),
            person(2, email="Bounce@Example.jp"),  # 550 5.1.1 at RCPT TO
            person(3, email="defer@example.jp"),  # 451 4.2.0 at RCPT TO
        ],
    )
    first = send(store, smtp_host, catcher, "first")
    assert [a.rcpt_tos for a in catcher.wait_for(1)] == [("p1@example.jp",)]
    found = listed(store)
    assert set(found) == {"bounce@example.jp"}  # kept without case, as the list keys it
    reason, detail = found["bounce@example.jp"]
    assert reason == "bounced" and detail is not None and detail.startswith("550 5.1.1")
    # The report counts it among the bounced.
    with store.engine.connect() as conn:
        results = bounced(conn, first)
    assert results == 1
    # The next campaign skips the address with reason bounced; the deferred one is tried.
    second = send(store, smtp_host, catcher, "second")
    reasons = sorted(outbox_reasons(store, second).values())
    assert reasons == ["failed:None", "sent:None", "suppressed:bounced"]
    assert len(catcher.wait_for(2)) == 2


def dsn(
    original: bytes | None,
    recipient: str,
    status: str,
    action: str = "failed",
    *,
    headers_only: bool = False,
) -> bytes:
    """A delivery report as a receiving MTA writes it (RFC 3464)."""
    parts = [
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"This is the mail system at host mx.example.jp.\r\n",
        (
            "Content-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.jp\r\n"
            "Arrival-Date: Fri, 20 Nov 2026 12:00:00 +0900\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\n"
            f"Original-Recipient: rfc822;{recipient}\r\n"
            f"Action: {action}\r\n"
            f"Status: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 {status} mailbox problem\r\n"
        ).encode(),
    ]
    if original is not None:
        if headers_only:
            head = original.split(b"\r\n\r\n", 1)[0]
            parts.append(b"Content-Type: text/rfc822-headers\r\n\r\n" + head + b"\r\n")
        else:
            parts.append(b"Content-Type: message/rfc822\r\n\r\n" + original)
    boundary = b"=_report_boundary"
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return (
        b"From: MAILER-DAEMON@mx.example.jp\r\n"
        b"To: info@tokyo-tea.example.jp\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="'
        + boundary
        + b'"\r\n\r\n'
        + body
        + b"--"
        + boundary
        + b"--\r\n"
    )


def test_delivery_reports_from_files_suppress_hard_bounces_only(
    store: Store, smtp_host: Host, catcher: SmtpCatcher, tmp_path: Path
) -> None:
    build(store, [person(i) for i in range(1, 6)])
    campaign = send(store, smtp_host, catcher, "winter")
    arrived = {a.rcpt_tos[0]: a.data for a in catcher.wait_for(5)}
    # An .eml with the whole message returned; the Message-ID matches it.
    (tmp_path / "one.eml").write_bytes(dsn(arrived["p1@example.jp"], "p1@example.jp", "5.1.1"))
    # An mbox: headers returned only (5.2.1), a delay, a full mailbox, and a plain reply.
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(dsn(arrived["p2@example.jp"], "p2@example.jp", "5.2.1", headers_only=True))
    box.add(dsn(arrived["p3@example.jp"], "p3@example.jp", "4.4.7", action="delayed"))
    box.add(dsn(arrived["p4@example.jp"], "p4@example.jp", "5.2.2"))
    reply = EmailMessage()
    reply["Subject"] = "Re: 冬のご案内"
    reply.set_content("ありがとうございます")
    box.add(reply)
    box.close()
    # A Maildir: no original returned, matched by the recipient; and a stranger's.
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(dsn(None, "P5@example.jp", "5.1.1"))
    maildir.add(dsn(None, "stranger@example.jp", "5.1.1"))
    reports = read_reports([tmp_path / "one.eml", tmp_path / "bounces.mbox", tmp_path / "Maildir"])
    assert reports.read == 7 and len(reports.not_reports) == 1
    with store.engine.begin() as conn:
        done = apply(conn, reports.failures, shop=SHOP, now=NOW)
    outcome = {m.failure.recipient: m.outcome for m in done}
    assert outcome == {
        "p1@example.jp": Outcome.SUPPRESSED,
        "p2@example.jp": Outcome.SUPPRESSED,
        "p3@example.jp": Outcome.TEMPORARY,
        "p4@example.jp": Outcome.NOT_THE_ADDRESS,
        "P5@example.jp": Outcome.SUPPRESSED,
        "stranger@example.jp": Outcome.UNMATCHED,
    }
    assert all(m.campaign == "winter" for m in done if m.outcome != Outcome.UNMATCHED)
    found = listed(store)
    assert set(found) == {"p1@example.jp", "p2@example.jp", "p5@example.jp"}
    assert found["p1@example.jp"][0] == "bounced"
    assert (found["p1@example.jp"][1] or "").startswith("DSN 5.1.1")
    # Read again: nothing new, each already on the list.
    with store.engine.begin() as conn:
        again = apply(conn, reports.failures, shop=SHOP, now=NOW)
    assert [m.outcome for m in again].count(Outcome.ALREADY) == 3
    with store.engine.connect() as conn:
        results = bounced(conn, campaign)
        verdict = consent.consent_of(
            conn, shop=SHOP, members=[("web", "C1")], medium=Medium.EMAIL, address="p1@example.jp"
        )
    assert results == 3  # bounced after they were sent
    assert verdict.refusal == Refusal.BOUNCED


def test_a_report_of_another_shop_or_a_bad_path_changes_nothing(
    store: Store, smtp_host: Host, catcher: SmtpCatcher, tmp_path: Path
) -> None:
    from omnicrm.errors import DataError

    build(store, [person(1)])
    send(store, smtp_host, catcher, "winter")
    (original,) = [a.data for a in catcher.wait_for(1)]
    (tmp_path / "r.eml").write_bytes(dsn(original, "p1@example.jp", "5.1.1"))
    reports = read_reports([tmp_path / "r.eml"])
    with store.engine.begin() as conn:
        done = apply(conn, reports.failures, shop="another", now=NOW)
    assert [m.outcome for m in done] == [Outcome.UNMATCHED]
    assert listed(store) == {}
    (tmp_path / "notmail").mkdir()
    with pytest.raises(DataError, match="notmail: a folder that is no Maildir"):
        read_reports([tmp_path / "r.eml", tmp_path / "notmail"])
