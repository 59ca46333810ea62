"""The terminal UI under a live store: change-to-screen latency, refresh time, input lag.

Builds a SQLite store in a temporary directory with 50 synthetic connections (each with
a run history), 100 segments (the 20 built-ins and 80 user ones, each with a count
history), then runs ``OmnicrmApp`` headless (``App.run_test(size=(120, 40))``) while
the store is written in the background, as the scheduler would from another process:

- a writer thread on its own ``Store`` keeps a few runs going through the store's real
  calls (``start_run``, ``write_batch`` of real customer records with the run's live
  counters, ``finish_run``) and, on the segments phase, appends segment counts with
  ``record_counts``; it notes when each commit returned;
- a real ``SyncEngine`` full sync of a synthetic connection loops in another thread
  (pages with a delay, so its batches commit all along).

Measured, on the connections screen and then on the segments screen:

1. change to screen: from a commit returning to the table's cell showing it (the
   ``in`` column of the running connection; a segment's ``count``), read by polling the
   DataTable every 5 ms from the Pilot's side (goal: p95 under 1 s). The cell is the
   table's data: the frame showing it is painted on the next refresh after that.
2. time per refresh: the reload the change check starts, timed by wrapping the screen's
   own methods on the instance: on the connections screen from ``_load`` being called
   (the worker start) to the end of the ``Loaded`` handler's table update, with the
   query and the table update apart; on the segments screen from its watch worker
   waking (``_wake.wait`` returning) to the end of ``_show`` (check, query, hop to the
   UI thread, table update), with ``_show`` apart (goal: p95 under 100 ms).
3. input lag: the Pilot presses down/up on the table while the writes go on; from the
   press to the table's ``cursor_coordinate`` changing (a watcher notes it), max and
   p95 (goal: none above 100 ms). The event loop's longest stall is printed too (a
   10 ms heartbeat's oversleep): a key arriving from the terminal waits that long at
   worst.

    .venv/bin/python benchmarks/tui.py                   # ~1 minute
    .venv/bin/python benchmarks/tui.py --seconds 60 --connections 100 --segments 200

Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import textual  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable  # noqa: E402
from textual.worker import NoActiveWorker, Worker, get_current_worker  # noqa: E402

from omnicrm.core.channels import Stream  # noqa: E402
from omnicrm.core.config import Config, Connection, CrmSection, SchedulerSection  # noqa: E402
from omnicrm.core.host import Host  # noqa: E402
from omnicrm.core.runtime import Runtime  # noqa: E402
from omnicrm.core.segments import (  # noqa: E402
    BUILTIN_SEGMENTS,
    define,
    ensure_builtin,
    list_segments,
    record_counts,
)
from omnicrm.core.store import RunStatus, Store  # noqa: E402
from omnicrm.core.store.schema import sync_runs  # noqa: E402
from omnicrm.errors import LockedError  # noqa: E402
from omnicrm.tui.app import OmnicrmApp  # noqa: E402
from omnicrm.tui.connections import ConnectionsScreen  # noqa: E402
from omnicrm.tui.segments import SegmentsScreen  # noqa: E402
from tests import synthetic_plugin  # noqa: E402
from tests.synthetic_plugin import SyntheticSettings  # noqa: E402

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
        ensure_builtin(conn, now)
        for i in range(max(0, segments - len(BUILTIN_SEGMENTS))):
            expression = BUILTIN_SEGMENTS[i % len(BUILTIN_SEGMENTS)].expression
            define(conn, f"user-{i:03d}", expression, description=f"bench {i}", now=now)
        names_ = [s.name for s in list_segments(conn)][:segments]
        for p in range(points):
            at = now - dt.timedelta(hours=points - p)
            record_counts(conn, {n: 1000 + 7 * j + p for j, n in enumerate(names_)}, at)
    return names_


@dataclass
class Sample:
    key: str  # connection or segment
    value: int
    committed: float
    seen: float | None = None


@dataclass
class Writer:
    """Writes the store from a thread, as a sync (and a CRM refresh) would."""

    url: str
    live: list[str]
    interval: float
    batch: int
    run_batches: int
    segments: list[str] = field(default_factory=list)
    count_every: float = 0.0  # seconds between recorded segment counts; 0: none
    samples: list[Sample] = field(default_factory=list)
    count_samples: list[Sample] = field(default_factory=list)
    commits: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pending(self, name: str) -> bool:
        with self.lock:
            return any(s.seen is None for s in self.samples if s.key == name)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _run(self) -> None:
        store = Store.open(self.url)
        try:
            runs = {name: store.start_run(name, trigger="schedule") for name in self.live}
            read = dict.fromkeys(self.live, 0)
            batches = dict.fromkeys(self.live, 0)
            records = {
                name: synthetic_plugin.customers(self.batch * self.run_batches, i + 1, 0)
                for i, name in enumerate(self.live)
            }
            generation = dict.fromkeys(self.live, 0)
            next_count = time.perf_counter() + self.count_every
            step = 0
            for name in itertools.cycle(self.live):
                if self.stop.is_set():
                    break
                if batches[name] >= self.run_batches:
                    if self.pending(name):  # its counter would restart under a sample
                        continue
                    store.finish_run(runs[name], RunStatus.COMPLETE)
                    runs[name] = store.start_run(name, trigger="schedule")
                    read[name] = batches[name] = 0
                    generation[name] += 1
                    seed_no = self.live.index(name) + 1
                    records[name] = synthetic_plugin.customers(
                        self.batch * self.run_batches, seed_no, generation[name]
                    )
                    self.commits += 2
                chunk = records[name][batches[name] * self.batch : (batches[name] + 1) * self.batch]
                store.write_batch(name, Stream.CUSTOMERS, chunk, run_id=runs[name], read=len(chunk))
                committed = time.perf_counter()
                read[name] += len(chunk)
                batches[name] += 1
                self.commits += 1
                with self.lock:
                    self.samples.append(Sample(name, read[name], committed))
                if self.count_every and time.perf_counter() >= next_count:
                    step += 1
                    counts = {n: 5000 + 7 * j + step for j, n in enumerate(self.segments)}
                    with store.engine.begin() as conn:
                        record_counts(conn, counts, dt.datetime.now(dt.UTC))
                    committed = time.perf_counter()
                    self.commits += 1
                    with self.lock:
                        for j in range(0, len(self.segments), max(1, len(self.segments) // 5)):
                            name_ = self.segments[j]
                            self.count_samples.append(Sample(name_, counts[name_], committed))
                    next_count = committed + self.count_every
                self.stop.wait(self.interval)
            for run_id in runs.values():
                store.finish_run(run_id, RunStatus.COMPLETE)
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


class _TimedEvent(threading.Event):
    """The segments watch worker's wake-up event, noting when each wait returns."""

    def __init__(self, woke: list[float]) -> None:
        super().__init__()
        self.woke = woke

    def wait(self, timeout: float | None = None) -> bool:
        result = super().wait(timeout)
        self.woke.append(time.perf_counter())
        return result


