"""The LINE webhook receiver: the signature decides the shop, the events decide the
actions, and nothing unsigned or another shop's is taken."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from omnicrm import Connection, ConsentState, Medium
from omnicrm.plugins.line.sandbox import LineEmulator, demo_user
from omnicrm.plugins.line.settings import LineSettings
from omnicrm.plugins.line.webhooks import LineWebhooks, sign
from omnicrm.webhooks import ConsentChange, LinkAddress, WebhookInvalid, WebhookRejected

USER = demo_user(0, 3)


def shop(name: str, secret: str) -> Connection:
    settings = LineSettings(channel_access_token="t", channel_secret=secret)  # type: ignore[arg-type]
    return Connection(f"line@{name}", "line", settings, shop=name)


SHOPS = [shop("tokyo", "secret-of-tokyo"), shop("osaka", "secret-of-osaka")]


def test_the_signature_known_answer() -> None:
    # base64(HMAC-SHA256("secret", b'{"events":[]}')), computed independently (openssl).
    assert sign("secret", b'{"events":[]}') == "pkK1lVPJPiJ+wPLziRD79xIxohl8AImYM8AEeM7IbzQ="


def test_the_shop_is_the_one_whose_secret_signed() -> None:
    body = LineEmulator(channel_secret="secret-of-osaka").webhook_body()
    event = LineWebhooks().verify({"x-line-signature": sign("secret-of-osaka", body)}, body, SHOPS)
    assert event.connection == "line@osaka" and event.topic == "verify"


@pytest.mark.parametrize(
    "signature", [None, "", "bm90IGEgc2lnbmF0dXJl", sign("secret-of-nobody", b"x")]
)
def test_an_unsigned_or_forged_request_is_rejected(signature: str | None) -> None:
    body = LineEmulator().webhook_body()
    headers = {} if signature is None else {"x-line-signature": signature}
    with pytest.raises(WebhookRejected):
        LineWebhooks().verify(headers, body, SHOPS)


def test_a_body_changed_after_signing_is_rejected() -> None:
    emulator = LineEmulator(channel_secret="secret-of-tokyo")
    body = emulator.webhook_body(emulator.event("unfollow", USER))
    signature = sign("secret-of-tokyo", body)
    with pytest.raises(WebhookRejected):
        LineWebhooks().verify({"x-line-signature": signature}, body.replace(b"un", b"  "), SHOPS)


def test_events_become_consent_changes_and_links() -> None:
    emulator = LineEmulator(channel_secret="secret-of-tokyo")
    follow = emulator.event("follow", USER, replyToken="r", follow={"isUnblocked": False})
    unfollow = emulator.event("unfollow", USER)
    linked = emulator.event("accountLink", USER, link={"result": "ok", "nonce": "n-123"})
    failed = emulator.event("accountLink", USER, link={"result": "failed", "nonce": "n-456"})
    message = emulator.event("message", USER, message={"type": "text", "id": "1", "text": "hi"})
    body = emulator.webhook_body(follow, unfollow, linked, failed, message)
    receiver = LineWebhooks()
    event = receiver.verify({"x-line-signature": sign("secret-of-tokyo", body)}, body, SHOPS)
    assert event.urgent  # an unfollow is applied before the answer
    assert event.event_id.startswith("batch-")
    actions = list(receiver.actions(event, SHOPS[0]))
    at = dt.datetime.fromtimestamp(follow["timestamp"] / 1000, dt.UTC)
    assert actions == [
        ConsentChange(Medium.LINE, USER, ConsentState.OPTED_IN, at, "line_follow", "line"),
        ConsentChange(
            Medium.LINE,
            USER,
            ConsentState.OPTED_OUT,
            dt.datetime.fromtimestamp(unfollow["timestamp"] / 1000, dt.UTC),
            "line_unfollow",
            "line",
        ),
        LinkAddress(
            Medium.LINE,
            USER,
            "n-123",
            dt.datetime.fromtimestamp(linked["timestamp"] / 1000, dt.UTC),
        ),
    ]


def test_a_signed_body_that_is_no_callback_is_invalid_naming_the_field() -> None:
    body = json.dumps({"destination": "Uxyz", "events": []}).encode()
    with pytest.raises(WebhookInvalid, match="destination"):
        LineWebhooks().verify({"x-line-signature": sign("secret-of-tokyo", body)}, body, SHOPS)
