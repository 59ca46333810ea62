"""Sending over SMTP, with connections kept open across the messages of a campaign.

The dispatch hook is called once per message, so the plugin keeps the connections
itself: an idle connection per server and credentials is taken by the next message
(one sender thread at a time per connection), renewed after
``messages_per_connection`` messages, closed after :data:`IDLE_TIMEOUT` seconds unused
and at exit. A kept connection the server closed meanwhile is noticed at ``MAIL
FROM``, before anything was handed over, and the message goes over a new one.

What the server answers decides the outcome:

* 2xx to ``DATA``: ``sent``, with the Message-ID as the provider's id;
* 5xx to ``RCPT TO`` or ``DATA``: ``rejected`` (this recipient or this message is
  refused for good: not retried); ``bounced`` as well when the refusal is about the
  address (:func:`omnicrm.is_hard_bounce`: 5.1.x, 5.2.1; or, from a server that gives
  no enhanced status code, a bare 550, 551 or 553 to ``RCPT TO``), so the host
  suppresses it: a refusal of the content (5.7.1 spam) or a full mailbox is not;
* 4xx anywhere, 5xx to ``MAIL FROM`` (the sender's problem, not the recipient's), a
  refused login, a connection lost or a timeout: ``failed`` (may be retried). Lost
  after the message was handed over, it may have been delivered: the error says so,
  and the same Message-ID on a retry lets the recipient's side tell.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field

from omnicrm import DeliveryStatus, DispatchOutcome, is_hard_bounce
from omnicrm.plugins.email.settings import EmailSettings

IDLE_TIMEOUT = 30.0
"""Seconds a kept connection may sit unused (servers drop idle clients after 60-300 s)."""

log = logging.getLogger("omnicrm.plugins.email")

_Key = tuple[str, int, str, str, str, str, float]


@dataclass
class _Connection:
    smtp: smtplib.SMTP
    sent: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Pool:
    """Open SMTP connections by server and credentials, each used by one sender at a time."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.idle_timeout = idle_timeout
        self._idle: dict[_Key, list[_Connection]] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (tests and the benchmark read it)

    @staticmethod
    def _key(settings: EmailSettings) -> _Key:
        secret = settings.password.get_secret_value() if settings.password else ""
        return (
            settings.host,
            settings.smtp_port,
            settings.tls,
            str(settings.ca_file or ""),
            settings.username or "",
            secret,
            settings.timeout,
        )

    def send(
        self, settings: EmailSettings, raw: bytes, *, sender: str, to: str, message_id: str
    ) -> DispatchOutcome:
        """Hand ``raw`` to the server for ``to``; the outcome the answers mean."""
        for attempt in (1, 2):
            try:
                conn, reused = self._take(settings)
            except smtplib.SMTPAuthenticationError as exc:
                return _failed(f"the SMTP server refused the login ({exc.smtp_code})")
            except (smtplib.SMTPException, OSError) as exc:
                where = f"{settings.host}:{settings.smtp_port}"
                return _failed(f"cannot connect to {where} ({settings.tls}): {_describe(exc)}")
            try:
                outcome = _transaction(conn.smtp, raw, sender, to, message_id)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._discard(conn)
                if isinstance(exc, _Stale) and reused and attempt == 1:
                    continue  # closed while idle, before anything was handed over
                return _failed(_describe(exc.__cause__ or exc))
            conn.sent += 1
            if outcome.error and outcome.error.startswith("421"):
                self._discard(conn)  # the server is closing this session
            else:
                self._give(settings, conn)
            return outcome
        raise AssertionError("unreachable")  # pragma: no cover

    def _take(self, settings: EmailSettings) -> tuple[_Connection, bool]:
        key = self._key(settings)
        now = time.monotonic()
        stale: list[_Connection] = []
        conn: _Connection | None = None
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                candidate = idle.pop()
                if now - candidate.last_used > self.idle_timeout:
                    stale.append(candidate)
                else:
                    conn = candidate
                    break
        for old in stale:
            _quit(old.smtp)
        if conn is not None:
            return conn, True
        conn = _Connection(_open(settings))
        with self._lock:
            self.opened += 1
        return conn, False

    def _give(self, settings: EmailSettings, conn: _Connection) -> None:
        if conn.sent >= settings.messages_per_connection:
            _quit(conn.smtp)
            return
        conn.last_used = time.monotonic()
        with self._lock:
            self._idle.setdefault(self._key(settings), []).append(conn)

    def _discard(self, conn: _Connection) -> None:
        with contextlib.suppress(OSError):
            conn.smtp.close()

    def close(self) -> None:
        """Say QUIT on every idle connection."""
        with self._lock:
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
        for conn in idle:
            _quit(conn.smtp)


