"""Cart recovery (omnicrm.engage.recovery): a checkout left gets one message once its
delay has passed, through the real sender to a real SMTP server on loopback, on both
backends, with time passed explicitly. Not if the person bought or completed it; never
twice (a second run, a restart, two runs at once); redaction takes a pending one back;
an order after the message is its conversion in `omnicrm campaigns report`."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from omnicrm import Checkout, Order, OrderLine, Stream
from omnicrm.app.config import Connection, load_config
from omnicrm.app.runtime import Runtime
from omnicrm.cli import cli
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import checkouts
from omnicrm.core.sync import SyncEngine
from omnicrm.crm.refresh import refresh
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.engage import campaigns
from omnicrm.engage.recovery import Recovery, recover_carts
from omnicrm.engage.results import results_of
from omnicrm.engage.schema import cart_recoveries, coupon_codes, outbox
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.errors import ConfigError
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.sandbox.data import customer_number, gid
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.engage import test_scheduled as scheduled
from tests.engage.conftest import SHOP, TOKYO, build, person

# Noon in Tokyo on 2026-12-10: the checkouts are left at LEFT, the delay is an hour.
LEFT = dt.datetime(2026, 12, 10, 3, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
MONTH = "cart-recovery-2026-12"
BODY = (
    "{{ name }}、カートに{{ checkout.item_count }}点 ({{ checkout.total }}円) が残っています。\n"
    "{{ checkout.recovery_url }}\n"
)
RULE = {
    "delay": "1h",
    "subject": "お買い物の途中です",
    "body": BODY,
    "recovery_url": "https://ec-cube.example.jp/shopping/restore/{id}",
}


def write_config(path: Path, store_url: str, catcher: SmtpCatcher, **rule: object) -> Path:
    """test_scheduled's shop (quiet at night) with ``[messaging.cart_recovery]``: RULE
    with ``rule``'s changes."""
    scheduled.write_config(path, store_url, catcher, quiet_hours="21:00-08:00")
    lines = [
        "\n[messaging.cart_recovery]",
        *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in {**RULE, **rule}.items()),
    ]
    with path.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def runtime(
    store_url: str, tmp_path: Path, catcher: SmtpCatcher, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    store = Store.open(store_url)
    # Five people who bought 30 days before NOW (conftest), all opted in to email but 5.
    build(store, [*(person(i) for i in range(1, 5)), person(5, consent=None)])
    store.close()
    loaded = Runtime.load(write_config(tmp_path / "omnicrm.toml", store_url, catcher))
    yield loaded
    loaded.close()


def cart(owner: str | None, left: dt.datetime = LEFT, **fields: object) -> Checkout:
    values: dict[str, object] = {
        "id": f"K-{owner}",
        "customer_id": owner,
        "created_at": left - dt.timedelta(minutes=20),
        "updated_at": left,
        "total": Decimal(4800),
        "item_count": 2,
    }
    values.update(fields)
    return Checkout(**values)  # type: ignore[arg-type]


def order(owner: str, at: dt.datetime) -> Order:
    return Order(
        id=f"O-{owner}-{at:%H%M}",
        customer_id=owner,
        status="paid",  # type: ignore[arg-type]
        placed_at=at,
        updated_at=at,
        subtotal=Decimal(4800),
        total=Decimal(4800),
        lines=[OrderLine(product_name="玉露 50g", quantity=2, unit_price=Decimal(2400))],
    )


def recover(runtime: Runtime, at: dt.datetime, clock: dt.datetime | None = None) -> Recovery:
    done = recover_carts(scheduled.sender_at(runtime, clock or at), now=at)
    assert done is not None
    return done


def arrived(catcher: SmtpCatcher) -> list[tuple[str, str]]:
    """(to, text body) of each message the SMTP server received."""
    found = []
    for a in catcher.arrivals:
        message = a.parse()
        part = message.get_body(("plain",))
        assert part is not None
        found.append((str(message["To"]), part.get_content()))
    return found


def outcomes(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(cart_recoveries.c.checkout_id, cart_recoveries.c.outcome))
        return dict(rows.all())


def test_one_message_after_the_delay_unless_they_bought_never_twice(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    store = runtime.store
    store.write_batch(
        "web",
        Stream.CHECKOUTS,
        [
            cart("C1", recovery_url="https://shop.example.jp/checkouts/ab1/recover"),
            cart("C2"),  # no link of the platform's: the shop's template makes one
            cart("C3", completed_at=LEFT + dt.timedelta(minutes=30)),  # completed it
            cart("C4"),  # buys in the store before the hour is up (below)
            cart("C5"),  # never opted in
            cart(None, id="K-guest"),  # a guest: no one to write to
            cart("C1", id="K-old", left=LEFT - dt.timedelta(days=5)),  # long before the rule
        ],
    )
    store.write_batch("web", Stream.ORDERS, [order("C4", LEFT + dt.timedelta(minutes=40))])

    early = recover(runtime, LEFT + dt.timedelta(minutes=59))
    assert (early.planned, early.outcomes, catcher.arrivals) == (0, {}, [])

    done = recover(runtime, LEFT + HOUR + dt.timedelta(minutes=1))
    assert done.planned == 3 and done.outcomes == {"bought": 2}
    (result,) = done.sent
    assert (result.sent, result.suppressed) == (2, {"no_consent": 1})
    got = dict(arrived(catcher))
    assert set(got) == {"p1@example.jp", "p2@example.jp"}
    assert "https://shop.example.jp/checkouts/ab1/recover" in got["p1@example.jp"]
    assert "https://ec-cube.example.jp/shopping/restore/K-C2" in got["p2@example.jp"]
    assert "カートに2点 (4,800円) が残っています" in got["p1@example.jp"]
    assert outcomes(store) == {
        "K-C1": "planned",
        "K-C2": "planned",
        "K-C3": "bought",
        "K-C4": "bought",
        "K-C5": "planned",
    }

    # The next check, another process after a restart, two at once: nothing more.
    assert recover(runtime, LEFT + HOUR + dt.timedelta(minutes=2)).planned == 0
    again = Runtime.load(runtime.config.path)
    try:
        gate = threading.Barrier(2)
        errors: list[BaseException] = []

        def check(which: Runtime) -> None:
            try:
                gate.wait()
                recover(which, LEFT + HOUR + dt.timedelta(minutes=3))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(r,)) for r in (runtime, again)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
    finally:
        again.close()
    assert len(catcher.arrivals) == 2

    # A second cart of C1's the same month: the month's message was theirs already.
    store.write_batch("web", Stream.CHECKOUTS, [cart("C1", id="K-C1b", left=LEFT + 3 * HOUR)])
    later = recover(runtime, LEFT + 4 * HOUR + dt.timedelta(minutes=1))
    assert (later.planned, later.outcomes) == (0, {"reached": 1})
    assert len(catcher.arrivals) == 2


def test_nothing_in_the_quiet_hours_and_a_purchase_meanwhile_takes_it_back(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    store = runtime.store
    evening = dt.datetime(2026, 12, 10, 19, 30, tzinfo=TOKYO).astimezone(dt.UTC)
    store.write_batch("web", Stream.CHECKOUTS, [cart("C1", evening), cart("C2", evening)])
    night = evening + 2 * HOUR  # 21:30, quiet
    assert recover(runtime, night).waiting == "quiet hours"
    assert outcomes(store) == {}
    # Decided at 20:59 and the quiet hours begin as the sender starts: they wait.
    last_minute = evening + HOUR + dt.timedelta(minutes=29)
    waited = recover(runtime, last_minute, clock=last_minute + dt.timedelta(minutes=1))
    assert waited.planned == 2 and waited.sent[0].waiting_until is not None
    assert catcher.arrivals == []
    # C1 buys at night; C2 is redacted: in the morning neither is sent.
    store.write_batch("web", Stream.ORDERS, [order("C1", night)])
    runtime.redact_customer("web", "C2")
    morning = dt.datetime(2026, 12, 11, 8, 0, tzinfo=TOKYO).astimezone(dt.UTC)
    done = recover(runtime, morning)
    assert done.withdrawn == 1 and catcher.arrivals == []
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, outbox.c.reason)).all()
        left = conn.execute(select(func.count()).select_from(cart_recoveries)).scalar_one()
    assert sorted(rows, key=str) == [("cancelled", None), ("suppressed", "bought")]
    assert left == 1  # C2's decision went with their checkout


