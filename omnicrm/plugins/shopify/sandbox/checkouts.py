"""The sandbox shop's abandoned checkouts: carts the shop's customers filled and left, as
the Admin API's ``abandonedCheckouts`` lists them.

About one customer in twenty left a cart in the two months before the shop's end; a
quarter of those came back and completed it (``completedAt`` set: no longer abandoned).
:meth:`Checkouts.abandon` makes a customer leave one now and :meth:`Checkouts.complete`
completes one, for tests. Listed by id (``sortKey: ID``, the API's default) or by
``createdAt``, filtered by ``updated_at``, ``created_at`` and ``id`` searches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .data import DAY, EPOCH, customer_number, gid, gid_number, iso, money_bag
from .search import Search
from .search import parse as parse_search

if TYPE_CHECKING:
    from .data import ShopData
    from .schema import Info

SHARE = 20
"""One customer in this many left a cart."""


@dataclass
class _Checkout:
    number: int
    customer: int | None  # the customer's index
    created: int
    updated: int
    completed: int | None
    token: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


class Checkouts:
    """The abandoned checkouts of one sandbox shop, in memory."""

    def __init__(self, data: ShopData) -> None:
        self.data = data
        self._rng = random.Random(f"checkouts:{data.seed}")
        self._by_number: dict[int, _Checkout] = {}
        self._line = 0
        rng = self._rng
        for c in sorted(rng.sample(range(data.n), max(1, data.n // SHARE))):
            created = data.end - rng.randrange(3600, 60 * DAY)
            completed = created + rng.randrange(600, 3 * DAY) if rng.random() < 0.25 else None
            self._add(
                c, created, min(completed, data.end) if completed else None, rng.randrange(1800)
            )

    def _add(
        self, customer: int | None, created: int, completed: int | None, idle: int = 0
    ) -> _Checkout:
        rng = self._rng
        number = len(self._by_number) + 1
        lines = []
        total = 0
        for variant in rng.sample(list(self.data.variants), rng.randint(1, 3)):
            self._line += 1
            quantity = rng.choice((1, 1, 1, 2, 3))
            lines.append(
                {
                    "id": gid("AbandonedCheckoutLineItem", self._line),
                    "quantity": quantity,
                    "title": variant.title,
                    "variantTitle": variant.variant_title,
                    "sku": variant.sku,
                    "product": {"id": gid("Product", variant.product_id)},
                    "variant": {"id": gid("ProductVariant", variant.variant_id)},
                    "originalUnitPriceSet": money_bag(variant.price),
                }
            )
            total += variant.price * quantity
        checkout = _Checkout(
            number=number,
            customer=customer,
            created=created,
            # The buyer's last step in the cart, ``idle`` seconds after the first.
            updated=completed if completed is not None else created + idle,
            completed=completed,
            token=f"{rng.getrandbits(64):016x}",
            lines=lines,
            total=total,
        )
        self._by_number[number] = checkout
        return checkout

    def __len__(self) -> int:
        return len(self._by_number)

    def abandon(self, customer: int) -> str:
        """Customer ``customer`` (an index) fills a cart and leaves it now; its GID."""
        with self.data.lock:
            now = self.data.now()
            return gid("AbandonedCheckout", self._add(customer, now, None).number)

    def complete(self, value: str) -> None:
        """The buyer comes back and completes checkout ``value`` (a GID) now."""
        with self.data.lock:
            number = gid_number(value, "AbandonedCheckout")
            checkout = self._by_number[number or 0]
            checkout.completed = checkout.updated = self.data.now()

    def customer_of(self, value: str) -> int | None:
        """The index of the customer who left checkout ``value``."""
        return self._by_number[gid_number(value, "AbandonedCheckout") or 0].customer

    def listing(self, search: Search, by_created: bool) -> list[tuple[tuple[int, int], int]]:
        """(sort key, number) of the checkouts the search matches, in sort order."""
        updated, created, ids = (search.interval(n) for n in ("updated_at", "created_at", "id"))
        found = []
        for number, c in self._by_number.items():
            if (EPOCH + c.updated) not in updated or (EPOCH + c.created) not in created:
                continue
            if number not in ids:
                continue
            found.append(((c.created if by_created else 0, number), number))
        found.sort()
        return found

    def node(self, number: int, domain: str) -> dict[str, Any]:
        """The checkout as the API shows it; ``_lines`` for the line items resolver."""
        c = self._by_number[number]
        owner = None
        if c.customer is not None and c.customer not in self.data.deleted_customers:
            owner = {"id": gid("Customer", customer_number(c.customer))}
        return {
            "__typename": "AbandonedCheckout",
            "id": gid("AbandonedCheckout", c.number),
            "abandonedCheckoutUrl": f"https://{domain}/checkouts/{c.token}/recover",
            "createdAt": iso(c.created),
            "updatedAt": iso(c.updated),
            "completedAt": iso(c.completed) if c.completed is not None else None,
            "customer": owner,
            "totalPriceSet": money_bag(c.total),
            "_lines": [dict(line) for line in c.lines],
        }


def abandoned_checkouts(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    """``abandonedCheckouts``: by id or createdAt, ``first``/``after`` pages."""
    from .schema import UserFacingError, _connection, _decode_cursor, _encode_cursor, _page_size

    ctx = info.context
    first, last = args.get("first"), args.get("last")
    _page_size(first, last)
    if last is not None or args.get("before") is not None or args.get("reverse"):
        raise UserFacingError("the sandbox pages abandonedCheckouts forward only")
    by_created = args.get("sortKey") == "CREATED_AT"
    found = parse_search(args.get("query"), id_fields={"id"}, now=ctx.data.clock())
    if found.warnings:
        ctx.warnings.append(
            {"path": [info.field_name], "query": args.get("query"), "warnings": found.warnings}
        )
    after: tuple[int, int] | None = None
    if args.get("after") is not None:
        number, value = _decode_cursor(args["after"])
        after = (int(value), number)
    checkouts: Checkouts = ctx.data.checkouts
    with ctx.data.lock:
        listed = [
            (k, n) for k, n in checkouts.listing(found, by_created) if after is None or k > after
        ]
        chosen = listed[: first or 0]
        nodes = [checkouts.node(number, ctx.shop) for _, number in chosen]
    cursors = [_encode_cursor(key[1], str(key[0])) for key, _ in chosen]
    return _connection(nodes, cursors, len(listed) > len(chosen), after is not None)


def line_items(checkout: dict[str, Any], _info: Info, **args: Any) -> Any:
    """A checkout's line items, a page at a time."""
    from .schema import _nested_page

    return _nested_page(checkout["_lines"], args)
