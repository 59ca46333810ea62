# ruff: noqa: RUF001 (a full-width postal code is what a record may hold)
"""A postal campaign end to end: the sender gives the postal dispatcher each person's
name and stored address, and ends the run, so the print files are whole when the
campaign is done."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from omnicrm.core.host import Host
from omnicrm.core.records import Address, Consent, ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.schema import outbox
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.postal import plugin as postal_plugin
from tests.engage.conftest import NOW, SHOP, T0, TOKYO, build, person


def address(code: str) -> Address:
    return Address(
        postal_code=code, prefecture="東京都", city="渋谷区", line1="神宮前1-2-3", line2="青山101"
    )


def test_a_postal_campaign_writes_labels_for_its_recipients_and_lists_the_rest(
    store: Store, tmp_path: Path
) -> None:
    host = Host.load(extra={"postal": postal_plugin}, use_entry_points=False)
    postal = [Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN, updated_at=T0)]
    build(
        store,
        [
            person(1, consents=postal, address=address("150-0001")),
            person(2, consents=postal, address=address("１５００００２")),
            person(3, consents=postal, address=address("150-00")),
            person(4, address=address("150-0004")),  # no postal consent: never reached
        ],
    )
    directory = tmp_path / "dm"
    settings = MessagingSettings.model_validate(
        {
            "dispatchers": {
                "postal": {"dispatcher": "postal", "settings": {"directory": str(directory)}}
            }
        }
    )
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            settings,
            shop=SHOP,
            name="winter-dm",
            segment="number_of_orders >= 1",
            medium=Medium.POSTAL,
            variants=[Variant(name="A", body="{{ name }}へ 冬のご案内")],
            now=NOW,
        )
        campaign = campaigns.get(conn, cid, shop=SHOP)
        campaigns.plan(conn, campaign, settings, now=NOW, tz=TOKYO)
    sender = Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=settings, tz=TOKYO, clock=lambda: NOW
    )
    result = sender.send("winter-dm")
    assert (result.sent, result.rejected, result.finished) == (2, 1, True)

    (recipients,) = [p for p in directory.glob("*.csv") if "unaddressable" not in p.name]
    rows = list(csv.reader(io.StringIO(recipients.read_text(encoding="utf-8-sig"))))
    assert [(r[0], r[5]) for r in rows[1:]] == [
        ("150-0001", "山田 花子1 様"),
        ("150-0002", "山田 花子2 様"),
    ]
    assert recipients.name.startswith(f"{SHOP}_winter-dm_")
    assert recipients.with_name(recipients.stem + "-labels.pdf").exists()
    listed = recipients.with_name(recipients.stem + "-unaddressable.csv")
    (row,) = list(csv.reader(io.StringIO(listed.read_text(encoding="utf-8-sig"))))[1:]
    assert row[2] == "the postal code has 5 digits, not 7 (NNN-NNNN)"
    with store.engine.connect() as conn:
        errors = conn.execute(select(outbox.c.status, outbox.c.error)).all()
        report = campaigns.report(conn, campaigns.get(conn, cid, shop=SHOP))
    assert sorted(s for s, _ in errors).count("rejected") == 1
    assert any(e and "5 digits" in e and "-unaddressable.csv" in e for _, e in errors)
    assert report.campaign.status == "done"