def test_an_order_after_the_message_is_its_conversion_in_the_report(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    store = runtime.store
    store.write_batch("web", Stream.CHECKOUTS, [cart("C1"), cart("C2")])
    sent_at = LEFT + HOUR + dt.timedelta(minutes=5)
    assert recover(runtime, sent_at).sent[0].sent == 2
    store.write_batch("web", Stream.ORDERS, [order("C1", sent_at + 2 * HOUR)])
    with store.engine.connect() as conn:
        campaign = campaigns.get(conn, MONTH, shop=SHOP)
        found = results_of(conn, campaign, runtime.shop().messaging, None)
    (variant,) = found.groups
    assert (variant.sent, variant.converted, variant.revenue) == (2, 1, Decimal(4800))
    assert runtime.config.path is not None
    shown = CliRunner().invoke(
        cli,
        ["--config", str(runtime.config.path), "campaigns", "report", MONTH, "--shop", SHOP],
        catch_exceptions=False,
    )
    assert shown.exit_code == 0, shown.output
    assert MONTH in shown.output and "4,800" in shown.output


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ({"body": "{{ checkout.nosuch }}"}, "line 1: checkout has no field 'nosuch'"),
        ({"body": "{% for line in checkout.lines %}{{ line.sku }}{% endfor %}"}, "sku"),
        ({"body": "{{ coupon_code }}"}, "coupon"),
        ({"subject": ""}, "an email needs a subject"),
        ({"recovery_url": "http://shop.example.jp/{id}"}, "https URL with {id}"),
        ({"delay": "soon"}, "delay"),
        ({"coupon": "10%,expires=2027-01-01"}, "coupon_days"),
    ],
)
def test_a_bad_rule_is_an_error_of_the_file(
    tmp_path: Path, catcher: SmtpCatcher, rule: dict[str, object], said: str
) -> None:
    path = write_config(tmp_path / "omnicrm.toml", "sqlite:///x.db", catcher, **rule)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    text = str(caught.value)
    assert "omnicrm.toml" in text and "messaging.cart_recovery" in text and said in text


