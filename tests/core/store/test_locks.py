"""Sync locks: one run per connection, released on exit and when the holder dies."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnicrm.core.store import Store
from omnicrm.errors import LockedError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from omnicrm.core.store import Store

    store = Store(sys.argv[1])
    with store.lock(sys.argv[2]):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_a_lock_cannot_be_taken_twice(store: Store) -> None:
    with store.lock("shop"):
        with pytest.raises(LockedError, match="shop"), store.lock("shop"):
            pass
        with store.lock("pos"):  # other connections are independent
            pass


def test_a_lock_is_released_after_its_block(store: Store) -> None:
    with store.lock("shop"):
        pass
    with store.lock("shop"):
        pass
    with pytest.raises(RuntimeError), store.lock("shop"):
        raise RuntimeError("the run failed")
    with store.lock("shop"):
        pass


def test_another_store_on_the_same_database_sees_the_lock(store: Store, store_url: str) -> None:
    other = Store(store_url)
    try:
        with store.lock("shop"), pytest.raises(LockedError), other.lock("shop"):
            pass
        with other.lock("shop"):
            pass
    finally:
        other.close()


def test_an_in_memory_store_locks_within_the_process() -> None:
    store = Store.open("sqlite://")
    try:
        with store.lock("shop"), pytest.raises(LockedError), store.lock("shop"):
            pass
        with store.lock("shop"):
            pass
    finally:
        store.close()


@pytest.fixture
def holder(store: Store, store_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of connection 'shop' of the store."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store_url, "shop"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the holder process did not take the lock in time"
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_a_lock_held_by_another_process_is_freed_when_it_is_killed(
    store: Store, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockedError), store.lock("shop"):
        pass
    with store.lock("pos"):
        pass

    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL

    # The OS drops a flock at once; PostgreSQL ends the dead client's session promptly.
    deadline = time.monotonic() + 20
    while True:
        try:
            with store.lock("shop"):
                break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
