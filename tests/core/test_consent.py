"""Consent in the core: the latest statement across a person's records, the list of
addresses never to send to, and the record of when, where and how."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, select

from omnicrm.core import consent
from omnicrm.core.channels import Stream
from omnicrm.core.consent import Method, Refusal, Statement
from omnicrm.core.records import Consent, ConsentState, Customer, Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import consent_records
from omnicrm.errors import DataError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=30)
SHOP = "default"


def customer(cid: str, state: ConsentState, at: dt.datetime | None = T0) -> Customer:
    return Customer(
        id=cid,
        email=f"{cid.lower()}@example.jp",
        consents=[Consent(medium=Medium.EMAIL, state=state, updated_at=at, source="shopify")],
        updated_at=T0,
    )


def record(conn: Connection, members: list[tuple[str, str]], *args: Any) -> int:
    """``record_consent`` for email in SHOP: state, at, source, method[, evidence]."""
    state, at, source, method, *evidence = args
    return consent.record_consent(
        conn,
        shop=SHOP,
        members=members,
        medium=Medium.EMAIL,
        state=state,
        at=at,
        source=source,
        method=method,
        evidence=evidence[0] if evidence else None,
    )


def verdict(store: Store, members: list[tuple[str, str]], address: str | None = "a@example.jp"):  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return consent.consent_of(
            conn, shop=SHOP, members=members, medium=Medium.EMAIL, address=address
        )


def test_a_channel_opt_in_allows_and_anything_else_does_not(store: Store) -> None:
    store.write_batch(
        "web",
        Stream.CUSTOMERS,
        [
            customer("IN", ConsentState.OPTED_IN),
            customer("OUT", ConsentState.OPTED_OUT),
            customer("PENDING", ConsentState.PENDING),
            Customer(id="NONE", updated_at=T0),
        ],
    )
    assert verdict(store, [("web", "IN")]).allowed
    for cid in ("OUT", "PENDING", "NONE"):
        found = verdict(store, [("web", cid)])
        assert not found and found.refusal == Refusal.NO_CONSENT, cid
    assert verdict(store, [("web", "IN")], address=None).refusal == Refusal.NO_ADDRESS


def test_an_unsubscribe_outranks_an_untimed_or_older_channel_opt_in(store: Store) -> None:
    store.write_batch(
        "web",
        Stream.CUSTOMERS,
        [customer("A", ConsentState.OPTED_IN, at=None), customer("B", ConsentState.OPTED_IN)],
    )
    with store.engine.begin() as conn:
        record(
            conn,
            [("web", "A"), ("web", "B")],
            ConsentState.OPTED_OUT,
            LATER,
            "https://shop.example/unsubscribe",
            Method.ONE_CLICK,
            "message default.c1.p1.email",
        )
    for cid in ("A", "B"):
        found = verdict(store, [("web", cid)])
        assert found.refusal == Refusal.UNSUBSCRIBED
        assert found.statement is not None and found.statement.method == "one_click"
    # The record keeps when, where and how, for the 特定電子メール法.
    with store.engine.connect() as conn:
        row = conn.execute(select(consent_records).limit(1)).mappings().one()
    assert row["stated_at"] == LATER and row["source"].endswith("/unsubscribe")
    assert row["method"] == "one_click" and row["evidence"].startswith("message")


def test_a_later_timed_channel_opt_in_is_a_new_statement(store: Store) -> None:
    store.write_batch("web", Stream.CUSTOMERS, [customer("A", ConsentState.OPTED_IN, at=LATER)])
    with store.engine.begin() as conn:
        record(conn, [("web", "A")], ConsentState.OPTED_OUT, T0, "operator", Method.OPERATOR)
    assert verdict(store, [("web", "A")]).allowed


def test_one_opt_out_among_merged_records_wins_a_tie() -> None:
    yes = Statement(ConsentState.OPTED_IN, T0, "pos", None)
    no = Statement(ConsentState.OPTED_OUT, T0, "web", None)
    assert consent.latest([yes, no]) == no
    assert consent.latest([no, yes]) == no
    assert consent.latest([Statement(ConsentState.UNKNOWN, LATER, "x", None)]) is None


def test_a_suppressed_address_is_never_sent_to_whoever_holds_it(store: Store) -> None:
    store.write_batch("web", Stream.CUSTOMERS, [customer("A", ConsentState.OPTED_IN)])
    with store.engine.begin() as conn:
        consent.suppress(
            conn,
            shop=SHOP,
            medium=Medium.EMAIL,
            address=" A@Example.JP ",
            reason=Refusal.BOUNCED,
            at=T0,
            detail="550 5.1.1",
        )
        # Opting in again lifts an unsubscribe, never a bounce.
        assert not consent.lift_suppression(
            conn,
            shop=SHOP,
            medium=Medium.EMAIL,
            address="a@example.jp",
            reasons=(Refusal.UNSUBSCRIBED,),
            at=T0,
            by="form",
            method=Method.FORM,
        )
    assert verdict(store, [("web", "A")], "a@example.jp").refusal == Refusal.BOUNCED
    with store.engine.connect() as conn:
        other_shop = consent.suppressed(conn, shop="other", medium=Medium.EMAIL)
    assert other_shop == {}


def test_a_statement_without_its_where_or_a_timezone_is_refused(store: Store) -> None:
    with store.engine.begin() as conn, pytest.raises(DataError, match="source"):
        record(conn, [("web", "A")], ConsentState.OPTED_IN, T0, " ", Method.FORM)
    with store.engine.begin() as conn, pytest.raises(DataError, match="timezone"):
        record(
            conn,
            [("web", "A")],
            ConsentState.OPTED_IN,
            dt.datetime(2026, 1, 1),
            "form",
            Method.FORM,
        )


def test_a_member_who_withdrew_is_refused_whatever_they_said(store: Store) -> None:
    left = customer("GONE", ConsentState.OPTED_IN).model_copy(
        update={"withdrawn_at": LATER, "updated_at": LATER}
    )
    store.write_batch("web", Stream.CUSTOMERS, [customer("IN", ConsentState.OPTED_IN), left])
    store.write_batch("pos", Stream.CUSTOMERS, [customer("P", ConsentState.OPTED_IN)])
    with store.engine.connect() as conn:
        record(conn, [("web", "GONE")], ConsentState.OPTED_IN, LATER, "form", Method.FORM)
        people = {
            "gone": ([("web", "GONE")], "gone@example.jp"),
            "merged": ([("pos", "P"), ("web", "GONE")], "p@example.jp"),  # one record left
            "in": ([("web", "IN")], "in@example.jp"),
            "no address": ([("web", "GONE")], None),  # withdrawn says more than no address
        }
        found = consent.consents_of(conn, shop=SHOP, people=people, medium=Medium.EMAIL)
        assert {k: v.refusal for k, v in found.items()} == {
            "gone": Refusal.WITHDRAWN,
            "merged": Refusal.WITHDRAWN,
            "in": None,
            "no address": Refusal.WITHDRAWN,
        }
        assert consent.withdrawn(
            conn, shop=SHOP, members=[("web", "GONE"), ("web", "IN"), ("pos", "GONE")]
        ) == {("web", "GONE")}
        # Another shop's records are not this shop's, withdrawn or not.
        assert consent.withdrawn(conn, shop="other", members=[("web", "GONE")]) == set()
