"""The terminal UI under a live store: change-to-screen latency, refresh time, input lag.

Builds a SQLite store in a temporary directory with 50 synthetic connections (each with
a run history), 100 segments (the 20 built-ins and 80 user ones, each with a count
history), then runs ``OmnicrmApp`` headless (``App.run_test(size=(120, 40))``) while
another process (as the scheduler, ``omnicrm run``, is) writes the store all along:

- a writer on its own ``Store`` keeps a few runs going through the store's real calls
  (``start_run``, ``write_batch`` of real customer records bumping the run's live
  counters, ``finish_run``) and, on the segments phase, appends segment counts with
  ``record_counts``; it sends back when each commit returned (``time.monotonic``);
- a real ``SyncEngine`` full sync of a synthetic connection loops in a thread of that
  process (pages with a delay, so its batches commit all along).

Measured, on the connections screen and then on the segments screen:

1. change to screen: from a commit returning to the table's cell showing it (the
   ``in`` column of the running connection; a segment's ``count``), read by polling the
   DataTable every 5 ms from the Pilot's side (goal: p95 under 1 s). The cell is the
   table's data: the frame showing it is painted on the next refresh after that.
2. time per refresh: the reload the change check starts, timed by wrapping the screen's
   own methods on the instance: on the connections screen from ``_load`` being called
   (the worker start) to the end of the ``Loaded`` handler's table update, with the
   query and the table update apart; on the segments screen from its load worker
   starting its change check (taking ``_checking``) to the end of ``_show`` (check,
   query, hop to the UI thread, table update), with ``_show`` apart (goal: p95 under
   100 ms).
3. input lag: down/up keys sent from a thread while the writes go on, as the terminal
   driver sends them (``App.simulate_key``, a thread-safe ``post_message``; the Pilot's
   ``press`` waits for the screen to be idle, seconds under constant updates, so it
   cannot time one key); from the send to the table's ``cursor_coordinate`` changing
   (a watcher notes it), max and p95. The event loop's stalls are measured too (a 10 ms
   heartbeat's oversleep): a key arriving during one waits that long. Goal: no key and
   no stall above 100 ms. Garbage collections are timed (``gc.callbacks``) because
   they are what stalls it; ``--stacks`` prints where the UI thread was in each stall.

    .venv/bin/python benchmarks/tui.py                   # ~65 s
    .venv/bin/python benchmarks/tui.py --seconds 20 --keys 30    # a quick look
    .venv/bin/python benchmarks/tui.py --connections 100 --segments 200 --stacks

Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import itertools
import multiprocessing
import os
import queue
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import textual
from sqlalchemy import insert
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.worker import NoActiveWorker, Worker, get_current_worker

from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.host import Host
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import sync_runs
from omnicrm.crm.segments import (
    BUILTIN_SEGMENTS,
    define,
    ensure_builtin,
    list_segments,
    record_counts,
)
from omnicrm.errors import LockedError
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConnectionsScreen
from omnicrm.tui.segments import SegmentsScreen
from tests import synthetic_plugin
from tests.synthetic_plugin import SyntheticSettings

SHOW_GOAL = 1.0  # p95, seconds from a commit to the table showing it
REFRESH_GOAL = 0.100  # p95, seconds per refresh
INPUT_GOAL = 0.100  # max, seconds from a key press to the cursor moving
SIZE = (120, 40)
POLL = 0.005  # how often the Pilot side reads the table


def _load() -> str:
    """The machine's load: figures taken under load are not comparable with idle ones."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _number(cell: object) -> int:
    digits = str(cell).replace(",", "").strip()
    return int(digits) if digits.isdigit() else -1


# -- the store ---------------------------------------------------------------------------


def _connection(name: str, **settings: Any) -> Connection:
    return Connection(
        name=name,
        channel="synthetic",
        settings=SyntheticSettings(**settings),
        every=dt.timedelta(hours=1),
        lookback=dt.timedelta(minutes=5),
        batch_size=100,
    )


