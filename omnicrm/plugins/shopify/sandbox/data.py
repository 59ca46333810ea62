"""The sandbox shop: customers and orders derived on demand from (seed, index).

Nothing is stored per record but a few bytes of randomness and the sorted indexes a
paginated API needs, so a shop of 1,000,000 customers starts in seconds:

* customer ``c`` (0 <= c < N) signs up at a time that grows with ``c``; ids grow with
  sign-up time as Shopify's do. Its number of orders, the times of those orders and its
  last edit follow from its random bytes.
* orders are ranked by creation time (the rank gives the id and the name ``#1001+rank``).
  ``ord_by_created`` holds ``created * 2**23 + owner`` for every rank, ``ord_by_upd``
  holds ``updated * 2**23 + rank``; both are float arrays (exact below 2**53) because
  CPython sorts floats several times faster than large ints.
* guest orders belong to slots N..N+G-1 that are never listed as customers.
* changes made at run time (updates, new records, deletions) live in small overlays
  merged into every listing, so a page is always one consistent sorted sequence.

Times inside are whole seconds since 2020-01-01 UTC (:data:`EPOCH`), as Shopify keeps
them; the API shows them as ISO 8601 with ``Z``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import random
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jaconv
import numpy as np
import numpy.typing as npt

from .catalog import (
    CITIES,
    EMAIL_DOMAINS,
    NOTES,
    PREFECTURE_WEIGHTS,
    PREFECTURES,
    STORES,
    TAGS,
    Variant,
    catalogue,
    pools,
    popularity,
)
from .search import Interval, Search

EPOCH = 1_577_836_800
"""2020-01-01T00:00:00Z: internal times are seconds since then."""
SHIFT = 1 << 23
"""Sort keys are ``seconds * SHIFT + index``; indexes stay below SHIFT."""
MASK = SHIFT - 1
DAY = 86_400
SPAN = 730 * DAY
"""The shop's history: two years up to its ``end``."""
MAX_CUSTOMERS = 2_000_000

CUSTOMER_BASE = 7_700_000_000_000
ORDER_BASE = 5_600_000_000_000
LINE_BASE = 14_100_000_000_000
REFUND_BASE = 930_000_000_000
ADDRESS_BASE = 9_100_000_000_000
LOCATION_BASE = 61_200_000_000
SHOP_ID = 60_150_000_000
STRIDE = 1_000
"""Ids step by about STRIDE: real ids are sparse, and these stay invertible."""

WEB, POS, DRAFT = "web", "pos", "shopify_draft_order"

Ints = npt.NDArray[np.int64]
Small = npt.NDArray[np.int32]

ORDER_CHUNK = 1 << 18
"""Orders the index build computes at a time."""

_RANDOM_PER_SLOT = 6  # uint16 per customer slot: jitter, count, activity, delay, edit, last


def _count_table() -> bytes:
    """Orders per customer by a uint16: most buy once, a long tail buys often."""
    table = bytearray(65536)
    for v in range(65536):
        b, r = v & 1023, v >> 10
        if b < 225:
            n = 0
        elif b < 717:
            n = 1
        elif b < 840:
            n = 2
        elif b < 901:
            n = 3
        elif b < 962:
            n = 4 + r % 3
        elif b < 1000:
            n = 7 + r % 9
        elif b < 1021:
            n = 16 + r % 25
        else:
            n = 41 + r
        table[v] = n
    return bytes(table)


_COUNTS = _count_table()


# Landline area codes (Tokyo, Osaka, Nagoya, Yokohama, Fukuoka, Kyoto, Kobe, Sendai,
# Saitama): the area code and the subscriber number make nine digits. (Sapporo's 011
# is left out: only some of its exchanges are allocated.)
LANDLINE_AREAS = ("3", "6", "52", "45", "92", "75", "78", "22", "48")
LANDLINE_SHARE = 0.2


def japanese_phone(seed: int, c: int, mobile: int) -> str:
    """A valid Japanese number in E.164 for customer ``c``: mostly a mobile on the
    ``mobile`` prefix (70, 80 or 90), sometimes a landline.

    A mobile's first subscriber digit is 1 to 9 and a landline's 2 to 9: numbers
    beginning with 0 there are not allocated (phonenumbers calls them invalid, and
    identity resolution would drop them). Unique per customer by the serial part.
    """
    rng = random.Random((seed << 40) | (3 << 36) | c)
    serial = (c * 7_919 + 1_234_567) % 10**7
    if rng.random() < LANDLINE_SHARE:
        area = rng.choice(LANDLINE_AREAS)
        rest = 8 - len(area)  # digits after the subscriber's first
        return f"+81{area}{rng.randint(2, 9)}{serial % 10**rest:0{rest}d}"
    return f"+81{mobile}{rng.randint(1, 9)}{serial:07d}"


# Shopify has no reading field: Japanese shops keep furigana in customer metafields
# (a registration form's フリガナ field, or an app, writes them), as katakana.
KANA_NAMESPACE = "custom"
FAMILY_KANA_KEY = "family_name_kana"
GIVEN_KANA_KEY = "given_name_kana"
KANA_SHARE = 0.7  # customers who gave a reading (older or guest-made accounts did not)


def furigana(seed: int, c: int, family: str, given: str) -> dict[tuple[str, str], str]:
    """Customer ``c``'s reading metafields, or none for those who never gave one."""
    rng = random.Random((seed << 40) | (5 << 36) | c)
    if rng.random() >= KANA_SHARE:
        return {}
    return {
        (KANA_NAMESPACE, FAMILY_KANA_KEY): jaconv.hira2kata(family),
        (KANA_NAMESPACE, GIVEN_KANA_KEY): jaconv.hira2kata(given),
    }


def iso(sec: int) -> str:
    """Internal seconds as Shopify's DateTime: ``2025-03-01T12:34:56Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + sec))


def money(yen: int) -> dict[str, str]:
    """A MoneyV2 in yen; Shopify's Decimal keeps one decimal place for whole amounts."""
    return {"amount": f"{yen}.0", "currencyCode": "JPY"}


