"""The email dispatcher end to end: rendered, sent to a real SMTP server, parsed back."""

from __future__ import annotations

import base64
import email.utils
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from omnicrm import (
    Consent,
    ConsentState,
    DeliveryStatus,
    DispatchOutcome,
    Medium,
    Message,
    MessageParts,
)
from omnicrm.plugins.email import plugin
from omnicrm.plugins.email.compose import message_id_for
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.plugins.email.settings import EmailSettings
from omnicrm.testing import load_host

TEMPLATE = MessageParts(
    subject="{{ name|sama }}、{{ points|number }}ポイントのお知らせ",
    body=(
        "{{ name|sama }}\n\nいつも東京茶舗をご利用いただきありがとうございます。\n"
        "ポイント残高: {{ points|number }}pt\n"
        "前回のお買い物: {{ last_purchase.product }}({{ last_purchase.date|date_ja }})\n"
        "クーポンコード: {{ coupon_code }}\n"
    ),
    html=(
        "<html><body><p>{{ name|sama }}</p><p>ポイント残高: {{ points|number }}pt</p>"
        "<p>クーポンコード: <b>{{ coupon_code }}</b></p></body></html>"
    ),
)
FIELDS = {
    "name": "山田 花子",
    "points": 12345,
    "last_purchase": {"product": "静岡深蒸し煎茶 100g", "date": "2026-11-03"},
    "coupon_code": "<TEA-2026>",
}
OPTED_IN = [Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN)]


def send(
    settings: EmailSettings,
    *,
    to: str = "hanako@example.jp",
    message_id: str = "campaign-1/customer-1/email",
    template: MessageParts = TEMPLATE,
    metadata: dict[str, object] | None = None,
) -> DispatchOutcome:
    host = load_host(plugin)
    spec = host.dispatchers["email"]
    assert spec.renderer is not None
    parts = spec.renderer.render(template, FIELDS)
    message = Message(
        id=message_id,
        medium=Medium.EMAIL,
        customer_id="customer-1",
        to=to,
        body=parts.body,
        subject=parts.subject,
        html=parts.html,
        metadata=dict(metadata or {}),
    )
    return host.dispatch("email", message, settings, consents=OPTED_IN)


def parts_of(mail: EmailMessage) -> dict[str, str]:
    found = {}
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            found[part.get_content_subtype()] = str(part.get_content()).replace("\r\n", "\n")
    return found