def seed(store: Store, names: list[str], runs: int, segments: int, points: int) -> list[str]:
    """Run history for every connection; ``segments`` segments with ``points`` counts each.
    Returns the segment names."""
    now = dt.datetime.now(dt.UTC)
    statuses = [RunStatus.COMPLETE] * 8 + [RunStatus.FAILED, RunStatus.RATE_LIMITED]
    rows = []
    for k in range(runs, 0, -1):
        for i, name in enumerate(names):
            started = now - dt.timedelta(hours=k, minutes=i)
            status = statuses[(k + i) % len(statuses)]
            rows.append(
                {
                    "connection": name,
                    "trigger": "schedule",
                    "full": False,
                    "status": status.value,
                    "started_at": started,
                    "ended_at": started + dt.timedelta(seconds=30 + i),
                    "records_read": 100 * k + i,
                    "records_written": 10 * k,
                    "errors": 0 if status is RunStatus.COMPLETE else 1,
                    "error": None if status is RunStatus.COMPLETE else f"{status.value} at page 3",
                    "error_kind": None if status is RunStatus.COMPLETE else status.value,
                    "rate_limit_wait": 2.0 if status is RunStatus.RATE_LIMITED else 0.0,
                    "streams": {},
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(sync_runs), rows)
        ensure_builtin(conn, now, shop=DEFAULT_SHOP)
        for i in range(max(0, segments - len(BUILTIN_SEGMENTS))):
            expression = BUILTIN_SEGMENTS[i % len(BUILTIN_SEGMENTS)].expression
            define(
                conn,
                f"user-{i:03d}",
                expression,
                description=f"bench {i}",
                now=now,
                shop=DEFAULT_SHOP,
            )
        names_ = [s.name for s in list_segments(conn, shop=DEFAULT_SHOP)][:segments]
        for p in range(points):
            at = now - dt.timedelta(hours=points - p)
            record_counts(
                conn, {n: 1000 + 7 * j + p for j, n in enumerate(names_)}, at, shop=DEFAULT_SHOP
            )
    return names_


@dataclass
class Sample:
    key: str  # connection or segment
    value: int
    committed: float  # time.monotonic(): the same clock in every process
    seen: float | None = None


@dataclass
class Background:
    """What the background process (the scheduler's stand-in) needs and shares."""

    url: str
    live: list[str]
    interval: float
    batch: int
    run_batches: int
    segments: list[str]
    engine: Connection | None
    connections: list[Connection]
    stop: Any  # multiprocessing.Event
    track: Any  # multiprocessing.Value("b"): note batch commits as samples
    count_every: Any  # multiprocessing.Value("d"): seconds between segment counts; 0: none
    out: Any  # multiprocessing.Queue of ("run"|"count", key, value, committed) and reports


def background(job: Background) -> None:
    """Another process, as ``omnicrm run`` is: a writer on its own ``Store`` and (unless
    ``job.engine`` is None) a real ``SyncEngine`` looping full syncs in a thread."""
    host = Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})
    runtime = Runtime(
        host,
        Config(
            path=None,
            store_url=job.url,
            scheduler=SchedulerSection(),
            connections={c.name: c for c in job.connections},
            crm=CrmSection(refresh_after_sync=False),
        ),
    )
    stopped = threading.Event()
    problems: list[str] = []
    runs_before = len(runtime.store.runs(job.engine.name, limit=1_000_000)) if job.engine else 0
    engine = None
    if job.engine is not None:
        engine = threading.Thread(
            target=lambda: problems.extend(engine_loop(runtime, job.engine, stopped)),  # type: ignore[arg-type]
            daemon=True,
        )
        engine.start()
    commits = 0
    try:
        commits = write(job)
    except BaseException as exc:
        problems.append(f"writer: {type(exc).__name__}: {exc}")
    finally:
        stopped.set()
        if engine is not None:
            engine.join(timeout=30)
        engine_runs = (
            len(runtime.store.runs(job.engine.name, limit=1_000_000)) - runs_before
            if job.engine
            else 0
        )
        runtime.close()
        job.out.put(("done", commits, engine_runs, problems))


