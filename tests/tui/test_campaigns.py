"""The campaign screens, in the app shell, on both backends: a shop built through the
real pipeline, the email dispatcher sending to a real SMTP server on loopback. The
operator opens the campaigns (m), sends the ready one (s, then y) and watches it
arrive; the report screen is the one `omnicrm campaigns report` prints, updated while
another process (here a thread) sends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection, Shop
from omnicrm.app.runtime import Runtime
from omnicrm.cli.demo import DEMO_CAMPAIGN, DEMO_SHOPS, ready_campaigns
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.engage import campaigns
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.email import plugin as email_plugin
from omnicrm.plugins.email.sandbox import SmtpCatcher
from omnicrm.tui.app import OmnicrmApp
from omnicrm.tui.campaigns import EMPTY_HINT, CampaignScreen, CampaignsScreen, send_campaign
from omnicrm.tui.connections import ConfirmScreen
from tests import synthetic_plugin
from tests.engage.conftest import SHOP, build, person
from tests.engage.test_scheduled import create, status_of
from tests.synthetic_plugin import SyntheticSettings
from tests.tui.helpers import synthetic, wait_until

PEOPLE = 15


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@pytest.fixture
def runtime(store: Store, catcher: SmtpCatcher) -> Iterator[Runtime]:
    build(store, [person(i) for i in range(PEOPLE)])
    host = Host.load(
        use_entry_points=False, extra={"synthetic": synthetic_plugin, "email": email_plugin}
    )
    assert not host.failures
    messaging = MessagingSettings.model_validate(
        {"dispatchers": {"email": {"dispatcher": "email", "settings": catcher.settings()}}}
    )
    made = Runtime(
        host,
        Config(
            path=None,
            store_url=store.url.render_as_string(hide_password=False),
            scheduler=SchedulerSection(),
            connections={"shop": synthetic()},
            crm=CrmSection(refresh_after_sync=False),
            messaging=messaging,
        ),
    )
    yield made
    made.close()


def text_of(widget: Static) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def cell(screen: CampaignsScreen, name: str, column: str) -> str:
    value: Any = screen.query_one("#campaigns", DataTable).get_cell(name, column)
    return str(getattr(value, "plain", value))


async def open_campaigns(app: OmnicrmApp, pilot: Pilot[None], key: str = "m") -> CampaignsScreen:
    """Press ``key`` and wait for the campaigns list's first load."""
    await pilot.press(key)
    screen = app.screen
    assert isinstance(screen, CampaignsScreen)
    await wait_until(lambda: screen.loads >= 1)
    return screen