def hook_segments(screen: SegmentsScreen) -> Refreshes:
    """Time each reload of the segments screen: from its watch worker waking to the end
    of ``_show`` (the table update on the UI thread)."""
    found = Refreshes()
    woke: list[float] = []
    show = screen._show
    old = screen._wake
    wake = _TimedEvent(woke)
    screen._wake = wake
    old.set()  # the worker waits on the old event once more, then on ours

    def timed_show(rows: list[Any]) -> None:
        begun = time.perf_counter()
        show(rows)
        done = time.perf_counter()
        found.update.append(done - begun)
        if woke:
            found.total.append(done - woke[-1])
            found.query.append(begun - woke[-1])

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
    press_calls: list[float] = field(default_factory=list)
    keys_missed: int = 0
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
        pending = [s for s in samples()[checked:] if s.seen is None]
        now = time.perf_counter()
        for sample in pending:
            try:
                value = _number(cell(sample.key))
            except Exception:  # a row not there yet
                continue
            if value >= sample.value:
                sample.seen = now
        while checked < len(samples()) and samples()[checked].seen is not None:
            checked += 1
        await asyncio.sleep(POLL)


async def heartbeat(stalls: list[float], stop: asyncio.Event) -> None:
    """The event loop's stalls: how late a 10 ms sleep wakes up."""
    while not stop.is_set():
        begun = time.perf_counter()
        await asyncio.sleep(0.010)
        stalls.append(time.perf_counter() - begun - 0.010)


