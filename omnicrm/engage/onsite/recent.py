"""What the storefront knows of its recent visitors, kept in memory so that answering a
visitor reads nothing from the store.

A browser's visits, the customer it signed in as and its impressions of capped offers
(:class:`~omnicrm.engage.onsite.visitors.Seen`) are read from the store the first time
it asks, with a signed-in customer's other browsers, and then kept: each write this
process makes (a visit, a join, impressions) is applied here as it is handed to the
store, so the next answer counts it without reading it back. What another process
writes (a second server, a redaction from the command line) shows once an entry is
older than ``ttl`` seconds and is read again.

A write handed over but not yet committed is counted as in flight: an entry read from
the store meanwhile may lack it, so it serves that one answer and is not kept.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.offers import VisitorState
from omnicrm.engage.onsite.settings import OfferSettings

Key = tuple[str, ...]
Connect = Callable[[], AbstractContextManager[Connection]]


class RecentVisitors:
    """Recent visitors' counts by shop (see the module)."""

    def __init__(
        self,
        ttl: float = 60.0,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        # (shop, visitor) -> the browser, when read; a browser not in the store yet has
        # no visits (a stored one has at least one).
        self._browsers: dict[Key, tuple[visitors.Seen, float]] = {}
        # (shop, connection, record id) -> the browsers that signed in as them, when read.
        self._customers: dict[Key, tuple[set[str], float]] = {}
        self._in_flight: dict[Key, int] = {}  # writes handed over, not yet committed
        self._last: dict[Key, int] = {}  # the number of the last write handed over
        self._seq = 0
        self._floor = 0  # what _last forgot when the memory was emptied

    def _fresh(self, held: tuple[object, float] | None, tick: float) -> bool:
        return held is not None and tick - held[1] < self._ttl

    def _steady(self, key: Key, since: int) -> bool:
        """Whether no write of ``key`` may be missing from a read begun at ``since``."""
        return not self._in_flight.get(key) and max(self._last.get(key, 0), self._floor) <= since

    def state(
        self,
        connect: Connect,
        shop: str,
        visitor: str,
        offers: Mapping[str, OfferSettings],
        *,
        customer: visitors.Customer | None,
        facts: visitors.CustomerFacts | None,
        now: dt.datetime,
        tz: ZoneInfo,
        reads: bool = True,
    ) -> VisitorState | None:
        """What the rules need to know of ``visitor`` (signed in as ``customer``, whose
        ``facts`` the caller has): what :func:`visitors.state` reads from the store.
        None if that needs the store and ``reads`` is False."""
        found = self._gather(connect, shop, visitor, customer, offers, now, reads)
        if found is None:
            return None
        return visitors.sum_state(
            found.values(), known=found[visitor].visits > 0, facts=facts, now=now, tz=tz
        )

    def _gather(
        self,
        connect: Connect,
        shop: str,
        visitor: str,
        customer: visitors.Customer | None,
        offers: Mapping[str, OfferSettings],
        now: dt.datetime,
        reads: bool,
    ) -> dict[str, visitors.Seen] | None:
        """``visitor`` and the customer's other browsers, each held or read (and then
        kept unless a write of its own may be missing from what was read)."""
        tick = self._clock()
        who = None if customer is None else (shop, customer.connection, customer.record_id)
        with self._lock:
            members = self._customers.get(who) if who is not None else None
            need_members = who is not None and not self._fresh(members, tick)
            ids = {visitor, *(members[0] if members is not None and not need_members else ())}
            found: dict[str, visitors.Seen] = {}
            for v in ids:
                held = self._browsers.get((shop, v))
                if held is not None and self._fresh(held, tick):
                    found[v] = held[0]
            if not need_members and len(found) == len(ids):
                return found
            if not reads:
                return None
            since = self._seq
        others: list[str] = []
        with connect() as conn:
            if need_members and customer is not None:
                others = visitors.browsers(conn, shop, customer)
                ids.update(others)
            missing = sorted(ids - found.keys())
            read = visitors.seen(conn, shop, missing, visitors.capped(offers), now=now)
        tick = self._clock()
        with self._lock:
            if len(self._browsers) + len(missing) > self._size or len(self._last) > self._size:
                self._clear()
            for v in missing:
                browser = read.get(v) or visitors.Seen(0)
                found[v] = browser
                if self._steady((shop, v), since):
                    self._browsers[(shop, v)] = (browser, tick)
            if need_members and who is not None and self._steady(who, since):
                self._customers[who] = (set(others), tick)
        return found

    def hand_over(
        self,
        shop: str,
        visitor: str,
        *,
        new_visit: bool,
        customer: visitors.Customer | None,
        impressions: Sequence[str] = (),
        now: dt.datetime,
    ) -> tuple[Key, ...]:
        """Count a write of ``visitor`` as it is handed to the store: a visit (one more
        if ``new_visit``; its first if the store has none), a join to ``customer``,
        ``impressions`` of these capped offers. The keys it touches, for
        :meth:`committed`."""
        key: Key = (shop, visitor)
        keys: list[Key] = [key]
        with self._lock:
            held = self._browsers.get(key)
            if held is not None:
                browser = held[0]
                browser.visits += 1 if new_visit or browser.visits == 0 else 0
                for offer in impressions:
                    browser.totals[offer] = browser.totals.get(offer, 0) + 1
                    browser.recent.setdefault(offer, []).append(now)
            if customer is not None:
                joined = (customer.connection, customer.record_id)
                who = (shop, *joined)
                keys.append(who)
                if held is not None and held[0].customer != joined:
                    if held[0].customer is not None:  # moved: read its old customer again
                        self._customers.pop((shop, *held[0].customer), None)
                    held[0].customer = joined
                members = self._customers.get(who)
                if members is not None:
                    members[0].add(visitor)
            self._seq += 1
            for k in keys:
                self._in_flight[k] = self._in_flight.get(k, 0) + 1
                self._last[k] = self._seq
        return tuple(keys)

    def clear(self) -> None:
        """Drop everything held (a redaction): reads begun before it are not kept."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:  # the lock held
        self._browsers.clear()
        self._customers.clear()
        self._last.clear()
        self._floor = self._seq

    def joined(self, shop: str, visitor: str, customer: visitors.Customer) -> bool:
        """Whether ``visitor`` is known to have signed in as ``customer`` already."""
        with self._lock:
            held = self._browsers.get((shop, visitor))
        return held is not None and held[0].customer == (customer.connection, customer.record_id)

    def committed(self, keys: Sequence[Key]) -> None:
        """The write of :meth:`hand_over` is in the store, or failed (an entry read
        again after ``ttl`` puts right what was counted)."""
        with self._lock:
            for k in keys:
                left = self._in_flight.get(k, 0) - 1
                if left > 0:
                    self._in_flight[k] = left
                else:
                    self._in_flight.pop(k, None)
