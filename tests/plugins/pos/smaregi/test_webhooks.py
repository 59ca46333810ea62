"""Smaregi webhooks end to end: our token (in the path or a header) or a 401; the ids
fetched from the sandbox, also by another process after a restart."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omnicrm.plugins.pos.plugin
from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from omnicrm.core.store import Store, inbox
from omnicrm.core.store.inbox import EventStatus
from omnicrm.core.webhooks import WebhookInvalid, WebhookRejected
from omnicrm.plugins.pos.seed import StoreData
from omnicrm.plugins.pos.smaregi.sandbox.server import (
    CUSTOMER_BASE,
    TRANSACTION_BASE,
    SmaregiSandbox,
)
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings
from omnicrm.plugins.pos.smaregi.webhooks import SmaregiWebhooks
from tests.support.webhooks import serving, settled


def headers(token: str | None, contract: str) -> dict[str, str]:
    given = {"Content-Type": "application/json", "Smaregi-Contract-Id": contract}
    if token is not None:
        given["X-Omnicrm-Webhook-Token"] = token
    return given


def test_verify_wants_the_connections_token(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    receiver = SmaregiWebhooks()
    connection = Connection("shibuya", "smaregi", settings)
    body = json.dumps(sandbox.webhook("pos:customers", [str(CUSTOMER_BASE)])).encode()
    event = receiver.verify(headers(sandbox.webhook_token, sandbox.contract_id), body, [connection])
    assert (event.connection, event.topic, event.customer_id) == (
        "shibuya",
        "pos:customers",
        "1000",
    )
    for token in (None, "", "wrong", sandbox.webhook_token + "x"):
        with pytest.raises(WebhookRejected):
            receiver.verify(headers(token, sandbox.contract_id), body, [connection])
    with pytest.raises(WebhookRejected):  # the right token for another contract
        receiver.verify(headers(sandbox.webhook_token, "other"), body, [connection])
    for bad in (
        b"{",
        b'{"event": "pos:products", "productIds": ["1"]}',
        b'{"event": "pos:customers", "customerIds": ["../x"]}',
    ):
        with pytest.raises(WebhookInvalid):
            receiver.verify(headers(sandbox.webhook_token, sandbox.contract_id), bad, [connection])


@pytest.fixture
def app(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: SmaregiSettings
) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    host = Host.load(use_entry_points=False, extra={"pos": omnicrm.plugins.pos.plugin})
    config = Config(
        None,
        store_url,
        SchedulerSection(),
        {"shibuya": Connection("shibuya", "smaregi", settings)},
        crm=CrmSection(refresh_after_sync=False),
    )
    with serving(Runtime(host, config)) as url:
        yield url


def deliver(
    url: str,
    sandbox: SmaregiSandbox,
    body: dict[str, Any],
    token: str | None,
    *,
    in_path: str | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` with ``token`` in our header, or ``in_path`` in the URL's path."""
    path = f"/webhooks/smaregi/{in_path}" if in_path is not None else "/webhooks/smaregi"
    return httpx.post(
        f"{url}{path}",
        content=json.dumps(body).encode(),
        headers={**headers(token, sandbox.contract_id), **(extra or {})},
        timeout=20,
    )