def test_a_campaign_that_is_no_recovery_may_not_name_the_checkout(runtime: Runtime) -> None:
    with (
        runtime.store.engine.begin() as conn,
        pytest.raises(Exception, match="only a cart recovery message has"),
    ):
        campaigns.create(
            conn,
            runtime.host,
            runtime.shop().messaging,
            shop=SHOP,
            name="plain",
            segment="number_of_orders >= 1",
            medium=campaigns.Medium.EMAIL,
            variants=[campaigns.Variant(name="A", subject="s", body="{{ checkout.total }}")],
            now=LEFT,
        )
    assert Counter(outcomes(runtime.store).values()) == Counter()


def test_a_cart_left_at_the_shopify_sandbox_is_recovered_by_its_link(
    store: Store, catcher: SmtpCatcher
) -> None:
    """From the platform to the inbox: the sandbox's abandonedCheckouts synced, the
    profiles refreshed, and the message carries Shopify's own abandonedCheckoutUrl."""
    end = dt.datetime.now(dt.UTC) - HOUR
    with ShopifySandbox(customers=40, seed=3, end=end) as shop:
        host = Host.load()
        engine = SyncEngine(host, store)
        connection = Connection(
            name="web",
            channel="shopify",
            settings=ShopifySettings(**shop.settings()),
            lookback=dt.timedelta(seconds=0),
        )
        run = engine.sync(connection)
        assert run.status is RunStatus.COMPLETE, run.error
        refresh(store)
        with store.engine.connect() as conn:
            opted_in = set(
                conn.execute(
                    select(profile_members.c.record_id)
                    .join(profiles, profiles.c.id == profile_members.c.profile_id)
                    .where(profiles.c.consent_email == "opted_in")
                ).scalars()
            )
            had_carts = set(conn.execute(select(checkouts.c.customer_id)).scalars())
        # Three opted-in customers without a cart leave one now; one of them completes
        # it, another buys in a new order.
        leaving = [
            c for c in range(40) if gid("Customer", customer_number(c)) in opted_in - had_carts
        ][:3]
        assert len(leaving) == 3
        carts = [shop.data.checkouts.abandon(c) for c in leaving]
        shop.data.checkouts.complete(carts[1])
        shop.create_order(gid("Customer", customer_number(leaving[2])))
        time.sleep(1.1)  # the changes' second is past: the run's window holds them
        run = engine.sync(connection)
        assert run.status is RunStatus.COMPLETE, run.error
        with store.engine.connect() as conn:
            link, lines = conn.execute(
                select(checkouts.c.recovery_url, checkouts.c.lines).where(
                    checkouts.c.id == carts[0]
                )
            ).one()
    assert link is not None and link.startswith("https://") and link.endswith("/recover")
    assert lines and all(line["product_name"] for line in lines)

    settings = MessagingSettings.model_validate(
        {
            "dispatchers": {"email": {"dispatcher": "email", "settings": catcher.settings()}},
            "cart_recovery": {
                **RULE,
                "body": BODY
                + "{{ checkout.item_names }}\n"
                + "{% for line in checkout.lines %}"
                + "{{ line.name }}: {{ line.price }}円\n"
                + "{% endfor %}",
                "expires": "1h",  # the three carts of today only
            },
        }
    )
    due = dt.datetime.now(dt.UTC) + HOUR + dt.timedelta(minutes=1)
    mail = Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=settings, tz=TOKYO, clock=lambda: due
    )
    done = recover_carts(mail, now=due)
    assert done is not None and done.outcomes == {"bought": 2}
    (to, body), *others = arrived(catcher)
    assert others == [] and link in body
    # The message names what was left in the cart, each line with its price.
    times = " \N{MULTIPLICATION SIGN}"
    names = [
        f"{ln['product_name']}{times}{ln['quantity']}" if ln["quantity"] > 1 else ln["product_name"]
        for ln in lines
    ]
    assert "、".join(names) in body
    for line in lines:
        assert f"{line['product_name']}: {Decimal(line['unit_price']):,.0f}円" in body
    with store.engine.connect() as conn:
        email = conn.execute(
            select(profiles.c.email)
            .join(profile_members, profile_members.c.profile_id == profiles.c.id)
            .where(profile_members.c.record_id == gid("Customer", customer_number(leaving[0])))
        ).scalar_one()
    assert to == email