@pytest.mark.anyio
async def test_the_operator_sends_the_ready_campaign_and_watches_it_arrive(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    create(runtime, "second-purchase")
    create(runtime, "later", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    app = OmnicrmApp(runtime, poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_campaigns(app, pilot)
        table = screen.query_one("#campaigns", DataTable)
        assert table.row_count == 2
        assert cell(screen, "second-purchase", "state") == "draft"
        assert cell(screen, "second-purchase", "planned") == "0"
        assert cell(screen, "later", "state") == "scheduled"
        assert cell(screen, "second-purchase", "opened") == "-"  # no base URL: untracked

        await pilot.press("s")  # the cursor is on the first campaign
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(lambda: app.last_action is not None)
        assert app.last_action is not None
        await app.last_action.wait()
        assert status_of(runtime.store, "second-purchase") == "done"
        await wait_until(lambda: cell(screen, "second-purchase", "state") == "done")
        sent = int(cell(screen, "second-purchase", "sent"))
        held_out = int(cell(screen, "second-purchase", "suppressed"))
        assert sent + held_out == int(cell(screen, "second-purchase", "planned")) == PEOPLE
        assert 0 < held_out < PEOPLE
        assert len(catcher.wait_for(sent)) == sent  # they arrived
        assert len(catcher.arrivals) == sent
        assert status_of(runtime.store, "later") == "scheduled"  # only the one asked for

        # Enter: the report, as `omnicrm campaigns report` prints it.
        table.move_cursor(row=table.get_row_index("second-purchase"))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, CampaignScreen)
        await wait_until(lambda: detail.found is not None)
        report = text_of(detail.query_one("#report", Static))
        assert "second-purchase (email, done)" in report
        assert "variant A" in report and "variant B" in report and "hold-out" in report
        assert f"sent {sent:,}" in report
        await pilot.press("s")  # done: nothing more to send, and it says so
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert app.screen is screen


@pytest.mark.anyio
async def test_the_report_counts_up_while_another_sender_sends(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    create(runtime, "winter")
    app = OmnicrmApp(runtime, poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_campaigns(app, pilot)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, CampaignScreen)
        await wait_until(lambda: detail.found is not None)
        assert "winter (email, draft): planned 0, sent 0" in text_of(
            detail.query_one("#report", Static)
        )
        # Sent elsewhere (the scheduler, another terminal): the screen follows the store.
        said: list[str] = []
        sending = threading.Thread(
            target=lambda: said.append(
                send_campaign(runtime, SHOP, "winter", dt.datetime.now(dt.UTC))
            )
        )
        sending.start()
        await wait_until(
            lambda: "winter (email, done)" in text_of(detail.query_one("#report", Static))
        )
        sending.join(10)
        sent = len(catcher.arrivals)
        assert said == [f"winter: planned {PEOPLE}, sent {sent}, suppressed {PEOPLE - sent}"]
        assert f"planned {PEOPLE}, sent {sent}," in text_of(detail.query_one("#report", Static))


@pytest.mark.anyio
async def test_p_pauses_and_resumes_and_a_paused_campaign_is_not_sent(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    create(runtime, "spring", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    app = OmnicrmApp(runtime, poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_campaigns(app, pilot)
        await pilot.press("p")
        await wait_until(lambda: cell(screen, "spring", "state") == "paused")
        await pilot.press("s")
        assert not isinstance(app.screen, ConfirmScreen)  # resume first, it says
        await pilot.press("p")
        await wait_until(lambda: cell(screen, "spring", "state") == "scheduled")
    assert catcher.arrivals == []


@pytest.mark.anyio
async def test_a_shop_without_campaigns_says_how_to_make_one(runtime: Runtime) -> None:
    app = OmnicrmApp(runtime, poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_campaigns(app, pilot, "f6")
        assert str(screen.query_one("#status", Static).content) == EMPTY_HINT


@pytest.mark.anyio
async def test_the_demos_ready_campaign_is_sent_from_the_tui(
    store_url: str, catcher: SmtpCatcher
) -> None:
    """The demo's shops and ready campaign (omnicrm.cli.demo), customers in the second
    shop: the operator opens the campaigns, sends second-purchase, and it arrives."""
    messaging = MessagingSettings.model_validate(
        {"dispatchers": {"email": {"dispatcher": "email", "settings": catcher.settings()}}}
    )
    shop = DEMO_SHOPS[1][0]
    web = Connection(name="web", channel="synthetic", settings=SyntheticSettings(), shop=shop)
    runtime = Runtime(
        Host.load(
            use_entry_points=False, extra={"synthetic": synthetic_plugin, "email": email_plugin}
        ),
        Config(
            path=None,
            store_url=store_url,
            scheduler=SchedulerSection(),
            connections={"web": web},
            crm=CrmSection(refresh_after_sync=False),
            shops={i: Shop(id=i, name=name, messaging=messaging) for i, name in DEMO_SHOPS},
        ),
    )
    try:
        build(runtime.store, [person(i) for i in range(PEOPLE)])  # one order each
        runtime.refresh(shop, full=True)
        assert ready_campaigns(runtime) == {s: [DEMO_CAMPAIGN] for s, _ in DEMO_SHOPS}
        app = OmnicrmApp(runtime, poll_interval=0.1, shop=shop)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_campaigns(app, pilot)
            assert screen.shop == shop
            assert cell(screen, DEMO_CAMPAIGN, "state") == "draft"
            await pilot.press("s", "y")
            await wait_until(lambda: cell(screen, DEMO_CAMPAIGN, "state") == "done")
            sent = int(cell(screen, DEMO_CAMPAIGN, "sent"))
            assert sent > 0
            arrived = catcher.wait_for(sent)
            assert len(arrived) == sent
            subjects = {str(a.parse()["Subject"]) for a in arrived}
            assert all("様" in s for s in subjects), subjects  # the demo's A/B subjects
            sender = catcher.settings()["sender_address"]
            assert all(sender in str(a.parse()["From"]) for a in arrived)
    finally:
        runtime.close()


def test_a_send_in_the_quiet_hours_waits_and_says_until_when(
    runtime: Runtime, catcher: SmtpCatcher
) -> None:
    tokyo = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
    window = f"{tokyo - dt.timedelta(hours=1):%H:%M}-{tokyo + dt.timedelta(hours=1):%H:%M}"
    quiet = runtime.config.messaging.model_copy(update={"quiet_hours": window})
    runtime.config = dataclasses.replace(runtime.config, messaging=quiet)
    create(runtime, "night")
    said = send_campaign(runtime, SHOP, "night", dt.datetime.now(dt.UTC))
    until = f"{tokyo + dt.timedelta(hours=1):%Y-%m-%d %H:%M} JST"
    assert said.startswith(f"night: planned {PEOPLE}, sent 0, suppressed ")  # the held out
    assert said.endswith(
        f"; quiet hours: the rest goes by itself from {until} while `omnicrm run` runs "
        "(else send it (s) then)"
    )
    assert catcher.arrivals == []
    assert status_of(runtime.store, "night") == "sending"  # planned, waiting
    with runtime.store.engine.connect() as conn:  # the scheduler's from then on
        waits = campaigns.get(conn, "night", shop=SHOP).scheduled_at
    assert waits is not None
    assert f"{waits.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M} JST" == until