class _Stale(smtplib.SMTPServerDisconnected):
    """The connection was gone at MAIL FROM: nothing of the message was handed over."""


def _transaction(
    smtp: smtplib.SMTP, raw: bytes, sender: str, to: str, message_id: str
) -> DispatchOutcome:
    # The addresses were checked (parse_address): no need for smtplib's quoting, which
    # parses each address again and costs more than the rest of the exchange's Python.
    try:
        code, reply = smtp.docmd("MAIL", f"FROM:<{sender}>")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _Stale(str(exc)) from exc
    if code != 250:
        _reset(smtp)
        return _failed(f"{code} {_text(reply)} (MAIL FROM {sender}: the sender was refused)")
    code, reply = smtp.docmd("RCPT", f"TO:<{to}>")
    if code not in (250, 251):
        _reset(smtp)
        return _answer(code, reply, f"RCPT TO {to}")
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
        _reset(smtp)
        return _answer(exc.smtp_code, exc.smtp_error, "DATA")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise OSError(
            f"the connection was lost after {message_id} was handed over: it may have "
            f"been delivered ({_describe(exc)})"
        ) from None
    if code != 250:
        return _answer(code, reply, "end of DATA")
    return DispatchOutcome(DeliveryStatus.SENT, provider_id=message_id)


# Without an enhanced status code, what a 5xx to RCPT TO says of the mailbox (RFC 5321
# 4.2.3): 550 unavailable, 551 not local, 553 name not allowed.
_ADDRESS_REPLIES = (550, 551, 553)


def _answer(code: int, reply: bytes | str, stage: str) -> DispatchOutcome:
    text = _text(reply)
    error = f"{code} {text} ({stage})"
    if 500 <= code < 600:
        bounced = is_hard_bounce(text)
        if not bounced and not text[:1].isdigit():  # no enhanced status code
            bounced = stage.startswith("RCPT") and code in _ADDRESS_REPLIES
        return DispatchOutcome(DeliveryStatus.REJECTED, error=error, bounced=bounced)
    return _failed(error)


def _failed(error: str) -> DispatchOutcome:
    return DispatchOutcome(DeliveryStatus.FAILED, error=error)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _context(settings: EmailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=settings.ca_file)
    return context


def _open(settings: EmailSettings) -> smtplib.SMTP:
    # EHLO names the sender's domain: smtplib's default asks DNS for this machine's
    # fully qualified name, which can stall for seconds.
    helo = settings.sender_domain
    port = settings.smtp_port
    smtp: smtplib.SMTP
    if settings.tls == "implicit":
        smtp = smtplib.SMTP_SSL(
            settings.host,
            port,
            local_hostname=helo,
            timeout=settings.timeout,
            context=_context(settings),
        )
    else:
        smtp = smtplib.SMTP(settings.host, port, local_hostname=helo, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.tls == "starttls":
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            smtp.starttls(context=_context(settings))
            smtp.ehlo()
        if settings.username is not None and settings.password is not None:
            smtp.login(settings.username, settings.password.get_secret_value())
    except BaseException:
        smtp.close()
        raise
    log.debug("email: connected to %s:%d (%s)", settings.host, port, settings.tls)
    return smtp


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


POOL = Pool()
atexit.register(POOL.close)