@functools.lru_cache(maxsize=8192)
def money_bag(yen: int) -> dict[str, dict[str, str]]:
    """A MoneyBag: the shop and presentment currency are both JPY.

    Shared between records (amounts repeat a lot): treat records as read-only.
    """
    amount = money(yen)
    return {"shopMoney": amount, "presentmentMoney": amount}


def gid(kind: str, number: int) -> str:
    """A Shopify global id."""
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: str, kind: str) -> int | None:
    """The number in ``gid://shopify/KIND/NUMBER``, or None when it is not one."""
    prefix = f"gid://shopify/{kind}/"
    if not value.startswith(prefix) or not value[len(prefix) :].isdigit():
        return None
    return int(value[len(prefix) :])


def _spread(index: int) -> int:
    return (index * 7_919) % 997


def customer_number(c: int) -> int:
    """The numeric id of customer ``c``."""
    return CUSTOMER_BASE + c * STRIDE + _spread(c)


def order_number(rank: int) -> int:
    """The numeric id of the order of ``rank``."""
    return ORDER_BASE + rank * STRIDE + _spread(rank)


def _invert(number: int, base: int) -> int | None:
    index, rest = divmod(number - base, STRIDE)
    if index < 0 or rest != _spread(index):
        return None
    return index


@dataclass(frozen=True)
class Events:
    """What happened to an order, in internal seconds."""

    created: int
    updated: int
    source: str
    financial: str
    fulfilled_at: int | None
    cancelled_at: int | None
    refund_at: int | None
    full_refund: bool


def order_events(created: int, flags: int, delays: int, end: int) -> Events:
    """An order's life from its creation time and two random uint16s."""
    pick = flags % 20
    source = WEB if pick < 13 else POS if pick < 18 else DRAFT
    bucket = (flags >> 5) & 31
    cancelled = bucket == 0
    pending = bucket == 1 and source == WEB and created > end - 3 * DAY  # konbini, unpaid
    refunded = not cancelled and (flags >> 10) % 24 == 0
    full = bool((flags >> 15) & 1)
    if source == POS:
        delay = 30 + delays % 300
    elif source == WEB:
        delay = 3600 * (2 + delays % 70)
    else:
        delay = 3600 * (1 + delays % 48)
    fulfilled = None
    if not cancelled and not pending and created + delay <= end:
        fulfilled = created + delay
    cancelled_at = min(created + 600 + (delays >> 4) % (3 * DAY), end) if cancelled else None
    refund_at = None
    if refunded and fulfilled is not None:
        refund_at = fulfilled + DAY * (3 + (delays >> 6) % 28)
        if refund_at > end:
            refund_at = None
    if cancelled:
        financial = "VOIDED" if delays & 1 else "REFUNDED"
    elif refund_at is not None:
        financial = "REFUNDED" if full else "PARTIALLY_REFUNDED"
    elif pending:
        financial = "PENDING"
    else:
        financial = "PAID"
    updated = max(min(created + 1, end), fulfilled or 0, cancelled_at or 0, refund_at or 0)
    return Events(
        created, max(updated, created), source, financial, fulfilled, cancelled_at,
        refund_at, full,
    )  # fmt: skip


def _updated_times(created: Ints, flags: Small, delays: Small, end: int) -> Ints:
    """``order_events(...).updated`` of many orders at once (the index's hot path).

    ``flags`` and ``delays`` are the orders' random uint16s, widened to int32 (numpy
    computes on those faster than on int64). Integer arithmetic only, so it gives
    exactly what ``order_events`` gives.
    """
    pick = flags % 20
    bucket = (flags >> 5) & 31
    updated = np.where(created < end, created + 1, created)
    cancelled = np.maximum(np.minimum(created + (600 + (delays >> 4) % (3 * DAY)), end), updated)
    web = pick < 13
    delay = np.where(
        web,
        3600 * (2 + delays % 70),
        np.where(pick < 18, 30 + delays % 300, 3600 * (1 + delays % 48)),
    )
    fulfilled = created + delay
    refund = fulfilled + DAY * (3 + (delays >> 6) % 28)
    result = np.where(
        ((flags >> 10) % 24 == 0) & (refund <= end), refund, np.maximum(fulfilled, updated)
    )
    result = np.where(fulfilled > end, updated, result)
    # konbini payment still pending: nothing happened since
    result = np.where(web & (bucket == 1) & (created > end - 3 * DAY), updated, result)
    # cancelled within three days
    result = np.where(bucket == 0, cancelled, result)
    return result


@dataclass(frozen=True)
class Line:
    """One line of an order, in yen."""

    variant: Variant | None
    title: str
    quantity: int
    price: int
    unit_discount: int


@dataclass(frozen=True)
class OrderCore:
    """An order's facts, shared by the GraphQL record, the webhook payload and totals."""

    owner: int | None
    events: Events
    lines: tuple[Line, ...]
    shipping: int
    store: int | None
    refunds: tuple[tuple[int, int], ...]
    """(seconds, yen) of each refund."""

    @property
    def subtotal(self) -> int:
        """Line items after their discounts, taxes included."""
        return sum((ln.price - ln.unit_discount) * ln.quantity for ln in self.lines)

    @property
    def discounts(self) -> int:
        """Discounts on all lines."""
        return sum(ln.unit_discount * ln.quantity for ln in self.lines)

    @property
    def total(self) -> int:
        """What the buyer pays: subtotal and shipping."""
        return self.subtotal + self.shipping

    @property
    def tax(self) -> int:
        """The 10% consumption tax contained in the total (prices include tax)."""
        return self.total * 10 // 110

    @property
    def spent(self) -> int:
        """What the order adds to the customer's amountSpent."""
        if self.events.financial in ("VOIDED", "PENDING"):
            return 0
        return self.total - sum(amount for _, amount in self.refunds)


