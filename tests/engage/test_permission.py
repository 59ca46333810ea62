"""record_word: the one way a person's word (an unsubscribe, a platform's follow or block,
an account link, the operator) is written: statement, then the suppression list."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from omnicrm.core import consent
from omnicrm.core.consent import Method, Refusal
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import suppression_lifts
from omnicrm.crm.profiles import profile_of
from omnicrm.engage.permission import (
    Policy,
    lift_bounce,
    may_send,
    members_of,
    record_word,
)
from omnicrm.engage.settings import MessagingSettings
from omnicrm.errors import DataError
from tests.engage.conftest import NOW, SHOP, TOKYO, bounce, build, person, say, unsubscribe


def suppressed(store: Store) -> dict[str, Refusal]:
    with store.engine.connect() as conn:
        return consent.suppressed(conn, shop=SHOP, medium=Medium.EMAIL)


def test_a_withdrawal_is_stated_on_every_member_and_suppresses_the_address(
    store: Store,
) -> None:
    build(store, [person(1)])
    build(store, [person(1, id="W1")], connection="pos")  # the same person, merged
    with store.engine.begin() as conn:
        pid = profile_of(conn, "web", "C1", shop=SHOP)
        assert pid is not None
        members = members_of(conn, pid, shop=SHOP)
        assert len(members) == 2
        written = record_word(
            conn,
            shop=SHOP,
            members=members,
            address="P1@example.jp",
            medium=Medium.EMAIL,
            state=ConsentState.OPTED_OUT,
            at=NOW,
            source="campaign:winter",
            method=Method.LINK,
        )
        assert written == 2
        standing = consent.latest_statement(conn, shop=SHOP, members=members, medium=Medium.EMAIL)
        assert standing is not None and standing.state == ConsentState.OPTED_OUT
    assert suppressed(store) == {"p1@example.jp": Refusal.UNSUBSCRIBED}


def test_an_address_linked_to_no_one_is_still_suppressed_and_lifted_only_if_unsubscribed(
    store: Store,
) -> None:
    def word(address: str, state: ConsentState) -> int:
        with store.engine.begin() as conn:
            return record_word(
                conn,
                shop=SHOP,
                members=[],
                address=address,
                medium=Medium.EMAIL,
                state=state,
                at=NOW,
                source="line",
                method="line_unfollow",  # a platform's word arrives as the value
            )

    assert word("a@example.jp", ConsentState.OPTED_OUT) == 0
    with store.engine.begin() as conn:
        consent.suppress(
            conn,
            shop=SHOP,
            medium=Medium.EMAIL,
            address="b@example.jp",
            reason=Refusal.BOUNCED,
            at=NOW,
        )
    assert set(suppressed(store)) == {"a@example.jp", "b@example.jp"}
    word("a@example.jp", ConsentState.OPTED_IN)
    word("b@example.jp", ConsentState.OPTED_IN)  # a new opt-in does not make it deliverable
    assert suppressed(store) == {"b@example.jp": Refusal.BOUNCED}


def lifts(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(suppression_lifts).order_by(suppression_lifts.c.id))
        return [dict(r._mapping) for r in rows]


def verdict(store: Store, record_id: str) -> Refusal | None:
    """Why the person of web:``record_id`` may not be emailed now (None: they may)."""
    with store.engine.connect() as conn:
        pid = profile_of(conn, "web", record_id, shop=SHOP)
        assert pid is not None
        found = may_send(
            conn,
            shop=SHOP,
            profile_id=pid,
            medium=Medium.EMAIL,
            now=NOW,
            policy=Policy(MessagingSettings(), TOKYO),
        )
    return found.refusal


def lift(store: Store, address: str, why: str = "mailbox fixed, customer called") -> None:
    with store.engine.begin() as conn:
        lift_bounce(
            conn, shop=SHOP, medium=Medium.EMAIL, address=address, at=NOW, by="sato", why=why
        )


def test_an_operator_lifts_a_bounce_with_who_why_and_when_and_consent_still_rules(
    store: Store,
) -> None:
    build(store, [person(1), person(2), person(3, consent=None)])
    for n in (1, 2, 3):
        bounce(store, f"P{n}@example.jp", at=NOW - dt.timedelta(days=3))
    unsubscribe(store, "web", "C2")  # bounced first: the entry keeps its first reason
    assert {verdict(store, f"C{n}") for n in (1, 2, 3)} == {Refusal.BOUNCED}
    lift(store, " p1@EXAMPLE.jp ")
    assert verdict(store, "C1") is None  # opted in, deliverable again: sent to
    (lifted,) = lifts(store)
    assert lifted["address"] == "p1@example.jp" and lifted["reason"] == "bounced"
    assert lifted["detail"] == "550 5.1.1 user unknown"
    assert lifted["since"] == NOW - dt.timedelta(days=3) and lifted["lifted_at"] == NOW
    assert (lifted["lifted_by"], lifted["method"]) == ("sato", "operator")
    assert lifted["why"] == "mailbox fixed, customer called"
    # Lifting a bounce lifts no opt-out and grants no consent.
    lift(store, "p2@example.jp")
    assert verdict(store, "C2") == Refusal.UNSUBSCRIBED
    lift(store, "p3@example.jp")
    assert verdict(store, "C3") == Refusal.NO_CONSENT
    assert suppressed(store) == {}
    bounce(store, "p1@example.jp")  # bounced again: suppressed again
    assert verdict(store, "C1") == Refusal.BOUNCED


def test_an_unsubscribe_or_an_unknown_address_is_refused_and_nothing_is_lifted(
    store: Store,
) -> None:
    build(store, [person(1)])
    unsubscribe(store, "web", "C1")
    with pytest.raises(DataError, match=r"unsubscribed \(operator via operator\): a person's"):
        lift(store, "p1@example.jp")
    with pytest.raises(DataError, match="not on the suppression list of shop 'default' for email"):
        lift(store, "nobody@example.jp")
    bounce(store, "p2@example.jp")
    with pytest.raises(DataError, match="say why"):
        lift(store, "p2@example.jp", why="  ")
    with (
        store.engine.begin() as conn,
        pytest.raises(DataError, match="not on the suppression list"),
    ):
        lift_bounce(  # another medium's list
            conn, shop=SHOP, medium=Medium.LINE, address="p2@example.jp", at=NOW, by="x", why="y"
        )
    assert suppressed(store) == {
        "p1@example.jp": Refusal.UNSUBSCRIBED,
        "p2@example.jp": Refusal.BOUNCED,
    }
    assert lifts(store) == []


def test_a_persons_opt_in_that_lifts_their_unsubscribe_is_kept_too(store: Store) -> None:
    build(store, [person(1)])
    unsubscribe(store, "web", "C1")
    say(
        store,
        "web",
        "C1",
        ConsentState.OPTED_IN,
        source="preferences page",
        method=Method.LINK,
        at=NOW + dt.timedelta(hours=1),
        evidence="checkbox: ニュースレターを受け取る",
    )
    (lifted,) = lifts(store)
    assert (lifted["reason"], lifted["lifted_by"], lifted["method"]) == (
        "unsubscribed",
        "preferences page",
        "link",
    )
    assert lifted["why"] == "checkbox: ニュースレターを受け取る"
    assert verdict(store, "C1") is None
