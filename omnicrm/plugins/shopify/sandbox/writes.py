"""What apps write to the sandbox: discount codes (coupons) and metafields.

As Shopify answers them in 2024-12:

* ``discountCodeBasicCreate``: one amount-off discount with its first code; a code any
  discount already holds (case-insensitively) is a userError ``TAKEN`` ("Code must be
  unique. Please try a different code."); a percentage outside 0..1, a missing title or
  code, an end before the start likewise (nothing created).
* ``discountRedeemCodeBulkAdd``: at most 100 codes per call (more: a userError, nothing
  created); it answers a ``DiscountRedeemCodeBulkCreation`` that is ``done: false``
  until the codes are imported in the background (``creation_seconds`` later); each code
  then either belongs to the discount or carries its errors (``TAKEN`` for a duplicate,
  within the call or with any discount's).
* ``metafieldsSet``: at most 25 metafields; atomic (one bad input and nothing is
  written); userErrors carry the input's ``elementIndex``. The owner must exist (a
  customer or a product); ``json`` values must parse, ``list.product_reference`` values
  must be a JSON list (at most 128) of existing product GIDs.

Orders record the codes they used in ``discountCodes``; :meth:`Writes.redeem` checks a
code as a checkout would (exists, not expired, under its usage limit).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .data import gid

MAX_REDEEM_CODES = 100
MAX_METAFIELDS = 25
MAX_REFERENCES = 128
TAKEN = "Code must be unique. Please try a different code."
LIST_TYPES = {"list.product_reference": "Product"}


@dataclass
class Discount:
    """One code discount and its codes (upper-cased keys in :attr:`Writes.codes`)."""

    number: int
    title: str
    percentage: float | None
    amount: Decimal | None
    minimum: Decimal | None
    starts_at: str
    ends_at: str | None
    usage_limit: int | None
    codes: list[str] = field(default_factory=list)
    used: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return gid("DiscountCodeNode", self.number)

    def node(self) -> dict[str, Any]:
        return {
            "__typename": "DiscountCodeNode",
            "id": self.id,
            "codeDiscount": {
                "__typename": "DiscountCodeBasic",
                "title": self.title,
                "startsAt": self.starts_at,
                "endsAt": self.ends_at,
                "usageLimit": self.usage_limit,
            },
        }


@dataclass
class Creation:
    """One ``discountRedeemCodeBulkAdd`` call: its codes and, once done, their fate."""

    number: int
    discount: int
    codes: list[str]
    created_at: str
    done: bool = False
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def node(self) -> dict[str, Any]:
        failed = len(self.errors) if self.done else 0
        return {
            "__typename": "DiscountRedeemCodeBulkCreation",
            "id": gid("DiscountRedeemCodeBulkCreation", self.number),
            "done": self.done,
            "codesCount": len(self.codes),
            "importedCount": len(self.codes) - failed if self.done else 0,
            "failedCount": failed,
            "createdAt": self.created_at,
            "_codes": [
                {"code": code, "errors": self.errors.get(i, []) if self.done else []}
                for i, code in enumerate(self.codes)
            ],
        }


def _error(message: str, code: str | None, *path: str) -> dict[str, Any]:
    return {"message": message, "code": code, "field": list(path) or None, "extraInfo": None}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writes:
    """The sandbox shop's discounts and metafields. Thread-safe."""

    def __init__(self, *, creation_seconds: float = 0.2) -> None:
        self.lock = threading.RLock()
        self.discounts: dict[int, Discount] = {}
        self.codes: dict[str, int] = {}  # upper-cased code -> discount number
        self.creations: dict[int, Creation] = {}
        self.metafields: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.creation_seconds = creation_seconds
        self._next = 1_190_000_001

    def _number(self) -> int:
        self._next += 1
        return self._next

    # -- discounts ---------------------------------------------------------------------

    def create_discount(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``discountCodeBasicCreate``'s payload for the input ``given``."""
        errors: list[dict[str, Any]] = []
        title = (given.get("title") or "").strip()
        code = (given.get("code") or "").strip()
        if not title:
            errors.append(_error("Title can't be blank", "BLANK", "basicCodeDiscount", "title"))
        if not code:
            errors.append(_error("Code can't be blank", "BLANK", "basicCodeDiscount", "code"))
        elif len(code) > 255:
            errors.append(_error("Code is too long", "TOO_LONG", "basicCodeDiscount", "code"))
        value = (given.get("customerGets") or {}).get("value") or {}
        percentage = value.get("percentage")
        amount = (value.get("discountAmount") or {}).get("amount")
        if (percentage is None) == (amount is None):
            errors.append(
                _error(
                    "Value must be a percentage or an amount",
                    "INVALID",
                    "basicCodeDiscount",
                    "customerGets",
                    "value",
                )
            )
        elif percentage is not None and not 0 < percentage <= 1:
            errors.append(
                _error(
                    "Value must be between 0.0 and 1.0",
                    "VALUE_OUTSIDE_RANGE",
                    "basicCodeDiscount",
                    "customerGets",
                    "value",
                    "percentage",
                )
            )
        minimum = ((given.get("minimumRequirement") or {}).get("subtotal") or {}).get(
            "greaterThanOrEqualToSubtotal"
        )
        starts = given.get("startsAt") or _now()
        ends = given.get("endsAt")
        if ends is not None and _stamp(ends) <= _stamp(starts):
            errors.append(
                _error(
                    "Ends at needs to be after starts_at",
                    "GREATER_THAN",
                    "basicCodeDiscount",
                    "endsAt",
                )
            )
        with self.lock:
            if code and code.upper() in self.codes:
                errors.append(_error(TAKEN, "TAKEN", "basicCodeDiscount", "code"))
            if errors:
                return {"codeDiscountNode": None, "userErrors": errors}
            discount = Discount(
                number=self._number(),
                title=title,
                percentage=percentage,
                amount=_decimal(amount),
                minimum=_decimal(minimum),
                starts_at=_iso(starts),
                ends_at=None if ends is None else _iso(ends),
                usage_limit=given.get("usageLimit"),
                codes=[code],
            )
            self.discounts[discount.number] = discount
            self.codes[code.upper()] = discount.number
            return {"codeDiscountNode": discount.node(), "userErrors": []}

    def add_codes(
        self, discount_id: str, codes: Sequence[Mapping[str, Any]], *, later: Callable[..., Any]
    ) -> dict[str, Any]:
        """``discountRedeemCodeBulkAdd``'s payload; ``later(seconds, fn)`` runs the import."""
        with self.lock:
            discount = self._discount(discount_id)
            if discount is None:
                return {
                    "bulkCreation": None,
                    "userErrors": [_error("Discount does not exist", "INVALID", "discountId")],
                }
            if len(codes) > MAX_REDEEM_CODES:
                return {
                    "bulkCreation": None,
                    "userErrors": [
                        _error(
                            f"Codes can't exceed {MAX_REDEEM_CODES} per request",
                            "EXCEEDED_MAX",
                            "codes",
                        )
                    ],
                }
            creation = Creation(
                self._number(), discount.number, [str(c["code"]).strip() for c in codes], _now()
            )
            self.creations[creation.number] = creation
        later(self.creation_seconds, lambda: self._import(creation))
        return {"bulkCreation": creation.node(), "userErrors": []}

    def _import(self, creation: Creation) -> None:
        with self.lock:
            discount = self.discounts[creation.discount]
            for i, code in enumerate(creation.codes):
                key = code.upper()
                if not code:
                    creation.errors[i] = [_error("Code can't be blank", "BLANK", "code")]
                elif len(code) > 255:
                    creation.errors[i] = [_error("Code is too long", "TOO_LONG", "code")]
                elif key in self.codes:
                    creation.errors[i] = [_error(TAKEN, "TAKEN", "code")]
                else:
                    self.codes[key] = discount.number
                    discount.codes.append(code)
            creation.done = True

    def creation(self, value: str) -> dict[str, Any] | None:
        number = _number_of(value, "DiscountRedeemCodeBulkCreation")
        with self.lock:
            found = self.creations.get(number) if number is not None else None
            return None if found is None else found.node()

    def _discount(self, value: str) -> Discount | None:
        number = _number_of(value, "DiscountCodeNode")
        return self.discounts.get(number) if number is not None else None

    def by_code(self, code: str) -> dict[str, Any] | None:
        """``codeDiscountNodeByCode``: the discount holding ``code`` (any case)."""
        with self.lock:
            number = self.codes.get(code.strip().upper())
            return None if number is None else self.discounts[number].node()

    def redeem(self, code: str, subtotal: int, now: str) -> str:
        """Use ``code`` at a checkout of ``subtotal`` yen at ``now`` (ISO): the code as the
        discount holds it; a ValueError saying why a checkout refuses it."""
        with self.lock:
            number = self.codes.get(code.strip().upper())
            if number is None:
                raise ValueError(f"Enter a valid discount code ({code!r} does not exist)")
            discount = self.discounts[number]
            held = next(c for c in discount.codes if c.upper() == code.strip().upper())
            if _stamp(now) < _stamp(discount.starts_at) or (
                discount.ends_at is not None and _stamp(now) >= _stamp(discount.ends_at)
            ):
                raise ValueError(f"{held} is not valid right now")
            if discount.minimum is not None and subtotal < discount.minimum:
                raise ValueError(f"{held} needs a subtotal of {discount.minimum}")
            # Shopify counts a code discount's usage limit per code (a price rule's).
            used = discount.used.get(held, 0)
            if discount.usage_limit is not None and used >= discount.usage_limit:
                raise ValueError(f"{held} has reached its usage limit")
            discount.used[held] = used + 1
            return held

    # -- metafields --------------------------------------------------------------------

    def set_metafields(
        self, inputs: Sequence[Mapping[str, Any]], exists: Callable[[str], bool]
    ) -> dict[str, Any]:
        """``metafieldsSet``'s payload; ``exists(gid)`` says whether an owner or a
        referenced product exists."""
        if len(inputs) > MAX_METAFIELDS:
            return {
                "metafields": None,
                "userErrors": [
                    {
                        "message": f"Exceeded the maximum metafields input limit of "
                        f"{MAX_METAFIELDS}.",
                        "code": "LESS_THAN_OR_EQUAL_TO",
                        "field": ["metafields"],
                        "elementIndex": None,
                    }
                ],
            }
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(inputs):
            problem = _metafield_problem(item, exists)
            if problem is not None:
                message, code, name = problem
                errors.append(
                    {
                        "message": message,
                        "code": code,
                        "field": ["metafields", str(i), name],
                        "elementIndex": i,
                    }
                )
        if errors:  # atomic: nothing is written
            return {"metafields": None, "userErrors": errors}
        written = []
        with self.lock:
            for item in inputs:
                key = (str(item["ownerId"]), str(item.get("namespace")), str(item["key"]))
                held = self.metafields.get(key)
                kind = item.get("type") or (held or {}).get("type")
                stored = {
                    "namespace": key[1],
                    "key": key[2],
                    "type": kind,
                    "value": item["value"],
                    "updatedAt": _now(),
                }
                self.metafields[key] = stored
                written.append(dict(stored))
        return {"metafields": written, "userErrors": []}

    def metafield(self, owner: str, namespace: str, key: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.metafields.get((owner, namespace, key))
            return None if found is None else dict(found)


def _metafield_problem(
    item: Mapping[str, Any], exists: Callable[[str], bool]
) -> tuple[str, str, str] | None:
    namespace = item.get("namespace") or ""
    if not 3 <= len(namespace) <= 255:
        return "Namespace is too short (minimum is 3 characters)", "TOO_SHORT", "namespace"
    if not item.get("key"):
        return "Key can't be blank", "BLANK", "key"
    if not exists(str(item.get("ownerId"))):
        return "Owner does not exist", "INVALID_VALUE", "ownerId"
    kind = item.get("type")
    value = str(item.get("value"))
    if kind is None:
        return "Type can't be blank", "BLANK", "type"
    if kind == "json" or kind in LIST_TYPES:
        try:
            parsed = json.loads(value)
        except ValueError:
            return "Value is invalid JSON", "INVALID_VALUE", "value"
        if kind in LIST_TYPES:
            prefix = f"gid://shopify/{LIST_TYPES[kind]}/"
            if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
                return "Value must be an array of GIDs", "INVALID_VALUE", "value"
            if len(parsed) > MAX_REFERENCES:
                return f"Value can't exceed {MAX_REFERENCES} references", "INVALID_VALUE", "value"
            for ref in parsed:
                if not ref.startswith(prefix) or not exists(ref):
                    return f"Value references non-existent resource {ref}", "INVALID_VALUE", "value"
        return None
    if kind not in ("single_line_text_field", "multi_line_text_field"):
        return f"Type {kind!r} is not supported here", "INVALID_TYPE", "type"
    return None


def _number_of(value: str, kind: str) -> int | None:
    prefix = f"gid://shopify/{kind}/"
    if not value.startswith(prefix) or not value[len(prefix) :].isdigit():
        return None
    return int(value[len(prefix) :])


def _stamp(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(value: str) -> str:
    return _stamp(value).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
