"""The client and the dispatch hook over real HTTP to the emulator: what each answer
means, the retry key that keeps a retried message from arriving twice, multicast batches."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from omnicrm import DeliveryStatus, Medium, Message
from omnicrm.plugins.line import plugin
from omnicrm.plugins.line.client import MULTICAST_LIMIT, Client, LineError, retry_key, text_message
from omnicrm.plugins.line.sandbox import (
    DEMO_FRIENDS,
    KEPT_FILE,
    LineEmulator,
    demo_user,
    sandbox,
)
from omnicrm.plugins.line.settings import LineSettings

FRIEND = demo_user(0, 0)
BLOCKED = demo_user(0, DEMO_FRIENDS)


def message(
    to: str = FRIEND, body: str = "山田 花子 様\n冬のセールのご案内です。", id: str = "s.c1.p1.line"
) -> Message:
    return Message(id=id, medium=Medium.LINE, customer_id="1", to=to, body=body)


def test_a_push_arrives_once_with_its_retry_key(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    outcome = plugin.omnicrm_dispatch_message(message(), settings)
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    (delivery,) = emulator.delivered
    assert delivery.to == (FRIEND,) and delivery.kind == "push"
    assert delivery.messages == (
        {"type": "text", "text": "山田 花子 様\n冬のセールのご案内です。"},
    )
    assert delivery.retry_key == retry_key("s.c1.p1.line")
    assert outcome.provider_id == delivery.sent_ids[0]


def test_the_same_message_sent_again_is_not_delivered_twice(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    first = plugin.omnicrm_dispatch_message(message(), settings)
    again = plugin.omnicrm_dispatch_message(message(), settings)  # e.g. after a restart
    assert first.status is again.status is DeliveryStatus.SENT
    assert again.provider_id == first.provider_id  # LINE's 409 names what it sent
    assert len(emulator.delivered) == 1
    other = plugin.omnicrm_dispatch_message(message(id="s.c2.p1.line"), settings)
    assert other.status is DeliveryStatus.SENT and len(emulator.delivered) == 2


def test_an_answer_lost_to_a_timeout_is_settled_by_the_retry_without_a_second_delivery(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    quick = settings.model_copy(update={"timeout": 0.5, "attempts": 3, "backoff": 0.01})
    emulator.lose_answer_next(seconds=1.5)
    outcome = plugin.omnicrm_dispatch_message(message(), quick)
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    assert len(emulator.delivered) == 1
    assert outcome.provider_id == emulator.delivered[0].sent_ids[0]


@pytest.mark.parametrize("fault", ["rate_limit", "server_error"])
def test_429_and_5xx_are_retried_then_sent(
    emulator: LineEmulator, settings: LineSettings, fault: str
) -> None:
    if fault == "rate_limit":
        emulator.rate_limit_next(2, retry_after=0.01)
    else:
        emulator.fail_next(2, status=500)
    outcome = plugin.omnicrm_dispatch_message(
        message(), settings.model_copy(update={"attempts": 3})
    )
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    assert emulator.injected == 2 and len(emulator.delivered) == 1


def test_429_that_lasts_is_failed_for_a_later_retry(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    emulator.rate_limit_next(5, retry_after=0.01)
    outcome = plugin.omnicrm_dispatch_message(
        message(), settings.model_copy(update={"attempts": 2})
    )
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.error is not None and "429" in outcome.error and "2 tries" in outcome.error
    assert emulator.delivered == []


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        (BLOCKED, "Failed to send messages"),
        (demo_user(0, 999), "Failed to send messages"),  # never a friend
        ("U" + "0" * 31, "not a LINE user id"),
        ("hanako@example.jp", "not a LINE user id"),
    ],
)
def test_a_user_who_is_no_friend_is_rejected(
    emulator: LineEmulator, settings: LineSettings, to: str, reason: str
) -> None:
    outcome = plugin.omnicrm_dispatch_message(message(to=to), settings)
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error is not None and reason in outcome.error
    assert emulator.delivered == []


def test_a_text_longer_than_line_takes_is_rejected_before_sending(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    outcome = plugin.omnicrm_dispatch_message(message(body="あ" * 5001), settings)
    assert outcome.status is DeliveryStatus.REJECTED and "5000" in (outcome.error or "")
    assert emulator.delivered == []


def test_the_button_goes_with_each_message(emulator: LineEmulator, settings: LineSettings) -> None:
    with_button = settings.model_copy(
        update={"button_label": "セール会場へ", "button_url": "https://tokyo-tea.example.jp/sale"}
    )
    assert plugin.omnicrm_dispatch_message(message(), with_button).status is DeliveryStatus.SENT
    text, button = emulator.delivered[0].messages
    assert text["type"] == "text"
    assert button["template"]["actions"] == [
        {"type": "uri", "label": "セール会場へ", "uri": "https://tokyo-tea.example.jp/sale"}
    ]


def test_a_wrong_token_fails_without_showing_it(
    emulator: LineEmulator, settings: LineSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-token-ab12cd34"
    wrong = LineSettings.model_validate({**emulator.settings(), "channel_access_token": secret})
    outcome = plugin.omnicrm_dispatch_message(message(), wrong)
    assert outcome.status is DeliveryStatus.FAILED
    assert "401" in (outcome.error or "") and "access token" in (outcome.error or "")
    client = Client(wrong)
    shown = "\n".join([repr(outcome), caplog.text, repr(wrong), repr(client)])
    client.close()
    assert secret not in shown


def test_multicast_sends_batches_of_at_most_500(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    users = [demo_user(0, n) for n in range(2 * MULTICAST_LIMIT + 7)]
    for user in users:
        emulator.add_friend(user)
    client = Client(settings)
    try:
        outcomes = client.multicast(users, [text_message("本日限りのご案内")], message_id="s.c9")
        assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 3
        assert [len(d.to) for d in emulator.delivered] == [500, 500, 7]
        assert [u for d in emulator.delivered for u in d.to] == users
        # The same call again (a retry): every batch's key was accepted, nothing new.
        again = client.multicast(users, [text_message("本日限りのご案内")], message_id="s.c9")
        assert [o.status for o in again] == [DeliveryStatus.SENT] * 3
        assert len(emulator.delivered) == 3
    finally:
        client.close()


def test_a_multicast_skips_who_blocked_the_account(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    client = Client(settings)
    try:
        (outcome,) = client.multicast([FRIEND, BLOCKED], [text_message("x")], message_id="m")
    finally:
        client.close()
    assert outcome.status is DeliveryStatus.SENT
    assert emulator.delivered[0].to == (FRIEND,)


def test_link_tokens_are_issued_for_friends_only(
    emulator: LineEmulator, settings: LineSettings
) -> None:
    client = Client(settings)
    try:
        assert len(client.link_token(FRIEND)) >= 20
        with pytest.raises(LineError, match="400"):
            client.link_token(BLOCKED)
    finally:
        client.close()


def test_the_sandbox_keeps_what_it_delivered_in_a_file(tmp_path: Path) -> None:
    """The demo's view of the emulator: each accepted push a JSON line, once, and a
    refused one (a user who blocked the account) not at all."""
    with sandbox(keep_in=tmp_path / "kept") as found:
        settings = LineSettings.model_validate(dict(found))
        for _ in range(2):  # the same message again: one delivery
            sent = plugin.omnicrm_dispatch_message(message(), settings)
            assert sent.status is DeliveryStatus.SENT, sent.error
        blocked = plugin.omnicrm_dispatch_message(message(BLOCKED, id="s.c1.p2.line"), settings)
        assert blocked.status is DeliveryStatus.REJECTED
    lines = (tmp_path / "kept" / KEPT_FILE).read_text(encoding="utf-8").splitlines()
    (kept,) = [json.loads(line) for line in lines]
    assert kept["to"] == [FRIEND] and kept["kind"] == "push"
    assert kept["messages"] == [{"type": "text", "text": "山田 花子 様\n冬のセールのご案内です。"}]
    assert kept["retry_key"] == retry_key("s.c1.p1.line")
