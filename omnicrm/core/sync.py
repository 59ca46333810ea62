"""The sync engine: runs a connection's streams into the store, resumable at any point.

A stream yields records in ascending ``updated_at`` order. The engine writes them in
batches; each batch and the cursor it proves (the highest ``updated_at`` written, capped
at the run's start) commit in one transaction. Reads are inclusive (``updated_at >=
cursor - lookback``) and the store skips an (id, updated_at) it already holds, so a crash
at any point followed by a rerun leaves the same store: nothing lost, nothing doubled.

Errors follow the taxonomy in :mod:`omnicrm.errors`: transient ones are retried with
exponential backoff from the last committed checkpoint; others end the run as failed.
A record the store refuses is quarantined (left out, named by id on the run) and the run
goes on. A run interrupted (Ctrl-C, SIGTERM, :meth:`SyncEngine.interrupt`) is recorded
as failed with kind ``interrupted`` before the interruption goes on unwinding. Errors
recorded or logged name records by connection and id, never by their values.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError, StatementError

from omnicrm.core.channels import Checkpoint, Connection, Stream, StreamContext
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store, StreamState
from omnicrm.core.store.failures import cause, is_failure
from omnicrm.core.streams import stream_kind
from omnicrm.errors import (
    AuthError,
    ConfigError,
    DataError,
    PluginError,
    RateLimitedError,
    StoreError,
    SyncError,
    TransientError,
)

log = logging.getLogger("omnicrm.sync")

_LOGGED_NOTES = 10  # per run: the rest are counted, not logged one by one
_KEPT_NOTES = 20  # per stream, on the run


class Interrupted(BaseException):
    """The process was asked to stop (a signal, or :meth:`SyncEngine.interrupt`).

    A BaseException, like KeyboardInterrupt: it unwinds through everything, and each run
    on its way records that it was interrupted.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient errors."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0
    longest_wait: float = 300.0  # a longer Retry-After ends the run; the next one resumes

    def delay(self, attempt: int, error: TransientError) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


@dataclass
class StreamProgress:
    """Counters of one stream in one run, as the progress callback sees them."""

    stream: Stream
    read: int = 0
    written: int = 0
    done: bool = False
    warnings: int = 0  # records the mapping had to change to store them
    quarantined: list[str] = field(default_factory=list)  # ids of records the store refused
    notes: list[str] = field(default_factory=list)  # the first warnings, by id and field

    def as_recorded(self) -> dict[str, Any]:
        """What the run's ``streams`` column keeps of this stream."""
        recorded: dict[str, Any] = {"read": self.read, "written": self.written, "done": self.done}
        if self.warnings or self.quarantined:
            recorded |= {
                "warnings": self.warnings,
                "quarantined": self.quarantined,
                "notes": self.notes,
            }
        return recorded


@dataclass
class SyncResult:
    """How a run ended."""

    run_id: int
    connection: str
    status: RunStatus
    streams: dict[Stream, StreamProgress] = field(default_factory=dict)
    errors: int = 0
    error: str | None = None
    error_kind: str | None = None
    rate_limit_wait: float = 0.0

    @property
    def read(self) -> int:
        return sum(s.read for s in self.streams.values())

    @property
    def written(self) -> int:
        return sum(s.written for s in self.streams.values())


@dataclass
class ReconcileResult(SyncResult):
    """How a reconciliation ended: per stream, ``read`` counts the stored ids checked,
    ``written`` the records deleted, and ``gone`` lists the ids the platform no longer
    has (deleted, unless it was a dry run)."""

    gone: dict[Stream, list[str]] = field(default_factory=dict)


ProgressCallback = Callable[[StreamProgress], None]


def _classify(exc: BaseException) -> tuple[RunStatus, str]:
    if isinstance(exc, RateLimitedError):
        return RunStatus.RATE_LIMITED, "rate_limited"
    if isinstance(exc, TransientError):
        return RunStatus.FAILED, "transient"
    if isinstance(exc, AuthError):
        return RunStatus.FAILED, "auth"
    if isinstance(exc, ConfigError):
        return RunStatus.FAILED, "config"
    if isinstance(exc, StoreError | SQLAlchemyError):
        return RunStatus.FAILED, "store"
    if isinstance(exc, DataError | ValidationError):
        return RunStatus.FAILED, "data"
    if isinstance(exc, PluginError):
        return RunStatus.FAILED, "plugin"
    if isinstance(exc, SyncError):
        return RunStatus.FAILED, "sync"
    return RunStatus.FAILED, "internal"


