"""One rendered message as the bytes an SMTP server receives: headers, parts, footer, DKIM.

Every message carries what Japan's 特定電子メール法 and the mailbox providers ask of
bulk mail: the sender's name, postal address and an opt-out contact in both parts (the
operator's template cannot leave them out: they are added here), List-Unsubscribe with
an https link and a mailto, List-Unsubscribe-Post for one click (RFC 8058, covered by
the DKIM signature as it requires), and a Message-ID derived from the message's id, so
a retried message is recognisable as the same one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import secrets
import urllib.parse
from email.base64mime import header_encode
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import dkim

from omnicrm import Message
from omnicrm.plugins.email.settings import EmailSettings

ONE_CLICK = "List-Unsubscribe=One-Click"
# What the signature covers: the identity and content headers, and the unsubscribe
# headers (RFC 8058 section 4 requires both to be signed).
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)
CRLF = "\r\n"


def message_id_for(message_id: str, domain: str) -> str:
    """The Message-ID header of the message ``message_id``: the same for every retry."""
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def unsubscribe_links(settings: EmailSettings, token: str) -> tuple[str, str]:
    """The https one-click link and the mailto that unsubscribe ``token``'s recipient."""
    base = settings.unsubscribe_url
    https = f"{base}{'&' if '?' in base else '?'}{urllib.parse.urlencode({'token': token})}"
    subject = urllib.parse.quote(f"unsubscribe {token}")
    return https, f"mailto:{settings.unsubscribe_mailto}?subject={subject}"


def footer_text(settings: EmailSettings, link: str) -> str:
    """The text footer: sender, postal address, opt-out contact, unsubscribe link."""
    return (
        "\n\n――――――――――――――――――――\n"
        f"送信者: {settings.sender_name}\n"
        f"所在地: {settings.postal_address}\n"
        f"配信停止・お問い合わせ: {settings.opt_out_contact}\n"
        f"配信停止はこちら: {link}\n"
    )


def footer_html(settings: EmailSettings, link: str) -> str:
    """The HTML footer: the text footer's lines, escaped."""
    sender = _sender_html(settings.sender_name, settings.postal_address, settings.opt_out_contact)
    return f'{sender}<a href="{html.escape(link)}">配信停止はこちら</a></p>'


@lru_cache(maxsize=64)
def _sender_html(name: str, postal_address: str, contact: str) -> str:
    def line(label: str, value: str) -> str:
        return f"{label}: {html.escape(value).replace(chr(10), '<br>')}<br>"

    return (
        '<hr><p style="font-size:12px;color:#555">'
        + line("送信者", name)
        + line("所在地", postal_address)
        + line("配信停止・お問い合わせ", contact)
    )


# The message is written out here rather than by the standard library's email
# classes: they parse and fold every header through a general machinery that costs more
# per message (5-20 ms) than the SMTP exchange itself, and a campaign sends thousands.
# What is written is parsed back with the standard library in the tests.


def _base64(text: str) -> str:
    """A text part's body: CRLF line ends (RFC 2046's canonical form), base64 in lines
    of 76 (Japanese in quoted-printable is three times its size)."""
    data = text.replace("\r\n", "\n").replace("\n", CRLF).encode("utf-8")
    return base64.encodebytes(data).decode("ascii").replace("\n", CRLF)


def _part_headers(subtype: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", f'text/{subtype}; charset="utf-8"'),
        ("Content-Transfer-Encoding", "base64"),
    ]


# UTF-8 bytes per encoded word: 52 base64 characters, 64 with =?utf-8?b??=, so that
# "Subject: " and the first word stay within RFC 5322's 78 characters a line.
_WORD_BYTES = 39


def _encoded(text: str) -> str:
    """``text`` as a header value: as it is in ASCII, else RFC 2047 encoded words, one a
    line, each holding whole characters (a mail reader decodes each word on its own).
    Written here because the standard library's Header costs a millisecond a subject."""
    if text.isascii():
        return text
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1  # not inside a character: back to where one starts
        words.append(header_encode(data[start:end], "utf-8"))
        start = end
    return f"{CRLF} ".join(words)


@lru_cache(maxsize=64)
def _from(name: str, address: str) -> str:
    """The From header: the shop's name encoded, then its address."""
    return formataddr((name, address), charset="utf-8")


def _with_footer(document: str, footer: str) -> str:
    """``footer`` inserted before ``</body>`` (or appended when there is none)."""
    at = document.lower().rfind("</body>")
    return document + footer if at < 0 else document[:at] + footer + document[at:]


def compose(
    message: Message, settings: EmailSettings, *, now: dt.datetime | None = None
) -> tuple[str, bytes]:
    """The Message-ID and the bytes of ``message``, signed when DKIM is set.

    A ValueError names a header that cannot be written (a line break in the subject).
    """
    if not message.subject:
        raise ValueError("the message has no subject")
    if "\n" in message.subject or "\r" in message.subject:
        raise ValueError("the subject has a line break")
    token = str(message.metadata.get("unsubscribe_token") or message.id)
    link, mailto = unsubscribe_links(settings, token)
    message_id = message_id_for(message.id, settings.sender_domain)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(settings.timezone))

    text = message.body.rstrip("\n") + footer_text(settings, link)
    headers = [
        ("From", _from(settings.sender_name, settings.sender_address)),
        ("To", message.to),
        *([("Reply-To", settings.reply_to)] if settings.reply_to else []),
        ("Subject", _encoded(message.subject)),
        ("Date", format_datetime(moment)),
        ("Message-ID", message_id),
        ("List-Unsubscribe", f"<{link}>,{CRLF} <{mailto}>"),
        ("List-Unsubscribe-Post", ONE_CLICK),
        ("MIME-Version", "1.0"),
    ]
    if message.html is None:
        headers += _part_headers("plain")
        body = _base64(text)
    else:
        page = _with_footer(message.html, footer_html(settings, link))
        # A boundary no base64 line can contain: "=" and "_" lead no base64 line.
        boundary = f"=_omnicrm_{secrets.token_hex(12)}"
        headers.append(("Content-Type", f'multipart/alternative;{CRLF} boundary="{boundary}"'))
        body = "".join(
            f"--{boundary}{CRLF}"
            + "".join(f"{name}: {value}{CRLF}" for name, value in _part_headers(subtype))
            + f"{CRLF}{_base64(content)}"
            for subtype, content in (("plain", text), ("html", page))
        )
        body += f"--{boundary}--{CRLF}"
    head = "".join(f"{name}: {value}{CRLF}" for name, value in headers)
    raw = f"{head}{CRLF}{body}".encode("ascii")
    if settings.dkim_private_key_path is not None:
        raw = sign(raw, settings) + raw
    return message_id, raw


_KEYS: dict[tuple[Path, int], bytes] = {}


def sign(raw: bytes, settings: EmailSettings) -> bytes:
    """The DKIM-Signature header line(s) for ``raw`` with the shop's key."""
    assert settings.dkim_private_key_path is not None
    assert settings.dkim_selector is not None and settings.dkim_domain is not None
    path = settings.dkim_private_key_path
    key = (path, path.stat().st_mtime_ns)
    if key not in _KEYS:  # read once per file version, not once per message
        _KEYS.clear()
        _KEYS[key] = path.read_bytes()
    present = {name.lower() for name in _header_names(raw)}
    signature: bytes = dkim.sign(
        raw,
        settings.dkim_selector.encode("ascii"),
        settings.dkim_domain.encode("ascii"),
        _KEYS[key],
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h for h in SIGNED_HEADERS if h.lower() in present],
    )
    return signature


def _header_names(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in b" \t"]
