"""Email sending: messages/s of the whole path (plan, consent, render, send, record)
against a floor.

A local SMTP server (aiosmtpd, the email plugin's catcher) runs in a process of its own
on loopback, as a shop's relay would be elsewhere. A store (SQLite in a temporary
directory, or ``--store-url``) holds ``--messages`` customers, each with an order and
an email opt-in, built into profiles before the clock starts. Then, timed:

- the whole path: a campaign (subject and body from Jinja2 templates with the person's
  name, points and last purchase) is planned over the shop (segment, consent, caps,
  variants, outbox rows), and the sender sends it: claims the rows, re-checks consent,
  renders, hands over, dispatches through the email plugin (MIME, footer,
  List-Unsubscribe, Message-ID, over its kept connections) and records each answer;
- the floor: the very messages the server received from the whole path (its bytes,
  read back from the server once the path is done, so they are prebuilt), sent again
  with a bare ``smtplib`` loop (``sendmail``) over one connection.

``--rounds`` splits the messages into that many campaigns of equal size (each over its
own shop), and floor and path take turns round by round, so both run under the same
machine load. It prints messages/s of each, the ratio (goal: at least 0.8 of the floor;
exit 1 on a miss), the client's CPU per message, and checks that every message arrived
and that the whole path's Message-IDs are distinct.

    .venv/bin/python benchmarks/email_send.py
    .venv/bin/python benchmarks/email_send.py --messages 2000 --rounds 2
    .venv/bin/python benchmarks/email_send.py --store-url postgresql+psycopg://127.0.0.1/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import random
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from omnicrm import Consent, ConsentState, Customer, Medium, Order, OrderLine
from omnicrm.core.channels import Stream
from omnicrm.core.store import Store
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.email import plugin
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.plugins.email.smtp import POOL
from omnicrm.testing import load_host

GOAL = 0.8
NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo: no quiet hours
TOKYO = ZoneInfo("Asia/Tokyo")
SUBJECT = "{{ name }}、{{ points }}ポイントが使えます"
BODY = (
    "{{ name }}\n\nいつも{{ shop_name }}をご利用いただきありがとうございます。\n"
    "ただいまのポイント残高は {{ points }}pt です。\n"
    "{% if last_purchase %}前回お買い上げの「{{ last_purchase }}」({{ last_purchase_at }})"
    "はいかがでしたか。\n{% endif %}\n"
    "5,000円以上のお買い物で送料無料です。\n"
)
SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"]
GIVEN = ["花子", "太郎", "陽菜", "蓮", "結衣", "湊", "美咲", "大翔", "さくら", "悠真"]
PRODUCTS = ["静岡深蒸し煎茶 100g", "宇治抹茶 30g", "八女玉露 50g", "ほうじ茶ティーバッグ 20袋"]


def populate(store: Store, shop: str, first: int, count: int, rng: random.Random) -> None:
    """``count`` opted-in customers of ``shop``, each with one paid order, as profiles."""
    connection = f"web-{shop}"
    people = [
        Customer(
            id=f"C{n}",
            family_name=rng.choice(SURNAMES),
            given_name=rng.choice(GIVEN),
            email=f"customer{n}@example.jp",
            consents=[Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN, updated_at=NOW)],
            updated_at=NOW,
        )
        for n in range(first, first + count)
    ]
    store.write_batch(connection, Stream.CUSTOMERS, people)
    placed = NOW - dt.timedelta(days=30)
    store.write_batch(
        connection,
        Stream.ORDERS,
        [
            Order(
                id=f"O-{c.id}",
                customer_id=c.id,
                status="paid",  # type: ignore[arg-type]
                placed_at=placed - dt.timedelta(days=rng.randrange(300)),
                updated_at=placed,
                subtotal=Decimal(3000),
                total=Decimal(3000),
                lines=[
                    OrderLine(
                        product_name=rng.choice(PRODUCTS), quantity=1, unit_price=Decimal(3000)
                    )
                ],
            )
            for c in people
        ],
    )
    refresh(store, CrmSettings(shop=shop), now=NOW)


def serve(port: int) -> int:
    """The server process: catch; on SIGUSR1 hand what arrived since the last time over
    (pickled to the path on stdin's next line, or dropped for "-"); on SIGTERM report
    the totals as JSON."""
    catcher = SmtpCatcher(port=port).start()
    print("ready", flush=True)
    signals: list[int] = []
    signal.signal(signal.SIGTERM, lambda n, _: signals.append(n))
    signal.signal(signal.SIGUSR1, lambda n, _: signals.append(n))
    handed = 0
    while True:
        while not signals:
            time.sleep(0.01)
        if signals.pop(0) == signal.SIGTERM:
            break
        path = sys.stdin.readline().strip()
        arrivals = catcher.arrivals[handed:]
        handed += len(arrivals)
        if path != "-":
            Path(path).write_bytes(pickle.dumps([(a.rcpt_tos, a.data) for a in arrivals]))
        print("dumped", flush=True)
    catcher.stop()
    ids = [a.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for a in catcher.arrivals]
    print(json.dumps({"count": len(ids), "distinct_ids": len(set(ids))}), flush=True)
    return 0


def handover(server: subprocess.Popen[str], path: str) -> None:
    """Have the server write what arrived since the last time to ``path`` ("-": drop)."""
    assert server.stdin is not None and server.stdout is not None
    server.send_signal(signal.SIGUSR1)
    server.stdin.write(f"{path}\n")
    server.stdin.flush()
    if server.stdout.readline().strip() != "dumped":
        raise SystemExit("the SMTP server did not hand its messages over")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store-url", help="a store to fill (default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    probe = SmtpCatcher()  # only to pick a free port for the server process
    port = probe.port
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    if server.stdout.readline().strip() != "ready":
        raise SystemExit("the SMTP server did not start")

    rng = random.Random(args.seed)
    per_round = args.messages // args.rounds
    count = per_round * args.rounds
    run = f"{time.time_ns() % 10**9:09d}"  # shops of their own in a shared store
    shops = [f"bench{run}-{r}" for r in range(args.rounds)]
    tmp = Path(tempfile.mkdtemp(prefix="omnicrm-email-bench-"))
    store = Store.open(
        args.store_url or f"sqlite:///{tmp / 'store.db'}",
        shops={f"web-{shop}": shop for shop in shops},
        shop_ids=shops,
    )
    email = {**probe.settings(), "port": port}
    messaging = MessagingSettings.model_validate(
        {"dispatchers": {"email": {"dispatcher": "email", "settings": email}}, "holdout": 0}
    )
    host = load_host(plugin)

    began = time.perf_counter()
    for r, shop in enumerate(shops):
        populate(store, shop, r * per_round, per_round, rng)
    print(f"store:                {count:,} profiles in {time.perf_counter() - began:.1f} s")

    floor_time = path_time = floor_cpu = path_cpu = 0.0
    sent = 0
    floor_client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example.jp")
    for shop in shops:
        began, cpu = time.perf_counter(), time.process_time()
        with store.engine.begin() as conn:
            cid = campaigns.create(
                conn,
                host,
                messaging,
                shop=shop,
                name="winter",
                segment="number_of_orders >= 1",
                medium=Medium.EMAIL,
                variants=[Variant(name="A", subject=SUBJECT, body=BODY)],
                now=NOW,
            )
            campaign = campaigns.get(conn, cid, shop=shop)
            plan = campaigns.plan(conn, campaign, messaging, now=NOW, tz=TOKYO)
        sender = Sender(
            store,
            host,
            shop=shop,
            shop_name="東京茶舗",
            settings=messaging,
            tz=TOKYO,
            clock=lambda: NOW,
        )
        result = sender.send(cid)
        path_time += time.perf_counter() - began
        path_cpu += time.process_time() - cpu
        if plan.planned != per_round or result.sent != per_round or not result.finished:
            raise SystemExit(f"shop {shop}: planned {plan.planned}, {result}")
        sent += result.sent

        # The floor: the bytes the server just received, sent again over one connection.
        dump = tmp / f"{shop}.pickle"
        handover(server, str(dump))
        prebuilt = pickle.loads(dump.read_bytes())
        began, cpu = time.perf_counter(), time.process_time()
        for rcpt_tos, raw in prebuilt:
            floor_client.sendmail(email["sender_address"], list(rcpt_tos), raw)
        floor_time += time.perf_counter() - began
        floor_cpu += time.process_time() - cpu
        handover(server, "-")  # the floor's arrivals: not the next round's messages
    floor_client.quit()
    POOL.close()
    store.close()

    server.send_signal(signal.SIGTERM)
    report = json.loads(server.stdout.readline())
    server.wait(timeout=30)

    floor_rate, rate = count / floor_time, count / path_time
    ratio = rate / floor_rate
    print(f"messages:             {count:,} in {args.rounds} campaigns (each sent twice)")
    print(f"floor (bare smtplib): {floor_rate:,.0f} messages/s ({floor_time:.2f} s)")
    print(f"whole path:           {rate:,.0f} messages/s ({path_time:.2f} s)")
    print(
        f"client CPU / message: {1000 * floor_cpu / count:.2f} ms (floor), "
        f"{1000 * path_cpu / count:.2f} ms (whole path)"
    )
    print(f"SMTP connections:     1 (floor), {POOL.opened} (whole path)")
    print(f"arrived:              {report['count']:,} of {2 * count:,}")
    ok_arrived = report["count"] == 2 * count and sent == count
    ok_ids = report["distinct_ids"] == count  # the floor re-sent the path's ids
    verdict = "PASS" if ratio >= GOAL and ok_arrived and ok_ids else "FAIL"
    print(f"ratio:                {ratio:.2f} of the floor (goal >= {GOAL}) {verdict}")
    if not ok_arrived or not ok_ids:
        print(f"arrivals wrong: {report}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
