"""Writing back to Shopify: coupon codes as discount codes, recommendations as metafields.

**Coupons.** One amount-off code discount per campaign (``discountCodeBasicCreate``,
with the first code), then the other codes added to it by ``discountRedeemCodeBulkAdd``
in batches of 100 (its limit), each batch polled (``discountRedeemCodeBulkCreation``)
until Shopify has imported it, and its failed codes read back. A code refused as
``TAKEN`` is looked up (``codeDiscountNodeByCode``): one the campaign's own discount
holds was added by an earlier, interrupted call and counts as created; a discount of
the same title holding the first code is that call's discount, adopted rather than
created twice. Shopify counts a code discount's ``usageLimit`` per code, and
``appliesOncePerCustomer`` keeps one customer from using several.

**Recommendations.** ``metafieldsSet`` in batches of 25 (its limit): a customer's in
``omnicrm.recommendations`` (``json``: a list of ``{"product_id", "handle", "score",
"reason"}``), a product's "also bought" in ``omnicrm.also_bought``
(``list.product_reference``), which Liquid turns into product objects
(``product.metafields.omnicrm.also_bought.value``), so a theme shows them with their
images, prices and availability without a script or a lookup by handle. The mutation
is atomic: a batch with a refused owner (deleted since the last sync) is sent again
without it.

Every request goes through :class:`~omnicrm.plugins.shopify.client.ShopifyClient`, so
it waits on the shop's cost budget like a sync does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from omnicrm import (
    CouponsCreated,
    CouponSpec,
    DiscountKind,
    Owner,
    WriteContext,
    WriteTarget,
)
from omnicrm.errors import PluginError, SyncError, TransientError
from omnicrm.plugins.shopify.client import ShopifyClient
from omnicrm.plugins.shopify.settings import ShopifySettings

CODES_PER_CALL = 100
"""``discountRedeemCodeBulkAdd`` takes at most this many codes."""
METAFIELDS_PER_CALL = 25
"""``metafieldsSet`` takes at most this many metafields."""
NAMESPACE = "omnicrm"
CUSTOMER_KEY = "recommendations"
PRODUCT_KEY = "also_bought"
POLL_SECONDS = 0.25
POLL_TIMEOUT = 120.0
FIRST_CODE_TRIES = 5


def _client(ctx: WriteContext[Any]) -> ShopifyClient:
    settings = ctx.settings
    if not isinstance(settings, ShopifySettings):
        raise PluginError(f"shopify got settings of type {type(settings).__name__}")
    return ShopifyClient(
        settings, on_rate_limit=ctx.wait_for_rate_limit, sleep=ctx.sleep, logger=ctx.logger
    )


def discount_input(spec: CouponSpec, code: str) -> dict[str, Any]:
    """The ``DiscountCodeBasicInput`` of ``spec`` with its first ``code``."""
    if spec.kind is DiscountKind.PERCENTAGE:
        value: dict[str, Any] = {"percentage": float(spec.value / 100)}
    else:
        value = {"discountAmount": {"amount": str(spec.value), "appliesOnEachItem": False}}
    given: dict[str, Any] = {
        "title": spec.title,
        "code": code,
        "startsAt": spec.starts_at.isoformat(),
        "endsAt": spec.ends_at.isoformat() if spec.ends_at else None,
        "customerSelection": {"all": True},
        "customerGets": {"value": value, "items": {"all": True}},
        "usageLimit": spec.usage_limit,
        "appliesOncePerCustomer": True,
    }
    if spec.minimum_subtotal is not None:
        given["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": str(spec.minimum_subtotal)}
        }
    return given


class ShopifyCoupons:
    """``ChannelType.coupons`` of the Shopify channel (see the module)."""

    def create(
        self,
        ctx: WriteContext[Any],
        spec: CouponSpec,
        codes: Sequence[str],
        *,
        discount_id: str | None = None,
    ) -> CouponsCreated:
        """Create ``codes`` under one discount of ``spec`` (see the module)."""
        refused: dict[str, str] = {}
        created: list[str] = []
        rest = list(codes)
        with _client(ctx) as client:
            while discount_id is None and rest:
                if len(refused) >= FIRST_CODE_TRIES:
                    raise SyncError(
                        f"Shopify refused the first {FIRST_CODE_TRIES} codes of discount "
                        f"{spec.title!r}: {'; '.join(refused.values())}"
                    )
                first = rest.pop(0)
                discount_id, why = self._create_discount(ctx, client, spec, first)
                if discount_id is None:
                    refused[first] = why
                else:
                    created.append(first)
            if discount_id is None:  # every code refused
                return CouponsCreated("", (), refused)
            for start in range(0, len(rest), CODES_PER_CALL):
                batch = rest[start : start + CODES_PER_CALL]
                failed = self._add_codes(ctx, client, discount_id, batch)
                for code in batch:
                    reason = failed.get(code)
                    if reason is None or self._holds(client, discount_id, code):
                        created.append(code)
                    else:
                        refused[code] = reason
        ctx.logger.info(
            "shopify: discount %s holds %d new code(s); %d refused",
            discount_id,
            len(created),
            len(refused),
        )
        return CouponsCreated(discount_id, tuple(created), refused)

    def _create_discount(
        self, ctx: WriteContext[Any], client: ShopifyClient, spec: CouponSpec, code: str
    ) -> tuple[str | None, str]:
        data = client.execute("DiscountCreate", {"discount": discount_input(spec, code)}).data
        payload = data.get("discountCodeBasicCreate") or {}
        errors = payload.get("userErrors") or []
        node = payload.get("codeDiscountNode")
        if not errors and isinstance(node, Mapping) and node.get("id"):
            return str(node["id"]), ""
        if any(e.get("code") == "TAKEN" for e in errors):
            # Ours, from a call that died before its answer was recorded?
            found = self._by_code(client, code)
            if found is not None and found[1] == spec.title:
                ctx.logger.info("shopify: adopting discount %s (its code %s)", found[0], code)
                return found[0], ""
            return None, _messages(errors)
        raise SyncError(f"Shopify refused discount {spec.title!r}: {_messages(errors)}")

    def _add_codes(
        self, ctx: WriteContext[Any], client: ShopifyClient, discount_id: str, codes: list[str]
    ) -> dict[str, str]:
        """Add ``codes`` and wait for Shopify to import them; the failed ones, with why."""
        data = client.execute(
            "DiscountCodesAdd", {"id": discount_id, "codes": [{"code": c} for c in codes]}
        ).data
        payload = data.get("discountRedeemCodeBulkAdd") or {}
        errors = payload.get("userErrors") or []
        creation = payload.get("bulkCreation")
        if errors or not isinstance(creation, Mapping):
            raise SyncError(f"Shopify refused codes for {discount_id}: {_messages(errors)}")
        creation_id = str(creation["id"])
        waited = 0.0
        delay = POLL_SECONDS
        while True:
            node = self._creation(client, creation_id, None)
            if node.get("done"):
                break
            if waited >= POLL_TIMEOUT:
                raise TransientError(
                    f"Shopify had not imported the codes of {creation_id} after {waited:.0f}s"
                )
            ctx.sleep(delay)  # Shopify is working, not throttling us
            waited += delay
            delay = min(delay * 2, 5.0)
        failed: dict[str, str] = {}
        # Each poll reads the first page of codes too: when done, it holds the failures.
        while node.get("failedCount"):
            codes_page = node.get("codes") or {}
            for item in codes_page.get("nodes") or []:
                if item.get("errors"):
                    failed[str(item["code"])] = _messages(item["errors"])
            info = codes_page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            node = self._creation(client, creation_id, info.get("endCursor"))
        return failed

    def _creation(self, client: ShopifyClient, creation_id: str, after: str | None) -> Any:
        data = client.execute(
            "DiscountCodesCreation",
            {"id": creation_id, "first": CODES_PER_CALL, "after": after},
        ).data
        node = data.get("discountRedeemCodeBulkCreation")
        if not isinstance(node, Mapping):
            raise SyncError(f"Shopify has no code import {creation_id}")
        return node

    def _by_code(self, client: ShopifyClient, code: str) -> tuple[str, str | None] | None:
        node = client.execute("DiscountByCode", {"code": code}).data.get("codeDiscountNodeByCode")
        if not isinstance(node, Mapping):
            return None
        discount = node.get("codeDiscount") or {}
        return str(node["id"]), discount.get("title")

    def _holds(self, client: ShopifyClient, discount_id: str, code: str) -> bool:
        found = self._by_code(client, code)
        return found is not None and found[0] == discount_id


def metafield_input(target: WriteTarget) -> dict[str, Any]:
    """The ``MetafieldsSetInput`` storing ``target``'s items."""
    if target.owner is Owner.CUSTOMER:
        items = [
            {
                "product_id": item.product_id,
                "handle": item.handle,
                "score": round(item.score, 4),
                "reason": item.reason,
            }
            for item in target.items
        ]
        value, key, kind = json.dumps(items, ensure_ascii=False), CUSTOMER_KEY, "json"
    else:
        value = json.dumps([item.product_id for item in target.items])
        key, kind = PRODUCT_KEY, "list.product_reference"
    return {
        "ownerId": target.owner_id,
        "namespace": NAMESPACE,
        "key": key,
        "type": kind,
        "value": value,
    }


