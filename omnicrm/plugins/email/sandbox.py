"""A local SMTP catcher: a real SMTP server (aiosmtpd) on loopback that keeps what arrives.

The tests send to it and parse what arrived; ``omnicrm demo`` sends its campaigns to it;
``python -m omnicrm.plugins.email.sandbox`` runs one in the foreground, prints the
settings that reach it and a line per message, and keeps the messages in a Maildir any
mail reader opens (``mutt -f DIR``).

Like a provider's mailbox simulator, some recipients answer for good: ``bounce@...``
(and ``bounce+anything@...``) is refused with 550 5.1.1 at RCPT TO, ``defer@...`` gets
451 4.2.0 every time. :meth:`SmtpCatcher.refuse_next` and :meth:`SmtpCatcher.defer_next`
make the next recipients of any address answer so. STARTTLS, implicit TLS and AUTH
(PLAIN, LOGIN) are there when asked for.
"""

from __future__ import annotations

import argparse
import email
import mailbox
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DEMO_SENDERS: tuple[dict[str, str], ...] = (
    {
        "sender_name": "東京茶舗",
        "sender_address": "info@tokyo-tea.example.jp",
        "postal_address": "〒100-0005 東京都千代田区丸の内1-1-1 茶舗ビル3階",
        "opt_out_contact": "support@tokyo-tea.example.jp / 03-1234-5678",
        "unsubscribe_url": "https://tokyo-tea.example.jp/unsubscribe",
        "unsubscribe_mailto": "unsubscribe@tokyo-tea.example.jp",
    },
    {
        "sender_name": "大阪スイーツ",
        "sender_address": "info@osaka-sweets.example.jp",
        "postal_address": "〒530-0001 大阪府大阪市北区梅田3-1-1 スイーツ館2階",
        "opt_out_contact": "support@osaka-sweets.example.jp / 06-1234-5678",
        "unsubscribe_url": "https://osaka-sweets.example.jp/unsubscribe",
        "unsubscribe_mailto": "unsubscribe@osaka-sweets.example.jp",
    },
)
"""The demo's client shops' sender identities, client 0 first (example.jp is reserved
for examples)."""

DEMO_SENDER = DEMO_SENDERS[0]
"""The first demo shop's sender identity."""


@dataclass(frozen=True)
class Arrival:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float
    tls: bool
    login: str | None

    def parse(self) -> EmailMessage:
        """The message parsed with the standard library (headers decoded)."""
        return email.message_from_bytes(self.data, policy=policy.default)


class SmtpCatcher:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(
        self,
        *,
        port: int = 0,
        maildir: Path | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.arrivals: list[Arrival] = []
        self._maildir = _maildir(maildir) if maildir else None
        self._faults: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._login = login
        kwargs: dict[str, Any] = {"ident": "omnicrm SMTP catcher"}
        if starttls is not None:
            kwargs |= {"tls_context": starttls, "require_starttls": True}
        if login is not None:
            kwargs |= {"authenticator": self._authenticate, "auth_required": True}
            kwargs["auth_require_tls"] = starttls is not None or implicit_tls is not None
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=implicit_tls,
            server_hostname="localhost" if implicit_tls else None,
            **kwargs,
        )

    # -- lifecycle

    def start(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and waiting

    def refuse_next(self, count: int = 1, *, reply: str = "550 5.1.1 Mailbox unavailable") -> None:
        """Answer the next ``count`` RCPT TO commands with ``reply`` (a 5xx)."""
        with self._lock:
            self._faults += [(int(reply[:3]), reply)] * count

    def defer_next(self, count: int = 1, *, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next ``count`` RCPT TO commands with ``reply`` (a 4xx)."""
        self.refuse_next(count, reply=reply)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Arrival]:
        """The arrivals once there are ``count`` of them; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.arrivals)} of {count} messages arrived")
                self._arrived.wait(left)
            return list(self.arrivals)

    def settings(self) -> dict[str, Any]:
        """Email settings that send here (the demo shop's sender identity)."""
        return {"host": self.host, "port": self.port, "tls": "none", **DEMO_SENDER}

    # -- the server's side

    def _recipient_reply(self, address: str) -> str | None:
        local = address.partition("@")[0].lower()
        with self._lock:
            if self._faults:
                return self._faults.pop(0)[1]
        if local == "bounce" or local.startswith("bounce+"):
            return "550 5.1.1 The email account that you tried to reach does not exist"
        if local == "defer" or local.startswith("defer+"):
            return "451 4.2.0 Mailbox temporarily unavailable"
        return None

    def _keep(self, envelope: Envelope, session: Session, *, tls: bool) -> None:
        data = envelope.original_content or b""
        login = session.auth_data if isinstance(session.auth_data, bytes) else None
        arrival = Arrival(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            received_at=time.time(),
            tls=tls,
            login=login.decode() if login else None,
        )
        if self._maildir is not None:
            self._maildir.add(data)
        with self._arrived:
            self.arrivals.append(arrival)
            self._arrived.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if self._login is not None and isinstance(data, LoginPassword):
            user, password = self._login
            if data.login == user.encode() and data.password == password.encode():
                return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.catcher._recipient_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.catcher._keep(envelope, session, tls=tls)
        return "250 2.0.0 OK: queued"


def _maildir(path: Path) -> mailbox.Maildir:
    # mailbox makes the three folders only for a directory that does not exist yet.
    for folder in ("tmp", "new", "cur"):
        (path / folder).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sandbox(*, client: int = 0, keep_in: Path | None = None) -> Iterator[Mapping[str, Any]]:
    """A catcher for as long as the context lasts; its value: settings that reach it,
    with the sender identity of demo client ``client``. With ``keep_in``, every message
    is also kept in that Maildir."""
    if not 0 <= client < len(DEMO_SENDERS):
        raise ValueError(f"the email sandbox has demo senders 0 to {len(DEMO_SENDERS) - 1}")
    with SmtpCatcher(maildir=keep_in) as catcher:
        yield catcher.settings() | DEMO_SENDERS[client]


def main(argv: list[str] | None = None) -> int:
    """Run a catcher until Ctrl-C, printing a line per message."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.email.sandbox")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--maildir", type=Path, help="keep each message in this Maildir")
    args = parser.parse_args(argv)
    catcher = SmtpCatcher(port=args.port, maildir=args.maildir).start()
    print(f"SMTP catcher on {catcher.host}:{catcher.port}; settings that send here:")
    for key, value in catcher.settings().items():
        print(f"  {key} = {value!r}" if isinstance(value, str) else f"  {key} = {value}")
    # Ctrl-C or SIGTERM only set a flag the loop looks at: an interrupt raised wherever
    # the main thread happens to be could leave the catcher's thread behind.
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    seen = 0
    try:
        while not stopping.is_set():
            try:
                arrivals = catcher.wait_for(seen + 1, timeout=0.5)
            except TimeoutError:
                continue
            for arrival in arrivals[seen:]:
                parsed = arrival.parse()
                print(f"{', '.join(arrival.rcpt_tos)}  {parsed['Subject']}", flush=True)
            seen = len(arrivals)
    finally:
        catcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
