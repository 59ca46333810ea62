"""A message's links: signed tokens that name one message for one purpose, HTML links
rewritten through the click endpoint, and an unsubscribe that holds from the next group
on, across the person's merged records."""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path

import pytest
from sqlalchemy import func, select

from omnicrm.core.consent import Method
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.store.schema import consent_records, suppressions
from omnicrm.crm.profiles import profile_of
from omnicrm.engage import campaigns, tracking
from omnicrm.engage.campaigns import CampaignError, Variant
from omnicrm.engage.schema import message_events, outbox
from omnicrm.engage.sender import HANDOVER, Sender
from omnicrm.engage.tracking import Event, Links, MessageRef, Purpose, instrument
from tests.engage.conftest import NOW, SHOP, TOKYO, build, messaging, person
from tests.engage.test_campaigns import BODY, make
from tests.engage.test_sender import sender
from tests.support.filedrop_plugin import arrived

LINKS = Links(b"s" * 32, "https://crm.example.jp")
REF = MessageRef("tokyo-tea", 3, 41)


def _flip(text: str) -> str:
    """``text`` with its last character changed."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def test_a_token_names_its_message_for_its_purpose_only() -> None:
    token = LINKS.token(REF, Purpose.UNSUBSCRIBE)
    assert LINKS.read(token, Purpose.UNSUBSCRIBE) == REF
    assert LINKS.read(token, Purpose.OPEN) is None
    assert LINKS.read(token, Purpose.CLICK) is None
    assert Links(b"t" * 32).read(token, Purpose.UNSUBSCRIBE) is None  # another installation
    shop, campaign, row, sig = token.split("~")
    forged = [
        f"{shop}~{campaign}~{int(row) + 1}~{sig}",
        f"osaka-sweets~{campaign}~{row}~{sig}",
        f"{shop}~{int(campaign) + 1}~{row}~{sig}",
        f"{shop}~{campaign}~{row}~{_flip(sig)}",
        f"{shop}~{campaign}~{row}",
        f"{shop}~{campaign}~{row}~",
        "tokyo-tea.c3.p17.email",  # the bare message id the dispatcher fell back to
        "41",
        "",
        token + "~x",
        "x" * 500,
    ]
    for text in forged:
        assert LINKS.read(text, Purpose.UNSUBSCRIBE) is None, text


def test_html_links_go_through_the_click_endpoint_signed_for_their_exact_target() -> None:
    page = (
        "<html><body><p>"
        '<a href="https://shop.example.jp/sale?a=1&amp;b=%E8%8C%B6">セール</a> '
        "<a class=x href='http://shop.example.jp/x'>x</a> "
        "<a href=https://shop.example.jp/bare>bare</a> "
        '<a href="mailto:info@shop.example.jp">mail</a> '
        '<a href="/relative">relative</a> <a href="#top">top</a> '
        '<a href="https://crm.example.jp/u?token=abc">stop</a>'
        "</p></BODY></html>"
    )
    out = instrument(page, LINKS, REF)
    hrefs = [html.unescape(h) for h in re.findall(r'href=(?:"([^"]*)"|\'[^\']*\')', out)]
    clicks = [h for h in hrefs if h.startswith("https://crm.example.jp/t/c/")]
    targets = []
    for link in clicks:
        parts = urllib.parse.urlsplit(link)
        token = parts.path.rsplit("/", 1)[1]
        query = dict(urllib.parse.parse_qsl(parts.query))
        found = LINKS.click_target(token, query["u"], query["s"])
        assert found is not None and found[0] == REF
        targets.append(found[1])
        # Another target, or another message's signature, is refused.
        assert LINKS.click_target(token, query["u"] + "x", query["s"]) is None
        assert LINKS.click_target(token, "https://evil.example/", query["s"]) is None
        other = LINKS.token(MessageRef("tokyo-tea", 3, 42), Purpose.CLICK)
        assert LINKS.click_target(other, query["u"], query["s"]) is None
    assert targets == [
        "https://shop.example.jp/sale?a=1&b=%E8%8C%B6",
        "http://shop.example.jp/x",
        "https://shop.example.jp/bare",
    ]
    assert "mailto:info@shop.example.jp" in hrefs and "/relative" in hrefs and "#top" in hrefs
    assert "https://crm.example.jp/u?token=abc" in hrefs  # the unsubscribe link stays
    pixel = LINKS.pixel_url(REF)
    assert out.count("<img") == 1 and out.index(html.escape(pixel)) < out.index("</BODY>")
    token = pixel.rsplit("/", 1)[1].removesuffix(".gif")
    assert LINKS.read(token, Purpose.OPEN) == REF


def test_a_signed_link_to_something_else_than_a_web_page_is_refused() -> None:
    token = LINKS.token(REF, Purpose.CLICK)
    for target in ("javascript:alert(1)", "data:text/html,x", "//evil.example/", "https://"):
        assert LINKS.click_target(token, target, LINKS.link_signature(REF, target)) is None


def _sender(store: Store, host: Host, drop: Path) -> Sender:
    return sender(store, host, messaging(drop), links=LINKS)


def test_an_unsubscribe_link_holds_from_the_next_group_across_merged_records(
    store: Store, host: Host, drop: Path
) -> None:
    count = HANDOVER + 5
    build(store, [person(i) for i in range(count)])
    # Everyone is in the store's POS too (the same email joins the records).
    build(store, [person(i, consent=None, id=f"POS{i}") for i in range(count)], "pos")
    html_body = '<p>{{ name }}</p><a href="https://shop.example.jp/">店へ</a>'
    news = make(
        store,
        host,
        drop,
        name="news",
        variants=[Variant(name="A", subject="お知らせ", body=BODY, html=html_body)],
    )
    with store.engine.begin() as conn:
        campaigns.plan(conn, news, messaging(drop), now=NOW, tz=TOKYO)
    assert _sender(store, host, drop).send(news.id).sent == count
    sent = {m["to"]: m for m in arrived(drop)}
    with store.engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(outbox.c.address, outbox.c.id).where(outbox.c.campaign_id == news.id)
            ).all()
        )
    for address, message in sent.items():  # each carries the signed token of its own row
        ref = LINKS.read(message["metadata"]["unsubscribe_token"], Purpose.UNSUBSCRIBE)
        assert ref == MessageRef(SHOP, news.id, rows[address])
        assert "https://crm.example.jp/t/c/" in message["html"]  # tracked: base URL known

    winter = make(store, host, drop, name="winter")
    with store.engine.begin() as conn:
        campaigns.plan(conn, winter, messaging(drop), now=NOW, tz=TOKYO)
    first = _sender(store, host, drop).send(winter.id, limit=HANDOVER)
    assert first.sent == HANDOVER
    went = {m["to"] for m in arrived(drop) if m["id"].startswith(f"{SHOP}.c{winter.id}.")}
    later = next(i for i in range(count) if f"p{i}@example.jp" not in went)
    token = sent[f"p{later}@example.jp"]["metadata"]["unsubscribe_token"]
    ref = LINKS.read(token, Purpose.UNSUBSCRIBE)
    assert ref is not None
    for _ in range(2):  # saying it twice records it once
        with store.engine.begin() as conn:
            assert tracking.unsubscribe(conn, ref, at=NOW, method=Method.ONE_CLICK)
    with store.engine.connect() as conn:
        statements = conn.execute(
            select(
                consent_records.c.connection,
                consent_records.c.record_id,
                consent_records.c.state,
                consent_records.c.method,
                consent_records.c.source,
                consent_records.c.evidence,
            ).order_by(consent_records.c.connection)
        ).all()
        listed = conn.execute(select(suppressions.c.address, suppressions.c.reason)).all()
        pid = profile_of(conn, "pos", f"POS{later}", shop=SHOP)
    message = f"{SHOP}.c{news.id}.p{pid}.email"
    assert [tuple(s) for s in statements] == [
        ("pos", f"POS{later}", "opted_out", "one_click", "campaign:news", message),
        ("web", f"C{later}", "opted_out", "one_click", "campaign:news", message),
    ]
    assert [tuple(s) for s in listed] == [(f"p{later}@example.jp", "unsubscribed")]

    rest = _sender(store, host, drop).send(winter.id)
    assert (rest.sent, rest.suppressed, rest.finished) == (4, {"unsubscribed": 1}, True)
    with store.engine.connect() as conn:
        reason = conn.execute(
            select(outbox.c.status, outbox.c.reason).where(
                outbox.c.campaign_id == winter.id, outbox.c.profile_id == pid
            )
        ).one()
    assert tuple(reason) == ("suppressed", "unsubscribed")


def test_opens_and_clicks_are_counted_per_message_with_their_first_time(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1), person(2)])
    campaign = make(store, host, drop)
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
        row, never = conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all()
    ref = MessageRef(SHOP, campaign.id, row)
    with store.engine.begin() as conn:  # not handed over yet: no such message
        assert not tracking.record(conn, ref, Event.OPEN, NOW)
    _sender(store, host, drop).send(campaign.id, limit=1)
    later = NOW.replace(hour=9)
    for at in (NOW, later, NOW):
        with store.engine.begin() as conn:
            assert tracking.record(conn, ref, Event.OPEN, at)
    with store.engine.begin() as conn:
        assert tracking.record(conn, ref, Event.CLICK, later)
        assert not tracking.record(conn, MessageRef(SHOP, campaign.id + 1, row), Event.OPEN, NOW)
        assert not tracking.record(conn, MessageRef(SHOP, campaign.id, never), Event.OPEN, NOW)
        e = message_events.c
        rows = conn.execute(
            select(e.kind, e.first_at, e.last_at, e["count"]).order_by(e.kind)
        ).all()
        assert conn.execute(select(func.count()).select_from(message_events)).scalar_one() == 2
    assert [tuple(r) for r in rows] == [("click", later, later, 1), ("open", NOW, NOW, 3)]


def test_a_campaign_told_to_track_without_a_base_url_is_refused_when_planned(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1)])
    told = make(store, host, drop, name="told", tracking=True)
    with store.engine.begin() as conn, pytest.raises(CampaignError, match=r"base_url is not set"):
        campaigns.plan(conn, told, messaging(drop), now=NOW, tz=TOKYO)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
    plain = make(store, host, drop, name="plain")
    base = "https://crm.example.jp"
    assert not campaigns.tracks(plain, messaging(drop), None)  # on only with somewhere to link
    assert campaigns.tracks(plain, messaging(drop), base)
    assert not campaigns.tracks(plain, messaging(drop, tracking=False), base)
    assert campaigns.tracks(told, messaging(drop, tracking=False), base)  # its own word wins


def test_a_shop_renamed_since_still_honours_the_links_it_sent(
    store: Store, host: Host, drop: Path
) -> None:
    build(store, [person(1)])
    campaign = make(store, host, drop)
    with store.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
    assert _sender(store, host, drop).send(campaign.id).sent == 1
    (message,) = arrived(drop)
    ref = LINKS.read(message["metadata"]["unsubscribe_token"], Purpose.UNSUBSCRIBE)
    assert ref is not None and ref.shop == SHOP
    store.rename_shop(SHOP, "tokyo-tea")
    with store.engine.begin() as conn:
        assert tracking.record(conn, ref, Event.OPEN, NOW)
        assert tracking.unsubscribe(conn, ref, at=NOW, method=Method.LINK)
    with store.engine.connect() as conn:
        assert conn.execute(select(message_events.c.shop)).scalars().all() == ["tokyo-tea"]
        assert conn.execute(select(consent_records.c.shop)).scalars().all() == ["tokyo-tea"]
        listed = conn.execute(select(suppressions.c.shop, suppressions.c.address)).all()
    assert [tuple(x) for x in listed] == [("tokyo-tea", "p1@example.jp")]
