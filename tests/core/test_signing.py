"""The installation's signing secret: made once, private, shared by every process; and
signatures bound to their purpose and parts."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from omnicrm.core import signing
from omnicrm.errors import ConfigError


def test_the_secret_is_made_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    first = signing.installation_secret(folder)
    assert len(first) == signing.MIN_SECRET
    path = folder / signing.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.installation_secret(folder) == first
    assert [p.name for p in folder.iterdir()] == [signing.SECRET_FILE]  # no temporary left


def test_processes_starting_at_once_end_up_with_one_secret(tmp_path: Path) -> None:
    found: list[bytes] = []
    gate = threading.Barrier(8)

    def start() -> None:
        gate.wait()
        found.append(signing.installation_secret(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_a_damaged_secret_file_is_an_error_saying_what_to_do(tmp_path: Path) -> None:
    (tmp_path / signing.SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ConfigError, match="delete it"):
        signing.installation_secret(tmp_path)


def test_a_signature_binds_its_purpose_and_each_part() -> None:
    key = b"k" * 32
    sig = signing.signature(key, "open", "shop", "12")
    assert signing.verify(key, sig, "open", "shop", "12")
    assert not signing.verify(key, sig, "click", "shop", "12")
    assert not signing.verify(key, sig, "open", "shop1", "2")  # the parts' borders count
    assert not signing.verify(key, sig, "open", "shop", "12", "")
    assert not signing.verify(b"j" * 32, sig, "open", "shop", "12")
    assert not signing.verify(key, sig[:-1], "open", "shop", "12")
    assert not signing.verify(key, "é" + sig[1:], "open", "shop", "12")  # not ASCII
    assert len(sig) == 22 and signing.unb64(sig) is not None


def test_a_configured_secret_must_be_long() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        signing.check_secret("short")
    assert signing.check_secret("x" * 32) == b"x" * 32
