"""End to end: a campaign sent by `omnicrm campaigns send` through the email dispatcher
to a real SMTP server; the links of what arrived followed over real HTTP against the
app uvicorn serves (unsubscribe page and one-click POST, pixel, clicks, forged links);
orders written to the store on two channels; `omnicrm campaigns report --json` checked
figure by figure."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import select

from omnicrm.app.config import Config, SchedulerSection, WebSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.cli import cli
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.records import Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import consent_records, suppressions
from omnicrm.crm.schema import profile_members
from omnicrm.engage import campaigns, stats
from omnicrm.engage.schema import outbox
from omnicrm.engage.sender import Sender
from omnicrm.engage.tracking import Links
from omnicrm.plugins.email.sandbox import SmtpCatcher
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_results import order
from tests.support import filedrop_plugin
from tests.support.filedrop_plugin import arrived
from tests.support.http import serve

SECRET_ENV = "OMNICRM_TEST_WEB_SECRET"
TARGET = "https://shop.example.jp/sale?x=1&y=%E8%8C%B6"
DAY = dt.timedelta(days=1)


def write_config(path: Path, store_url: str, catcher: SmtpCatcher, base_url: str | None) -> Path:
    lines = [
        f"[store]\nurl = {json.dumps(store_url)}\n",
        "[web]",
        f'secret = {{ env = "{SECRET_ENV}" }}',
    ]
    if base_url is not None:
        lines.append(f"base_url = {json.dumps(base_url)}")
    lines += [
        "\n[messaging]\nholdout = 0.3\n",
        '[messaging.dispatchers.email]\ndispatcher = "email"\n',
        "[messaging.dispatchers.email.settings]",
        *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in catcher.settings().items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "campaigns", *args], catch_exceptions=False
    )


def _order(connection: str, cid: str, oid: str, at: dt.datetime, total: int, status: str) -> Any:
    return connection, order(cid, oid, at, total, status, channel=connection)


def test_send_follow_the_links_buy_and_report(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catcher: SmtpCatcher
) -> None:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(SECRET_ENV, "test-secret-" + "k" * 40)
    store = Store.open(store_url)
    count = 40
    build(store, [person(i) for i in range(count - 1)] + [person(99, email="bounce@example.jp")])
    build(store, [person(0, consent=None, id="POS0")], "pos")  # one person online and in store
    (tmp_path / "a.txt").write_text("Subject: 冬のご案内\n\n{{ name }}、セールです。\n", "utf-8")
    (tmp_path / "b.txt").write_text("Subject: 冬のセール\n\n{{ name }}、お得です。\n", "utf-8")
    page = (
        "<html><body><p>{{ name }}、セールです。</p>"
        f'<p><a href="{TARGET.replace("&", "&amp;")}">セール会場へ</a> '
        '<a href="mailto:info@shop.example.jp">お問い合わせ</a></p></body></html>'
    )
    (tmp_path / "a.html").write_text(page, "utf-8")
    (tmp_path / "b.html").write_text(page, "utf-8")

    runtime = Runtime.load(write_config(tmp_path / "app.toml", store_url, catcher, None))
    app = create_app(runtime, refresh_delay=0.2)
    try:
        with serve(app) as url:
            config = write_config(tmp_path / "omnicrm.toml", store_url, catcher, url)
            made = run(
                config,
                "create",
                "winter",
                "--segment",
                "number_of_orders >= 1",
                *("--template", str(tmp_path / "a.txt"), "--template", str(tmp_path / "b.txt")),
                *("--html", str(tmp_path / "a.html"), "--html", str(tmp_path / "b.html")),
            )
            assert made.exit_code == 0, made.output
            sent = run(config, "send", "winter")
            assert sent.exit_code == 0, sent.output
            _follow_links_and_check(store, url, catcher, config)
    finally:
        app.state.inbox.close()
        runtime.close()
        store.close()


def _follow_links_and_check(store: Store, url: str, catcher: SmtpCatcher, config: Path) -> None:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.id,
                outbox.c.profile_id,
                outbox.c.variant,
                outbox.c.status,
                outbox.c.reason,
                outbox.c.address,
                outbox.c.handed_at,
            ).order_by(outbox.c.id)
        ).all()
        pm = profile_members.c
        customer_of = dict(
            conn.execute(select(pm.profile_id, pm.record_id).where(pm.connection == "web")).all()
        )
    row_of = {customer_of[r.profile_id]: r for r in rows}
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.variant, []).append(row)
    assert set(groups) == {"A", "B", "holdout"} and all(len(g) >= 4 for g in groups.values())
    sent = [r for r in rows if r.status == "sent"]
    arrivals = {a.rcpt_tos[0]: a.parse() for a in catcher.wait_for(len(sent))}
    assert sorted(arrivals) == sorted(r.address for r in sent)

    def links(address: str) -> dict[str, str]:
        message = arrivals[address]
        html_part = message.get_body(("html",))
        assert html_part is not None
        body = html_part.get_content()
        https = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"])
        assert https is not None
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(https.group(1)).query)["token"][0]
        (pixel,) = re.findall(r'<img src="([^"]+)"', body)
        (click,) = [
            h.replace("&amp;", "&")
            for h in re.findall(r'href="([^"]+)"', body)
            if h.startswith(url + "/t/c/")
        ]
        assert "mailto:info@shop.example.jp" in body  # not rewritten
        return {"unsubscribe": token, "pixel": pixel.replace("&amp;", "&"), "click": click}

    recipients = {
        name: [r for r in group if r.status == "sent"]
        for name, group in groups.items()
        if name != "holdout"
    }
    a, b = recipients["A"], recipients["B"]
    http = httpx.Client(timeout=10, follow_redirects=False)
    # Opens: three of A (one opens twice), two of B; clicks: two of A, one of B.
    opened = {"A": a[:3], "B": b[:2]}
    clicked = {"A": a[1:3], "B": b[:1]}
    for group in opened.values():
        for row in group:
            answer = http.get(links(row.address)["pixel"])
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
            assert (
                answer.content.startswith(b"GIF89a")
                and "no-store" in answer.headers["cache-control"]
            )
    assert http.get(links(a[0].address)["pixel"]).status_code == 200
    for group in clicked.values():
        for row in group:
            answer = http.get(links(row.address)["click"])
            assert answer.status_code == 302 and answer.headers["location"] == TARGET

    # Forged and altered links get nothing.
    click = links(a[0].address)["click"]
    parts = urllib.parse.urlsplit(click)
    query = dict(urllib.parse.parse_qsl(parts.query))
    base = f"{url}{parts.path}"
    elsewhere = {**query, "u": "https://evil.example/"}
    assert http.get(base, params=elsewhere).status_code == 400
    assert http.get(base, params={"u": TARGET}).status_code == 400  # unsigned
    token = links(a[0].address)["unsubscribe"]
    row_id = token.split("~")[2]
    other = token.replace(f"~{row_id}~", f"~{int(row_id) + 1}~")
    assert http.get(f"{url}/t/c/{other}", params=query).status_code == 400
    assert http.get(f"{url}/t/o/{token}.gif").status_code == 404  # an unsubscribe token
    message_id = f"default.c1.p{a[0].profile_id}.email"
    for forged in (message_id, other, ""):
        assert http.get(f"{url}/u", params={"token": forged}).status_code == 404
        assert http.post(f"{url}/u", params={"token": forged}).status_code == 404

    # The unsubscribe page shows nothing of the person; one click unsubscribes, twice too.
    leaving = b[-1]
    token = links(leaving.address)["unsubscribe"]
    shown = http.get(f"{url}/u", params={"token": token})
    assert shown.status_code == 200 and "配信停止" in shown.text and "Unsubscribe" in shown.text
    assert leaving.address not in shown.text and '<form method="post"' in shown.text
    assert shown.headers["referrer-policy"] == "no-referrer"
    for _ in range(2):
        done = http.post(
            f"{url}/u", params={"token": token}, data={"List-Unsubscribe": "One-Click"}
        )
        assert done.status_code == 200 and "配信を停止しました" in done.text
    with store.engine.connect() as conn:
        methods = conn.execute(select(consent_records.c.method, consent_records.c.source)).all()
        listed = conn.execute(select(suppressions.c.address, suppressions.c.reason)).all()
    assert {tuple(m) for m in methods} == {("one_click", "campaign:winter")}
    assert (leaving.address, "unsubscribed") in [tuple(x) for x in listed]

    # Orders: on the web and in the store, inside and outside each window.
    first_sent = min(r.handed_at for r in sent)
    held = [r for r in groups["holdout"] if r.reason == "holdout"]
    person_zero = row_of["C0"]
    plan = [
        # (row, connection, customer, offset from the row's window start, total, status,
        #  whether it counts)
        (a[0], "web", None, DAY, 3000, "paid", True),
        (a[0], "web", None, 3 * DAY, 1000, "fulfilled", True),
        (a[1], "web", None, 8 * DAY, 5000, "paid", False),  # after the window
        (a[2], "web", None, -dt.timedelta(hours=1), 4000, "paid", False),  # before it
        (b[0], "web", None, 6 * DAY, 2500, "paid", True),
        (b[1], "web", None, DAY, 7000, "cancelled", False),  # no purchase
        (held[0], "web", None, 5 * DAY, 1800, "paid", True),
        (held[1], "web", None, 7 * DAY, 900, "paid", False),  # the window's end: out
        # The person online and in the store buys at the register: it counts as well.
        (
            person_zero,
            "pos",
            "POS0",
            2 * DAY,
            1200,
            "paid",
            person_zero.reason in (None, "holdout"),
        ),
    ]
    orders = []
    for n, (row, connection, cid, offset, total, status, _) in enumerate(plan):
        start = first_sent if row.variant == "holdout" else row.handed_at
        customer = cid or customer_of[row.profile_id]
        orders.append(_order(connection, customer, f"X{n}", start + offset, total, status))
    for connection in ("web", "pos"):
        store.write_batch(connection, Stream.ORDERS, [o for c, o in orders if c == connection])

    report = run(config, "report", "winter", "--json")
    assert report.exit_code == 0, report.output
    found = {g["name"]: g for g in json.loads(report.output)["groups"]}
    counted: dict[int, int] = {}
    for row, _, _, _, total, _, counts in plan:
        if counts:
            counted[row.id] = counted.get(row.id, 0) + total
    every = {"A": recipients["A"], "B": recipients["B"], "holdout": held}
    expected_revenue: dict[str, list[int]] = {}
    for name, group in groups.items():
        members = every[name]
        revenue = [counted.get(r.id, 0) for r in members]
        expected_revenue[name] = revenue
        converted = sum(1 for x in revenue if x)
        statuses: dict[str, int] = {}
        suppressed: dict[str, int] = {}
        for r in group:
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status == "suppressed":
                suppressed[r.reason] = suppressed.get(r.reason, 0) + 1
        bounced = statuses.get("rejected", 0)
        n_sent = statuses.get("sent", 0)
        assert found[name] == {
            "name": name,
            "planned": len(group),
            "sent": n_sent,
            "suppressed": dict(sorted(suppressed.items())),
            "statuses": dict(sorted(statuses.items())),
            "delivered": n_sent,
            "bounced": bounced,
            "opened": len(opened.get(name, [])) if name != "holdout" else 0,
            "clicked": len(clicked.get(name, [])) if name != "holdout" else 0,
            "recipients": len(members),
            "converted": converted,
            "conversion_rate": converted / len(members),
            "revenue": str(sum(revenue)),
            "revenue_per_recipient": sum(revenue) / len(members),
        }, name
    bounce = row_of["C99"]
    assert bounce.status == ("suppressed" if bounce.variant == "holdout" else "rejected")
    comparisons = {c["variant"]: c for c in json.loads(report.output)["comparisons"]}
    control = expected_revenue["holdout"]
    for name in ("A", "B"):
        treated = expected_revenue[name]
        rate = stats.rate_difference(
            sum(1 for x in treated if x), len(treated), sum(1 for x in control if x), len(control)
        )
        mean = stats.mean_difference(
            len(treated),
            statistics.fmean(treated),
            statistics.variance(treated),
            len(control),
            statistics.fmean(control),
            statistics.variance(control),
        )
        got = comparisons[name]
        assert got["conversion_rate"]["value"] == pytest.approx(rate.value)
        assert got["conversion_rate"]["low"] == pytest.approx(rate.low)
        assert got["conversion_rate"]["high"] == pytest.approx(rate.high)
        assert got["conversion_rate"]["significant"] == rate.significant
        assert got["revenue_per_recipient"]["value"] == pytest.approx(mean.value)
        assert got["revenue_per_recipient"]["low"] == pytest.approx(mean.low)
        assert got["revenue_per_recipient"]["high"] == pytest.approx(mean.high)
    text = run(config, "report", "winter")
    assert text.exit_code == 0, text.output
    assert "variant A vs hold-out" in text.output and "revenue / recipient" in text.output


def test_a_get_never_unsubscribes_the_page_and_a_multipart_one_click_post_do(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    build(store, [person(1), person(2)])
    host = Host.load(extra={"filedrop": filedrop_plugin}, use_entry_points=False)
    drop = tmp_path / "drop.jsonl"
    settings = messaging(drop)
    secret = "m" * 40
    links = Links(secret.encode(), "https://crm.example.jp")
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            settings,
            shop=SHOP,
            name="winter",
            segment="number_of_orders >= 1",
            medium=Medium.EMAIL,
            variants=[campaigns.Variant(name="A", subject="冬", body="{{ name }}")],
            now=NOW,
        )
        campaigns.plan(conn, campaigns.get(conn, cid, shop=SHOP), settings, now=NOW, tz=TOKYO)
    Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=settings, tz=TOKYO, links=links
    ).send(cid)
    tokens = {m["to"]: m["metadata"]["unsubscribe_token"] for m in arrived(drop)}
    config = Config(None, store_url, SchedulerSection(), web=WebSection(secret=SecretStr(secret)))
    runtime = Runtime(host, config)
    app = create_app(runtime)
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            for token in tokens.values():  # a mail scanner opening the link changes nothing
                for _ in range(2):
                    assert client.get("/u", params={"token": token}).status_code == 200
            with store.engine.connect() as conn:
                assert conn.execute(select(consent_records.c.id)).all() == []
            one_click = client.post(
                "/u",
                params={"token": tokens["p1@example.jp"]},
                files={"List-Unsubscribe": (None, "One-Click")},
            )
            page = client.post(
                "/u", params={"token": tokens["p2@example.jp"]}, data={"confirm": "1"}
            )
            assert one_click.status_code == page.status_code == 200
            too_big = client.post(
                "/u", params={"token": tokens["p2@example.jp"]}, content=b"x" * 10_000
            )
            assert too_big.status_code == 413
    finally:
        app.state.inbox.close()
        runtime.close()
    with store.engine.connect() as conn:
        methods = conn.execute(
            select(consent_records.c.record_id, consent_records.c.method).order_by(
                consent_records.c.record_id
            )
        ).all()
    assert [tuple(m) for m in methods] == [("C1", "one_click"), ("C2", "link")]