def test_ids_are_fetched_and_upserted(
    app: str, store_url: str, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    sale = next(
        s
        for s in seeded.sales
        if s.member is not None and len(s.lines) > 1 and not any(li.returned for li in s.lines)
    )
    sales = sandbox.webhook("pos:transactions", [str(TRANSACTION_BASE + sale.number)])
    assert deliver(app, sandbox, sales, None).status_code == 401
    assert deliver(app, sandbox, sales, "guess").status_code == 401
    assert deliver(app, sandbox, sales, sandbox.webhook_token).json() == {"status": "queued"}
    assert deliver(app, sandbox, sales, sandbox.webhook_token).json() == {"status": "duplicate"}
    members = sandbox.webhook("pos:customers", [str(CUSTOMER_BASE), str(CUSTOMER_BASE + 1)])
    assert deliver(app, sandbox, members, sandbox.webhook_token).status_code == 200
    store = Store(store_url)
    try:
        settled(store)
        (order,) = store.orders("shibuya")
        assert order.id == str(TRANSACTION_BASE + sale.number)
        assert order.location == sale.store.name and len(order.lines) == len(sale.lines)
        assert sorted(c.member_code or "" for c in store.customers("shibuya")) == sorted(
            m.code for m in seeded.members[:2]
        )
    finally:
        store.close()


def test_the_token_in_the_path_or_the_header_or_a_401(
    app: str,
    store_url: str,
    sandbox: SmaregiSandbox,
    seeded: StoreData,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = sandbox.webhook_token
    first, second, third = (
        sandbox.webhook("pos:customers", [str(CUSTOMER_BASE + n)]) for n in range(3)
    )
    # The path form: what Smaregi itself can send (it adds no header of ours).
    assert deliver(app, sandbox, first, None, in_path=token).json() == {"status": "queued"}
    assert deliver(app, sandbox, first, None, in_path=token).json() == {"status": "duplicate"}
    for wrong in ("guess", token + "x", token[:-1], "%20"):
        refused = deliver(app, sandbox, second, None, in_path=wrong)
        assert refused.status_code == 401 and refused.json() == {"error": "not verified"}
    # A wrong token in the path is not rescued by a right one in the header.
    assert deliver(app, sandbox, second, token, in_path="guess").status_code == 401
    # The pseudo-header the path sets cannot be sent as a header.
    smuggled = deliver(app, sandbox, second, None, extra={"X-Omnicrm-Path-Token": token})
    assert smuggled.status_code == 401
    # The header form (a proxy adds it) still works.
    assert deliver(app, sandbox, second, token).json() == {"status": "queued"}
    assert deliver(app, sandbox, third, "guess").status_code == 401
    store = Store(store_url)
    try:
        settled(store)
        assert sorted(c.member_code or "" for c in store.customers("shibuya")) == sorted(
            m.code for m in seeded.members[:2]
        )
    finally:
        store.close()
    # What the server side logged (httpx is this test's client, logging its own URLs).
    logged = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert sum("smaregi webhook rejected" in m for m in logged) == 7  # the 401s
    assert not [m for m in logged if token in m]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _omnicrm(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    """Stop ``proc`` as a service manager would; what it printed."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return out + err


def test_an_event_queued_before_a_restart_is_applied_by_a_fresh_process(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SmaregiSandbox,
    seeded: StoreData,
) -> None:
    """`webhooks serve --no-apply` queues; it stops; `webhooks work`, a process that never
    verified a webhook, fetches the records with the connection's settings."""
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHIBUYA_SECRET", sandbox.client_secret)
    monkeypatch.setenv("SHIBUYA_WEBHOOK_TOKEN", sandbox.webhook_token)
    monkeypatch.delenv("OMNICRM_CONFIG", raising=False)
    config = tmp_path / "omnicrm.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n\n[crm]\nrefresh_after_sync = false\n\n'
        '[connections.shibuya]\nchannel = "smaregi"\n[connections.shibuya.settings]\n'
        f'contract_id = "{sandbox.contract_id}"\nclient_id = "{sandbox.client_id}"\n'
        'client_secret = { env = "SHIBUYA_SECRET" }\n'
        f'api_url = "{sandbox.url}"\nid_url = "{sandbox.url}"\n'
        'webhook_token = { env = "SHIBUYA_WEBHOOK_TOKEN" }\nretries = 3\n',
        encoding="utf-8",
    )
    sale = next(s for s in seeded.sales if s.member is not None)
    sales = sandbox.webhook("pos:transactions", [str(TRANSACTION_BASE + sale.number)])
    members = sandbox.webhook("pos:customers", [str(CUSTOMER_BASE)])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serving_ = _omnicrm(config, "webhooks", "serve", "--port", str(port), "--no-apply")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert serving_.poll() is None, serving_.communicate()
            try:
                answer = deliver(url, sandbox, sales, None, in_path=sandbox.webhook_token)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "webhooks serve did not start in 30 s"
                time.sleep(0.1)
        assert answer.json() == {"status": "queued"}
        assert deliver(url, sandbox, members, sandbox.webhook_token).json() == {"status": "queued"}
        assert deliver(url, sandbox, members, None, in_path="guess").status_code == 401
    finally:
        intake_output = _stop(serving_)
    store = Store(store_url)
    try:
        assert inbox.pending(store) == 2  # nothing applied them yet
        working = _omnicrm(config, "webhooks", "work", "--poll", "0.05")
        try:
            settled(store, timeout=30)
        finally:
            work_output = _stop(working)
        assert [e.status for e in inbox.events(store, "shibuya")] == [EventStatus.APPLIED] * 2
        (order,) = store.orders("shibuya")
        assert order.id == str(TRANSACTION_BASE + sale.number)
        assert [c.member_code for c in store.customers("shibuya")] == [seeded.members[0].code]
    finally:
        store.close()
    for output in (intake_output, work_output):
        assert sandbox.webhook_token not in output and "Traceback" not in output
