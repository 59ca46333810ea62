"""Reading Square for omnicrm: the three streams, and single records for webhooks.

Customers: SearchCustomers filters by ``updated_at`` but sorts only by name or creation
time, so customers are read in windows (``customer_window_days`` at first, wider while
they hold few customers) and each window is sorted here before it is yielded (ascending,
as the engine needs). A full read starts at the oldest customer's creation time
(nothing can have been updated before it).

Orders: SearchOrders takes at most 10 location ids, so the locations are searched in
batches of 10, each with ``updated_at`` from the cursor to the run's start sorted by
UPDATED_AT ascending, and the batches are merged by update time.

Products: SearchCatalogObjects for ITEMs (with their variations, deleted ones included,
and their categories as related objects) changed after the cursor (``begin_time`` is
exclusive: a millisecond before it). Square does not sort them, and a catalogue is
small: the whole answer is read, then yielded in ``updated_at`` order. An expired cursor
reads it again from the start.

Cursors expire. A search whose cursor Square refuses is run again from its ``updated_at``
watermark (the last record read), skipping what was already read at that very moment;
a customer window, of which nothing was yielded yet, is read again whole.

Square Loyalty, where the seller runs it (``loyalty`` unset) or where the settings say:
balances (``Customer.points``) from SearchLoyaltyAccounts, 30 customers a request;
points earned and redeemed on a sale (``Order.points_earned``/``points_redeemed``)
from SearchLoyaltyEvents, for sales with a customer: by time for 200 orders at once
(30 events a page), by order for a sale made long before it was read (an offline upload,
a late refund).
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omnicrm import Customer, Order, Product
from omnicrm.errors import ConfigError, DataError, TransientError
from omnicrm.plugins.pos.square.client import CursorExpired, SquareClient
from omnicrm.plugins.pos.square.mapping import (
    customer_from_square,
    order_from_square,
    points_of_events,
    product_from_square,
    sale_customer,
)
from omnicrm.plugins.pos.square.settings import SquareSettings

LOCATION_BATCH = 10
"""SearchOrders' limit on location ids per request."""
LOYALTY_BATCH = 30
"""SearchLoyaltyAccounts' limit on customer ids per request."""
STATES = ("OPEN", "COMPLETED", "CANCELED")
"""Order states read (DRAFT orders are carts nobody paid for)."""
POINTS_CHUNK = 200
"""Orders whose loyalty events are read together."""
FRESH = dt.timedelta(hours=1)
"""A sale created this long before its chunk's first update still has its loyalty events
read with the chunk's (by time); one older, order by order."""
EARN_AND_REDEEM = ("ACCUMULATE_POINTS", "ACCUMULATE_PROMOTION_POINTS", "REDEEM_REWARD")
RESTARTS = 5
"""Searches run again after an expired cursor before the run gives up."""


