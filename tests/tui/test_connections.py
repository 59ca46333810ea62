"""The connections screens, driven through the Pilot on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.core.channels import Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import RunStatus, Store, StreamState
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.connections import ConfirmScreen, ConnectionScreen, ConnectionsScreen
from tests import synthetic_plugin
from tests.tui.helpers import NOW, RuntimeFactory, fixed_clock, seed_run, synthetic, wait_until


def run(app: OmnicrmApp, body: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    """Drive ``app`` at 100x30 through ``body``."""

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await body(pilot)

    asyncio.run(main())


def cell(app: OmnicrmApp, row: str, column: str, table: str = "#connections") -> str:
    value = app.screen.query_one(table, DataTable).get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


def loaded(app: OmnicrmApp, table: str = "#connections") -> Callable[[], bool]:
    return lambda: (
        bool(app.screen.query(table)) and app.screen.query_one(table, DataTable).row_count > 0
    )


def test_one_row_per_connection_with_its_last_run(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    seed_run(store, "a", RunStatus.FAILED, NOW - dt.timedelta(minutes=20), 3.5, errors=1)
    seed_run(
        store, "b", RunStatus.COMPLETE, NOW - dt.timedelta(minutes=10), 75, read=1234, waited=12.5
    )
    runtime = make_runtime(
        store.url.render_as_string(hide_password=False),
        synthetic("a", every=dt.timedelta(minutes=15)),
        synthetic("b", cron="30 * * * *"),
        synthetic("c"),
    )
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        table = app.screen.query_one("#connections", DataTable)
        assert [k.value for k in table.rows] == ["a", "b", "c"]
        assert cell(app, "a", "status") == "failed"
        assert cell(app, "a", "errors") == "1"
        assert cell(app, "a", "took") == "3.5s"
        assert cell(app, "a", "started") == "09:40"  # Tokyo time
        # Every 15 minutes from its last run (09:40): 09:55 has passed, 10:10 is next.
        assert cell(app, "a", "next") == "10:10"
        assert (cell(app, "b", "status"), cell(app, "b", "records")) == ("complete", "1,234")
        assert (cell(app, "b", "took"), cell(app, "b", "waited")) == ("1m15s", "12s")
        assert cell(app, "b", "next") == "10:30"
        assert (cell(app, "c", "status"), cell(app, "c", "next")) == ("never", "manual")
        status = table.get_cell("a", "status")
        assert isinstance(status, Text) and status.style == "red"

    run(app, body)


def test_a_change_in_the_store_shows_without_a_restart(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        assert cell(app, "shop", "status") == "never"
        table = app.screen.query_one("#connections", DataTable)
        # Another process (the scheduler) starts a run and commits a first batch.
        run_id = store.start_run("shop", trigger="schedule")
        batch = list(synthetic_plugin_customers(3))
        store.write_batch("shop", Stream.CUSTOMERS, batch, StreamState(), run_id=run_id, read=3)
        await wait_until(lambda: cell(app, "shop", "status") == "running")
        assert cell(app, "shop", "records") == "3"
        assert cell(app, "shop", "took").endswith("…")  # still going
        store.finish_run(run_id, RunStatus.COMPLETE)
        await wait_until(lambda: cell(app, "shop", "status") == "complete")
        # Updated in place: still the one row, under its key.
        assert [k.value for k in table.rows] == ["shop"]

    run(app, body)


def synthetic_plugin_customers(count: int) -> list[Customer]:

    return [
        c.model_copy(update={"connection": "shop"}) for c in synthetic_plugin.customers(count, 1, 0)
    ]


def test_sync_from_the_table_lands_in_sync_runs_as_tui(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        await pilot.press("s")
        assert app.last_action is not None
        await app.last_action.wait()
        (latest,) = store.runs("shop")
        assert (latest.trigger, latest.status, latest.full) == ("tui", RunStatus.COMPLETE, False)
        assert latest.records_read == 130
        await wait_until(lambda: cell(app, "shop", "status") == "complete")
        assert cell(app, "shop", "records") == "130"

    run(app, body)


def test_detail_shows_history_errors_and_cursors(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    seed_run(
        store,
        "shop",
        RunStatus.FAILED,
        NOW - dt.timedelta(hours=2),
        1.0,
        errors=1,
        error="AuthError: HTTP 401: token rejected\nrotate the token in omnicrm.toml",
        error_kind="auth",
    )
    seed_run(store, "shop", RunStatus.COMPLETE, NOW - dt.timedelta(hours=1), 2.0, read=5)
    cursor = dt.datetime(2026, 11, 22, 15, 0, tzinfo=dt.UTC)
    store.write_batch("shop", Stream.CUSTOMERS, [], StreamState(cursor, {"page": "abc"}))
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, ConnectionScreen))
        await wait_until(loaded(app, "#runs"))
        runs = app.screen.query_one("#runs", DataTable)
        assert [r.key.value for r in runs.ordered_rows] == [
            "2",
            "1",
        ]  # newest first, keyed by run id
        assert cell(app, "1", "status", "#runs") == "failed"
        errors = app.screen.query_one("#errors", Static)
        text = str(errors.render())
        assert "AuthError: HTTP 401: token rejected\nrotate the token in omnicrm.toml" in text
        assert "run 1" in text and "(auth)" in text
        streams = app.screen.query_one("#streams", DataTable)
        assert [k.value for k in streams.rows] == ["customers", "orders"]
        assert cell(app, "customers", "cursor", "#streams") == "2026-11-23 00:00:00"
        assert cell(app, "customers", "state", "#streams") == '{"page": "abc"}'
        assert cell(app, "orders", "cursor", "#streams") == "never synced"
        # A sync from the detail screen adds its run on top, by key.
        await pilot.press("s")
        assert app.last_action is not None
        await app.last_action.wait()
        assert store.runs("shop")[0].trigger == "tui"
        await wait_until(lambda: runs.row_count == 3)
        assert [r.key.value for r in runs.ordered_rows] == ["3", "2", "1"]
        await wait_until(lambda: cell(app, "3", "status", "#runs") == "complete")
        assert cell(app, "3", "trigger", "#runs") == "tui"
        await pilot.press("escape")
        assert isinstance(app.screen, ConnectionsScreen)

    run(app, body)


def test_pause_writes_the_control_and_resume_clears_it(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(
        store.url.render_as_string(hide_password=False),
        synthetic(every=dt.timedelta(minutes=15)),
    )
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        assert cell(app, "shop", "next") == "due"
        await pilot.press("p")
        assert app.last_action is not None
        await app.last_action.wait()
        assert store.paused() == {"shop"}
        await wait_until(lambda: cell(app, "shop", "next") == "paused")
        await pilot.press("r")
        await app.last_action.wait()
        assert store.paused() == set()
        await wait_until(lambda: cell(app, "shop", "next") == "due")

    run(app, body)


def test_full_resync_asks_first(store: Store, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, ConnectionScreen))
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, ConnectionScreen)
        assert app.last_action is None and store.runs("shop") == []
        await pilot.press("f")
        await pilot.press("enter")  # the focused answer is No
        assert isinstance(app.screen, ConnectionScreen) and app.last_action is None
        await pilot.press("f", "y")
        assert app.last_action is not None
        await app.last_action.wait()
        (latest,) = store.runs("shop")
        assert (latest.trigger, latest.full, latest.status) == ("tui", True, RunStatus.COMPLETE)

    run(app, body)


def test_a_locked_connection_is_a_notification_not_a_crash(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        with store.lock("shop"):  # a scheduled run holds it
            await pilot.press("s")
            assert app.last_action is not None
            await app.last_action.wait()
        await pilot.pause()
        notes = list(app._notifications)
        assert any("already syncing" in n.message for n in notes), notes
        # Said as skipped, not as an error.
        assert any("skipped" in n.title and n.severity != "error" for n in notes), notes
        assert store.runs("shop") == []
        assert app.is_running

    run(app, body)


def test_a_running_syncs_time_keeps_counting(store: Store, make_runtime: RuntimeFactory) -> None:
    seed_run(store, "shop", RunStatus.RUNNING, NOW - dt.timedelta(minutes=2), None, read=40)
    now = [NOW]
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=lambda: now[0])

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        assert (cell(app, "shop", "status"), cell(app, "shop", "took")) == ("running", "2m00s…")
        now[0] = NOW + dt.timedelta(seconds=30)  # nothing committed meanwhile
        await wait_until(lambda: cell(app, "shop", "took") == "2m30s…", timeout=5)

    with store.lock("shop"):  # the running run's process is alive: it holds the lock
        run(app, body)


def test_a_sync_running_in_another_thread_shows_its_progress(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    # Slow pages, so the run is seen between its batches (10 records each).
    runtime = make_runtime(
        store.url.render_as_string(hide_password=False), synthetic(page_delay=0.05, page_size=10)
    )
    app = OmnicrmApp(runtime, clock=fixed_clock)
    seen: set[str] = set()

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        scheduler = threading.Thread(
            target=lambda: runtime.engine().sync(runtime.config.connections["shop"])
        )
        scheduler.start()
        try:

            def progressed() -> bool:
                if cell(app, "shop", "status") == "running":
                    seen.add(cell(app, "shop", "records"))
                return cell(app, "shop", "status") == "complete"

            await wait_until(progressed, timeout=30)
        finally:
            await asyncio.to_thread(scheduler.join)
        assert cell(app, "shop", "records") == "130"
        partial = {int(n.replace(",", "")) for n in seen} - {0, 130}
        assert partial, f"no partial count seen among {seen}"

    run(app, body)


def test_a_run_skipped_on_the_lock_is_shown_as_skipped_not_as_an_error(
    store: Store, make_runtime: RuntimeFactory
) -> None:
    # A TUI sync holds the lock; the scheduled run that found it held was recorded as
    # skipped (with its reason, as the scheduler does).
    seed_run(store, "shop", RunStatus.RUNNING, NOW - dt.timedelta(minutes=2), None, read=40)
    store.record_run(
        "shop", RunStatus.SKIPPED, trigger="schedule", error="connection 'shop' is already syncing"
    )
    runtime = make_runtime(store.url.render_as_string(hide_password=False), synthetic())
    app = OmnicrmApp(runtime, clock=fixed_clock)

    async def body(pilot: Pilot[None]) -> None:
        await wait_until(loaded(app))
        # The run that holds the lock is still what the row shows.
        assert cell(app, "shop", "status") == "running"
        assert cell(app, "shop", "records") == "40"
        await pilot.press("enter")
        await wait_until(loaded(app, "#runs"))
        await wait_until(lambda: app.screen.query_one("#runs", DataTable).row_count == 2)
        skipped = str(max(int(k.value or 0) for k in app.screen.query_one("#runs", DataTable).rows))
        assert cell(app, skipped, "status", "#runs") == "skipped"
        assert cell(app, skipped, "errors", "#runs") == "-"
        errors = app.screen.query_one("#errors", Static)
        assert "already syncing" not in str(errors.content) and str(errors.content) == "none"
        summary = str(app.screen.query_one("#summary", Static).content)
        assert "skipped at" in summary and "already syncing" in summary

    with store.lock("shop"):  # the running run's process is alive: it holds the lock
        run(app, body)
