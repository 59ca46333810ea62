"""The SMTP catcher: what it keeps, and the command that runs it."""

from __future__ import annotations

import mailbox
import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from omnicrm.plugins.email.sandbox import SmtpCatcher

RAW = "From: a@example.jp\r\nTo: b@example.jp\r\nSubject: test\r\n\r\nhello\r\n"


def test_keeps_messages_in_a_maildir(tmp_path: Path) -> None:
    with (
        SmtpCatcher(maildir=tmp_path / "mail") as catcher,
        smtplib.SMTP(catcher.host, catcher.port, local_hostname="example.jp") as client,
    ):
        client.sendmail("a@example.jp", ["b@example.jp"], RAW)
        [arrival] = catcher.wait_for(1)
    assert arrival.rcpt_tos == ("b@example.jp",)
    [kept] = list(mailbox.Maildir(tmp_path / "mail"))
    assert kept["Subject"] == "test"


def test_the_command_prints_settings_and_each_message(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.plugins.email.sandbox", "--maildir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("SMTP catcher on 127.0.0.1:")
        port = int(first.split(":")[1].split(";")[0])
        lines = [process.stdout.readline() for _ in range(8)]
        assert f"  port = {port}\n" in lines
        with smtplib.SMTP("127.0.0.1", port, local_hostname="example.jp") as client:
            client.sendmail("a@example.jp", ["b@example.jp"], RAW)
        deadline = time.monotonic() + 10
        line = ""
        while "test" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        assert line == "b@example.jp  test\n"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0
