"""Recent visitors kept in memory, on both backends: what they answer is what the store
says, this process's writes count at once, others' after the ttl, and a read that may
miss a write in flight is not kept."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from omnicrm.app.runtime import Runtime
from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.offers import VisitorState
from omnicrm.engage.onsite.recent import RecentVisitors
from omnicrm.engage.onsite.visitors import Event, Visit
from tests.engage.onsite.conftest import NOW
from tests.engage.onsite.test_visitors import V1, V2, V3, customer
from tests.support.storefront import SHOP, popup

TOKYO = ZoneInfo("Asia/Tokyo")
OFFERS = {"second": popup(max_impressions=5, per="day")}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(runtime: Runtime, book: RecentVisitors, visit: Visit) -> None:
    """As the storefront does: count it in memory, write it, release it."""
    customer_of = None
    if visit.join is not None:
        customer_of = visitors.Customer(*visit.join, None)
    keys = book.hand_over(
        visit.shop,
        visit.visitor,
        new_visit=visit.new_visit,
        customer=customer_of,
        impressions=[e.offer for e in visit.events if e.kind == "impression" and e.offer],
        now=visit.now,
    )
    with runtime.store.engine.begin() as conn:
        visitors.write_visits(conn, [visit])
    book.committed(keys)


def both(
    runtime: Runtime,
    book: RecentVisitors,
    visitor: str,
    who: visitors.Customer | None,
    at: dt.datetime,
) -> tuple[VisitorState | None, VisitorState]:
    kept = book.state(
        runtime.store.engine.connect,
        SHOP,
        visitor,
        OFFERS,
        customer=who,
        facts=None,
        now=at,
        tz=TOKYO,
    )
    with runtime.store.engine.connect() as conn:
        stored = visitors.state(conn, SHOP, visitor, OFFERS, customer=who, now=at, tz=TOKYO)
    return kept, dataclass_without_facts(stored)


def dataclass_without_facts(state: VisitorState) -> VisitorState:
    return VisitorState(state.visits, impressions=state.impressions, known=state.known)


def test_memory_answers_what_the_store_says_as_writes_come(runtime: Runtime) -> None:
    book = RecentVisitors(clock=Clock())
    hanako = customer(runtime, "C1")
    seen = visitors.Customer(hanako.connection, hanako.record_id, None)
    impression = Event("impression", "second", "A")
    # A new visitor: read once (nothing), then counted in memory.
    kept, stored = both(runtime, book, V1, None, NOW)
    assert kept == stored and not stored.known
    write(runtime, book, Visit(SHOP, V1, NOW, True))
    write(runtime, book, Visit(SHOP, V1, NOW, False, events=(impression,)))
    write(runtime, book, Visit(SHOP, V1, NOW, True, events=(impression, impression)))
    kept, stored = both(runtime, book, V1, None, NOW)
    assert kept == stored == VisitorState(2, impressions={"second": (3, 3)}, known=True)
    # Her phone signs in, then the first browser: both count for her.
    write(runtime, book, Visit(SHOP, V2, NOW, True, join=("web", "C1")))
    kept, stored = both(runtime, book, V2, seen, NOW)
    assert kept == stored and stored.visits == 1
    write(runtime, book, Visit(SHOP, V1, NOW, False, join=("web", "C1")))
    kept, stored = both(runtime, book, V1, seen, NOW)
    assert kept == stored == VisitorState(3, impressions={"second": (3, 3)}, known=True)
    # Somebody else's browser counts for nobody but them; tomorrow's impressions start at 0.
    write(runtime, book, Visit(SHOP, V3, NOW, True))
    tomorrow = NOW + dt.timedelta(days=1)
    kept, stored = both(runtime, book, V2, seen, tomorrow)
    assert kept == stored == VisitorState(3, impressions={"second": (0, 3)}, known=True)


def test_another_processes_writes_show_after_the_ttl(runtime: Runtime) -> None:
    clock = Clock()
    book = RecentVisitors(ttl=60, clock=clock)
    write(runtime, book, Visit(SHOP, V1, NOW, True))
    assert both(runtime, book, V1, None, NOW)[0] == VisitorState(1, known=True)
    with runtime.store.engine.begin() as conn:  # a second server's visit
        visitors.write_visits(conn, [Visit(SHOP, V1, NOW, True)])
    assert both(runtime, book, V1, None, NOW)[0] == VisitorState(1, known=True)
    clock.now = 61
    kept, stored = both(runtime, book, V1, None, NOW)
    assert kept == stored == VisitorState(2, known=True)


def test_a_read_while_a_write_is_in_flight_is_not_kept(runtime: Runtime) -> None:
    book = RecentVisitors(clock=Clock())
    with runtime.store.engine.begin() as conn:
        visitors.write_visits(conn, [Visit(SHOP, V1, NOW, True)])
    keys = book.hand_over(SHOP, V1, new_visit=True, customer=None, now=NOW)  # not held yet
    # The read may or may not see that write: it answers, and is not kept.
    assert both(runtime, book, V1, None, NOW)[0] == VisitorState(1, known=True)
    with runtime.store.engine.begin() as conn:
        visitors.write_visits(conn, [Visit(SHOP, V1, NOW, True)])
    book.committed(keys)
    kept, stored = both(runtime, book, V1, None, NOW)
    assert kept == stored == VisitorState(2, known=True)


def test_a_state_that_needs_the_store_is_none_when_reads_are_not_allowed(
    runtime: Runtime,
) -> None:
    book = RecentVisitors(clock=Clock())
    args = (runtime.store.engine.connect, SHOP, V1, OFFERS)
    assert book.state(*args, customer=None, facts=None, now=NOW, tz=TOKYO, reads=False) is None
    assert book.state(*args, customer=None, facts=None, now=NOW, tz=TOKYO) is not None
    held = book.state(*args, customer=None, facts=None, now=NOW, tz=TOKYO, reads=False)
    assert held == VisitorState(0, known=False)
