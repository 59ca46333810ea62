"""The webhook dispatcher against a real HTTP receiver on loopback: signed, idempotent,
retried on 429, 5xx and timeouts within the call, refused on other 4xx."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from omnicrm import Consent, ConsentState, DeliveryStatus, Medium, Message
from omnicrm.plugins.webhook import plugin
from omnicrm.plugins.webhook.client import Client
from omnicrm.plugins.webhook.sandbox import Receiver
from omnicrm.plugins.webhook.settings import WebhookSettings
from omnicrm.plugins.webhook.signing import HEADER, IDEMPOTENCY_HEADER, verify
from omnicrm.testing import load_host


def message(n: int = 1, to: str = "hanako@example.jp") -> Message:
    return Message(
        id=f"tokyo-tea.c7.p{n}.email",
        medium=Medium.EMAIL,
        customer_id=str(n),
        to=to,
        subject="冬のご案内",
        body="山田 花子 様\nポイント残高: 1200",
        html="<p>山田 花子 様</p>",
        metadata={
            "shop": "tokyo-tea",
            "campaign": "winter",
            "variant": "A",
            "family_name": "山田",
            "given_name": "花子",
        },
    )


def client(receiver: Receiver, **overrides: object) -> tuple[Client, list[float]]:
    slept: list[float] = []
    settings = WebhookSettings.model_validate(receiver.settings(**overrides))
    return Client(settings, sleep=slept.append), slept


def test_a_message_arrives_signed_with_its_idempotency_key(receiver: Receiver) -> None:
    host = load_host(plugin)
    settings = WebhookSettings.model_validate(receiver.settings())
    consent = [Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN)]
    outcome = host.dispatch("webhook-email", message(), settings, consents=consent)
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.provider_id == "received-1"
    (received,) = receiver.accepted.values()
    assert received.headers[IDEMPOTENCY_HEADER.lower()] == "tokyo-tea.c7.p1.email"
    assert verify(receiver.secret, received.headers[HEADER.lower()], received.body) is None
    assert received.headers["content-type"] == "application/json; charset=utf-8"
    assert received.message == {
        "type": "message",
        "id": "tokyo-tea.c7.p1.email",
        "medium": "email",
        "customer_id": "1",
        "to": "hanako@example.jp",
        "subject": "冬のご案内",
        "body": "山田 花子 様\nポイント残高: 1200",
        "html": "<p>山田 花子 様</p>",
        "metadata": {
            "shop": "tokyo-tea",
            "campaign": "winter",
            "variant": "A",
            "family_name": "山田",
            "given_name": "花子",
        },
    }


def test_a_tampered_body_fails_the_receivers_check(receiver: Receiver) -> None:
    sender, _ = client(receiver)
    assert sender.post(message()).status is DeliveryStatus.SENT
    (received,) = receiver.accepted.values()
    document = json.loads(received.body)
    document["to"] = "attacker@example.com"
    tampered = json.dumps(document, ensure_ascii=False).encode()
    headers = {
        HEADER: received.headers[HEADER.lower()],
        IDEMPOTENCY_HEADER: "tokyo-tea.c7.p1-replayed",
        "Content-Type": "application/json",
    }
    answer = httpx.post(receiver.endpoint, content=tampered, headers=headers)
    assert answer.status_code == 401
    assert receiver.refused == ["the signature does not match the body"]
    assert len(receiver.accepted) == 1


def test_5xx_and_429_are_tried_again_with_backoff_and_the_same_key(receiver: Receiver) -> None:
    sender, slept = client(receiver, attempts=4, backoff=0.01)
    receiver.fail_next(2, status=503)
    receiver.rate_limit_next(1, retry_after=0.2)
    outcome = sender.post(message())
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    assert receiver.injected + receiver.requests == 4  # 3 faults answered, then the message
    assert slept == [0.01, 0.02, 0.2]  # doubling, then what Retry-After asked
    assert list(receiver.accepted) == ["tokyo-tea.c7.p1.email"]


def test_a_persistent_5xx_fails_after_the_last_try(receiver: Receiver) -> None:
    sender, slept = client(receiver, attempts=3, backoff=0.01)
    outcome = sender.post(message(to="defer@example.jp"))
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.error == "127.0.0.1 answered HTTP 503 (after 3 tries)"
    assert receiver.requests == 3 and len(slept) == 2


def test_a_retry_after_beyond_max_wait_fails_now(receiver: Receiver) -> None:
    sender, slept = client(receiver, max_wait=5)
    receiver.rate_limit_next(1, retry_after=60)
    outcome = sender.post(message())
    assert outcome.status is DeliveryStatus.FAILED
    assert "asking to wait 60 s (more than max_wait)" in outcome.error  # type: ignore[operator]
    assert slept == [] and (receiver.injected, receiver.requests) == (1, 0)


def test_a_timeout_is_tried_again_and_the_message_kept_once(receiver: Receiver) -> None:
    sender, _ = client(receiver, timeout=0.3, attempts=3, backoff=0.5)
    receiver.delay_next(1, seconds=1.0)
    outcome = sender.post(message())
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    assert list(receiver.accepted) == ["tokyo-tea.c7.p1.email"]


@pytest.mark.parametrize(("to", "status"), [("refuse@example.jp", 422)])
def test_another_4xx_is_rejected_without_a_retry(receiver: Receiver, to: str, status: int) -> None:
    sender, slept = client(receiver)
    outcome = sender.post(message(to=to))
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error == (
        f"127.0.0.1 refused message tokyo-tea.c7.p1.email: HTTP {status} Unprocessable Entity"
    )
    assert receiver.requests == 1 and slept == []


def test_a_wrong_secret_is_rejected_and_never_shown(receiver: Receiver) -> None:
    sender, _ = client(receiver, secret="not-the-receivers-secret-at-all")
    outcome = sender.post(message())
    assert outcome.status is DeliveryStatus.REJECTED and "HTTP 401" in outcome.error  # type: ignore[operator]
    assert "not-the-receivers" not in repr(outcome) + repr(sender.settings)


def test_a_message_sent_again_is_accepted_once(receiver: Receiver) -> None:
    sender, _ = client(receiver)
    first, again = sender.post(message()), sender.post(message())
    assert (first.status, again.status) == (DeliveryStatus.SENT, DeliveryStatus.SENT)
    assert len(receiver.accepted) == 1 and receiver.requests == 2


def test_nobody_listening_fails_after_the_tries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = WebhookSettings(
        url=f"http://127.0.0.1:{port}/hook",
        secret="s" * 16,
        attempts=2,
        backoff=0,  # type: ignore[arg-type]
    )
    outcome = Client(settings, sleep=lambda _: None).post(message())
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.error == "cannot reach 127.0.0.1: ConnectError (after 2 tries)"


def test_a_redirect_is_not_followed() -> None:
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    from omnicrm.testing import Emulator

    class Moved(Emulator):
        def __init__(self) -> None:
            super().__init__()
            self.app = Starlette(
                routes=[
                    Route(
                        "/hook", lambda r: RedirectResponse("https://x.example/"), methods=["POST"]
                    )
                ]
            )

    with Moved() as moved:
        settings = WebhookSettings(url=f"{moved.url}/hook", secret="s" * 16)  # type: ignore[arg-type]
        outcome = Client(settings).post(message())
    assert outcome.status is DeliveryStatus.FAILED
    assert "redirect (HTTP 307)" in outcome.error  # type: ignore[operator]
