"""A campaign's results: conversions inside each recipient's window only, the hold-out
group counted from the campaign's send over a window as long, and the lift with the
intervals of omnicrm.engage.stats."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.records import ConsentState, Order, OrderLine
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.engage import campaigns, stats
from omnicrm.engage.results import Purchase, Recipient, attribute, campaign_results, summarise
from omnicrm.engage.schema import outbox
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_campaigns import make
from tests.engage.test_sender import sender

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)


def test_an_order_counts_inside_its_recipients_window_only() -> None:
    start = NOW
    recipients = [Recipient(1, "A", start), Recipient(2, "A", start + DAY)]
    purchases = [
        Purchase(1, start, Decimal(100)),  # the moment it was handed over: counts
        Purchase(1, start + WEEK - dt.timedelta(microseconds=1), Decimal(20)),
        Purchase(1, start + WEEK, Decimal(5000)),  # a week after: out
        Purchase(1, start - dt.timedelta(seconds=1), Decimal(7000)),  # before: out
        Purchase(2, start + DAY / 2, Decimal(300)),  # before row 2's message: out
        Purchase(3, start, Decimal(9)),  # not a recipient
    ]
    assert attribute(recipients, purchases, WEEK) == {1: Decimal(120)}


def test_a_group_summed_and_compared_with_the_stats_module() -> None:
    rows = {("sent", None): 8, ("rejected", None): 1, ("suppressed", "no_consent"): 2}
    group = summarise(
        "A",
        rows,
        bounced_later=1,
        opened=5,
        clicked=2,
        recipients=8,
        revenue=[Decimal(1000), Decimal(3000)],
    )
    assert (group.planned, group.sent, group.bounced, group.delivered) == (11, 8, 2, 7)
    assert group.suppressed == {"no_consent": 2}
    assert (group.converted, group.revenue, group.conversion_rate) == (2, Decimal(4000), 0.25)
    assert group.revenue_per_recipient == 500.0
    # 8 recipients: 1000, 3000 and six zeros.
    values = [1000.0, 3000.0] + [0.0] * 6
    mean = sum(values) / 8
    assert math.isclose(
        group.revenue_variance, sum((v - mean) ** 2 for v in values) / 7, rel_tol=1e-12
    )


def order(
    cid: str, oid: str, at: dt.datetime, total: int, status: str = "paid", channel: str = "web"
) -> Order:
    """A purchase of one line of ``total`` yen placed at ``at``."""
    return Order(
        id=oid,
        customer_id=cid,
        status=status,  # type: ignore[arg-type]
        channel=channel,
        placed_at=at,
        updated_at=at,
        subtotal=Decimal(total),
        total=Decimal(total),
        lines=[OrderLine(product_name="煎茶", quantity=1, unit_price=Decimal(total))],
    )


def test_the_hold_out_group_is_those_who_would_have_been_sent_and_converts_from_the_send(
    store: Store, host: Host, drop: Path
) -> None:
    people = [person(i) for i in range(40)] + [
        person(i, consent=ConsentState.OPTED_OUT) for i in range(40, 60)
    ]
    build(store, people)
    campaign = make(store, host, drop, holdout=0.4)
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
        rows = conn.execute(select(outbox.c.profile_id, outbox.c.variant, outbox.c.reason)).all()
        pid = {i: profile_of(conn, "web", f"C{i}", shop=SHOP) for i in range(60)}
    reason_of = {p: (variant, reason) for p, variant, reason in rows}
    held = [i for i in range(60) if reason_of[pid[i]][0] == campaigns.HOLDOUT]
    assert any(i < 40 for i in held) and any(i >= 40 for i in held)
    for i in held:  # only those who would have been sent it are held out
        assert reason_of[pid[i]][1] == ("holdout" if i < 40 else "no_consent")
    later = NOW + dt.timedelta(hours=2)
    sender(store, host, messaging(drop), later).send(campaign.id)
    sent = [i for i in range(40) if i not in held]
    kept = [i for i in held if i < 40]
    orders = [
        # A recipient buys a day after, another on day 8 (out), a third before the send.
        order(f"C{sent[0]}", "X1", later + DAY, 2000),
        order(f"C{sent[1]}", "X2", later + 8 * DAY, 9000),
        order(f"C{sent[2]}", "X3", later - dt.timedelta(minutes=1), 9000),
        order(f"C{sent[3]}", "X4", later + DAY, 500, status="cancelled"),
        # Held out: one buys within the week from the send, one after it.
        order(f"C{kept[0]}", "H1", later + 6 * DAY, 1500),
        order(f"C{kept[1]}", "H2", later + WEEK, 800),
        # Not sent (no consent), not held out: counts nowhere.
        order("C45", "N1", later + DAY, 700),
    ]
    store.write_batch("web", Stream.ORDERS, orders)
    with store.engine.connect() as conn:
        found = campaign_results(
            conn, campaigns.get(conn, campaign.id, shop=SHOP), window=WEEK, tracked=False
        )
    a, hold = found.group("A"), found.group(campaigns.HOLDOUT)
    assert (a.sent, a.recipients, a.converted, a.revenue) == (len(sent), len(sent), 1, 2000)
    assert (hold.recipients, hold.converted, hold.revenue) == (len(kept), 1, Decimal(1500))
    assert hold.suppressed["holdout"] == len(kept) and hold.planned == len(held)
    assert found.sent_from == later and found.counted_until == later + WEEK
    (lift,) = found.comparisons
    assert lift.conversion_rate == stats.rate_difference(1, len(sent), 1, len(kept))
    expected = stats.mean_difference(
        len(sent),
        2000 / len(sent),
        a.revenue_variance,
        len(kept),
        1500 / len(kept),
        hold.revenue_variance,
    )
    assert lift.revenue_per_recipient == expected
    document = found.to_json()
    assert document["groups"][0]["revenue"] == "2000" and document["groups"][0]["opened"] is None
