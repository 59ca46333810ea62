"""SMTP: TLS both ways, login, kept connections, and what each failure becomes."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from omnicrm import DeliveryStatus, Medium, Message
from omnicrm.plugins.email.compose import compose
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.plugins.email.settings import EmailSettings
from omnicrm.plugins.email.smtp import POOL, Pool


def message(number: int = 0, to: str = "hanako@example.jp") -> Message:
    return Message(
        id=f"m{number}",
        medium=Medium.EMAIL,
        customer_id="c",
        to=to,
        body="ポイントのお知らせです。",
        subject="お知らせ",
    )


def send(settings: EmailSettings, msg: Message, pool: Pool = POOL) -> tuple[DeliveryStatus, str]:
    message_id, raw = compose(msg, settings)
    outcome = pool.send(
        settings, raw, sender=settings.sender_address, to=msg.to, message_id=message_id
    )
    return outcome.status, outcome.error or ""


def test_one_connection_serves_a_batch_and_is_renewed(catcher: SmtpCatcher) -> None:
    settings = EmailSettings.model_validate({**catcher.settings(), "messages_per_connection": 4})
    pool = Pool()
    for number in range(10):
        assert send(settings, message(number), pool)[0] is DeliveryStatus.SENT
    assert pool.opened == 3  # 4 + 4 + 2
    assert len(catcher.wait_for(10)) == 10
    pool.close()


def test_a_connection_closed_while_idle_is_replaced_without_losing_the_message(
    catcher: SmtpCatcher, settings: EmailSettings
) -> None:
    pool = Pool()
    assert send(settings, message(1), pool)[0] is DeliveryStatus.SENT
    # The server drops the idle client (as after its idle timeout).
    for conns in pool._idle.values():
        for conn in conns:
            assert conn.smtp.sock is not None
            conn.smtp.sock.shutdown(socket.SHUT_RDWR)
    assert send(settings, message(2), pool)[0] is DeliveryStatus.SENT
    assert pool.opened == 2
    assert [a.parse()["Subject"] for a in catcher.wait_for(2)] == ["お知らせ", "お知らせ"]
    pool.close()


def test_senders_in_threads_never_share_a_connection(catcher: SmtpCatcher) -> None:
    settings = EmailSettings.model_validate(catcher.settings())
    pool = Pool()
    results: list[DeliveryStatus] = []

    def run(start: int) -> None:
        for number in range(start, start + 25):
            results.append(send(settings, message(number), pool)[0])

    threads = [threading.Thread(target=run, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [DeliveryStatus.SENT] * 100
    assert len({a.parse()["Message-ID"] for a in catcher.wait_for(100)}) == 100
    assert pool.opened <= 4
    pool.close()


def test_a_server_that_is_down_is_a_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SmtpCatcher() as catcher:
        values = {**catcher.settings(), "port": port, "timeout": 2}
    status, error = send(EmailSettings.model_validate(values), message())
    assert status is DeliveryStatus.FAILED
    assert f"cannot connect to 127.0.0.1:{port}" in error


def test_starttls_with_a_self_signed_certificate(
    server_tls: ssl.SSLContext, certificate: tuple[Path, Path]
) -> None:
    with SmtpCatcher(starttls=server_tls, login=("shop", "s3cret-pw")) as catcher:
        values = {
            **catcher.settings(),
            "tls": "starttls",
            "ca_file": str(certificate[0]),
            "username": "shop",
            "password": "s3cret-pw",
        }
        assert send(EmailSettings.model_validate(values), message())[0] is DeliveryStatus.SENT
        [arrival] = catcher.wait_for(1)
        assert arrival.tls and arrival.login == "shop"
        # Without the certificate trusted, nothing is sent.
        untrusted = EmailSettings.model_validate({**values, "ca_file": None})
        status, error = send(untrusted, message(2))
        assert status is DeliveryStatus.FAILED and "CERTIFICATE_VERIFY_FAILED" in error
        # A wrong password is refused, and the error does not repeat it.
        wrong = EmailSettings.model_validate({**values, "password": "not-the-pw"})
        status, error = send(wrong, message(3))
        assert status is DeliveryStatus.FAILED
        assert error.startswith("the SMTP server refused the login (535)")
        assert "not-the-pw" not in error
        assert len(catcher.arrivals) == 1


def test_implicit_tls(server_tls: ssl.SSLContext, certificate: tuple[Path, Path]) -> None:
    with SmtpCatcher(implicit_tls=server_tls) as catcher:
        values = {**catcher.settings(), "tls": "implicit", "ca_file": str(certificate[0])}
        assert send(EmailSettings.model_validate(values), message())[0] is DeliveryStatus.SENT
        assert catcher.wait_for(1)[0].tls


def test_starttls_asked_of_a_server_without_it_fails(catcher: SmtpCatcher) -> None:
    values = {**catcher.settings(), "tls": "starttls"}
    status, error = send(EmailSettings.model_validate(values), message())
    assert status is DeliveryStatus.FAILED
    assert "does not offer STARTTLS" in error
