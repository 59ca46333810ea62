"""Every command turns a failing store into one line: the store (password hidden), the
cause and what to do; exit 2 when it cannot be opened, 1 when it fails on the way."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnicrm.core.store import RunStatus, Store
from tests.conftest import install_plugin
from tests.support.personal_plugin import email, phone

PASSWORD = "Qx7@Kd9:Zp3/Wm5%Rt8"
PIECES = ["Qx7", "Kd9", "Zp3", "Wm5", "Rt8"]


def omnicrm(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def write_config(path: Path, url: str, settings: str = "customers = 10") -> Path:
    path.write_text(
        f'[store]\nurl = "{url}"\n\n[connections.shop]\nchannel = "personal"\n'
        f"batch_size = 50\n[connections.shop.settings]\n{settings}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def personal_installed(plugin_dir: Path) -> Path:
    install_plugin(plugin_dir, "personal", "tests.support.personal_plugin")
    return plugin_dir


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output
    # A password written in the file is warned about (without the password) on a line of
    # its own before the command runs; the failure itself is one line.
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    [line] = [line for line in lines if not line.startswith("warning: ")]
    for part in expected:
        assert part in line, line
    return line


@pytest.fixture
def password_refusing_server() -> Iterator[int]:
    """A PostgreSQL server that asks for a password and refuses it (the test server
    trusts everyone), speaking the protocol's first messages."""
    listener = socket.create_server(("127.0.0.1", 0))

    def read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    while True:  # SSL and GSS encryption requests: not here
                        (length,) = struct.unpack("!I", read(conn, 4))
                        body = read(conn, length - 4)
                        if struct.unpack("!I", body[:4])[0] not in (80877103, 80877104):
                            break
                        conn.sendall(b"N")
                    conn.sendall(b"R" + struct.pack("!II", 8, 3))  # cleartext password
                    read(conn, 1)
                    (length,) = struct.unpack("!I", read(conn, 4))
                    read(conn, length - 4)
                    fields = (
                        b"SFATAL\0VFATAL\0C28P01\0"
                        b'Mpassword authentication failed for user "omnicrm"\0\0'
                    )
                    conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)
                except (ConnectionError, OSError):
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("command", [["status"], ["sync", "shop"], ["segments"]])
def test_a_wrong_password_is_one_line_exit_2_with_no_password(
    personal_installed: Path, tmp_path: Path, password_refusing_server: int, command: list[str]
) -> None:
    url = f"postgresql://omnicrm:{PASSWORD}@127.0.0.1:{password_refusing_server}/shop"
    config = write_config(tmp_path / "omnicrm.toml", url)
    done = omnicrm(config, *command)
    line = assert_one_line(
        done, 2, "cannot open the store", "password authentication failed", "[store] url"
    )
    assert "omnicrm:***@127.0.0.1" in line
    assert not [p for p in PIECES if p in done.stdout + done.stderr]


@pytest.mark.parametrize(
    ("where", "cause"),
    [("127.0.0.1:1/shop", "refused"), ("127.0.0.1:5432/no_such_database", "does not exist")],
)
def test_an_unreachable_store_is_one_line_exit_2(
    personal_installed: Path, tmp_path: Path, where: str, cause: str
) -> None:
    config = write_config(tmp_path / "omnicrm.toml", f"postgresql://omnicrm:{PASSWORD}@{where}")
    done = omnicrm(config, "sync", "shop")
    assert_one_line(done, 2, "cannot open the store", cause)
    assert not [p for p in PIECES if p in done.stdout + done.stderr]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB file system of its own, so the disk really fills (ENOSPC)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_fails_the_sync_in_one_line_and_records_the_real_cause(
    personal_installed: Path, tmp_path: Path, tiny_disk: Path
) -> None:
    url = f"sqlite:///{tiny_disk / 'omnicrm.db'}"
    config = write_config(tmp_path / "omnicrm.toml", url, "customers = 3000\npadding = 600")
    done = omnicrm(config, "sync", "shop")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "full" in done.stderr
    assert not [v for i in range(3000) for v in (email(i), phone(i)) if v in output]
    store = Store(url)  # reading needs no room
    try:
        [run] = store.runs("shop")
    finally:
        store.close()
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "full" in run.error


def test_a_read_only_store_is_one_line_exit_2(personal_installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    if os.geteuid() == 0:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
            capture_output=True,
        )
        if made.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {made.stderr.decode().strip()}")
    else:
        folder.chmod(0o500)
    try:
        config = write_config(tmp_path / "omnicrm.toml", f"sqlite:///{folder / 'omnicrm.db'}")
        done = omnicrm(config, "status")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)
        else:
            folder.chmod(0o700)
    assert_one_line(done, 2, "cannot open the store", str(folder), "writable")