def _describe(exc: Exception) -> str:
    """The error as recorded: names fields and ids, never the values that failed."""
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        listed = "; ".join(
            f"{'.'.join(str(part) for part in p['loc']) or '(record)'}: {p['msg']}"
            for p in problems[:5]
        )
        return f"ValidationError: {len(problems)} invalid value(s) in a {exc.title}: {listed}"
    if isinstance(exc, StoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _interruption(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return f"interrupted: {exc.reason}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted: SIGINT (Ctrl-C)"
    return f"interrupted: {type(exc).__name__}"


class SyncEngine:
    """Runs syncs of connections into one store."""

    def __init__(
        self,
        host: Host,
        store: Store,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        after_run: Callable[[SyncResult], None] | None = None,
        progress_interval: float = 10.0,
    ) -> None:
        self.host = host
        self.progress_interval = progress_interval
        self.store = store
        self.retry = retry or RetryPolicy()
        self._sleep = sleep  # None: real time, cut short by interrupt()
        # Called once a run is recorded (the CRM refresh); its failure never fails the run.
        self._after_run = after_run
        self._stop = threading.Event()
        self._stop_reason = ""

    def interrupt(self, reason: str) -> None:
        """Stop every run of this engine at its next record or wait; each records itself
        as interrupted (the scheduler's SIGTERM, from any thread)."""
        self._stop_reason = reason
        self._stop.set()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Interrupted(self._stop_reason)

    def _pause(self, seconds: float) -> None:
        if self._sleep is None:
            self._stop.wait(seconds)
        else:
            self._sleep(seconds)
        self._check_stop()

    def sync(
        self,
        connection: Connection,
        *,
        full: bool = False,
        trigger: str = "manual",
        progress: ProgressCallback | None = None,
    ) -> SyncResult:
        """Run every stream of ``connection`` once; record the run; return how it went.

        Raises LockedError if another run of the connection is in progress; every other
        failure is recorded on the run and reported in the result. Logs (``omnicrm.sync``,
        INFO) a line when the run starts, one every ``progress_interval`` while it goes,
        and one when it ends.
        """
        watch = RunLog(connection.name, self.progress_interval)
        try:
            return self._sync(connection, full, trigger, progress, watch)
        finally:
            watch.stop()

    def _sync(
        self,
        connection: Connection,
        full: bool,
        trigger: str,
        progress: ProgressCallback | None,
        watch: RunLog,
    ) -> SyncResult:
        channel = self.host.channel_type(connection.channel)
        try:
            with self.store.lock(connection.name):
                result = self._locked_run(
                    connection, channel.streams, full, trigger, progress, watch
                )
        except SQLAlchemyError as exc:
            # The store failed before the run was recorded: nothing to record it in.
            raise self.store.error(exc) from None
        self._after(result)
        return result

    def _after(self, result: SyncResult) -> None:
        # Not after a failing store: what the run wrote stays queued for the next refresh.
        if self._after_run is None or result.error_kind == "store":
            return
        try:
            self._after_run(result)
        except SQLAlchemyError as exc:
            log.error("%s: after run %d: %s", result.connection, result.run_id, cause(exc))
        except Exception:
            log.exception("%s: after run %d", result.connection, result.run_id)

    def reconcile(
        self, connection: Connection, *, trigger: str = "manual", dry_run: bool = False
    ) -> ReconcileResult:
        """Ask the channel which stored records of each stream it reconciles
        (``ChannelType.reconciles``) the platform no longer has, and delete them.

        Holds the connection's lock like a sync (LockedError if a run holds it) and is
        recorded as a run with trigger ``reconcile``; failures are recorded on it, as a
        sync's are, and a reconciliation that deleted anything is followed by the
        ``after_run`` callback, as a sync is. ``dry_run`` only reports what is gone:
        nothing is deleted or recorded. Transient errors are retried as a stream's are.
        """
        channel = self.host.channel_type(connection.channel)
        if dry_run:
            result = ReconcileResult(0, connection.name, RunStatus.COMPLETE)
            self._reconcile_streams(connection, channel.reconciles, result, dry_run=True)
            return result
        with self.store.lock(connection.name):
            self.store.abandon_running(connection.name)
            run_id = self.store.start_run(connection.name, trigger="reconcile")
            result = ReconcileResult(run_id, connection.name, RunStatus.COMPLETE)
            log.info("%s: reconciliation %d (%s) started", connection.name, run_id, trigger)
            try:
                self._reconcile_streams(connection, channel.reconciles, result, dry_run=False)
            except BaseException as exc:
                self._failed(result, exc)
                self._record_end(result, exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                self._record_end(result, None)
        log.info(
            "%s: reconciliation %d %s: %d record(s) the platform no longer has deleted",
            connection.name,
            run_id,
            result.status.value,
            result.written,
        )
        if result.written:
            self._after(result)  # the CRM forgets what was deleted
        return result

    def _reconcile_streams(
        self,
        connection: Connection,
        streams: Sequence[Stream],
        result: ReconcileResult,
        *,
        dry_run: bool,
    ) -> None:
        started = dt.datetime.now(dt.UTC)
        for stream in streams:
            self._check_stop()
            counters = StreamProgress(stream)
            result.streams[stream] = counters
            stored = self.store.record_ids(connection.name, stream)
            counters.read = len(stored)
            ctx = self._context(connection, stream, None, started, {})
            attempt = 0
            while True:
                try:
                    gone = self.host.reconcile(ctx, stored) if stored else []
                    break
                except TransientError as exc:
                    attempt += 1
                    self._back_off(exc, attempt, result, f"{connection.name}: reconciling {stream}")
                finally:
                    result.rate_limit_wait += ctx.rate_limit_wait
                    ctx.rate_limit_wait = 0.0  # counted; the next attempt counts its own
            result.gone[stream] = gone
            if gone and not dry_run:
                counters.written = self.store.delete_records(connection.name, stream, gone)
                log.warning(
                    "%s: %d %s deleted on the platform without notice, deleted here: %s",
                    connection.name,
                    len(gone),
                    stream,
                    ", ".join(gone[:10]) + (", ..." if len(gone) > 10 else ""),
                )
            counters.done = True

    def _locked_run(
        self,
        connection: Connection,
        streams: Sequence[str],
        full: bool,
        trigger: str,
        progress: ProgressCallback | None,
        watch: RunLog,
    ) -> SyncResult:
        abandoned = self.store.abandon_running(connection.name)
        if abandoned:
            log.warning("%s: marked %d abandoned run(s) as failed", connection.name, abandoned)
        started = dt.datetime.now(dt.UTC)
        run_id = self.store.start_run(connection.name, trigger=trigger, full=full)
        result = SyncResult(run_id, connection.name, RunStatus.COMPLETE)
        watch.started(run_id, trigger, full, result)
        try:
            for stream in streams:
                self._check_stop()
                counters = StreamProgress(Stream(stream))
                result.streams[counters.stream] = counters
                self._run_stream(connection, counters, started, full, result, progress)
        except BaseException as exc:
            self._failed(result, exc)
            self._record_end(result, exc)
            if not isinstance(exc, Exception):
                raise  # recorded; now let the interruption unwind
        else:
            self._record_end(result, None)
        watch.ended(result)
        return result

    def _failed(self, result: SyncResult, exc: BaseException) -> None:
        """Note on ``result`` how ``exc`` ended the run, and log it."""
        result.errors += 1
        result.status = RunStatus.FAILED
        if not isinstance(exc, Exception):
            result.error_kind, result.error = "interrupted", _interruption(exc)
            log.warning("%s: run %d %s", result.connection, result.run_id, result.error)
            return
        if isinstance(exc, SQLAlchemyError):
            exc = self.store.error(exc)
        result.status, result.error_kind = _classify(exc)
        result.error = _describe(exc)
        if result.error_kind == "internal":
            log.exception("%s: run %d crashed", result.connection, result.run_id)
        else:
            log.error(
                "%s: run %d %s: %s",
                result.connection,
                result.run_id,
                result.status.value,
                result.error,
            )

    def _record_end(self, result: SyncResult, ended_by: BaseException | None) -> None:
        """Record how the run ended; if the store cannot take it, raise the real cause."""
        quarantined = [f"{s} {i}" for s, p in result.streams.items() for i in p.quarantined]
        if quarantined and result.error is None:
            result.error_kind = "quarantined"
            shown = ", ".join(quarantined[:5]) + (", ..." if len(quarantined) > 5 else "")
            result.error = f"{len(quarantined)} record(s) the store refused were left out: {shown}"
        try:
            self.store.finish_run(
                result.run_id,
                result.status,
                errors=result.errors,
                error=result.error,
                error_kind=result.error_kind,
                rate_limit_wait=result.rate_limit_wait,
                streams={s.value: p.as_recorded() for s, p in result.streams.items()},
            )
        except Exception as exc:
            failure = self.store.error(exc) if isinstance(exc, SQLAlchemyError) else exc
            log.error(
                "%s: run %d: its end could not be recorded (%s); it is marked failed "
                "when the store is back",
                result.connection,
                result.run_id,
                cause(failure),
            )
            if ended_by is not None and not isinstance(ended_by, Exception):
                return  # the interruption goes on unwinding
            if isinstance(ended_by, StoreError | SQLAlchemyError):
                raise self.store.error(ended_by) from None  # the first failure is the cause
            raise failure from None

    def _run_stream(
        self,
        connection: Connection,
        counters: StreamProgress,
        started: dt.datetime,
        full: bool,
        result: SyncResult,
        progress: ProgressCallback | None,
    ) -> None:
        stream = counters.stream
        # What this run has committed so far; a retry resumes from it.
        resume = [StreamState() if full else self.store.stream_state(connection.name, stream)]
        attempt = 0
        while True:
            cursor = resume[0].cursor
            since = None if cursor is None else cursor - connection.lookback
            ctx = self._context(connection, stream, since, started, resume[0].state)
            try:
                self._consume(connection, ctx, resume, counters, result, progress)
                counters.done = True
                if progress:
                    progress(counters)
                return
            except TransientError as exc:
                attempt += 1
                self._back_off(exc, attempt, result, f"{connection.name}: {stream}")
            finally:
                result.rate_limit_wait += ctx.rate_limit_wait

    def _context(
        self,
        connection: Connection,
        stream: Stream,
        since: dt.datetime | None,
        until: dt.datetime,
        state: Mapping[str, Any],
    ) -> StreamContext[Any]:
        """What a stream or reconciliation hook of ``connection`` is called with."""
        return StreamContext(
            connection=connection.name,
            channel=connection.channel,
            stream=stream,
            settings=connection.settings,
            since=since,
            until=until,
            state=dict(state),
            full=since is None,
            logger=logging.getLogger(f"omnicrm.channel.{connection.channel}"),
            sleep=self._pause,
        )

    def _back_off(self, exc: TransientError, attempt: int, result: SyncResult, where: str) -> None:
        """Wait before retry ``attempt`` after ``exc``, or re-raise it when the attempts
        are spent or the platform asks for a longer wait than the run may take."""
        if attempt >= self.retry.attempts:
            raise exc  # counted once, by the run
        if isinstance(exc, RateLimitedError) and (exc.retry_after or 0) > self.retry.longest_wait:
            raise exc
        result.errors += 1
        delay = self.retry.delay(attempt, exc)
        log.warning(
            "%s: %s; retry %d/%d in %.1fs", where, exc, attempt, self.retry.attempts - 1, delay
        )
        self._pause(delay)
        if isinstance(exc, RateLimitedError):
            result.rate_limit_wait += delay

    def _consume(
        self,
        connection: Connection,
        ctx: StreamContext[Any],
        resume: list[StreamState],
        counters: StreamProgress,
        result: SyncResult,
        progress: ProgressCallback | None,
    ) -> None:
        """Read one stream to its end, committing batches; ``resume[0]`` tracks the last."""
        expected = stream_kind(ctx.stream).record
        batch: list[Any] = []
        cursor = resume[0].cursor
        state: dict[str, Any] = dict(resume[0].state)
        last: dt.datetime | None = None

        def commit() -> None:
            checkpoint = StreamState(cursor, dict(state))
            counters.written += self._write(connection.name, ctx.stream, batch, checkpoint, result)
            counters.read += len(batch)
            batch.clear()
            resume[0] = checkpoint
            if progress:
                progress(counters)

        def advance(to: dt.datetime | None) -> None:
            nonlocal cursor
            if to is None:
                return
            capped = min(to, ctx.until)  # records changed during this run are read again
            if cursor is None or capped > cursor:
                cursor = capped

        items: Iterable[Any] = self.host.open_stream(ctx)
        for item in items:
            self._check_stop()
            if isinstance(item, Checkpoint):
                advance(item.cursor)
                state = dict(item.state)
                commit()
                continue
            if not isinstance(item, expected):
                raise PluginError(
                    f"stream {ctx.stream} of channel {ctx.channel!r} yielded "
                    f"{type(item).__name__}, expected {expected.__name__} or Checkpoint"
                )
            if last is not None and item.updated_at < last:
                raise PluginError(
                    f"stream {ctx.stream} of channel {ctx.channel!r} yielded record "
                    f"{item.id!r} (updated_at {item.updated_at.isoformat()}) after one "
                    f"updated at {last.isoformat()}: records must come in ascending order"
                )
            last = item.updated_at
            item.connection = connection.name
            if item.normalised:
                self._warn(result, counters, item.id, ", ".join(item.normalised))
            batch.append(item)
            if len(batch) >= connection.batch_size:
                # Every record older than `last` has been seen; ties are re-read next time.
                advance(last)
                commit()
        advance(last)
        if batch or resume[0] != StreamState(cursor, state):
            commit()

    def _write(
        self,
        connection: str,
        stream: Stream,
        records: Sequence[Any],
        checkpoint: StreamState | None,
        result: SyncResult,
    ) -> int:
        """Write ``records`` with ``checkpoint``; a record the store refuses is found (by
        halving the batch) and quarantined, and the rest, and the checkpoint, go in."""
        try:
            return self.store.write_batch(
                connection, stream, records, checkpoint, run_id=result.run_id, read=len(records)
            )
        except (DataError, StatementError) as exc:
            if isinstance(exc, StatementError) and is_failure(exc):
                raise
            if len(records) > 1:
                half = len(records) // 2
                written = self._write(connection, stream, records[:half], None, result)
                return written + self._write(connection, stream, records[half:], checkpoint, result)
            written = self.store.write_batch(
                connection, stream, [], checkpoint, run_id=result.run_id, read=len(records)
            )
            if records:
                counters = result.streams[stream]
                counters.quarantined.append(records[0].id)
                result.errors += 1
                self._warn(result, counters, records[0].id, f"quarantined: {cause(exc)}")
            return written

    def _warn(
        self, result: SyncResult, counters: StreamProgress, record_id: str, what: str
    ) -> None:
        """Note a record changed or left out, by id: on the run, and (the first) in the log."""
        counters.warnings += 1
        note = f"{record_id}: {what}"
        if len(counters.notes) < _KEPT_NOTES:
            counters.notes.append(note)
        if sum(p.warnings for p in result.streams.values()) <= _LOGGED_NOTES:
            log.warning("%s: %s %s", result.connection, counters.stream, note)


class RunLog:
    """The log lines of one run: its start, its progress every ``interval`` seconds (from
    a thread, so a long wait on the platform still shows), and its end."""

    def __init__(self, connection: str, interval: float) -> None:
        self.connection = connection
        self.interval = interval
        self._run_id = 0
        self._result: SyncResult | None = None
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def started(self, run_id: int, trigger: str, full: bool, result: SyncResult) -> None:
        self._run_id, self._result, self._began = run_id, result, time.monotonic()
        log.info(
            "%s: run %d started (%s%s)", self.connection, run_id, trigger, ", full" if full else ""
        )
        if log.isEnabledFor(logging.INFO) and self.interval > 0:
            self._thread = threading.Thread(
                target=self._beat, name=f"progress {self.connection}", daemon=True
            )
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            result = self._result
            assert result is not None
            # list(): a snapshot, as the sync adds streams meanwhile.
            streams = list(result.streams.values())
            current = streams[-1].stream.value if streams else "-"
            so_far = ", ".join(f"{p.stream.value} {p.read:,}" for p in streams) or "none yet"
            log.info(
                "%s: run %d going for %s, now %s; read so far: %s",
                self.connection,
                self._run_id,
                _seconds(time.monotonic() - self._began),
                current,
                so_far,
            )

    def ended(self, result: SyncResult) -> None:
        self.stop()
        how = result.status.value + (f" ({result.error_kind})" if result.error_kind else "")
        warned = sum(p.warnings for p in result.streams.values())
        log.info(
            "%s: run %d %s in %s: %s read, %s written, %.1fs waited on rate limits, %d error(s)%s",
            self.connection,
            self._run_id,
            how,
            _seconds(time.monotonic() - self._began),
            f"{result.read:,}",
            f"{result.written:,}",
            result.rate_limit_wait,
            result.errors,
            f", {warned} record(s) normalised" if warned else "",
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None


def _seconds(value: float) -> str:
    """'4.2s', '3m05s'."""
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"
