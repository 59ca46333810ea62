"""One lock per connection, so two runs of the same connection never overlap.

Both kinds are released by the operating system or the server when the holder dies
(even by SIGKILL), so a crashed sync never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from omnicrm.core.store.private import private_dir
from omnicrm.errors import LockedError

_memory_locks: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


def _key64(name: str) -> int:
    digest = hashlib.blake2b(f"omnicrm-sync:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def file_lock(directory: Path, name: str) -> Iterator[None]:
    """An exclusive ``flock`` on a file per connection (SQLite stores)."""
    private_dir(directory)
    path = directory / f"{hashlib.sha1(name.encode()).hexdigest()[:20]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"connection {name!r} is already syncing") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock held on a connection of its own."""
    key = _key64(name)
    with engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        if not got:
            raise LockedError(f"connection {name!r} is already syncing")
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except Exception:
                # The session is gone (the server stopped or dropped it), and its lock
                # with it. Whatever ended the block is the error to report, not this;
                # the connection is discarded, so it never returns to the pool locked.
                conn.invalidate()


@contextmanager
def memory_lock(name: str) -> Iterator[None]:
    """A process-local lock, for in-memory SQLite stores that no other process can see."""
    with _memory_guard:
        lock = _memory_locks.setdefault(name, threading.Lock())
    if not lock.acquire(blocking=False):
        raise LockedError(f"connection {name!r} is already syncing")
    try:
        yield
    finally:
        lock.release()
