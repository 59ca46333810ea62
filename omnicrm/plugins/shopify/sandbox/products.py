"""The sandbox shop's products: the catalogue's variants grouped into products, as the
Admin API's ``products`` and ``product`` show them.

Every variant an order line points at is a variant of one of these products (same
product and variant ids, same SKU and price), so a products sync and an orders sync
agree. Some variants are sold out (``availableForSale`` false, ``inventoryQuantity``
0), one product is a draft and one archived: what a recommendation must never offer.
A product's last edit lies in the seeded history; :meth:`Products.update` edits one now.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalog import Variant
from .data import DAY, EPOCH, gid, iso
from .search import Search

_TYPES = {
    "TEA": "日本茶", "MAT": "日本茶", "HOJ": "日本茶", "WKC": "日本茶", "GYO": "日本茶",
    "GEN": "日本茶", "KBN": "日本茶", "MZD": "日本茶", "ARI": "茶器", "NTK": "茶器",
    "SGR": "茶器", "IMB": "雑貨", "CHS": "茶器", "GFT": "ギフト", "WAG": "和菓子",
    "TRN": "和菓子",
}  # fmt: skip
_VENDORS = {"日本茶": "自社焙煎", "茶器": "窯元直送", "雑貨": "今治タオル工房", "ギフト": "自社",
            "和菓子": "京菓子司"}  # fmt: skip
DRAFT_CODE = "MZD"
"""The product taken back to draft (水出し緑茶: out of season)."""
ARCHIVED_CODE = "TRN"
"""The product no longer sold (抹茶テリーヌ)."""


@dataclass
class _Product:
    number: int
    code: str
    title: str
    status: str
    created: int
    updated: int
    variants: list[dict[str, Any]] = field(default_factory=list)


class Products:
    """The products of one sandbox shop, in memory (a catalogue is small)."""

    def __init__(
        self,
        variants: Sequence[Variant],
        seed: int,
        start: int,
        end: int,
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        self.lock = threading.RLock()
        self.deleted: set[int] = set()
        self._by_number: dict[int, _Product] = {}
        rng = random.Random(f"products:{seed}")
        for v in variants:
            product = self._by_number.get(v.product_id)
            code = v.sku.split("-", 1)[0]
            if product is None:
                created = start + rng.randrange(0, 30 * DAY)
                status = {DRAFT_CODE: "DRAFT", ARCHIVED_CODE: "ARCHIVED"}.get(code, "ACTIVE")
                product = _Product(
                    number=v.product_id,
                    code=code,
                    title=v.title,
                    status=status,
                    created=created,
                    updated=end - rng.randrange(DAY, 400 * DAY),
                )
                self._by_number[v.product_id] = product
            # About one variant in eight is sold out (inventory tracked, not oversold).
            stock = 0 if rng.random() < 0.125 else rng.randrange(1, 120)
            product.variants.append(
                {
                    "__typename": "ProductVariant",
                    "id": gid("ProductVariant", v.variant_id),
                    "sku": v.sku,
                    "title": v.variant_title,
                    "price": f"{v.price}.00",
                    "compareAtPrice": None,
                    "availableForSale": stock > 0,
                    "inventoryQuantity": stock,
                    "createdAt": iso(product.created),
                    "updatedAt": iso(product.updated),
                }
            )

    def __len__(self) -> int:
        return len(self._by_number) - len(self.deleted)

    def _now(self, p: _Product) -> int:
        # The wall clock, and strictly after the product's own last edit (two edits in
        # one second are two versions).
        return max(int(self._clock()) - EPOCH, p.updated + 1)

    def number(self, value: str) -> int | None:
        """The product number of a GID, if it is one of ours and not deleted."""
        if not value.startswith("gid://shopify/Product/"):
            return None
        try:
            number = int(value.rsplit("/", 1)[1])
        except ValueError:
            return None
        return number if number in self._by_number and number not in self.deleted else None

    def node(self, number: int, domain: str) -> dict[str, Any]:
        """The product as the API shows it; ``_variants`` for the variants resolver."""
        p = self._by_number[number]
        handle = f"{p.code.lower()}-{p.number % 10_000:04d}"
        kind = _TYPES.get(p.code, "その他")
        return {
            "__typename": "Product",
            "id": gid("Product", p.number),
            "title": p.title,
            "handle": handle,
            # Only a product published to the online store has a page there.
            "onlineStoreUrl": (
                f"https://{domain}/products/{handle}" if p.status == "ACTIVE" else None
            ),
            "productType": kind,
            "vendor": _VENDORS.get(kind, "自社"),
            "tags": sorted({kind, *(["ギフト対応"] if p.code in ("GFT", "WAG", "ARI") else [])}),
            "status": p.status,
            "createdAt": iso(p.created),
            "updatedAt": iso(p.updated),
            "totalInventory": sum(v["inventoryQuantity"] for v in p.variants),
            "_variants": [dict(v) for v in p.variants],
        }

    def listing(self, search: Search, by_updated: bool) -> list[tuple[tuple[int, int], int]]:
        """(sort key, number) of the products the search matches, in sort order."""
        span = search.interval("updated_at")
        ids = search.interval("id")
        found = []
        for number, p in self._by_number.items():
            if number in self.deleted or (EPOCH + p.updated) not in span or number not in ids:
                continue
            found.append(((p.updated if by_updated else 0, number), number))
        found.sort()
        return found

    def update(self, number: int, **fields: Any) -> None:
        """Edit a product now: ``status``, ``title``, or ``available`` (every variant sold
        out, or back in stock); its updatedAt becomes now."""
        with self.lock:
            p = self._by_number[number]
            p.updated = self._now(p)
            if "status" in fields:
                p.status = str(fields["status"])
            if "title" in fields:
                p.title = str(fields["title"])
            for v in p.variants:
                if "available" in fields:
                    v["availableForSale"] = bool(fields["available"])
                    v["inventoryQuantity"] = 10 if fields["available"] else 0
                v["updatedAt"] = iso(p.updated)

    def delete(self, number: int) -> None:
        with self.lock:
            self.deleted.add(number)
