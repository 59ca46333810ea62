"""record_word: the one way a person's word (an unsubscribe, a platform's follow or block,
an account link, the operator) is written: statement, then the suppression list."""

from __future__ import annotations

from omnicrm.core import consent
from omnicrm.core.consent import Method, Refusal
from omnicrm.core.records import ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.crm.profiles import profile_of
from omnicrm.engage.permission import members_of, record_word
from tests.engage.conftest import NOW, SHOP, build, person


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