def test_what_arrives_has_every_header_and_both_parts(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    outcome = send(settings, metadata={"unsubscribe_token": "tok-123"})
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    [arrival] = catcher.wait_for(1)
    assert arrival.mail_from == "info@tokyo-tea.example.jp"
    assert arrival.rcpt_tos == ("hanako@example.jp",)
    mail = arrival.parse()
    assert not mail.defects
    # The name in From is encoded on the wire and decodes back intact.
    assert b"From: =?utf-8?b?" in arrival.data
    assert str(mail["From"]) == "東京茶舗 <info@tokyo-tea.example.jp>"
    assert mail["Subject"] == "山田 花子 様、12,345ポイントのお知らせ"
    assert mail["To"] == "hanako@example.jp"
    assert mail["Message-ID"] == outcome.provider_id
    assert mail["Message-ID"] == message_id_for(
        "campaign-1/customer-1/email", "tokyo-tea.example.jp"
    )
    date = email.utils.parsedate_to_datetime(mail["Date"])
    assert date.utcoffset() is not None and date.utcoffset().total_seconds() == 9 * 3600
    assert mail["List-Unsubscribe"] == (
        "<https://tokyo-tea.example.jp/unsubscribe?token=tok-123>, "
        "<mailto:unsubscribe@tokyo-tea.example.jp?subject=unsubscribe%20tok-123>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"

    parts = parts_of(mail)
    assert set(parts) == {"plain", "html"}
    text, page = parts["plain"], parts["html"]
    assert text.startswith("山田 花子 様\n\nいつも東京茶舗をご利用いただきありがとうございます。")
    assert "前回のお買い物: 静岡深蒸し煎茶 100g(2026年11月3日)" in text
    assert "クーポンコード: <TEA-2026>" in text  # the text part is not escaped
    assert "<b>&lt;TEA-2026&gt;</b>" in page  # the HTML part is
    for footer in (
        "東京茶舗",
        "〒100-0005 東京都千代田区丸の内1-1-1 茶舗ビル3階",
        "support@tokyo-tea.example.jp / 03-1234-5678",
        "https://tokyo-tea.example.jp/unsubscribe?token=tok-123",
    ):
        assert footer in text.split("――")[-1], f"{footer} missing from the text footer"
        assert footer in page.split("<hr>")[-1], f"{footer} missing from the HTML footer"
    assert page.rstrip().endswith("</body></html>")


def test_a_text_only_message_still_has_the_footer(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    text_only = MessageParts(subject=TEMPLATE.subject, body=TEMPLATE.body)
    assert send(settings, template=text_only).status is DeliveryStatus.SENT
    mail = catcher.wait_for(1)[0].parse()
    assert mail.get_content_type() == "text/plain"
    assert "〒100-0005" in parts_of(mail)["plain"]


def test_a_long_subject_and_a_carrier_address_arrive_intact(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    subject = MessageParts(
        subject="【{{ name|sama }}限定】冬の新茶セットと抹茶スイーツ詰め合わせを"
        "特別価格でご案内 🍵 Winter sale: 20% off",
        body="本文",
    )
    # Japanese mobile carriers long issued local parts with repeated or trailing dots.
    outcome = send(settings, to="hanako..tea.@docomo.ne.jp", template=subject)
    assert outcome.status is DeliveryStatus.SENT, outcome.error
    [arrival] = catcher.wait_for(1)
    assert arrival.rcpt_tos == ("hanako..tea.@docomo.ne.jp",)
    head = arrival.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    at = lines.index(next(line for line in lines if line.startswith("Subject:")))
    for line in lines[at : at + 4]:
        assert len(line) <= 78, line
    assert arrival.parse()["Subject"] == (
        "【山田 花子 様限定】冬の新茶セットと抹茶スイーツ詰め合わせを特別価格でご案内 🍵 "
        "Winter sale: 20% off"
    )


def test_a_retry_has_the_same_message_id(catcher: SmtpCatcher, settings: EmailSettings) -> None:
    first = send(settings, message_id="c1/p1")
    again = send(settings, message_id="c1/p1")
    other = send(settings, message_id="c1/p2")
    assert first.provider_id == again.provider_id != other.provider_id
    ids = [a.parse()["Message-ID"] for a in catcher.wait_for(3)]
    assert ids == [first.provider_id, first.provider_id, other.provider_id]


def _public_record(key: rsa.RSAPrivateKey) -> bytes:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_dkim_signature_verifies_against_the_public_key(
    catcher: SmtpCatcher, key_file: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = EmailSettings.model_validate(
        {
            **catcher.settings(),
            "dkim_selector": "omnicrm2026",
            "dkim_domain": "tokyo-tea.example.jp",
            "dkim_private_key_path": str(key_file),
        }
    )
    assert send(settings).status is DeliveryStatus.SENT
    data = catcher.wait_for(1)[0].data
    assert data.startswith(b"DKIM-Signature:")
    record = _public_record(rsa_key)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record if name == b"omnicrm2026._domainkey.tokyo-tea.example.jp." else b""

    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"omnicrm2026._domainkey.tokyo-tea.example.jp."]
    # RFC 8058: both unsubscribe headers are covered by the signature.
    signature = data.split(b"\r\n\r\n", 1)[0].decode()
    signed = signature.split("h=", 1)[1].split(";", 1)[0].replace("\r\n", "").replace(" ", "")
    names = {name.lower() for name in signed.split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= names
    # An altered message does not verify.
    tampered = data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X-A: b")
    assert not dkim.verify(tampered, dnsfunc=dns)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not dkim.verify(data, dnsfunc=lambda name, timeout=5: _public_record(other))


def test_a_refused_recipient_is_rejected_and_a_deferred_one_failed(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    refused = send(settings, to="bounce@example.jp")
    assert refused.status is DeliveryStatus.REJECTED
    assert refused.error is not None and refused.error.startswith("550 5.1.1")
    assert "RCPT TO bounce@example.jp" in refused.error
    assert refused.bounced  # the address itself: the host suppresses it
    deferred = send(settings, to="defer@example.jp")
    assert deferred.status is DeliveryStatus.FAILED
    assert deferred.error is not None and deferred.error.startswith("451")
    assert not deferred.bounced
    # A refusal that is about the sender or the message is no bounce of the address.
    catcher.refuse_next(reply="554 5.7.1 Relay access denied")
    relay = send(settings)
    assert relay.status is DeliveryStatus.REJECTED and not relay.bounced
    catcher.refuse_next(reply="552 5.2.2 Mailbox full")
    assert not send(settings).bounced
    catcher.refuse_next(reply="550 5.2.1 Mailbox disabled")
    assert send(settings).bounced
    catcher.refuse_next(reply="550 No such user here")  # no enhanced status code
    assert send(settings).bounced
    catcher.refuse_next(reply="554 Transaction failed")
    assert not send(settings).bounced
    catcher.defer_next(reply="452 4.2.2 Mailbox full")
    assert send(settings).status is DeliveryStatus.FAILED
    # None of them arrived; the connection goes on serving the next message.
    assert send(settings).status is DeliveryStatus.SENT
    assert len(catcher.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("not-an-address", "not an email address"),
        ("hanako@example.jp\r\nBcc: all@example.jp", "not an email address"),
        ("\uff48\uff41\uff4e\uff41\uff4b\uff4f@example.jp", "outside ASCII"),  # full-width
    ],
)
def test_a_bad_address_is_rejected_without_sending(
    catcher: SmtpCatcher, settings: EmailSettings, to: str, reason: str
) -> None:
    outcome = send(settings, to=to)
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error is not None and reason in outcome.error
    assert catcher.arrivals == []


def test_a_subject_with_a_line_break_is_rejected(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    message = Message(
        id="m",
        medium=Medium.EMAIL,
        customer_id="c",
        to="hanako@example.jp",
        body="本文",
        subject="件名\nBcc: all@example.jp",
    )
    outcome = load_host(plugin).dispatch("email", message, settings, consents=OPTED_IN)
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error == "message m: the subject has a line break"
    assert catcher.arrivals == []


def test_registered_with_renderer_and_sandbox() -> None:
    spec = load_host(plugin).dispatchers["email"]
    assert spec.medium is Medium.EMAIL and spec.settings is EmailSettings
    assert spec.renderer is not None and spec.sandbox is not None
    with spec.sandbox() as values:
        assert EmailSettings.model_validate(dict(values)).host == "127.0.0.1"