def test_the_hold_out_share_and_a_coupon_hold_as_in_a_campaign(
    runtime: Runtime, store_url: str, tmp_path: Path, catcher: SmtpCatcher
) -> None:
    body = BODY + "{{ coupon_code }}\n"
    path = write_config(
        tmp_path / "c.toml", store_url, catcher, coupon="10%,prefix=CART", body=body
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[messaging]\n", "[messaging]\nholdout = 0.5\n", 1), "utf-8")
    coupon = Runtime.load(path)
    try:
        store = coupon.store
        store.write_batch("web", Stream.CHECKOUTS, [cart(f"C{i}") for i in range(1, 5)])
        done = recover(coupon, LEFT + HOUR + dt.timedelta(minutes=1))
        with store.engine.connect() as conn:
            campaign = campaigns.get(conn, MONTH, shop=SHOP)
            rows = conn.execute(select(outbox.c.profile_id, outbox.c.status, outbox.c.reason)).all()
            codes = dict(conn.execute(select(coupon_codes.c.profile_id, coupon_codes.c.code)).all())
    finally:
        coupon.close()
    assert campaign.holdout == 0.5 and done.planned == 4
    held = {pid for pid, status, reason in rows if reason == "holdout"}
    sent = {pid for pid, status, _ in rows if status == "sent"}
    assert held == {pid for pid, *_ in rows if campaigns.assign(campaign, pid) == "holdout"}
    assert held and sent and held | sent == {pid for pid, *_ in rows}
    # Each recipient's message carries their own code, issued to them only.
    assert set(codes) == sent
    bodies = [body for _, body in arrived(catcher)]
    assert sorted(code for body in bodies for code in codes.values() if code in body) == sorted(
        codes.values()
    )
    assert all(code.startswith("CART-") for code in codes.values())


def test_the_scheduler_sends_it_by_itself(
    runtime: Runtime, store_url: str, tmp_path: Path, catcher: SmtpCatcher
) -> None:
    """`omnicrm run`'s jobs (a real APScheduler, real time, no quiet hours): the shop's
    campaign check sends the due message with nobody calling anything, and only once
    however many checks follow."""
    path = write_config(tmp_path / "run.toml", store_url, catcher)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('quiet_hours = "21:00-08:00"\n', "", 1), "utf-8")
    running = Runtime.load(path)
    try:
        assert running.shop().messaging.quiet_hours is None
        now = dt.datetime.now(dt.UTC)
        running.store.write_batch("web", Stream.CHECKOUTS, [cart("C1", now - HOUR - HOUR / 60)])
        scheduler = scheduled.running(running)
        try:
            deadline = time.monotonic() + 20
            while not catcher.arrivals and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.5)  # two more checks
        finally:
            scheduler.shutdown(wait=True)
    finally:
        running.close()
    assert [to for to, _ in arrived(catcher)] == ["p1@example.jp"]
