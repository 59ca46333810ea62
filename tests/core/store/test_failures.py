"""A failing store: clear errors, no password, no personal data, the real cause recorded."""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from omnicrm import Stream
from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.failures import parse_url
from omnicrm.core.sync import StreamProgress, SyncEngine
from omnicrm.errors import ConfigError, DataError, StoreError
from tests.support import personal_plugin
from tests.support.personal_plugin import PersonalSettings, customer, email, phone

# Every character a URL gives a meaning to, between pieces a test can look for.
PASSWORD = "Qx7@Kd9:Zp3/Wm5%Rt8"
PIECES = ["Qx7", "Kd9", "Zp3", "Wm5", "Rt8"]


def test_a_password_is_taken_as_written_whatever_it_holds() -> None:
    for url in (
        f"postgresql://omnicrm:{PASSWORD}@127.0.0.1:5432/shop",
        "postgresql://omnicrm:Qx7%40Kd9%3AZp3%2FWm5%25Rt8@127.0.0.1:5432/shop",
    ):
        parsed = parse_url(url)
        assert (parsed.username, parsed.password) == ("omnicrm", PASSWORD)
        assert (parsed.host, parsed.port, parsed.database) == ("127.0.0.1", 5432, "shop")
    assert parse_url("sqlite:////tmp/x.db").database == "/tmp/x.db"
    assert parse_url("postgresql://u@h/db?sslmode=require").query == {"sslmode": "require"}


def test_no_piece_of_a_password_is_shown_when_the_store_cannot_be_opened() -> None:
    for url in (
        f"postgresql://omnicrm:{PASSWORD}@127.0.0.1:1/shop",  # nothing listens on port 1
        "postgresql://omnicrm:abc@def@127.0.0.1:1/shop",  # was: "failed to resolve host 'def@..."
    ):
        with pytest.raises(StoreError) as info:
            Store.open(url)
        message = str(info.value)
        assert info.value.opening
        assert "127.0.0.1" in message and "***" in message
        assert not [p for p in [*PIECES, "abc", "def"] if p in message], message
        assert "\n" not in message
    with pytest.raises(ConfigError) as bad:
        Store(f"postgresql//omnicrm:{PASSWORD}@127.0.0.1/shop")  # no colon after the scheme
    assert not [p for p in PIECES if p in str(bad.value)]


def test_a_refused_write_names_the_record_never_its_values(store: Store) -> None:
    c = customer(3, PersonalSettings())
    spoilt = c.model_copy(update={"raw": None})  # NOT NULL: PostgreSQL's DETAIL quotes the row
    with pytest.raises(DataError) as info:
        store.write_batch("shop", Stream.CUSTOMERS, [spoilt])
    assert "P-00003" in str(info.value)
    # Not in the error, nor anywhere in its chain as a traceback prints it.
    printed = "".join(traceback.format_exception(info.value))
    assert email(3) not in printed and phone(3) not in printed


@pytest.fixture
def engine(store: Store) -> SyncEngine:
    host = Host.load(use_entry_points=False, extra={"personal": personal_plugin})
    return SyncEngine(host, store)


def connection(**settings: int) -> Connection:
    return Connection("shop", "personal", PersonalSettings(**settings), batch_size=20)


def test_a_full_disk_fails_the_run_with_the_real_cause_and_no_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'omnicrm.db'}")
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    # The file may grow by a few pages, then the "disk" is full.
    def cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 8}")

    event.listen(store.engine, "connect", cap)
    store.engine.dispose()
    host = Host.load(use_entry_points=False, extra={"personal": personal_plugin})
    caplog.set_level(logging.DEBUG)
    result = SyncEngine(host, store).sync(connection(customers=2000, padding=500))
    [run] = store.runs("shop")
    store.close()
    assert result.status is RunStatus.FAILED and result.read > 0
    assert run.status is RunStatus.FAILED and run.error_kind == "store"
    assert run.error is not None and "full" in run.error and "free disk space" in run.error
    leaks = [v for i in range(2000) for v in (email(i), phone(i))]
    for text_ in (run.error, caplog.text):
        assert not [v for v in leaks if v in text_]


def test_a_run_left_running_is_failed_when_the_store_is_next_opened(store_url: str) -> None:
    store = Store.open(store_url)
    dead = store.start_run("shop", trigger="manual")  # its process died, or lost the store
    alive = store.start_run("pos", trigger="manual")
    held = threading.Event()
    done = threading.Event()

    def hold_the_lock() -> None:
        with store.lock("pos"):
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(10)
        Store.open(store_url).close()
    finally:
        done.set()
        holder.join()
    runs = {r.id: r for r in store.runs()}
    store.close()
    assert runs[dead].status is RunStatus.FAILED
    assert runs[dead].error_kind == "abandoned" and runs[dead].ended_at is not None
    assert runs[alive].status is RunStatus.RUNNING  # its lock is held: it is alive


def test_a_database_gone_mid_sync_records_the_real_cause(pg_url: str) -> None:
    store = Store.open(pg_url)
    with store.engine.begin() as conn:
        conn.execute(text("TRUNCATE sync_runs, customers, sync_state RESTART IDENTITY CASCADE"))
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    stopped = False

    def stop_the_database(update: StreamProgress) -> None:
        # As a server shutdown does: every session of ours ends, the lock's too.
        nonlocal stopped
        if update.written and not stopped:
            stopped = True
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )

    host = Host.load(use_entry_points=False, extra={"personal": personal_plugin})
    try:
        # The failed unlock of the lost session does not hide what ended the run.
        result = SyncEngine(host, store).sync(connection(customers=200), progress=stop_the_database)
        assert result.error_kind == "store" and result.error is not None
        assert "terminating connection" in result.error and "advisory" not in result.error
        [run] = store.runs("shop")
        assert run.status is RunStatus.FAILED and run.error_kind == "store"
        assert run.error is not None and "terminating connection" in run.error
        # The lock went with its session: the next run starts and completes.
        later = SyncEngine(host, store).sync(connection(customers=200))
        assert later.status is RunStatus.COMPLETE
        assert later.run_id == run.id + 1 and store.count(Stream.CUSTOMERS, "shop") == 200
    finally:
        store.close()
        admin.dispose()


def test_a_store_that_cannot_be_written_says_so_when_opened(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(StoreError) as info:
        Store.open(f"sqlite:///{blocked / 'omnicrm.db'}")  # its folder is a file
    assert info.value.opening and str(blocked) in str(info.value)