class ShopifyRecommendations:
    """``ChannelType.recommendations`` of the Shopify channel (see the module)."""

    def write(self, ctx: WriteContext[Any], targets: Sequence[WriteTarget]) -> Mapping[str, str]:
        """Store every target's items; the owners Shopify refused, with why."""
        refused: dict[str, str] = {}
        with _client(ctx) as client:
            for start in range(0, len(targets), METAFIELDS_PER_CALL):
                batch = list(targets[start : start + METAFIELDS_PER_CALL])
                while batch:
                    failed = self._set(client, batch)
                    if not failed:
                        break
                    refused.update({batch[i].owner_id: why for i, why in failed.items()})
                    # Atomic: nothing of the batch was written; send the rest again.
                    batch = [t for i, t in enumerate(batch) if i not in failed]
        return refused

    def _set(self, client: ShopifyClient, batch: list[WriteTarget]) -> dict[int, str]:
        inputs = [metafield_input(t) for t in batch]
        data = client.execute("MetafieldsSet", {"metafields": inputs}).data
        payload = data.get("metafieldsSet") or {}
        failed: dict[int, str] = {}
        for error in payload.get("userErrors") or []:
            index = error.get("elementIndex")
            if not isinstance(index, int) or not 0 <= index < len(batch):
                raise SyncError(f"Shopify refused metafieldsSet: {error.get('message')}")
            failed[index] = str(error.get("message"))
        return failed


def _messages(errors: Sequence[Any]) -> str:
    return (
        "; ".join(
            f"{e.get('message')}" + (f" ({e['code']})" if e.get("code") else "")
            for e in errors
            if isinstance(e, Mapping)
        )
        or "no reason given"
    )


__all__ = ["ShopifyCoupons", "ShopifyRecommendations", "discount_input", "metafield_input"]