def rfc3339(stamp: dt.datetime) -> str:
    """A timestamp as Square writes them (UTC, milliseconds)."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _updated(item: Mapping[str, Any], kind: str) -> dt.datetime:
    value = item.get("updated_at") if isinstance(item, Mapping) else None
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(
            f"Square {kind} {item.get('id') if isinstance(item, Mapping) else '?'}: field "
            "'updated_at' is not an RFC 3339 timestamp"
        ) from None
    if stamp.tzinfo is None:
        raise DataError(f"Square {kind} {item.get('id')}: field 'updated_at' has no UTC offset")
    return stamp.astimezone(dt.UTC)


def _created(item: Mapping[str, Any]) -> dt.datetime:
    return _updated({"id": item.get("id"), "updated_at": item.get("created_at")}, "order")


def _event_order(event: Mapping[str, Any]) -> str | None:
    """The order a loyalty event is about, if any."""
    for part in ("accumulate_points", "accumulate_promotion_points", "redeem_reward"):
        detail = event.get(part)
        if isinstance(detail, Mapping) and detail.get("order_id"):
            return str(detail["order_id"])
    return None


class SquareReader:
    """One connection's reads, on one client."""

    def __init__(
        self, client: SquareClient, settings: SquareSettings, logger: logging.Logger
    ) -> None:
        self.client, self.settings, self.log = client, settings, logger
        self._locations: dict[str, str] | None = None
        self._loyalty: bool | None = None

    # -- reference data

    def locations(self) -> dict[str, str]:
        """Location id -> store name (the id where a location has no name)."""
        if self._locations is None:
            answer = self.client.get("/v2/locations") or {}
            self._locations = {
                str(loc["id"]): str(loc.get("name") or loc["id"])
                for loc in answer.get("locations") or []
                if isinstance(loc, Mapping) and loc.get("id")
            }
        return self._locations

    def loyalty(self) -> bool:
        """Whether Square Loyalty is read: the setting, else whether the seller has it."""
        if self._loyalty is None:
            if self.settings.loyalty is False:
                self._loyalty = False
            else:
                program = self.client.get("/v2/loyalty/programs/main", missing_ok=True)
                found = bool(program and program.get("program"))
                if self.settings.loyalty and not found:
                    raise ConfigError(
                        "loyalty = true, but the Square seller has no loyalty programme",
                        key="loyalty",
                    )
                self._loyalty = found
        return self._loyalty

    def balances(self, customer_ids: Sequence[str]) -> dict[str, int]:
        """Customer id -> loyalty balance, for those of ``customer_ids`` with an account."""
        found: dict[str, int] = {}
        if not customer_ids or not self.loyalty():
            return found
        for start in range(0, len(customer_ids), LOYALTY_BATCH):
            query = {"customer_ids": list(customer_ids[start : start + LOYALTY_BATCH])}
            body = {"query": query, "limit": 200}
            for account in self._collect("/v2/loyalty/accounts/search", body, "loyalty_accounts"):
                if account.get("customer_id"):
                    found[str(account["customer_id"])] = int(account.get("balance") or 0)
        return found

    def order_points(self, order_id: str) -> tuple[int | None, int | None]:
        """Points earned and redeemed on one order, from its loyalty events."""
        body = {"query": {"filter": {"order_filter": {"order_id": order_id}}}, "limit": 30}
        events = list(self._events(body))
        return points_of_events(events, self._reward_points(events))

    def points_of(
        self, payloads: Sequence[Mapping[str, Any]]
    ) -> dict[str, tuple[int | None, int | None]]:
        """Points earned and redeemed on each of ``payloads`` that has a customer.

        Sales settled when they were made (created within :data:`FRESH` of the batch's
        first update) have their events read together, by time; the rest (a late
        offline upload, a refund of an old sale) order by order."""
        wanted = [p for p in payloads if p.get("id") and sale_customer(p)]
        if not wanted or not self.loyalty():
            return {}
        floor = min(_updated(p, "order") for p in payloads) - FRESH
        fresh = [p for p in wanted if _created(p) >= floor]
        found: dict[str, tuple[int | None, int | None]] = {
            str(p["id"]): self.order_points(str(p["id"])) for p in wanted if _created(p) < floor
        }
        if not fresh:
            return found
        span = {
            "start_at": rfc3339(min(_created(p) for p in fresh)),
            "end_at": rfc3339(max(_updated(p, "order") for p in fresh) + FRESH),
        }
        flt = {
            "date_time_filter": {"created_at": span},
            "type_filter": {"types": list(EARN_AND_REDEEM)},
        }
        ids = {str(p["id"]) for p in fresh}
        by_order: dict[str, list[Mapping[str, Any]]] = {i: [] for i in ids}
        for event in self._events({"query": {"filter": flt}, "limit": 30}):
            owner = _event_order(event)
            if owner in ids:
                by_order[owner].append(event)
        rewards = self._reward_points([e for events in by_order.values() for e in events])
        for order_id, events in by_order.items():
            found[order_id] = points_of_events(events, rewards)
        return found

    def _events(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return self._collect("/v2/loyalty/events/search", body, "events")

    def _collect(self, path: str, body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        """Every item of a search; run again from the start if a cursor expires (nothing
        of it was used yet)."""
        for attempt in range(RESTARTS + 1):
            try:
                return [
                    item
                    for page in self.client.search(path, body, key)
                    for item in page
                    if isinstance(item, Mapping)
                ]
            except CursorExpired as exc:
                if attempt == RESTARTS:
                    raise TransientError(f"{exc}; gave up after {RESTARTS} restarts") from exc
                self.log.warning("square: %s cursor expired; searching again", path)
        raise AssertionError("unreachable")

    def _reward_points(self, events: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """The points each reward redeemed in ``events`` cost (RetrieveLoyaltyReward)."""
        rewards: dict[str, int] = {}
        for event in events:
            reward = (event.get("redeem_reward") or {}).get("reward_id")
            if event.get("type") == "REDEEM_REWARD" and reward and reward not in rewards:
                answer = self.client.get(f"/v2/loyalty/rewards/{reward}", missing_ok=True) or {}
                rewards[str(reward)] = int((answer.get("reward") or {}).get("points") or 0)
        return rewards

    # -- records

    def customer(self, payload: Mapping[str, Any], points: int | None = None) -> Customer:
        """A customer record, its balance read when loyalty is on and none is given."""
        if points is None and self.loyalty() and payload.get("id"):
            points = self.balances([str(payload["id"])]).get(str(payload["id"]))
        return customer_from_square(payload, points=points)

    def order(
        self,
        payload: Mapping[str, Any],
        customer_id: str | None = None,
        points: tuple[int | None, int | None] | None = None,
    ) -> Order:
        """An order record, with its store name and loyalty points (read unless given)."""
        earned = redeemed = None
        if points is not None:
            earned, redeemed = points
        elif (sale_customer(payload) or customer_id) and payload.get("id") and self.loyalty():
            earned, redeemed = self.order_points(str(payload["id"]))
        return order_from_square(
            payload,
            locations=self.locations(),
            customer_id=customer_id,
            points_earned=earned,
            points_redeemed=redeemed,
        )

    def fetch_order(self, order_id: str, customer_id: str | None = None) -> Order | None:
        """The order ``order_id`` now (RetrieveOrder); None if Square has none."""
        answer = self.client.get(f"/v2/orders/{order_id}", missing_ok=True)
        payload = (answer or {}).get("order")
        if not isinstance(payload, Mapping):
            return None
        return self.order(payload, customer_id)

    # -- streams

    def customers(self, since: dt.datetime | None, until: dt.datetime) -> Iterator[Customer]:
        """Customers updated from ``since`` (inclusive) to ``until``, ascending."""
        start = since if since is not None else self._oldest_customer()
        if start is None:
            return
        width = dt.timedelta(days=self.settings.customer_window_days)
        while start <= until:
            end = min(start + width, until)
            last = end == until
            window = self._customer_window(start, end)
            # Few in a window: the next may be wider (a quiet history reads in few
            # requests); many: narrower, so one window's sort stays small.
            if len(window) < self.settings.customers_page_size // 2:
                width = min(width * 2, dt.timedelta(days=3660))
            elif len(window) > 50 * self.settings.customers_page_size:
                width = max(width / 2, dt.timedelta(hours=1))
            # Both ends are inclusive at Square: a record on the edge is the next window's.
            chosen = [c for c in window if last or _updated(c, "customer") < end]
            chosen.sort(key=lambda c: (_updated(c, "customer"), str(c.get("id"))))
            balances = self.balances([str(c["id"]) for c in chosen if c.get("id")])
            for payload in chosen:
                yield customer_from_square(payload, points=balances.get(str(payload.get("id"))))
            if last:
                return
            start = end

    def _oldest_customer(self) -> dt.datetime | None:
        body = {"limit": 1, "query": {"sort": {"field": "CREATED_AT", "order": "ASC"}}}
        page = self.client.post("/v2/customers/search", body)
        found = page.get("customers") or []
        if not found:
            return None
        created = found[0].get("created_at") or found[0].get("updated_at")
        return _updated({"id": found[0].get("id"), "updated_at": created}, "customer")

    def _customer_window(self, start: dt.datetime, end: dt.datetime) -> list[Mapping[str, Any]]:
        span = {"start_at": rfc3339(start), "end_at": rfc3339(end)}
        body = {
            "limit": self.settings.customers_page_size,
            "query": {"filter": {"updated_at": span}},
        }
        return self._collect("/v2/customers/search", body, "customers")

    def products(self, since: dt.datetime | None) -> list[Product]:
        """Catalogue items changed from ``since`` (inclusive; None: all), ascending."""
        body: dict[str, Any] = {
            "object_types": ["ITEM"],
            "include_deleted_objects": since is not None,  # a first read needs no tombstones
            "include_related_objects": True,
            "limit": 1000,
        }
        if since is not None:
            body["begin_time"] = rfc3339(since - dt.timedelta(milliseconds=1))
        for _ in range(RESTARTS):
            items: list[Any] = []
            categories: dict[str, str] = {}
            try:
                cursor: str | None = None
                while True:
                    page = self.client.post(
                        "/v2/catalog/search", {**body, "cursor": cursor} if cursor else body
                    )
                    items.extend(page.get("objects") or [])
                    for related in page.get("related_objects") or []:
                        if isinstance(related, Mapping) and related.get("type") == "CATEGORY":
                            data = related.get("category_data") or {}
                            categories[str(related.get("id"))] = str(data.get("name") or "")
                    following = page.get("cursor")
                    if not following:
                        break
                    cursor = str(following)
            except CursorExpired:
                self.log.info("square: a catalogue cursor expired; reading it again")
                continue
            found = [product_from_square(item, categories) for item in items]
            return sorted(found, key=lambda p: (p.updated_at, p.id))
        raise TransientError(f"Square's catalogue cursors expired {RESTARTS} times in a row")

    def orders(self, since: dt.datetime | None, until: dt.datetime) -> Iterator[Order]:
        """Orders updated from ``since`` (inclusive) to ``until``, ascending."""
        wanted = self.settings.location_ids or sorted(self.locations())
        batches = [wanted[i : i + LOCATION_BATCH] for i in range(0, len(wanted), LOCATION_BATCH)]
        streams = [self._order_batch(batch, since, until) for batch in batches]
        merged = heapq.merge(*streams, key=lambda item: (item[0], str(item[1].get("id"))))
        # In chunks, so the chunk's loyalty events are read together.
        chunk: list[Mapping[str, Any]] = []
        for _, payload in merged:
            chunk.append(payload)
            if len(chunk) >= POINTS_CHUNK:
                yield from self._with_points(chunk)
                chunk = []
        yield from self._with_points(chunk)

    def _with_points(self, payloads: Sequence[Mapping[str, Any]]) -> Iterator[Order]:
        points = self.points_of(payloads)
        for payload in payloads:
            yield self.order(payload, points=points.get(str(payload.get("id")), (None, None)))

    def _order_batch(
        self, locations: list[str], since: dt.datetime | None, until: dt.datetime
    ) -> Iterator[tuple[dt.datetime, Mapping[str, Any]]]:
        watermark = since
        seen: set[str] = set()  # ids read at the watermark itself
        restarts = 0
        while True:
            span = {"end_at": rfc3339(until)}
            if watermark is not None:
                span["start_at"] = rfc3339(watermark)
            body = {
                "location_ids": locations,
                "limit": self.settings.orders_page_size,
                "query": {
                    "filter": {
                        "state_filter": {"states": list(STATES)},
                        "date_time_filter": {"updated_at": span},
                    },
                    "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
                },
            }
            try:
                for page in self.client.search("/v2/orders/search", body, "orders"):
                    for payload in page:
                        stamp = _updated(payload, "order")
                        key = str(payload.get("id"))
                        if watermark is not None and (
                            stamp < watermark or (stamp == watermark and key in seen)
                        ):
                            continue  # read before the cursor expired
                        if stamp != watermark:
                            watermark, seen = stamp, set()
                        seen.add(key)
                        yield stamp, payload
                return
            except CursorExpired as exc:
                restarts += 1
                if restarts > RESTARTS:
                    raise TransientError(f"{exc}; gave up after {RESTARTS} restarts") from exc
                self.log.warning(
                    "square: order cursor expired; searching again from %s",
                    rfc3339(watermark) if watermark else "the beginning",
                )