class _Range(Sequence[float]):
    """The keys 0.0 .. n-1 without storing them (the ID-sorted base of a listing)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [float(i) for i in range(self.n)[index]]
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(index)
        return float(index)


class SortedKeys:
    """A sorted listing: an immutable base plus an overlay of moved and added records."""

    def __init__(self, base: Sequence[float]) -> None:
        self.base = base
        self.extra: list[float] = []
        self.moved: dict[int, float | None] = {}

    def put(self, index: int, key: float) -> None:
        """Place record ``index`` at ``key`` (hiding its base entry)."""
        self._unlink(index)
        self.moved[index] = key
        bisect.insort(self.extra, key)

    def drop(self, index: int) -> None:
        """Remove record ``index`` from the listing."""
        self._unlink(index)
        self.moved[index] = None

    def _unlink(self, index: int) -> None:
        old = self.moved.get(index)
        if old is not None:
            at = bisect.bisect_left(self.extra, old)
            if at < len(self.extra) and self.extra[at] == old:
                del self.extra[at]

    def walk(self, start: float | None, *, inclusive: bool, descending: bool) -> Iterator[float]:
        """Keys from ``start`` (None: from the end in that direction), merged and filtered."""
        base, extra, moved = self.base, self.extra, self.moved
        if descending:
            if start is None:
                i, j = len(base) - 1, len(extra) - 1
            elif inclusive:
                i, j = bisect.bisect_right(base, start) - 1, bisect.bisect_right(extra, start) - 1
            else:
                i, j = bisect.bisect_left(base, start) - 1, bisect.bisect_left(extra, start) - 1
            while i >= 0 or j >= 0:
                if j < 0 or (i >= 0 and base[i] > extra[j]):
                    key = base[i]
                    i -= 1
                    if moved and (int(key) & MASK) in moved:
                        continue
                else:
                    key = extra[j]
                    j -= 1
                yield key
            return
        if start is None:
            i = j = 0
        elif inclusive:
            i, j = bisect.bisect_left(base, start), bisect.bisect_left(extra, start)
        else:
            i, j = bisect.bisect_right(base, start), bisect.bisect_right(extra, start)
        n, m = len(base), len(extra)
        while i < n or j < m:
            if j >= m or (i < n and base[i] < extra[j]):
                key = base[i]
                i += 1
                if moved and (int(key) & MASK) in moved:
                    continue
            else:
                key = extra[j]
                j += 1
            yield key


LINE_METAFIELD = ("line_connect", "line_user_id")
"""Where the sandbox's LINE-connect app keeps a customer's LINE user id (namespace, key)."""


@dataclass
class Page:
    """One page of a listing: record indexes with their sort keys."""

    items: list[tuple[int, float]]
    has_next: bool
    has_previous: bool


class ShopData:
    """A seeded Japanese shop; every read and change goes through its lock."""

    def __init__(
        self,
        customers: int = 3000,
        seed: int = 1,
        *,
        end: dt.datetime | None = None,
        background: bool | None = None,
        shared_with: int | None = None,
        shared: float = 0.0,
    ) -> None:
        if not 1 <= customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS}")
        if not 0.0 <= shared <= 1.0:
            raise ValueError("shared must be between 0 and 1")
        self.n = customers
        self.seed = seed
        self.line_users: dict[int, str] = {}  # see link_line_users
        # Another shop's people buying here too (the demo's overlapping client shops):
        # `shared` of the customers are the same people (name, email, phone, address)
        # as the customers of the same index in the shop seeded `shared_with`, each
        # with an order history of this shop's own.
        self.shared_with = shared_with if shared > 0 else None
        self.shared = shared
        self._shared_pools = None if self.shared_with is None else pools(self.shared_with)
        self.guests = max(1, customers // 12)
        stamp = end or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.end = int(stamp.timestamp()) - EPOCH
        if self.end <= SPAN:
            raise ValueError("end must be after 2022-01-01")
        self.start = self.end - SPAN
        self.lock = threading.RLock()
        self.pools = pools(seed)
        self.variants = catalogue(seed)
        self.variant_weights = popularity(self.variants, seed)
        self._last_change = 0
        self.read_all_orders = True
        self.clock: Callable[[], float] = time.time
        """Wall-clock seconds for changes and "now" in searches (tests may replace it)."""
        # Imported here: products.py builds on this module's helpers.
        from .products import Products

        self.products = Products(self.variants, seed, self.start, self.end, lambda: self.clock())

        slots = self.n + self.guests
        rng = random.Random(seed)
        self.rand = array("H")
        self.rand.frombytes(rng.randbytes(2 * _RANDOM_PER_SLOT * slots))
        self.counts = array("B", bytes(slots))
        self.firsts = array("l", bytes(8 * slots))
        self.customers_by_id = SortedKeys(_Range(self.n))
        self.customers_by_updated = SortedKeys(self._customer_index())
        self.offsets = array("q", itertools.accumulate(self.counts, initial=0))
        self.base_orders = self.offsets[-1]
        order_rng = random.Random(seed + 0x5EED)
        self.order_rand = array("H")
        self.order_rand.frombytes(order_rng.randbytes(6 * self.base_orders))

        # Run-time state: overlays over the generated shop.
        self.customer_changes: dict[int, dict[str, Any]] = {}
        self.order_changes: dict[int, dict[str, Any]] = {}
        self.new_customers: dict[int, int] = {}
        self.new_orders: dict[int, tuple[int | None, int]] = {}
        self.extra_orders: dict[int, list[int]] = {}
        self.deleted_customers: set[int] = set()
        self.deleted_orders: set[int] = set()
        from .checkouts import Checkouts

        self.checkouts = Checkouts(self)
        """Carts customers left (``abandonedCheckouts``)."""
        self.next_customer = self.n + self.guests
        self.next_order = self.base_orders

        self.orders_ready = threading.Event()
        self.by_created: array[float] = array("d")
        self.orders_by_id = SortedKeys(_Range(self.base_orders))
        self.orders_by_updated = SortedKeys(array("d"))
        if background is None:
            background = customers > 50_000
        if background:
            threading.Thread(target=self._build_orders, name="shopify-orders", daemon=True).start()
        else:
            self._build_orders()

    # --- generation ------------------------------------------------------------------

    def _signup(self, c: int) -> int:
        r = self.rand[_RANDOM_PER_SLOT * c]
        if c < self.n:
            x = (c + 0.1 + 0.8 * r / 65536) / self.n
        else:
            g = c - self.n
            x = (g + 0.05 + 0.9 * r / 65536) / self.guests
        # x**0.7: sign-ups accelerate over the two years, as a growing shop's do.
        return self.start + int(SPAN * x**0.7)

    def _plan(self, c: int) -> tuple[int, int, int, int]:
        """(sign-up, first order, active span, order count) of slot ``c``."""
        signup = self._signup(c)
        if c >= self.n:
            return signup, signup, 0, 1
        base = _RANDOM_PER_SLOT * c
        count = _COUNTS[self.rand[base + 1]]
        first = signup + 20 + self.rand[base + 3] % 1200
        if count and first >= self.end:
            count = 0
        if count:
            count = min(count, 1 + (self.end - first) // (3 * DAY))
        activity = 9830 + ((self.rand[base + 2] * 55706) >> 16)  # 0.15..1.0 of its life
        span = ((self.end - first) * activity) >> 16
        return signup, first, span, count

    def _order_time(self, c: int, first: int, span: int, count: int, j: int) -> int:
        if j == 0:
            return first
        if j == count - 1:
            u = self.rand[_RANDOM_PER_SLOT * c + 5]
        else:
            u = self.order_rand[3 * (self.offsets[c] + j)]
        room = max(0, span - 3600 * count)
        return first + 3600 * j + (room * ((j - 1) * 65536 + u)) // ((count - 1) * 65536)

    def _customer_updated(self, c: int, signup: int, first: int, span: int, count: int) -> int:
        updated = signup + 5
        if count:
            updated = max(updated, self._order_time(c, first, span, count, count - 1) + 2)
        edit = self.rand[_RANDOM_PER_SLOT * c + 4]
        if edit & 3 == 0:
            updated = max(updated, signup + ((self.end - signup) * (edit >> 2)) // 16384)
        return min(updated, self.end)

    def _customer_index(self) -> array[float]:
        """Customers by (updated, index): start-up's hot loop, so ``_plan`` is inlined.

        Also fills ``counts`` and ``firsts`` (first order time) for ``_build_orders``.
        A test checks it against ``_plan``/``_customer_updated`` record by record.
        """
        n, start, end, table = self.n, self.start, self.end, _COUNTS
        counts, firsts, rand = self.counts, self.firsts, self.rand
        columns = [rand[i : _RANDOM_PER_SLOT * n : _RANDOM_PER_SLOT] for i in range(6)]
        keys: list[float] = []
        append = keys.append
        week = 3 * DAY
        for c, jitter, pick, activity, delay, edit, late in zip(range(n), *columns, strict=True):
            signup = start + int(SPAN * ((c + 0.1 + 0.8 * jitter / 65536) / n) ** 0.7)
            updated = signup + 5
            count = table[pick]
            if count:
                first = signup + 20 + delay % 1200
                if first >= end:
                    count = 0
                else:
                    cap = 1 + (end - first) // week
                    if count > cap:
                        count = cap
                    last = first
                    if count > 1:
                        room = (((end - first) * (9830 + ((activity * 55706) >> 16))) >> 16) - (
                            3600 * count
                        )
                        if room < 0:
                            room = 0
                        last += 3600 * (count - 1) + (room * ((count - 2) * 65536 + late)) // (
                            (count - 1) * 65536
                        )
                    updated = last + 2
                    counts[c] = count
                    firsts[c] = first
            if not edit & 3:
                edited = signup + ((end - signup) * (edit >> 2)) // 16384
                if edited > updated:
                    updated = edited
            if updated > end:
                updated = end
            append(float(updated * SHIFT + c))
        for c in range(n, n + self.guests):
            counts[c] = 1
            firsts[c] = self._signup(c)
        keys.sort()
        return array("d", keys)

    def _build_orders(self) -> None:
        """Rank every order by creation, then index the ranks by update time.

        Runs in the background for big shops: order listings wait for it, customer
        listings do not. Orders are first laid out customer-major (position ``p``, the
        slot's offset + j); ``by_created`` holds ``created * SHIFT + p``.

        The work is done by numpy over whole arrays: it takes a fraction of a second for
        a million customers, and numpy lets go of the GIL while it sorts and computes, so
        the server's thread answers meanwhile. (Built with ``map`` and ``list.sort``, it
        took seconds in C calls that hold the GIL throughout, and a customers page asked
        for just after start-up waited for them.) Integer arithmetic only (the keys stay
        below 2**53): the indexes are exactly what ``_order_time`` and ``order_events``
        give, on any machine.
        """
        end, total = self.end, self.base_orders
        counts = np.frombuffer(self.counts, np.uint8)
        offsets = np.frombuffer(self.offsets, np.int64)
        firsts = np.frombuffer(self.firsts, self.firsts.typecode)
        rand = np.frombuffer(self.rand, np.uint16).reshape(-1, _RANDOM_PER_SLOT)
        orand = np.frombuffer(self.order_rand, np.uint16).reshape(-1, 3)
        owners = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        created = np.empty(total, np.int64)
        updated_of = np.empty(total, np.int64)
        # In chunks, so the temporaries stay a few MB each (peak memory is a goal too).
        for low in range(0, total, ORDER_CHUNK):
            high = min(low + ORDER_CHUNK, total)
            slot = owners[low:high]
            positions = np.arange(low, high, dtype=np.int64)
            j = positions - offsets[slot]
            times = firsts[slot].astype(np.int64)
            # _order_time for j >= 1 (guest slots have one order only)
            later = np.flatnonzero(j)
            c, k = slot[later], j[later]
            count = counts[c].astype(np.int64)
            first = times[later]
            activity = 9830 + ((rand[c, 2].astype(np.int64) * 55706) >> 16)
            room = np.maximum((((end - first) * activity) >> 16) - 3600 * count, 0)
            u = np.where(k == count - 1, rand[c, 5], orand[low + later, 0])
            span = (room * ((k - 1) * 65536 + u)) // ((count - 1) * 65536)
            times[later] = first + 3600 * k + span
            flags = orand[low:high, 1].astype(np.int32)
            delays = orand[low:high, 2].astype(np.int32)
            updated_of[low:high] = _updated_times(times, flags, delays, end)
            created[low:high] = times * SHIFT + positions
        del owners
        created.sort()  # the keys are distinct: any sort gives this order
        updated = updated_of[created & MASK]
        del updated_of
        updated *= SHIFT
        updated += np.arange(total, dtype=np.int64)
        updated.sort()
        # Published without the lock (readers wait for ``orders_ready`` first), so a
        # reader holding the lock while it waits cannot deadlock the build. Kept as
        # array.array: it reads one item faster than numpy, and listings read so.
        by_created = array("d")
        by_created.frombytes(created.astype(np.float64).data.cast("B"))
        del created
        by_updated = array("d")
        by_updated.frombytes(updated.astype(np.float64).data.cast("B"))
        self.by_created = by_created
        self.orders_by_updated.base = by_updated
        self.orders_ready.set()

    def wait_for_orders(self, timeout: float | None = None) -> bool:
        """Block until the order indexes are built (they are built in the background)."""
        return self.orders_ready.wait(timeout)

    # --- clock and ids ------------------------------------------------------------------

    def now(self) -> int:
        """Internal seconds for a change made now; never before the last change."""
        current = max(int(self.clock()) - EPOCH, self.end + 1, self._last_change)
        self._last_change = current
        return current

    def customer_index(self, value: str) -> int | None:
        """The index of a listed customer GID, or None."""
        number = gid_number(value, "Customer")
        c = None if number is None else _invert(number, CUSTOMER_BASE)
        if c is None or c in self.deleted_customers:
            return None
        if c < self.n or c in self.new_customers:
            return c
        return None

    def order_rank(self, value: str) -> int | None:
        """The rank of an order GID, or None."""
        number = gid_number(value, "Order")
        rank = None if number is None else _invert(number, ORDER_BASE)
        if rank is None or rank in self.deleted_orders:
            return None
        if rank < self.base_orders or rank in self.new_orders:
            return rank
        return None

    # --- customers --------------------------------------------------------------------

    def customer_times(self, c: int) -> tuple[int, int]:
        """(created, updated) of customer ``c``, changes included."""
        change = self.customer_changes.get(c)
        if c in self.new_customers:
            created = self.new_customers[c]
            return created, change["_updated"] if change else created
        signup, first, span, count = self._plan(c)
        if change:
            return signup, change["_updated"]
        return signup, self._customer_updated(c, signup, first, span, count)

    def customer_orders(self, c: int) -> list[int]:
        """Ranks of customer ``c``'s orders, oldest first (waits for the order index)."""
        self.wait_for_orders()
        ranks: list[int] = []
        if c < self.n:
            _, first, span, count = self._plan(c)
            for j in range(count):
                position = self.offsets[c] + j
                key = float(self._order_time(c, first, span, count, j) * SHIFT + position)
                ranks.append(bisect.bisect_left(self.by_created, key))
        ranks.extend(self.extra_orders.get(c, ()))
        return [r for r in ranks if r not in self.deleted_orders]

    def _customer_cores(self, c: int) -> list[OrderCore]:
        """The facts of customer ``c``'s orders.

        Until the order index is built (and while no order has changed), they come
        straight from the customer's plan, so a customer page never waits for it.
        """
        if c in self.extra_orders or self.order_changes or self.deleted_orders:
            return [self.order_core(r) for r in self.customer_orders(c)]
        if c >= self.n:
            return []
        _, first, span, count = self._plan(c)
        return [
            self._base_core(c, j, self._order_time(c, first, span, count, j)) for j in range(count)
        ]

    def person_seed(self, c: int) -> int:
        """The seed of customer ``c``'s person: this shop's, or the other shop's for a
        customer both shops share (a fixed spread of indexes, the same every run)."""
        if self.shared_with is None or c >= self.n:
            return self.seed
        return self.shared_with if (c * 2_654_435_761) % 1000 < self.shared * 1000 else self.seed

    def link_line_users(self, users: Mapping[int, str]) -> None:
        """Have customers ``users`` (index -> LINE user id) linked to LINE by a
        LINE-connect app, which keeps the id in :data:`LINE_METAFIELD`."""
        with self.lock:
            self.line_users = dict(users)

    def _line(self, c: int) -> dict[tuple[str, str], str]:
        user = self.line_users.get(c)
        return {LINE_METAFIELD: user} if user else {}

    def customer(self, c: int) -> dict[str, Any]:
        """Customer ``c`` shaped as the Admin API's Customer."""
        person = self.person_seed(c)
        rng = random.Random((person << 40) | (1 << 36) | c)
        p = self.pools if person == self.seed else self._shared_pools
        assert p is not None
        last, last_kana, last_roman = rng.choice(p.last_names)
        first, first_kana, first_roman = rng.choice(p.first_names)
        created, updated = self.customer_times(c)
        cores = self._customer_cores(c)
        spent = sum(core.spent for core in cores)
        has_email = rng.random() < 0.93
        has_phone = not has_email or rng.random() < 0.55
        email = phone = None
        if has_email:
            local = f"{first_roman}.{last_roman}" if rng.random() < 0.6 else last_roman
            serial = (c * 2_654_435_761 + person) % 10_000_000
            email = f"{local.lower()}.{serial}@{rng.choice(EMAIL_DOMAINS)}"
        if has_phone:
            phone = japanese_phone(person, c, rng.choice((70, 80, 90)))
        state = rng.choices(("ENABLED", "DISABLED", "INVITED", "DECLINED"), (55, 37, 6, 2))[0]
        tags = set()
        if len(cores) >= 3:
            tags.add("リピーター")
        if len(cores) >= 12:
            tags.add("VIP")
        if rng.random() < 0.35:
            tags.update(rng.sample(TAGS, rng.choice((1, 1, 2))))
        note = rng.choice(NOTES) if rng.random() < 0.12 else None
        address = None
        if rng.random() < 0.88:
            pref = rng.choices(range(len(PREFECTURES)), PREFECTURE_WEIGHTS)[0]
            city = rng.choice(CITIES.get(pref) or p.cities)
            street = f"{rng.choice(p.towns)}{rng.randint(1, 5)}-{rng.randint(1, 30)}-"
            street += str(rng.randint(1, 20))
            building = None
            if rng.random() < 0.45:
                building = f"{rng.choice(p.buildings)}{rng.randint(1, 12)}0{rng.randint(1, 9)}"
            address = {
                "id": gid("MailingAddress", ADDRESS_BASE + c * STRIDE),
                "firstName": first,
                "lastName": last,
                "address1": street,
                "address2": building,
                "city": city,
                "province": PREFECTURES[pref],
                "provinceCode": f"JP-{pref + 1:02d}",
                "zip": f"{rng.randint(1, 999):03d}-{rng.randint(0, 9999):04d}",
                "country": "Japan",
                "countryCodeV2": "JP",
                "company": rng.choice(p.companies) if rng.random() < 0.06 else None,
                "phone": phone,
            }
        life = max(1, updated - created)
        email_consent = sms_consent = None
        if email:
            marketing = rng.choices(
                ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING"), (40, 45, 12, 3)
            )[0]
            level = "CONFIRMED_OPT_IN" if marketing == "PENDING" or rng.random() < 0.3 else None
            email_consent = {
                "marketingState": marketing,
                "marketingOptInLevel": level or "SINGLE_OPT_IN",
                "consentUpdatedAt": None
                if marketing == "NOT_SUBSCRIBED"
                else iso(created + int(life * rng.random())),
            }
        if phone:
            marketing = rng.choices(
                ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING"), (15, 70, 12, 3)
            )[0]
            sms_consent = {
                "marketingState": marketing,
                "marketingOptInLevel": rng.choice(("SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN"))
                if marketing != "NOT_SUBSCRIBED"
                else "UNKNOWN",
                "consentUpdatedAt": None
                if marketing == "NOT_SUBSCRIBED"
                else iso(created + int(life * rng.random())),
                "consentCollectedFrom": "SHOPIFY" if marketing != "NOT_SUBSCRIBED" else "OTHER",
            }
        record: dict[str, Any] = {
            "__typename": "Customer",
            "id": gid("Customer", customer_number(c)),
            "firstName": first,
            "lastName": last,
            "displayName": f"{last} {first}",
            "email": email,
            "phone": phone,
            "tags": sorted(tags),
            "note": note,
            "state": state,
            "numberOfOrders": str(len(cores)),
            "amountSpent": money(spent),
            "emailMarketingConsent": email_consent,
            "smsMarketingConsent": sms_consent,
            "defaultAddress": address,
            "createdAt": iso(created),
            "updatedAt": iso(updated),
            "_index": c,
            "_kana": (last_kana, first_kana),
            "_metafields": furigana(person, c, last_kana, first_kana) | self._line(c),
        }
        change = self.customer_changes.get(c)
        if change:
            record.update({k: v for k, v in change.items() if not k.startswith("_")})
        return record

    # --- orders -----------------------------------------------------------------------

    def order_created(self, rank: int) -> int:
        """Creation time of the order of ``rank``."""
        if rank >= self.base_orders:
            return self.new_orders[rank][1]
        return int(self.by_created[rank]) >> 23

    def order_updated(self, rank: int) -> int:
        """Update time of the order of ``rank``, changes included."""
        change = self.order_changes.get(rank)
        if change:
            return int(change["_updated"])
        return self.order_core(rank).events.updated

    def order_core(self, rank: int) -> OrderCore:
        """The facts of the order of ``rank``; the same for the same seed."""
        change = self.order_changes.get(rank)
        if change and "_core" in change:
            return change["_core"]  # type: ignore[no-any-return]
        if rank >= self.base_orders:
            owner, created = self.new_orders[rank]
            events = Events(created, created, WEB, "PAID", None, None, None, False)
            rng = random.Random((self.seed << 40) | (3 << 36) | rank)
            return self._make_core(rng, owner, events)
        self.wait_for_orders()
        whole = int(self.by_created[rank])
        position = whole & MASK
        slot = bisect.bisect_right(self.offsets, position) - 1
        return self._base_core(slot, position - self.offsets[slot], whole >> 23)

    def _base_core(self, slot: int, j: int, created: int) -> OrderCore:
        """Order ``j`` of slot ``slot`` (a customer, or a guest slot), created then."""
        at = 3 * (self.offsets[slot] + j)
        events = order_events(created, self.order_rand[at + 1], self.order_rand[at + 2], self.end)
        # Seeded by (slot, j), not by rank, so it needs no index.
        rng = random.Random((self.seed << 40) | (2 << 36) | (slot << 8) | j)
        return self._make_core(rng, slot if slot < self.n else None, events)

    def _make_core(self, rng: random.Random, owner: int | None, events: Events) -> OrderCore:
        lines = []
        for _ in range(rng.choices((1, 2, 3, 4, 5), cum_weights=(45, 73, 88, 96, 100))[0]):
            quantity = rng.choices((1, 2, 3), (80, 15, 5))[0]
            if events.source == DRAFT and rng.random() < 0.05:
                price = rng.randrange(5, 50) * 100
                lines.append(Line(None, "特別注文品(お見積り)", quantity, price, 0))
                continue
            variant = rng.choices(self.variants, cum_weights=self.variant_weights)[0]
            discount = 0
            if rng.random() < 0.12:
                discount = variant.price * rng.choice((1, 2)) // 10
            lines.append(Line(variant, variant.title, quantity, variant.price, discount))
        subtotal = sum((ln.price - ln.unit_discount) * ln.quantity for ln in lines)
        shipping = 0
        if events.source != POS and subtotal < 5000:
            shipping = rng.choice((550, 660, 880))
        total = subtotal + shipping
        refunds: tuple[tuple[int, int], ...] = ()
        if events.financial == "REFUNDED" and events.cancelled_at is not None:
            refunds = ((events.cancelled_at, total),)
        elif events.refund_at is not None:
            part = total
            if not events.full_refund:
                last = lines[-1]
                part = (last.price - last.unit_discount) * last.quantity
                if len(lines) == 1:
                    part = max(100, total * 3 // 10 // 10 * 10)
            refunds = ((events.refund_at, part),)
        store = rng.randrange(len(STORES)) if events.source == POS else None
        return OrderCore(owner, events, tuple(lines), shipping, store, refunds)

    def order(self, rank: int) -> dict[str, Any]:
        """The order of ``rank`` shaped as the Admin API's Order."""
        core = self.order_core(rank)
        ev = core.events
        number = order_number(rank)
        lines = []
        for i, ln in enumerate(core.lines):
            v = ln.variant
            lines.append(
                {
                    "__typename": "LineItem",
                    "id": gid("LineItem", LINE_BASE + rank * 16 + i),
                    "sku": v.sku if v else None,
                    "name": f"{ln.title} - {v.variant_title}" if v else ln.title,
                    "title": ln.title,
                    "quantity": ln.quantity,
                    "product": {"id": gid("Product", v.product_id)} if v else None,
                    "variant": {"id": gid("ProductVariant", v.variant_id)} if v else None,
                    "originalUnitPriceSet": money_bag(ln.price),
                    "discountedUnitPriceSet": money_bag(ln.price - ln.unit_discount),
                    "totalDiscountSet": money_bag(ln.unit_discount * ln.quantity),
                }
            )
        record: dict[str, Any] = {
            "__typename": "Order",
            "id": gid("Order", number),
            "name": f"#{1001 + rank}",
            "createdAt": iso(ev.created),
            "processedAt": iso(ev.created),
            "updatedAt": iso(ev.updated),
            "cancelledAt": iso(ev.cancelled_at) if ev.cancelled_at is not None else None,
            "customer": None
            if core.owner is None
            else {"__typename": "Customer", "id": gid("Customer", customer_number(core.owner))},
            "currencyCode": "JPY",
            "taxesIncluded": True,
            "subtotalPriceSet": money_bag(core.subtotal),
            "totalDiscountsSet": money_bag(core.discounts),
            "totalShippingPriceSet": money_bag(core.shipping),
            "totalTaxSet": money_bag(core.tax),
            "totalPriceSet": money_bag(core.total),
            "displayFinancialStatus": ev.financial,
            "displayFulfillmentStatus": "FULFILLED" if ev.fulfilled_at else "UNFULFILLED",
            "discountCodes": [],  # a code used at checkout: create_order_with_code
            "sourceName": ev.source,
            "retailLocation": None
            if core.store is None
            else {
                "id": gid("Location", LOCATION_BASE + core.store * STRIDE),
                "name": STORES[core.store],
            },
            "refunds": [
                {
                    "id": gid("Refund", REFUND_BASE + rank * 4 + i),
                    "createdAt": iso(at),
                    "totalRefundedSet": money_bag(amount),
                }
                for i, (at, amount) in enumerate(core.refunds)
            ],
            "_lines": lines,
            "_owner": core.owner,
            "_rank": rank,
        }
        change = self.order_changes.get(rank)
        if change:
            record.update({k: v for k, v in change.items() if not k.startswith("_")})
            record["updatedAt"] = iso(change["_updated"])
        return record

    # --- listings ---------------------------------------------------------------------

    def page(
        self,
        stream: str,
        sort: str,
        search: Search,
        *,
        first: int | None,
        last: int | None,
        after: float | None,
        before: float | None,
        reverse: bool,
    ) -> Page:
        """One page of ``stream`` sorted by ``sort`` ("ID" or "UPDATED_AT")."""
        if stream == "orders":
            self.wait_for_orders()
        keys, low, high = self._listing(stream, sort, search)
        if search.empty():
            return Page([], False, False)
        match = self._matcher(stream, sort, search)

        def run(start: float | None, descending: bool, limit: int) -> list[tuple[int, float]]:
            """Up to ``limit`` matches walking from just past ``start`` (None: the bound)."""
            inclusive = False
            if descending and high is not None and (start is None or start > high):
                start = high
            elif not descending and low is not None and (start is None or start < low):
                start, inclusive = low, True
            found: list[tuple[int, float]] = []
            for key in keys.walk(start, inclusive=inclusive, descending=descending):
                if (high is not None and key >= high) or (low is not None and key < low):
                    break
                index = int(key) & MASK
                if match(index):
                    found.append((index, key))
                    if len(found) == limit:
                        break
            return found

        # The list runs ascending unless ``reverse``; ``last`` walks it from the far end.
        if last is not None and first is None:
            items = run(before, not reverse, last + 1)
            earlier = len(items) > last
            items = items[:last][::-1]
            later = bool(items) and before is not None and bool(run(items[-1][1], reverse, 1))
            return Page(items, later, earlier)
        size = first or 0
        items = run(after, reverse, size + 1)
        later = len(items) > size
        items = items[:size]
        earlier = bool(items) and after is not None and bool(run(items[0][1], not reverse, 1))
        return Page(items, later, earlier)

    def count(self, stream: str, search: Search, cap: int) -> tuple[int, bool]:
        """(matches up to ``cap``, whether that is all of them), as the *Count fields."""
        if stream == "orders":
            self.wait_for_orders()
        keys, low, high = self._listing(stream, "UPDATED_AT", search)
        if search.empty():
            return 0, True
        match = self._matcher(stream, "UPDATED_AT", search)
        found = 0
        inclusive = low is not None
        for key in keys.walk(low, inclusive=inclusive, descending=False):
            if high is not None and key >= high:
                break
            if match(int(key) & MASK):
                found += 1
                if found > cap:
                    return cap, False
        return found, True

    def _listing(
        self, stream: str, sort: str, search: Search
    ) -> tuple[SortedKeys, float | None, float | None]:
        """The listing to walk and the key range the search allows on it."""
        if stream == "orders" and not self.read_all_orders:
            cutoff = int(self.clock()) - 60 * DAY
            search.fields.setdefault("created_at", Interval()).narrow(cutoff, None)
        if sort == "UPDATED_AT":
            keys = self.customers_by_updated if stream == "customers" else self.orders_by_updated
            span = search.interval("updated_at")
            if stream == "orders":
                # created <= updated, so a lower bound on creation bounds updates too
                created = search.interval("created_at")
                if created.low is not None:
                    span = Interval(span.low, span.high)
                    span.narrow(created.low, None)
            low = None if span.low is None else float((span.low - EPOCH) * SHIFT)
            high = None if span.high is None else float((span.high - EPOCH) * SHIFT)
            return keys, low, high
        keys = self.customers_by_id if stream == "customers" else self.orders_by_id
        return keys, None, None

    def _matcher(self, stream: str, sort: str, search: Search) -> Any:
        """A predicate on a record index for the conditions the walk does not bound."""
        checks = []
        for name, span in search.fields.items():
            if name == "updated_at" and sort == "UPDATED_AT":
                continue
            checks.append((name, span))
        if stream == "customers":
            deleted = self.deleted_customers

            def customer_ok(c: int) -> bool:
                if c in deleted:
                    return False
                for name, span in checks:
                    if name == "id":
                        value = customer_number(c)
                    else:
                        created, updated = self.customer_times(c)
                        value = EPOCH + (updated if name == "updated_at" else created)
                    if value not in span:
                        return False
                return True

            return customer_ok
        gone = self.deleted_orders

        def order_ok(rank: int) -> bool:
            if rank in gone:
                return False
            for name, span in checks:
                if name == "id":
                    value = order_number(rank)
                elif name == "updated_at":
                    value = EPOCH + self.order_updated(rank)
                else:
                    value = EPOCH + self.order_created(rank)
                if value not in span:
                    return False
            return True

        return order_ok

    # --- changes ----------------------------------------------------------------------

    def update_customer(self, c: int, **fields: Any) -> dict[str, Any]:
        """Change fields of customer ``c`` (GraphQL names); its updatedAt becomes now."""
        with self.lock:
            stamp = self.now()
            change = self.customer_changes.setdefault(c, {})
            change.update(fields)
            change["_updated"] = stamp
            self.customers_by_updated.put(c, float(stamp * SHIFT + c))
            return self.customer(c)

    def create_customer(self, **fields: Any) -> dict[str, Any]:
        """A new customer signed up now."""
        with self.lock:
            c = self.next_customer
            if c >= SHIFT:
                raise ValueError("the sandbox is full")
            self.next_customer += 1
            stamp = self.now()
            self.new_customers[c] = stamp
            self.customers_by_id.put(c, float(c))
            self.customers_by_updated.put(c, float(stamp * SHIFT + c))
            if fields:
                self.customer_changes[c] = {**fields, "_updated": stamp}
            return self.customer(c)

    def delete_customer(self, c: int) -> None:
        """Remove customer ``c`` from every listing."""
        with self.lock:
            self.deleted_customers.add(c)
            self.customers_by_id.drop(c)
            self.customers_by_updated.drop(c)

    def update_order(self, rank: int, **fields: Any) -> dict[str, Any]:
        """Change fields of an order (GraphQL names); updatedAt becomes now."""
        with self.lock:
            stamp = self.now()
            change = self.order_changes.setdefault(rank, {})
            change.update(fields)
            change["_updated"] = stamp
            self.orders_by_updated.put(rank, float(stamp * SHIFT + rank))
            return self.order(rank)

    def cancel_order(self, rank: int) -> dict[str, Any]:
        """Cancel an order now and refund what was paid; its customer changes too."""
        with self.lock:
            core = self.order_core(rank)
            stamp = self.now()
            paid = core.events.financial not in ("PENDING", "VOIDED")
            refunds = core.refunds
            refunded = sum(a for _, a in refunds)
            if paid and core.total > refunded:
                refunds = (*refunds, (stamp, core.total - refunded))
            events = Events(
                core.events.created, stamp, core.events.source,
                "REFUNDED" if paid else "VOIDED", core.events.fulfilled_at, stamp, None, True,
            )  # fmt: skip
            new_core = OrderCore(core.owner, events, core.lines, core.shipping, core.store, refunds)
            self.order_changes[rank] = {"_core": new_core, "_updated": stamp}
            self.orders_by_updated.put(rank, float(stamp * SHIFT + rank))
            if core.owner is not None:
                self.update_customer(core.owner)
            return self.order(rank)

    def create_order(self, c: int | None) -> dict[str, Any]:
        """A new web order now, for customer ``c`` or a guest (None)."""
        with self.lock:
            rank = self.next_order
            if rank >= SHIFT:
                raise ValueError("the sandbox is full")
            self.next_order += 1
            stamp = self.now()
            self.new_orders[rank] = (c, stamp)
            self.orders_by_id.put(rank, float(rank))
            self.orders_by_updated.put(rank, float(stamp * SHIFT + rank))
            if c is not None:
                self.extra_orders.setdefault(c, []).append(rank)
                self.update_customer(c)
            return self.order(rank)

    def delete_order(self, rank: int) -> None:
        """Remove an order from every listing (its customer's totals change)."""
        with self.lock:
            owner = self.order_core(rank).owner
            self.deleted_orders.add(rank)
            self.orders_by_id.drop(rank)
            self.orders_by_updated.drop(rank)
            if owner is not None:
                self.update_customer(owner)
