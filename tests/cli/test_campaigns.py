"""`omnicrm campaigns`: create (refused with the reason), preview, send, report."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnicrm import Order, OrderLine, Stream
from omnicrm.cli import cli
from omnicrm.core.records import OrderStatus
from omnicrm.core.store import Store
from omnicrm.plugins.email.sandbox import SmtpCatcher
from tests.conftest import install_plugin
from tests.engage.conftest import build, person
from tests.support.filedrop_plugin import arrived


@pytest.fixture
def config(
    store_url: str, plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))  # the links' secret
    install_plugin(plugin_dir, "filedrop", "tests.support.filedrop_plugin")
    store = Store.open(store_url)
    build(store, [person(1), person(2), person(3, consent=None)])
    store.close()
    (tmp_path / "winter.txt").write_text(
        "Subject: {{ name }}へ冬のご案内\n\n{{ name }}、ポイント残高は{{ points }}点です。\n",
        encoding="utf-8",
    )
    (tmp_path / "bad.txt").write_text("Subject: x\n\n{{ coupon_code }}\n", encoding="utf-8")
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        "[messaging.dispatchers.email]\n"
        f'dispatcher = "filedrop"\nsettings = {{ path = "{tmp_path / "drop.jsonl"}" }}\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(config), "campaigns", *args, "--shop", "default"],
        catch_exceptions=False,
    )


def create(config: Path, name: str, segment: str, template: str) -> Result:
    folder = config.parent
    return run(config, "create", name, "--segment", segment, "--template", str(folder / template))


def test_create_preview_send_and_report(config: Path) -> None:
    folder = config.parent
    bad = create(config, "x", "number_of_orders >= 1", "bad.txt")
    assert bad.exit_code == 2 and "coupon_code, but the campaign has no coupon" in bad.output
    refused = create(config, "x", "number_of_orders >>", "winter.txt")
    assert refused.exit_code == 2 and "segment" in refused.output
    made = create(config, "winter", "number_of_orders >= 1", "winter.txt")
    assert made.exit_code == 0, made.output
    shown = run(config, "preview", "winter", "--profile", "1")
    assert shown.exit_code == 0, shown.output
    assert (
        "山田 花子1 様へ冬のご案内" in shown.output and "ポイント残高は30点" in shown.output
    )  # the ledger: 1% of a 3,000 yen order
    sent = run(config, "send", "winter")
    assert sent.exit_code == 0, sent.output
    assert "sent 2" in sent.output and "no_consent" in sent.output
    assert sorted(m["to"] for m in arrived(folder / "drop.jsonl")) == [
        "p1@example.jp",
        "p2@example.jp",
    ]
    report = run(config, "report", "winter")
    assert report.exit_code == 0, report.output
    assert "sent" in report.output and "no_consent" in report.output
    assert run(config, "cancel", "winter").exit_code == 2  # done: nothing to cancel


def test_omnicrm_run_sends_a_scheduled_campaign_at_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catcher: SmtpCatcher
) -> None:
    """`campaigns schedule`, then nobody runs `send`: the scheduler of `omnicrm run`
    sends it through the email dispatcher to a real SMTP server."""
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OMNICRM_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    store = Store.open(url)
    build(store, [person(i) for i in range(10)])
    settings = "\n".join(f"{k} = {json.dumps(v)}" for k, v in catcher.settings().items())
    config = tmp_path / "omnicrm.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[messaging]\ncheck_every = "1s"\n\n'
        f'[messaging.dispatchers.email]\ndispatcher = "email"\n\n'
        f"[messaging.dispatchers.email.settings]\n{settings}\n",
        encoding="utf-8",
    )
    (tmp_path / "a.txt").write_text("Subject: ご案内\n\n{{ name }}、セールです。\n", "utf-8")
    made = run(config, "create", "soon", "--segment", "number_of_orders >= 1",
               "--template", str(tmp_path / "a.txt"))  # fmt: skip
    assert made.exit_code == 0, made.output
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        scheduled = run(config, "schedule", "soon", "--at", at)
        assert scheduled.exit_code == 0, scheduled.output
        arrived_mail = catcher.wait_for(10, timeout=60)
        deadline = time.monotonic() + 30
        while "soon  email  done" not in run(config).output:
            assert time.monotonic() < deadline, run(config).output
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        store.close()
    assert "scheduled: campaigns of default (every 1s)" in out, out + err
    assert sorted(a.rcpt_tos[0] for a in arrived_mail) == sorted(
        f"p{i}@example.jp" for i in range(10)
    )


def test_a_coupon_campaign_without_a_platform_keeps_its_codes_and_reports_them(
    config: Path, store_url: str
) -> None:
    folder = config.parent
    template = str(folder / "bad.txt")  # {{ coupon_code }}: fine with a coupon
    args = ("create", "gift", "--segment", "number_of_orders >= 1", "--template", template)
    wrong = run(config, *args, "--coupon", "10%,expires=2020-01-01")
    assert wrong.exit_code == 2 and "already past" in wrong.output
    made = run(config, *args, "--coupon", "500,min=3000,expires=2099-12-31,prefix=GIFT")
    assert made.exit_code == 0, made.output
    assert "kept in omnicrm only" in made.output
    shown = run(config, "preview", "gift", "--profile", "1")
    assert "GIFT-XXXXXXXXXX" in shown.output  # no code is issued before planning
    sent = run(config, "send", "gift")
    assert sent.exit_code == 0 and "sent 2" in sent.output, sent.output
    code_of = {m["to"]: m["body"].strip() for m in arrived(folder / "drop.jsonl")}
    codes = list(code_of.values())
    assert len(set(codes)) == 2 and all(c.startswith("GIFT-") and len(c) == 15 for c in codes)
    # p1 uses their code (typed in lower case) twice, the second time in vain; p2's
    # order with theirs is cancelled; p3 (no code) has an order with a made-up one.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    store = Store.open(store_url)
    store.write_batch(
        "web",
        Stream.ORDERS,
        [
            redeeming("R1", "C1", [code_of["p1@example.jp"].lower()], "paid", 4500, later),
            redeeming("R2", "C1", [code_of["p1@example.jp"]], "paid", 2000, later),
            redeeming("R3", "C2", [code_of["p2@example.jp"]], "cancelled", 9000, later),
            redeeming("R4", "C3", ["GIFT-NOTACODE0"], "paid", 7000, later),
        ],
    )
    store.close()
    report = run(config, "report", "gift")
    assert report.exit_code == 0, report.output
    assert "coupons, variant A: redeemed 1, revenue 4,500 JPY" in report.output, report.output
    as_json = run(config, "report", "gift", "--json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["currency"] == "JPY"
    assert set(document["coupons"]) == {"A"}
    assert document["coupons"]["A"]["redeemed"] == 1
    assert Decimal(document["coupons"]["A"]["revenue"]) == Decimal(4500)


def redeeming(
    oid: str, customer: str, codes: list[str], status: str, total: int, at: dt.datetime
) -> Order:
    """An order of the web shop placed at ``at`` with discount ``codes``."""
    return Order(
        id=oid,
        customer_id=customer,
        status=OrderStatus(status),
        placed_at=at,
        updated_at=at,
        subtotal=Decimal(total),
        total=Decimal(total),
        discount_codes=codes,
        lines=[OrderLine(product_name="緑茶 100g", quantity=1, unit_price=Decimal(total))],
    )


def test_bounces_at_send_and_by_report_show_on_the_profile(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from omnicrm.plugins.email.sandbox import SmtpCatcher
    from omnicrm.plugins.email.smtp import POOL
    from tests.engage.test_bounces import dsn

    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    store = Store.open(store_url)
    build(store, [person(1), person(2, email="bounce@example.jp"), person(3)])
    store.close()
    (tmp_path / "winter.txt").write_text("Subject: 冬のご案内\n\n{{ name }}、こんにちは。\n")
    POOL.close()
    with SmtpCatcher() as catcher:
        settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in catcher.settings().items())
        config = tmp_path / "omnicrm.toml"
        config.write_text(
            f'[store]\nurl = "{store_url}"\n\n[messaging.dispatchers.email]\n'
            f'dispatcher = "email"\nsettings = {{ {settings} }}\n',
            encoding="utf-8",
        )
        assert create(config, "winter", "number_of_orders >= 1", "winter.txt").exit_code == 0
        sent = run(config, "send", "winter")
        assert "sent 2, rejected 1" in sent.output, sent.output
        arrived = {a.rcpt_tos[0]: a.data for a in catcher.wait_for(2)}
    POOL.close()
    (tmp_path / "dsn.eml").write_bytes(dsn(arrived["p3@example.jp"], "p3@example.jp", "5.1.1"))
    (tmp_path / "other.eml").write_bytes(dsn(None, "nobody@example.jp", "5.1.1"))
    read = run(config, "bounces", str(tmp_path / "dsn.eml"), str(tmp_path / "other.eml"))
    assert read.exit_code == 0, read.output
    assert "p3@example.jp (campaign winter): 5.1.1 failed: suppressed" in read.output
    assert "nobody@example.jp: 5.1.1 failed: unmatched" in read.output
    assert "1 suppressed, 1 unmatched" in read.output
    missing = run(config, "bounces", str(tmp_path))
    assert missing.exit_code == 2 and "no Maildir" in missing.output
    for record, address, why in (("C2", "bounce@example.jp", "550 5.1.1"), ("C3", "p3", "DSN")):
        shown = CliRunner().invoke(
            cli,
            ["--config", str(config), "customers", "show", f"web:{record}", "--shop", "default"],
            catch_exceptions=False,
            terminal_width=200,
        )
        assert shown.exit_code == 0, shown.output
        line = next(x for x in shown.output.splitlines() if "suppressed" in x)
        assert address in line and "bounced since 2026-" in line and why in line, line


def wide(config: Path, *args: str) -> Result:
    """``omnicrm ARGS --shop default`` on a wide terminal (one line per entry)."""
    return CliRunner().invoke(
        cli,
        ["--config", str(config), *args, "--shop", "default"],
        catch_exceptions=False,
        terminal_width=200,
    )


def test_the_suppression_list_and_lifting_a_bounce_but_never_an_unsubscribe(
    config: Path, store_url: str
) -> None:
    from tests.engage.conftest import NOW, bounce, unsubscribe

    store = Store.open(store_url)
    unsubscribe(store, "web", "C1")
    bounce(store, "p2@example.jp")
    listed = wide(config, "campaigns", "suppressions")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "email  p1@example.jp  unsubscribed  since 2026-11-20 12:00 JST  (operator via operator)",
        "email  p2@example.jp  bounced  since 2026-11-20 12:00 JST  (550 5.1.1 user unknown)",
    ]
    as_json = json.loads(
        wide(config, "campaigns", "suppressions", "--reason", "bounced", "--json").output
    )
    assert as_json == [
        {
            "medium": "email",
            "address": "p2@example.jp",
            "reason": "bounced",
            "since": NOW.isoformat(),
            "detail": "550 5.1.1 user unknown",
        }
    ]
    assert (
        "no suppressed address"
        in wide(config, "campaigns", "suppressions", "--medium", "line").output
    )
    # Refused, saying why; nothing lifted.
    lift = ("campaigns", "unsuppress", "--medium", "email", "--reason", "fixed", "--by", "sato")
    theirs = wide(config, *lift, "P1@example.jp")
    assert theirs.exit_code == 2 and "a person's opt-out is theirs" in theirs.output
    unknown = wide(config, *lift, "nobody@example.jp")
    assert unknown.exit_code == 2
    assert (
        "'nobody@example.jp' is not on the suppression list of shop 'default' for email"
        in unknown.output
    )
    medium = wide(
        config, "campaigns", "unsuppress", "p2@example.jp", "--medium", "fax", "--reason", "x"
    )
    assert medium.exit_code == 2 and "fax" in medium.output
    unsaid = wide(config, "campaigns", "unsuppress", "p2@example.jp", "--medium", "email")
    assert unsaid.exit_code == 2 and "--reason" in unsaid.output
    shown = wide(config, "customers", "show", "web:C2")
    assert "p2@example.jp bounced since" in shown.output
    lifted = wide(config, *lift, "p2@example.jp")
    assert lifted.exit_code == 0, lifted.output
    assert "email p2@example.jp: bounced lifted by sato (fixed)" in lifted.output
    # Gone from the list and from the profile; the unsubscribe stays.
    assert [
        line.split()[1] for line in wide(config, "campaigns", "suppressions").output.splitlines()
    ] == ["p1@example.jp"]
    shown = wide(config, "customers", "show", "web:C2")
    assert shown.exit_code == 0 and "suppressed" not in shown.output, shown.output
    assert "p1@example.jp unsubscribed since" in wide(config, "customers", "show", "web:C1").output
    # Sent to again (C2 opted in); C1 still unsubscribed, C3 never opted in.
    assert create(config, "after", "number_of_orders >= 1", "winter.txt").exit_code == 0
    sent = run(config, "send", "after")
    assert sent.exit_code == 0 and "sent 1," in sent.output, sent.output
    assert [m["to"] for m in arrived(config.parent / "drop.jsonl")] == ["p2@example.jp"]
    assert "unsubscribed" in sent.output and "no_consent" in sent.output
    store.close()


def test_a_send_the_quiet_hours_stop_says_who_goes_on_with_it(config: Path, store_url: str) -> None:
    from zoneinfo import ZoneInfo

    tokyo = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
    window = f"{tokyo - dt.timedelta(hours=1):%H:%M}-{tokyo + dt.timedelta(hours=1):%H:%M}"
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[messaging]\nquiet_hours = "{window}"\n')
    until = f"{tokyo + dt.timedelta(hours=1):%Y-%m-%d %H:%M} JST"
    for name in ("night", "metered"):
        assert create(config, name, "number_of_orders >= 1", "winter.txt").exit_code == 0
    sent = wide(config, "campaigns", "send", "night")
    assert sent.exit_code == 0, sent.output
    assert "sent 0," in sent.output
    assert (
        f"quiet hours until {until}: the rest goes out by itself then while `omnicrm run` "
        "(or `omnicrm demo`) is running; if none is, send it then with "
        "`omnicrm campaigns send night`"
    ) in sent.output
    metered = wide(config, "campaigns", "send", "metered", "--limit", "1")
    assert metered.exit_code == 0, metered.output
    assert (
        f"quiet hours until {until}: send the rest then with "
        "`omnicrm campaigns send metered` (--limit: not scheduled)"
    ) in metered.output
    assert not (config.parent / "drop.jsonl").exists()
