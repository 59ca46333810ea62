"""A redaction reaches what the engagement layer holds of the person: the addresses
their messages went to and the consent statements made through omnicrm."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.store.schema import consent_records
from omnicrm.engage import tracking
from omnicrm.engage.personal import HOLDER
from omnicrm.engage.schema import outbox
from omnicrm.engage.tracking import Event, MessageRef
from tests.engage.conftest import NOW, SHOP, build, messaging, person, unsubscribe
from tests.engage.test_sender import planned, sender


def test_a_redaction_clears_the_persons_addresses_and_statements(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    campaign = planned(store, host, drop)
    assert sender(store, host, messaging(drop)).send(campaign.name).sent == 2
    unsubscribe(store, "web", "C1")
    unsubscribe(store, "web", "C2")
    with store.engine.begin() as conn:  # C1 opened the message
        row = conn.execute(
            select(outbox.c.id).where(outbox.c.address == "p1@example.jp")
        ).scalar_one()
        assert tracking.record(conn, MessageRef(SHOP, campaign.id, row), Event.OPEN, NOW)

    with store.engine.connect() as conn:
        held = HOLDER.export(conn, "web", "C1")
    assert [m["address"] for m in held["messages"]] == ["p1@example.jp"]
    assert [(m["first_opened_at"], m["first_clicked_at"]) for m in held["messages"]] == [
        (NOW.isoformat(), None)
    ]
    assert [s["state"] for s in held["consent_statements"]] == ["opted_out"]

    store.redact_customer("web", "C1")

    with store.engine.connect() as conn:
        addresses = dict(conn.execute(select(outbox.c.profile_id, outbox.c.address)).all())
        stated = conn.execute(
            select(consent_records.c.record_id, func.count()).group_by(consent_records.c.record_id)
        ).all()
    assert sorted(addresses.values(), key=str) == [None, "p2@example.jp"]
    assert stated == [("C2", 1)]
