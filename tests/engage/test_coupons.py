"""Coupon campaigns: codes issued at planning, created on Shopify (the sandbox, over
loopback) before the first message, shown in the messages, redeemed by synced orders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from omnicrm.core.channels import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import RetryPolicy, SyncEngine
from omnicrm.engage import campaigns, coupons
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.schema import coupon_codes
from omnicrm.engage.sender import Sender
from omnicrm.engage.templates import TemplateError
from omnicrm.plugins.shopify import plugin as shopify
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_campaigns import make
from tests.support import filedrop_plugin
from tests.support.filedrop_plugin import arrived

CODE = re.compile(r"^XMAS-[ABCDEFGHJKLMNPQRSTUVWXYZ2-9]{10}$")
BODY = "{{ name }}、クーポン {{ coupon_code }} をどうぞ。"


@pytest.fixture
def shop() -> Iterator[ShopifySandbox]:
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with ShopifySandbox(
        customers=20, seed=3, end=end, bucket_size=4000, restore_rate=40_000
    ) as server:
        server.writes.creation_seconds = 0.05
        yield server


@pytest.fixture
def both() -> Host:
    loaded = Host.load(
        extra={"filedrop": filedrop_plugin, "shopify": shopify}, use_entry_points=False
    )
    assert not loaded.failures, loaded.failures
    return loaded


def spec(text: str = "10%,min=1000,expires=2027-01-31,prefix=xmas") -> coupons.CouponSpec:
    return coupons.parse_spec(text, title="omnicrm winter", currency="JPY", tz=TOKYO, now=NOW)


def test_the_spec_reads_as_the_docs_write_it() -> None:
    read = spec()
    assert (read.kind, read.value, read.minimum_subtotal, read.prefix) == (
        coupons.DiscountKind.PERCENTAGE,
        Decimal(10),
        Decimal(1000),
        "XMAS",
    )
    # The last day counts whole, in the shop's timezone.
    assert read.ends_at == dt.datetime(2027, 1, 31, 15, tzinfo=dt.UTC)
    assert spec("¥500,expires=2027-01-31").kind is coupons.DiscountKind.FIXED_AMOUNT
    for wrong, why in (
        ("10%", "expires"),
        ("150%,expires=2027-01-31", "at most 100"),
        ("10%,expires=2026-01-01", "past"),
        ("10%,expires=2027-01-31,prefix=X-1", "prefix"),
        ("10%,expires=2027-01-31,uses=3", "not min="),
        ("ten,expires=2027-01-31", "not a number"),
    ):
        with pytest.raises(coupons.CouponError, match=why):
            spec(wrong)


def test_codes_are_unambiguous_and_unique() -> None:
    drawn = {coupons.new_code("XMAS") for _ in range(2000)}
    assert len(drawn) == 2000 and all(CODE.match(c) for c in drawn)


def test_a_template_naming_coupon_code_needs_a_coupon(store: Store, both: Host, drop: Path) -> None:
    with pytest.raises(TemplateError, match="no coupon"):
        make(store, both, drop, variants=[Variant(name="A", subject="s", body=BODY)])


def test_codes_created_on_shopify_before_sending_and_redeemed(
    store: Store, both: Host, drop: Path, shop: ShopifySandbox
) -> None:
    build(store, [person(i) for i in range(1, 6)])
    platform = Connection(
        name="tokyo-tea", channel="shopify", settings=ShopifySettings(**shop.settings())
    )
    campaign = make(
        store,
        both,
        drop,
        variants=[Variant(name="A", subject="冬のご案内", body=BODY)],
        # The sandbox's cheapest order is ¥500: any order meets this minimum.
        coupon=spec("10%,min=500,expires=2027-01-31,prefix=xmas"),
        coupon_connection="tokyo-tea",
    )
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
        issued = dict(
            conn.execute(
                select(coupon_codes.c.profile_id, coupon_codes.c.code).where(
                    coupon_codes.c.campaign_id == campaign.id
                )
            ).all()
        )
    assert len(issued) == 5 and len(set(issued.values())) == 5
    assert all(CODE.match(c) for c in issued.values())
    assert shop.writes.by_code(next(iter(issued.values()))) is None  # not on Shopify yet

    # A sender without the connection cannot create them: nothing is sent.
    bare = Sender(store, both, shop=SHOP, shop_name="見本店", settings=messaging(drop), tz=TOKYO)
    with pytest.raises(campaigns.CampaignError, match="tokyo-tea"):
        bare.send(campaign.name)
    assert arrived(drop) == []

    sender = Sender(
        store,
        both,
        shop=SHOP,
        shop_name="見本店",
        settings=messaging(drop),
        tz=TOKYO,
        clock=lambda: NOW,
        connections={"tokyo-tea": platform},
    )
    result = sender.send(campaign.name)
    assert result.sent == 5
    sent = {m["body"].split("クーポン ")[1].split(" ")[0] for m in arrived(drop)}
    assert sent == set(issued.values())
    discounts = {shop.writes.by_code(code)["id"] for code in sent}  # type: ignore[index]
    assert len(discounts) == 1
    with store.engine.connect() as conn:
        coupon = coupons.coupon_of(conn, shop=SHOP, campaign_id=campaign.id)
        assert coupon is not None and coupon.discount_id in discounts
        assert coupons.unpublished(conn, shop=SHOP, campaign_id=campaign.id) == 0

    # A customer uses one code at Shopify's checkout; a second use is refused.
    code = sorted(sent)[0]
    buyer = shop.create_customer()["id"]
    placed = shop.create_order_with_code(buyer, code.lower())
    with pytest.raises(ValueError, match="usage limit"):
        shop.create_order_with_code(buyer, code)
    engine = SyncEngine(both, store, retry=RetryPolicy(attempts=2, base=0.01))
    run = engine.sync(platform)
    assert run.status is RunStatus.COMPLETE, run.error
    with store.engine.connect() as conn:
        found = coupons.redemptions(conn, shop=SHOP, campaign_id=campaign.id)
    total = Decimal(placed["totalPriceSet"]["shopMoney"]["amount"])
    assert found == {"A": coupons.Redemption(1, total)}


def test_a_code_shopify_refuses_is_replaced_and_created(
    store: Store, both: Host, drop: Path, shop: ShopifySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store, [person(i) for i in range(1, 4)])
    platform = Connection(
        name="tokyo-tea", channel="shopify", settings=ShopifySettings(**shop.settings())
    )
    # The shop already has a code the draw will produce first.
    assert shopify.CHANNEL.coupons is not None
    taken = "XMAS-TAKENCODE22"
    shopify.CHANNEL.coupons.create(
        coupons_ctx(platform), dataclasses.replace(spec(), title="own"), [taken]
    )
    draws = iter([taken, "XMAS-AAAAAAAAAA", "XMAS-BBBBBBBBBB"])
    real = coupons.new_code
    monkeypatch.setattr(coupons, "new_code", lambda prefix: next(draws, None) or real(prefix))
    campaign = make(
        store,
        both,
        drop,
        variants=[Variant(name="A", subject="s", body=BODY)],
        coupon=spec(),
        coupon_connection="tokyo-tea",
    )
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
    done = coupons.publish(
        store, both, {"tokyo-tea": platform}, shop=SHOP, campaign_id=campaign.id, now=NOW
    )
    assert (done.created, done.replaced) == (3, 1)
    with store.engine.connect() as conn:
        codes = set(
            conn.execute(
                select(coupon_codes.c.code).where(coupon_codes.c.campaign_id == campaign.id)
            ).scalars()
        )
    assert taken not in codes and len(codes) == 3
    assert {shop.writes.by_code(c)["id"] for c in codes} == {done.discount_id}  # type: ignore[index]


def coupons_ctx(platform: Connection) -> coupons.WriteContext[ShopifySettings]:
    return coupons.WriteContext(
        platform.name,
        platform.channel,
        platform.settings,  # type: ignore[arg-type]
        logging.getLogger("test"),
    )