def write(job: Background) -> int:
    """Batches into a few live runs through the store's real calls; segment counts when
    asked. Returns how many transactions committed."""
    store = Store.open(job.url)
    commits = 0
    try:
        runs = {name: store.start_run(name, trigger="schedule") for name in job.live}
        read = dict.fromkeys(job.live, 0)
        batches = dict.fromkeys(job.live, 0)
        generation = dict.fromkeys(job.live, 0)
        last_sample = dict.fromkeys(job.live, 0.0)
        size = job.batch * job.run_batches
        records = {
            name: synthetic_plugin.customers(size, i + 1, 0) for i, name in enumerate(job.live)
        }
        next_count = 0.0
        step = 0
        for name in itertools.cycle(job.live):
            if job.stop.is_set():
                break
            if batches[name] >= job.run_batches:
                # Its counter restarts with the next run: not while the UI may not have
                # shown the last sample yet (a late one counts as late, not as lost).
                if time.monotonic() - last_sample[name] < 3.0:
                    job.stop.wait(job.interval)
                    continue
                store.finish_run(runs[name], RunStatus.COMPLETE)
                runs[name] = store.start_run(name, trigger="schedule")
                read[name] = batches[name] = 0
                generation[name] += 1
                seed_no = job.live.index(name) + 1
                records[name] = synthetic_plugin.customers(size, seed_no, generation[name])
                commits += 2
            chunk = records[name][batches[name] * job.batch : (batches[name] + 1) * job.batch]
            store.write_batch(name, Stream.CUSTOMERS, chunk, run_id=runs[name], read=len(chunk))
            committed = time.monotonic()
            read[name] += len(chunk)
            batches[name] += 1
            commits += 1
            if job.track.value:
                last_sample[name] = committed
                job.out.put(("run", name, read[name], committed))
            every = job.count_every.value
            if every and time.monotonic() >= next_count:
                step += 1
                counts = {n: 5000 + 7 * j + step for j, n in enumerate(job.segments)}
                with store.engine.begin() as conn:
                    record_counts(conn, counts, dt.datetime.now(dt.UTC), shop=DEFAULT_SHOP)
                committed = time.monotonic()
                commits += 1
                for j in range(0, len(job.segments), max(1, len(job.segments) // 5)):
                    segment = job.segments[j]
                    job.out.put(("count", segment, counts[segment], committed))
                next_count = committed + every
            job.stop.wait(job.interval)
        for run_id in runs.values():
            store.finish_run(run_id, RunStatus.COMPLETE)
        return commits
    finally:
        store.close()


def engine_loop(runtime: Runtime, connection: Connection, stop: threading.Event) -> list[str]:
    """Full syncs of ``connection`` one after another until ``stop``; returns problems."""
    problems: list[str] = []
    while not stop.is_set():
        try:
            runtime.engine().sync(connection, full=True, trigger="schedule")
        except LockedError:
            stop.wait(0.1)
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
            stop.wait(0.5)
    return problems


@dataclass
class Inbox:
    """The samples the background process sent, sorted by table."""

    queue: Any
    runs: list[Sample] = field(default_factory=list)
    counts: list[Sample] = field(default_factory=list)
    done: tuple[Any, ...] | None = None

    def drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item[0] == "done":
                self.done = item
            else:
                kind, key, value, committed = item
                (self.runs if kind == "run" else self.counts).append(Sample(key, value, committed))


# -- hooks on the app's own methods --------------------------------------------------------


@dataclass
class Refreshes:
    total: list[float] = field(default_factory=list)
    query: list[float] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    cancelled: int = 0


def hook_connections(screen: ConnectionsScreen) -> Refreshes:
    """Time each reload of the connections screen: ``_load`` called (a worker starts),
    its ``Loaded`` message posted (the query done), the handler's table update done."""
    found = Refreshes()
    started: dict[Worker[Any], float] = {}
    stamps: dict[int, tuple[float, float]] = {}
    load = screen._load
    post = screen.post_message
    on_message = screen._on_message

    def timed_load() -> object:
        begun = time.perf_counter()
        worker = load()
        if isinstance(worker, Worker):
            started[worker] = begun
        return worker

    def timed_post(message: Message) -> bool:
        if isinstance(message, ConnectionsScreen.Loaded):
            try:
                begun = started.pop(get_current_worker(), None)
            except NoActiveWorker:
                begun = None
            if begun is not None:
                stamps[id(message)] = (begun, time.perf_counter())
        return post(message)

    async def timed_on_message(message: Message) -> None:
        if not isinstance(message, ConnectionsScreen.Loaded):
            await on_message(message)
            return
        handled = time.perf_counter()
        await on_message(message)
        done = time.perf_counter()
        stamp = stamps.pop(id(message), None)
        if stamp is not None:
            begun, queried = stamp
            found.total.append(done - begun)
            found.query.append(queried - begun)
            found.update.append(done - handled)

    setattr(screen, "_load", timed_load)  # noqa: B010 (instance attributes, on purpose)
    setattr(screen, "post_message", timed_post)  # noqa: B010
    setattr(screen, "_on_message", timed_on_message)  # noqa: B010
    return found


class _TimedLock:
    """The segments screen's check lock, noting when each check takes it (the worker
    starting its change check, as the watch worker waking did before)."""

    def __init__(self, took: list[float]) -> None:
        self._lock = threading.Lock()
        self.took = took

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.took.append(time.perf_counter())
        return got

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def hook_segments(screen: SegmentsScreen) -> Refreshes:
    """Time each reload of the segments screen: from its load worker taking the check
    lock (the change check starts) to the end of ``_show`` (the table update on the UI
    thread)."""
    found = Refreshes()
    took: list[float] = []
    show = screen._show
    with screen._checking:  # swapped between checks, never under one
        setattr(screen, "_checking", _TimedLock(took))  # noqa: B010

    def timed_show(*args: Any) -> None:
        begun = time.perf_counter()
        show(*args)
        done = time.perf_counter()
        found.update.append(done - begun)
        if took:
            found.total.append(done - took[-1])
            found.query.append(begun - took[-1])

    setattr(screen, "_show", timed_show)  # noqa: B010
    return found


# -- driving the app -------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    shown: list[float] = field(default_factory=list)
    unseen: int = 0
    refresh: Refreshes = field(default_factory=Refreshes)
    keys: list[float] = field(default_factory=list)
    keys_missed: int = 0
    moved_at: float = 0.0
    stacks: list[str] = field(default_factory=list)
    collections: Collections = field(default_factory=lambda: Collections())
    stalls: list[float] = field(default_factory=list)


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def watch_samples(
    samples: Callable[[], list[Sample]],
    cell: Callable[[str], object],
    stop: asyncio.Event,
) -> None:
    """Note when the table first shows each sample's value (or a later one)."""
    checked = 0
    while not stop.is_set():
        current = samples()
        now = time.monotonic()
        for sample in current[checked:]:
            if sample.seen is not None:
                continue
            try:
                value = _number(cell(sample.key))
            except Exception:  # a row not there yet
                continue
            if value >= sample.value:
                sample.seen = now
        while checked < len(current) and current[checked].seen is not None:
            checked += 1
        await asyncio.sleep(POLL)


@dataclass
class Collections:
    """Garbage collections (any thread's: each holds the GIL, so it stalls the UI too)."""

    durations: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    _began: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.durations[info["generation"]].append(time.perf_counter() - self._began)


@dataclass
class Beat:
    """The heartbeat's last tick, and (with --stacks) where the loop was when it stalled."""

    last: float = field(default_factory=time.perf_counter)
    stacks: list[str] = field(default_factory=list)
    collections: Collections = field(default_factory=lambda: Collections())


async def heartbeat(stalls: list[float], stop: asyncio.Event, beat: Beat) -> None:
    """The event loop's stalls: how late a 10 ms sleep wakes up."""
    while not stop.is_set():
        begun = beat.last = time.perf_counter()
        await asyncio.sleep(0.010)
        stalls.append(time.perf_counter() - begun - 0.010)
    beat.last = float("inf")


def stall_watch(beat: Beat, loop_thread: int, stop: threading.Event) -> None:
    """Note the UI thread's stack whenever the heartbeat is over 100 ms late."""
    noted = 0.0
    while not stop.wait(0.02):
        last = beat.last
        if time.perf_counter() - last > 0.010 + INPUT_GOAL and last != noted:
            noted = last
            frame = sys._current_frames().get(loop_thread)
            if frame is not None:
                stack = traceback.format_stack(frame)
                beat.stacks.append("".join(stack[-12:]))


def send_keys(
    app: OmnicrmApp, phase: Phase, count: int, spacing: float, moved: threading.Event
) -> None:
    """From a thread, as the terminal driver does: send down/up (ten each way, so the
    cursor stays in the rows) and time each until the cursor has moved."""
    for i in range(count):
        key = "down" if (i // 10) % 2 == 0 else "up"
        moved.clear()
        pressed = time.perf_counter()
        app.simulate_key(key)  # post_message: thread-safe, what a key from the driver is
        if moved.wait(2.0):
            phase.keys.append(phase.moved_at - pressed)
        else:
            phase.keys_missed += 1
        time.sleep(spacing)


async def press_keys(
    pilot: Pilot[None], table: DataTable[Any], phase: Phase, count: int, spacing: float
) -> None:
    """Send the keys from a thread while the app (and this loop) go on."""
    moved = threading.Event()

    def note(_old: object, _new: object) -> None:
        phase.moved_at = time.perf_counter()
        moved.set()

    pilot.app.screen.watch(table, "cursor_coordinate", note, init=False)
    table.focus()
    await pilot.pause()
    app = pilot.app
    assert isinstance(app, OmnicrmApp)
    await asyncio.to_thread(send_keys, app, phase, count, spacing, moved)


async def run_phase(
    pilot: Pilot[None],
    phase: Phase,
    table: DataTable[Any],
    samples: Callable[[], list[Sample]],
    cell: Callable[[str], object],
    seconds: float,
    keys: int,
    stop_sampling: Callable[[], None],
    stacks: bool,
) -> None:
    stop = asyncio.Event()
    beat = Beat()
    tasks = [
        asyncio.create_task(watch_samples(samples, cell, stop)),
        asyncio.create_task(heartbeat(phase.stalls, stop, beat)),
    ]
    stop_watch = threading.Event()
    collections = Collections()
    gc.callbacks.append(collections)
    if stacks:
        watcher = threading.Thread(
            target=stall_watch, args=(beat, threading.get_ident(), stop_watch), daemon=True
        )
        watcher.start()
    begun = time.perf_counter()
    await press_keys(pilot, table, phase, keys, spacing=max(0.01, seconds / max(1, keys) - 0.01))
    left = seconds - (time.perf_counter() - begun)
    if left > 0:
        await asyncio.sleep(left)
    # No more samples; let the last ones show up (or not) before counting them.
    stop_sampling()
    last = time.perf_counter()
    while any(s.seen is None for s in samples()) and time.perf_counter() - last < 3.0:
        await asyncio.sleep(0.05)
    stop.set()
    stop_watch.set()
    await asyncio.gather(*tasks)
    phase.stacks = beat.stacks
    gc.callbacks.remove(collections)
    phase.collections = collections
    for sample in samples():
        if sample.seen is None:
            phase.unseen += 1
        else:
            phase.shown.append(sample.seen - sample.committed)


async def drive(args: argparse.Namespace, runtime: Runtime, job: Background) -> list[Phase]:
    app = OmnicrmApp(runtime)
    phases: list[Phase] = []
    inbox = Inbox(job.out)

    def runs() -> list[Sample]:
        inbox.drain()
        return inbox.runs

    def counts() -> list[Sample]:
        inbox.drain()
        return inbox.counts

    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ConnectionsScreen), screen
        table: DataTable[Any] = screen.query_one("#connections", DataTable)
        await wait_for(lambda: table.row_count == args.connections, "the connections")
        if args.gc_freeze:
            gc.collect()
            gc.freeze()  # what the app could do once started: see the README
        connections = Phase("connections")
        connections.refresh = hook_connections(screen)
        job.track.value = 1
        await run_phase(
            pilot,
            connections,
            table,
            runs,
            lambda name: table.get_cell(name, "records"),
            args.seconds / 2,
            args.keys,
            lambda: setattr(job.track, "value", 0),
            args.stacks,
        )
        phases.append(connections)

        await pilot.press("g")
        segments_screen = app.screen
        assert isinstance(segments_screen, SegmentsScreen), segments_screen
        await wait_for(lambda: segments_screen.loads >= 1, "the segments")
        seg_table: DataTable[Any] = segments_screen.query_one("#segments", DataTable)
        segments = Phase("segments")
        segments.refresh = hook_segments(segments_screen)
        job.count_every.value = args.count_every
        await run_phase(
            pilot,
            segments,
            seg_table,
            counts,
            lambda name: seg_table.get_cell(name, "count"),
            args.seconds / 2,
            args.keys,
            lambda: setattr(job.count_every, "value", 0.0),
            args.stacks,
        )
        phases.append(segments)
    return phases


# -- report -------------------------------------------------------------------------------


def _dist(values: Sequence[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {_ms(statistics.median(values))}, p95 {_ms(_pct(values, 0.95))}, "
        f"max {_ms(max(values))} ({len(values)} samples)"
    )


def report(phase: Phase) -> bool:
    ok = True
    print(f"\n{phase.name} screen")
    print(f"  change to screen: {_dist(phase.shown)}", end="")
    print(f", {phase.unseen} never shown" if phase.unseen else "")
    if not phase.shown or phase.unseen or _pct(phase.shown, 0.95) >= SHOW_GOAL:
        print(f"    MISSED: goal p95 < {SHOW_GOAL:.0f} s, every change shown")
        ok = False
    refresh = phase.refresh
    print(f"  refresh, total:   {_dist(refresh.total)}")
    print(f"    query (+hop):   {_dist(refresh.query)}")
    print(f"    table update:   {_dist(refresh.update)}")
    if not refresh.total or _pct(refresh.total, 0.95) >= REFRESH_GOAL:
        print(f"    MISSED: goal p95 < {_ms(REFRESH_GOAL)}")
        ok = False
    print(f"  input lag:        {_dist(phase.keys)}", end="")
    print(f", {phase.keys_missed} keys did not move the cursor" if phase.keys_missed else "")
    if not phase.keys or phase.keys_missed or max(phase.keys) > INPUT_GOAL:
        print(f"    MISSED: goal no key above {_ms(INPUT_GOAL)}")
        ok = False
    stalls = phase.stalls
    if stalls:
        print(
            f"  event loop stalls: p99 {_ms(_pct(stalls, 0.99))}, max {_ms(max(stalls))}"
            f", {sum(x > INPUT_GOAL for x in stalls)} above {_ms(INPUT_GOAL)}"
            f" ({len(stalls)} heartbeats of 10 ms)"
        )
        if max(stalls) > INPUT_GOAL:
            print(f"    MISSED: goal no stall above {_ms(INPUT_GOAL)} (a key then waits)")
            ok = False
    gcs = phase.collections.durations
    print(f"  objects the collector tracks at the end: {len(gc.get_objects()):,}")
    print(
        "  garbage collections: "
        + ", ".join(
            f"gen{g} {len(d)} (max {_ms(max(d)) if d else '-'})" for g, d in sorted(gcs.items())
        )
    )
    if phase.stacks:
        print(f"  where the UI thread was in {len(phase.stacks)} stalls over {_ms(INPUT_GOAL)}:")
        for stack in phase.stacks:
            print("    ---\n" + "\n".join("    " + line for line in stack.splitlines()))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200, help="run history per connection")
    parser.add_argument("--points", type=int, default=30, help="count history per segment")
    parser.add_argument("--seconds", type=float, default=60.0, help="both phases together")
    parser.add_argument("--keys", type=int, default=100, help="key presses per phase")
    parser.add_argument("--live", type=int, default=4, help="runs the writer keeps going")
    parser.add_argument("--interval", type=float, default=0.05, help="between commits, s")
    parser.add_argument("--batch", type=int, default=50, help="records per batch")
    parser.add_argument("--run-batches", type=int, default=100, help="batches per run")
    parser.add_argument("--count-every", type=float, default=1.0, help="segment counts, s")
    parser.add_argument(
        "--no-engine", action="store_true", help="no real SyncEngine run in the background"
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the app has started (not what the app does: a what-if)",
    )
    parser.add_argument(
        "--stacks", action="store_true", help="print where the UI thread was in each stall"
    )
    args = parser.parse_args(argv)
    print(
        f"TUI benchmark: {args.connections} connections, {args.segments} segments,"
        f" Python {sys.version.split()[0]}, Textual {textual.__version__},"
        f" SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load average {_load()}",
        flush=True,
    )
    host = Host.load(use_entry_points=False, extra={"synthetic": synthetic_plugin})
    with tempfile.TemporaryDirectory(prefix="omnicrm-tui-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'omnicrm.db'}"
        names = [f"shop-{i:03d}" for i in range(args.connections)]
        connections = [_connection(name) for name in names]
        engine_connection = _connection(
            names[-1], customers=3000, orders=3000, page_size=100, page_delay=0.02
        )
        connections[-1] = engine_connection
        store = Store.open(url)
        began = time.perf_counter()
        segment_names = seed(store, names, args.runs, args.segments, args.points)
        store.close()
        print(
            f"seeded {args.connections * args.runs:,} runs and {len(segment_names)} segments"
            f" x {args.points} counts in {time.perf_counter() - began:.1f} s",
            flush=True,
        )

        def runtime() -> Runtime:
            return Runtime(
                host,
                Config(
                    path=None,
                    store_url=url,
                    scheduler=SchedulerSection(),
                    connections={c.name: c for c in connections},
                    crm=CrmSection(refresh_after_sync=False),
                ),
            )

        ui = runtime()
        spawn = multiprocessing.get_context("spawn")
        job = Background(
            url=url,
            live=names[: args.live],
            interval=args.interval,
            batch=args.batch,
            run_batches=args.run_batches,
            segments=segment_names,
            engine=None if args.no_engine else engine_connection,
            connections=connections,
            stop=spawn.Event(),
            track=spawn.Value("b", 0),
            count_every=spawn.Value("d", 0.0),
            out=spawn.Queue(),
        )
        process = spawn.Process(target=background, args=(job,), name="omnicrm-bench-writer")
        process.start()
        try:
            phases = asyncio.run(drive(args, ui, job))
        finally:
            job.stop.set()
            ui.close()
        done: tuple[Any, ...] | None = None
        deadline = time.monotonic() + 60
        while done is None and time.monotonic() < deadline:
            try:
                item = job.out.get(timeout=1.0)
            except queue.Empty:
                continue
            if item[0] == "done":
                done = item
        process.join(timeout=10)
        if done is None:
            print("the background process did not report: its figures are missing")
            return 1
        _, commits, engine_runs, problems = done
        print(
            f"background process: {commits:,} writer commits"
            f" ({args.live} live runs, a batch of {args.batch} every {_ms(args.interval)},"
            f" segment counts every {args.count_every:g} s on the segments phase)"
            + ("" if args.no_engine else f", SyncEngine full syncs: {engine_runs}")
        )
        for problem in problems[:3]:
            print(f"  background: {problem}")
        if any(p.startswith("writer:") for p in problems):
            return 1
        ok = all([report(phase) for phase in phases])
    print(f"\nload average at the end {_load()}")
    print("all goals met" if ok else "GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
