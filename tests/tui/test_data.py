"""The UI's reads: the change check, the read-only SQLite connection, next runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import insert, text
from sqlalchemy.exc import OperationalError

from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.core.channels import DEFAULT_SHOP, ChannelType
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import connection_controls
from omnicrm.plugins.shopify import plugin as shopify_plugin
from omnicrm.tui.data import Reader, connection_detail, connection_rows, next_run
from tests.tui.helpers import NOW, seed_run, shopify, synthetic


def test_the_change_check_moves_only_on_a_commit(store: Store) -> None:
    reader = Reader(store)
    try:
        assert reader.changed()  # the first look
        assert not reader.changed()
        connection_rows(reader, Config(None, "", SchedulerSection()), NOW)  # our own reads
        assert not reader.changed()
        store.set_paused("shop", True)
        assert reader.changed()
        assert not reader.changed()
        run_id = store.start_run("shop", trigger="schedule")
        assert reader.changed()
        store.finish_run(run_id, RunStatus.COMPLETE)
        assert reader.changed()
    finally:
        reader.close()


def test_sqlite_is_read_through_a_read_only_connection(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/omnicrm.db")
    reader = Reader(store)
    try:
        with pytest.raises(OperationalError, match="readonly"), reader.engine.begin() as conn:
            conn.execute(
                insert(connection_controls).values(connection="x", paused=True, updated_at=NOW)
            )
        with reader.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sync_runs")).scalar() == 0
    finally:
        reader.close()
        store.close()


def test_rows_and_detail_read_what_the_store_holds(store: Store) -> None:
    seed_run(store, "shop", RunStatus.FAILED, NOW - dt.timedelta(hours=1), 1.0, error="boom")
    seed_run(store, "shop", RunStatus.COMPLETE, NOW - dt.timedelta(minutes=5), 2.0, read=7)
    store.set_paused("shop", True)
    config = Config(
        None,
        "",
        SchedulerSection(),
        connections={"shop": synthetic(every=dt.timedelta(minutes=15))},
        invalid={},
    )
    reader = Reader(store)
    try:
        (row,) = connection_rows(reader, config, NOW)
        assert row.last is not None and row.last.records_read == 7
        assert (row.health, row.paused, row.next_label) == ("complete", True, "paused")
        detail = connection_detail(reader, config, "shop", NOW)
        assert [r.id for r in detail.runs] == [2, 1]
        assert [r.error for r in detail.errors] == ["boom"]
        assert set(detail.streams) == {"customers", "orders"}
        # A scheduled run skipped (paused, or the lock held) is no error and does not
        # hide how the last run that ran ended.
        store.record_run("shop", RunStatus.SKIPPED, trigger="schedule", error="paused")
        (row,) = connection_rows(reader, config, NOW)
        assert row.last is not None and row.last.status is RunStatus.COMPLETE
        detail = connection_detail(reader, config, "shop", NOW)
        assert [r.status for r in detail.runs][:2] == [RunStatus.SKIPPED, RunStatus.COMPLETE]
        assert [r.error for r in detail.errors] == ["boom"]
        assert detail.row.health == "complete"
    finally:
        reader.close()


def test_next_run_of_each_schedule() -> None:
    tz = "Asia/Tokyo"
    last = NOW - dt.timedelta(minutes=20)
    every = synthetic(every=dt.timedelta(minutes=15))
    assert next_run(every, tz, last, NOW) == last + dt.timedelta(minutes=30)
    assert next_run(every, tz, None, NOW) == NOW  # the scheduler starts interval jobs at once
    cron = synthetic(cron="30 9 * * *")  # 09:30 Tokyo = 00:30 UTC, passed at 01:00 UTC
    assert next_run(cron, tz, last, NOW) == dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.UTC)
    assert next_run(synthetic(), tz, last, NOW) is None


class PosSettings(BaseModel):
    """A channel whose settings have no shop: where it points is a store code."""

    store_code: str


class GuessMe(BaseModel):
    """A channel that happens to have a ``shop`` setting but says nothing of it."""

    shop: str


def describe_pos(settings: BaseModel) -> str:
    assert isinstance(settings, PosSettings)
    return f"store {settings.store_code}"


def test_where_a_connection_points_comes_from_its_channel_type(store: Store) -> None:
    pos = ChannelType("pos", PosSettings, describe=describe_pos)
    other = ChannelType("other", GuessMe)
    connections = {
        "shibuya": Connection(name="shibuya", channel="pos", settings=PosSettings(store_code="S1")),
        "web": shopify("web", "tokyo-tea.myshopify.com"),
        "guess": Connection(name="guess", channel="other", settings=GuessMe(shop="not-a-label")),
        "unknown": Connection(name="unknown", channel="gone", settings=GuessMe(shop="x")),
    }
    config = Config(None, "", SchedulerSection(), connections=connections, invalid={})
    channels = {"pos": pos, "other": other, "shopify": shopify_plugin.CHANNEL}
    reader = Reader(store)
    try:
        rows = {row.name: row.where for row in connection_rows(reader, config, NOW, channels)}
        detail = connection_detail(reader, config, "shibuya", NOW, channels=channels)
    finally:
        reader.close()
    assert rows == {
        "shibuya": "store S1",
        "web": "tokyo-tea.myshopify.com",
        "guess": "",  # no label is guessed from the settings: the channel column says "other"
        "unknown": "",
    }
    assert detail.row.where == "store S1"
    assert detail.row.shop == DEFAULT_SHOP  # the omnicrm shop it belongs to: another thing
