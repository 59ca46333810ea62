"""The conformance suite for channel plugins (see ``omnicrm.testing``)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from omnicrm.app.config import load_config
from omnicrm.core._public import public
from omnicrm.core.channels import (
    ChannelType,
    Checkpoint,
    Connection,
    SettingsT,
    Stream,
    StreamContext,
)
from omnicrm.core.host import Host
from omnicrm.core.records import Product, Record
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.streams import stream_kind
from omnicrm.core.sync import SyncEngine
from omnicrm.errors import ConfigError, PluginError


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def stream_context(
    channel: str,
    settings: SettingsT,
    stream: Stream,
    *,
    since: dt.datetime | None = None,
    state: Mapping[str, Any] | None = None,
    connection: str = "test",
    sleep: Callable[[float], None] | None = None,
) -> StreamContext[SettingsT]:
    """A StreamContext as the engine would build it, for calling a stream hook in a test."""
    return StreamContext(
        connection=connection,
        channel=channel,
        stream=stream,
        settings=settings,
        since=since,
        until=dt.datetime.now(dt.UTC),
        state=dict(state or {}),
        full=since is None,
        logger=logging.getLogger(f"omnicrm.channel.{channel}"),
        sleep=sleep or time.sleep,
    )


class ChannelConformance:
    """Subclass in a test module and set ``channel`` (and ``plugin``) to run the suite.

    Each check that concerns a stream runs once for every stream the channel type
    offers, so a failure's test id names it (``test_cursors_ascend[orders]``).
    A channel that reconciles a stream is also checked to report exactly the stored ids
    the platform lacks (``missing_id``, stored beside a full sync's). Override the
    fixtures ``settings`` (valid settings for a connection; by default
    the channel's own sandbox is started) and ``invalid_settings`` (settings its model
    must refuse) where the defaults do not fit.
    """

    channel: ClassVar[str]
    plugin: ClassVar[object | None] = None
    max_records: ClassVar[int] = 2000
    missing_id: ClassVar[str] = "999999937"
    """An id no record of the sandbox has (the reconciliation check stores it)."""

    @classmethod
    def _load_host(cls) -> Host:
        if cls.plugin is None:
            return Host.load()
        return Host.load(use_entry_points=False, extra={f"{cls.channel}-plugin": cls.plugin})

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrise every check that takes ``stream`` with the channel's streams."""
        if "stream" not in metafunc.fixturenames:
            return
        try:
            streams = list(self._load_host().channel_type(self.channel).streams)
        except Exception:
            # Collection goes on with every stream there is: the `host` and `channel_type`
            # fixtures then fail each test with the reason, which an error here would hide.
            streams = list(Stream)
        metafunc.parametrize("stream", streams, ids=[s.value for s in streams])

    @pytest.fixture
    def host(self) -> Host:
        host = self._load_host()
        assert not host.failures, f"plugins failed to load: {host.failures}"
        return host

    @pytest.fixture
    def channel_type(self, host: Host) -> ChannelType:
        return host.channel_type(self.channel)

    @pytest.fixture
    def settings(self, channel_type: ChannelType) -> Iterator[Mapping[str, Any]]:
        if channel_type.sandbox is None:
            pytest.skip(f"{self.channel} has no sandbox: override the `settings` fixture")
        with channel_type.sandbox() as settings:
            yield settings

    @pytest.fixture
    def invalid_settings(self, channel_type: ChannelType) -> Mapping[str, Any]:
        if not any(f.is_required() for f in channel_type.settings.model_fields.values()):
            pytest.skip("every setting has a default: override `invalid_settings`")
        return {}

    @pytest.fixture
    def connection(self, channel_type: ChannelType, settings: Mapping[str, Any]) -> Connection:
        return Connection(
            name="conformance",
            channel=self.channel,
            settings=channel_type.settings.model_validate(dict(settings)),
            lookback=dt.timedelta(0),
            batch_size=100,
        )

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = Store.open(f"sqlite:///{tmp_path / 'conformance.db'}")
        yield store
        store.close()

    def _read(
        self, host: Host, connection: Connection, stream: Stream, since: dt.datetime | None = None
    ) -> list[Record | Checkpoint]:
        ctx = stream_context(
            connection.channel, connection.settings, stream, since=since, connection=connection.name
        )
        return list(itertools.islice(host.open_stream(ctx), self.max_records))

    def _records(
        self, host: Host, connection: Connection, stream: Stream, since: dt.datetime | None = None
    ) -> list[Record]:
        return [
            i for i in self._read(host, connection, stream, since) if not isinstance(i, Checkpoint)
        ]

    def test_streams_are_discoverable(self, host: Host, channel_type: ChannelType) -> None:
        assert channel_type.name == self.channel
        assert issubclass(channel_type.settings, BaseModel)
        assert channel_type.streams, "a channel must offer at least one stream"
        assert set(channel_type.streams) <= set(Stream)

    def test_records_validate(self, host: Host, connection: Connection, stream: Stream) -> None:
        records = self._records(host, connection, stream)
        assert records, f"the {stream} stream of the sandbox yielded no record"
        for record in records:
            assert isinstance(record, stream_kind(stream).record), f"{stream} yielded {record!r}"
            again = type(record).model_validate(record.model_dump())
            assert again == record, f"{record.id} does not survive validation"
            assert record.updated_at.tzinfo is not None
            assert record.raw, f"{record.id} carries no raw payload"
            if isinstance(record, Product):
                # A product sells through its variants: one at least (a product with one
                # price has one), each with an id of its own and no negative price.
                ids = [v.id for v in record.variants]
                assert ids, f"product {record.id} has no variant"
                assert len(ids) == len(set(ids)), f"product {record.id} repeats a variant id"
                assert all(v.price >= 0 for v in record.variants), record.id

    def test_primary_keys_are_unique(
        self, host: Host, connection: Connection, stream: Stream
    ) -> None:
        ids = [r.id for r in self._records(host, connection, stream)]
        duplicates = {i for i in ids if ids.count(i) > 1}
        assert not duplicates, f"{stream} yielded ids more than once: {sorted(duplicates)[:5]}"

    def test_cursors_ascend(self, host: Host, connection: Connection, stream: Stream) -> None:
        stamps = [r.updated_at for r in self._records(host, connection, stream)]
        assert stamps == sorted(stamps), f"{stream} records are not in updated_at order"

    def test_a_read_from_any_point_is_complete(
        self, host: Host, connection: Connection, stream: Stream
    ) -> None:
        """Reading from a cursor in the middle yields every record a full read has there."""
        full = self._records(host, connection, stream)
        if len(full) >= self.max_records:
            pytest.skip(f"{stream} has more than max_records={self.max_records} records")
        assert full, f"the {stream} stream of the sandbox yielded no record"
        since = full[len(full) // 2].updated_at
        tail = self._records(host, connection, stream, since=since)
        seen = {(r.id, r.updated_at) for r in tail}
        missing = [
            r.id
            for r in full
            if r.updated_at >= since
            and (r.id, r.updated_at) not in seen
            and not any(t.id == r.id and t.updated_at > r.updated_at for t in tail)
        ]
        assert not missing, f"{stream} read from {since} skipped {missing[:5]}"

    def test_second_run_resumes_from_bookmark(
        self, host: Host, connection: Connection, store: Store, stream: Stream
    ) -> None:
        engine = SyncEngine(host, store)
        first = engine.sync(connection)
        assert first.status is RunStatus.COMPLETE, first.error
        bookmark = store.stream_state(connection.name, stream).cursor
        assert bookmark is not None, f"no cursor saved for {stream}"
        assert bookmark <= dt.datetime.now(dt.UTC), f"the {stream} cursor is in the future"
        for record in self._records(host, connection, stream, since=bookmark):
            assert record.updated_at >= bookmark, (
                f"{stream} record {record.id} updated at {record.updated_at} is older "
                f"than the bookmark {bookmark}"
            )
        second = engine.sync(connection)
        assert second.status is RunStatus.COMPLETE, second.error
        assert second.streams[stream].read <= first.streams[stream].read, (
            f"the second run read more {stream} than the first"
        )

    def test_reconciliation_finds_only_what_is_gone(
        self,
        host: Host,
        channel_type: ChannelType,
        connection: Connection,
        store: Store,
        stream: Stream,
    ) -> None:
        ctx = stream_context(
            connection.channel, connection.settings, stream, connection=connection.name
        )
        if stream not in channel_type.reconciles:
            # Deletes of this stream are announced: the host never asks the plugin.
            with pytest.raises(PluginError, match="does not reconcile"):
                host.reconcile(ctx, frozenset({self.missing_id}))
            return
        first = SyncEngine(host, store).sync(connection)
        assert first.status is RunStatus.COMPLETE, first.error
        synced = store.record_ids(connection.name, stream)
        assert synced, f"the {stream} stream of the sandbox yielded no record"
        assert self.missing_id not in synced, "set `missing_id` to an id the sandbox lacks"
        gone = host.reconcile(ctx, synced | {self.missing_id})
        assert gone == [self.missing_id], (
            f"reconciling {stream} should find only the id never on the platform, found {gone[:5]}"
        )

    def test_invalid_settings_fail_cleanly(
        self, host: Host, invalid_settings: Mapping[str, Any], tmp_path: Path
    ) -> None:
        path = tmp_path / "omnicrm.toml"
        body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in invalid_settings.items())
        path.write_text(
            f'[connections.bad]\nchannel = "{self.channel}"\n[connections.bad.settings]\n{body}',
            encoding="utf-8",
        )
        settings = {n: ct.settings for n, ct in host.channel_types.items()}
        config = load_config(path, settings)
        assert "bad" in config.invalid, "invalid settings were accepted"
        error = config.invalid["bad"]
        assert isinstance(error, ConfigError)
        assert error.file == path and error.key and error.key.startswith("connections.bad")

    def test_secrets_stay_hidden(
        self,
        host: Host,
        connection: Connection,
        store: Store,
        stream: Stream,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        secrets = [
            v.get_secret_value()
            for v in dict(connection.settings).values()
            if isinstance(v, SecretStr) and v.get_secret_value()
        ]
        caplog.set_level(logging.DEBUG)
        SyncEngine(host, store).sync(connection)
        self._read(host, connection, stream)  # once more alone, as the stream's own logs
        shown = repr(connection.settings) + str(connection.settings) + caplog.text
        for secret in secrets:
            assert secret not in shown, (
                f"a secret setting was shown in a repr or a log (a sync, then a {stream} read)"
            )


public(ChannelConformance, stream_context, module="omnicrm.testing")