async def press_keys(
    pilot: Pilot[None], table: DataTable[Any], phase: Phase, count: int, spacing: float
) -> None:
    """Press down/up (ten each way, so the cursor stays in the rows) and time each."""
    moved: list[float] = []
    pilot.app.screen.watch(
        table, "cursor_coordinate", lambda _old, _new: moved.append(time.perf_counter()), init=False
    )
    table.focus()
    await pilot.pause()
    for i in range(count):
        key = "down" if (i // 10) % 2 == 0 else "up"
        before = len(moved)
        pressed = time.perf_counter()
        await pilot.press(key)
        returned = time.perf_counter()
        phase.press_calls.append(returned - pressed)
        if len(moved) > before:
            phase.keys.append(moved[before] - pressed)
        else:
            phase.keys_missed += 1
        await asyncio.sleep(spacing)


async def run_phase(
    pilot: Pilot[None],
    phase: Phase,
    table: DataTable[Any],
    samples: Callable[[], list[Sample]],
    cell: Callable[[str], object],
    seconds: float,
    keys: int,
) -> None:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(watch_samples(samples, cell, stop)),
        asyncio.create_task(heartbeat(phase.stalls, stop)),
    ]
    begun = time.perf_counter()
    await press_keys(pilot, table, phase, keys, spacing=max(0.01, seconds / max(1, keys) - 0.01))
    left = seconds - (time.perf_counter() - begun)
    if left > 0:
        await asyncio.sleep(left)
    # Let the last samples show up (or not) before counting them.
    last = samples()[-1].committed if samples() else time.perf_counter()
    while any(s.seen is None for s in samples()) and time.perf_counter() - last < 3.0:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    for sample in samples():
        if sample.seen is None:
            phase.unseen += 1
        else:
            phase.shown.append(sample.seen - sample.committed)


async def drive(args: argparse.Namespace, runtime: Runtime, writer: Writer) -> list[Phase]:
    app = OmnicrmApp(runtime)
    phases: list[Phase] = []
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ConnectionsScreen), screen
        table: DataTable[Any] = screen.query_one("#connections", DataTable)
        await wait_for(lambda: table.row_count == args.connections, "the connections")
        connections = Phase("connections")
        connections.refresh = hook_connections(screen)
        thread = threading.Thread(target=writer.run, name="writer", daemon=True)
        thread.start()
        await run_phase(
            pilot,
            connections,
            table,
            lambda: writer.samples,
            lambda name: table.get_cell(name, "records"),
            args.seconds / 2,
            args.keys,
        )
        phases.append(connections)

        await pilot.press("g")
        segments_screen = app.screen
        assert isinstance(segments_screen, SegmentsScreen), segments_screen
        await wait_for(lambda: segments_screen.loads >= 1, "the segments")
        seg_table: DataTable[Any] = segments_screen.query_one("#segments", DataTable)
        segments = Phase("segments")
        segments.refresh = hook_segments(segments_screen)
        writer.count_every = args.count_every
        await run_phase(
            pilot,
            segments,
            seg_table,
            lambda: writer.count_samples,
            lambda name: seg_table.get_cell(name, "count"),
            args.seconds / 2,
            args.keys,
        )
        phases.append(segments)
        writer.stop.set()
        thread.join(timeout=10)
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
    print(f"    pilot.press():  {_dist(phase.press_calls)}")
    if not phase.keys or phase.keys_missed or max(phase.keys) > INPUT_GOAL:
        print(f"    MISSED: goal no key above {_ms(INPUT_GOAL)}")
        ok = False
    stalls = phase.stalls
    if stalls:
        print(
            f"  event loop stalls: p99 {_ms(_pct(stalls, 0.99))}, max {_ms(max(stalls))}"
            f" ({len(stalls)} heartbeats of 10 ms)"
        )
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
    parser.add_argument("--count-every", type=float, default=1.0, help="segment counts, s")
    parser.add_argument(
        "--no-engine", action="store_true", help="no real SyncEngine run in the background"
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

        ui, background = runtime(), runtime()
        writer = Writer(
            url,
            live=names[: args.live],
            interval=args.interval,
            batch=args.batch,
            run_batches=40,
            segments=segment_names,
        )
        stop_engine = threading.Event()
        engine_problems: list[str] = []
        engine_thread = None
        if not args.no_engine:
            engine_thread = threading.Thread(
                target=lambda: engine_problems.extend(
                    engine_loop(background, engine_connection, stop_engine)
                ),
                name="engine",
                daemon=True,
            )
            engine_thread.start()
        try:
            phases = asyncio.run(drive(args, ui, writer))
        finally:
            writer.stop.set()
            stop_engine.set()
            if engine_thread is not None:
                engine_thread.join(timeout=30)
            ui.close()
            background.close()
        if writer.error is not None:
            print(f"the writer failed: {writer.error!r}")
            return 1
        after = Store.open(url)
        engine_runs = len(after.runs(engine_connection.name, limit=100_000)) - args.runs
        after.close()
        print(
            f"background: {writer.commits:,} writer commits"
            f" ({args.live} live runs, a batch every {_ms(args.interval)}, segment counts"
            f" every {args.count_every:g} s on the segments phase)"
            + ("" if args.no_engine else f", SyncEngine runs: {engine_runs}")
        )
        for problem in engine_problems[:3]:
            print(f"  engine: {problem}")
        ok = all([report(phase) for phase in phases])
    print(f"\nload average at the end {_load()}")
    print("all goals met" if ok else "GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
