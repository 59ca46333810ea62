"""One bad value never blocks a connection: the same on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from omnicrm import Stream
from omnicrm.app.config import Connection
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.sync import SyncEngine
from tests.support import personal_plugin
from tests.support.personal_plugin import PersonalSettings, email, phone


@pytest.fixture
def engine(store: Store) -> SyncEngine:
    host = Host.load(use_entry_points=False, extra={"personal": personal_plugin})
    assert not host.failures
    return SyncEngine(host, store)


def connection(**settings: int) -> Connection:
    return Connection("shop", "personal", PersonalSettings(**settings), batch_size=10)


def personal_data(count: int) -> list[str]:
    return [value for i in range(count) for value in (email(i), phone(i))]


def test_odd_values_are_stored_normalised_with_a_warning_on_the_run(
    engine: SyncEngine, store: Store
) -> None:
    result = engine.sync(connection(customers=30, odd_every=7))
    assert result.status is RunStatus.COMPLETE, result.error
    assert store.count(Stream.CUSTOMERS, "shop") == 30
    odd = {c.id: c for c in store.customers("shop")}["P-00007"]
    assert odd.family_name == "佐" * 255
    assert odd.given_name == "花子"
    assert odd.email is None  # a key is dropped, never cut
    assert odd.phone == phone(7)
    assert odd.points is None
    assert odd.raw["note"] == f"電話 {phone(7)} メール {email(7)}"

    [run] = store.runs("shop")
    recorded = run.streams["customers"]
    assert recorded["warnings"] == 5  # 0, 7, 14, 21, 28
    assert recorded["quarantined"] == []
    [note] = [n for n in recorded["notes"] if n.startswith("P-00007:")]
    for change in (
        "family_name: cut to 255 characters",
        "given_name: control characters removed",
        "email: dropped: longer than 320 characters",
        "points: dropped",
        "raw: NUL characters",
    ):
        assert change in note
    assert not [v for v in personal_data(30) if v in str(run.streams)]
    # Nothing is left to trip a later run.
    assert engine.sync(connection(customers=30, odd_every=7)).status is RunStatus.COMPLETE


def test_a_record_the_store_refuses_is_quarantined_by_id_and_the_sync_goes_on(
    engine: SyncEngine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = engine.sync(connection(customers=40, spoil_every=9))
    assert result.status is RunStatus.COMPLETE
    assert store.count(Stream.CUSTOMERS, "shop") == 35
    refused = ["P-00000", "P-00009", "P-00018", "P-00027", "P-00036"]
    assert not {c.id for c in store.customers("shop")} & set(refused)
    # The checkpoint went in with the rest: the next run starts after the last record.
    state = store.stream_state("shop", Stream.CUSTOMERS)
    assert state.cursor == personal_plugin.BASE.replace(second=39)

    [run] = store.runs("shop")
    assert (run.errors, run.error_kind) == (5, "quarantined")
    assert run.error is not None and "P-00009" in run.error
    assert run.streams["customers"]["quarantined"] == refused
    assert run.records_read == 40 and run.records_written == 35
    # Named by id, never by value: no email or phone in the run, the result or the log.
    leaks = personal_data(40)
    for text in (run.error, str(run.streams), result.error or "", caplog.text):
        assert not [v for v in leaks if v in text]
