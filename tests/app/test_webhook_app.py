"""The webhook app over real HTTP: signatures, dedupe by event id, actions applied."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from omnicrm import ChannelType, Customer, Order, Stream, hookimpl
from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import GroupCommit, InboxWorker, applying, create_app
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.host import Host
from omnicrm.core.store import Store, inbox
from omnicrm.core.store.inbox import EventStatus
from omnicrm.core.webhooks import (
    Action,
    Delete,
    EraseConnection,
    Export,
    Redact,
    Upsert,
    WebhookEvent,
    WebhookInvalid,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)
from omnicrm.crm.profiles import find_profiles, profile_of
from omnicrm.errors import DataError
from tests.support.http import serve
from tests.support.webhooks import settled

SECRET = "hook-secret-xyz"


class HookSettings(BaseModel):
    shop: str
    secret: SecretStr


class Receiver:
    """Signs like Shopify: base64 HMAC-SHA256 of the raw body in X-Sig.

    Counts the events it derived actions for (``applied``); a ``wait`` topic holds its
    verification until a ``release`` topic arrives.
    """

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.gate = threading.Event()

    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        if headers.get("x-topic") == "wait":
            self.gate.wait(10)
            raise WebhookRejected("waited")
        if headers.get("x-topic") == "release":
            self.gate.set()
            raise WebhookRejected("released")
        shop = headers.get("x-shop", "")
        for conn in connections:
            assert isinstance(conn.settings, HookSettings)
            if conn.settings.shop == shop:
                expected = base64.b64encode(
                    hmac_sha256(conn.settings.secret.get_secret_value(), body)
                )
                if not signatures_match(expected, headers.get("x-sig", "")):
                    raise WebhookRejected("bad signature")
                topic = headers["x-topic"]
                if body.startswith(b"["):
                    raise WebhookInvalid(
                        "not an object", connection=conn.name, event_id=headers["x-event"]
                    )
                return WebhookEvent(
                    conn.name,
                    headers["x-event"],
                    topic,
                    json.loads(body),
                    urgent=topic in ("customers/redact", "shop/redact"),
                )
        raise WebhookRejected(f"unknown shop {shop!r}")

    def actions(self, event: WebhookEvent) -> Iterable[Action]:
        p = event.payload
        with self.lock:
            self.applied[event.event_id] += 1
        if p.get("bad"):
            raise DataError(f"customer {p['id']}: field 'email' is not an email (got 'x@')")
        if event.topic == "customers/update":
            yield Upsert(
                Customer(
                    id=p["id"],
                    email=p["email"],
                    updated_at=dt.datetime.fromisoformat(p["updated_at"]),
                )
            )
        elif event.topic == "orders/create":
            yield Upsert(
                Order(
                    id=p["id"],
                    customer_id=p["customer"],
                    placed_at=dt.datetime.now(dt.UTC),
                    updated_at=dt.datetime.now(dt.UTC),
                    subtotal=Decimal(1),
                    total=Decimal(1),
                )
            )
        elif event.topic == "orders/delete":
            yield Delete("orders", [p["id"]])
        elif event.topic == "customers/redact":
            yield Redact(p["customer"], p["orders"])
        elif event.topic == "shop/redact":
            yield EraseConnection()
        elif event.topic == "customers/data_request":
            yield Export(p["customer"], p["request"])


RECEIVER = Receiver()


class HookPlugin:
    @hookimpl
    def omnicrm_register(self, register: Any) -> None:
        register.channel_type(
            ChannelType("hooked", HookSettings, streams=(Stream.CUSTOMERS,), webhooks=RECEIVER)
        )

    @hookimpl
    def omnicrm_sync_customers(self, ctx: Any) -> Iterator[Customer]:
        yield from ()


def serve_hooked(store_url: str, crm: CrmSection) -> Iterator[str]:
    host = Host.load(use_entry_points=False, extra={"hooked": HookPlugin()})
    conn = Connection("tokyo", "hooked", HookSettings(shop="tokyo", secret=SecretStr(SECRET)))
    config = Config(None, store_url, SchedulerSection(), {"tokyo": conn}, crm=crm)
    runtime = Runtime(host, config)
    web = create_app(runtime, refresh_delay=0.2)
    with serve(web) as url:
        yield url
    web.state.inbox.close()
    runtime.close()


@pytest.fixture
def app_url(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    yield from serve_hooked(store_url, CrmSection())


@pytest.fixture
def quiet_app_url(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app without profile refreshes: none is left running for the next test."""
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    yield from serve_hooked(store_url, CrmSection(refresh_after_sync=False))


def post(
    url: str,
    topic: str,
    payload: dict[str, Any],
    event: str,
    *,
    secret: str = SECRET,
    shop: str = "tokyo",
) -> httpx.Response:
    body = json.dumps(payload).encode()
    sig = base64.b64encode(hmac_sha256(secret, body)).decode()
    headers = {"x-shop": shop, "x-sig": sig, "x-topic": topic, "x-event": event}
    return httpx.post(f"{url}/webhooks/hooked", content=body, headers=headers, timeout=10)


def test_genuine_events_apply_once(app_url: str, store_url: str) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    assert post(app_url, "customers/update", update, "e1").json() == {"status": "queued"}
    assert post(app_url, "customers/update", update, "e1").json() == {"status": "duplicate"}
    store = Store(store_url)
    settled(store)
    assert [c.email for c in store.customers("tokyo")] == ["a@example.jp"]
    post(app_url, "orders/create", {"id": "o1", "customer": "c1"}, "e2")
    post(app_url, "orders/create", {"id": "o2", "customer": "c1"}, "e3")
    post(app_url, "orders/delete", {"id": "o2"}, "e4")
    settled(store)
    assert [o.id for o in store.orders("tokyo")] == ["o1"]
    store.close()


@pytest.mark.parametrize(("secret", "shop"), [("wrong-secret", "tokyo"), (SECRET, "osaka")])
def test_anything_not_genuine_gets_401_and_changes_nothing(
    app_url: str, store_url: str, secret: str, shop: str
) -> None:
    update = {"id": "c9", "email": "x@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    response = post(app_url, "customers/update", update, "e9", secret=secret, shop=shop)
    assert response.status_code == 401
    store = Store(store_url)
    assert list(store.customers()) == [] and not store.webhook_seen("tokyo", "e9")
    store.close()


def test_unknown_channel_is_404(app_url: str) -> None:
    assert httpx.post(f"{app_url}/webhooks/nope", content=b"{}").status_code == 404


def test_a_token_in_the_path_is_404_where_the_receiver_takes_none(
    app_url: str, store_url: str
) -> None:
    # The receiver (which sets no ``path_token``) is never asked: a signed delivery is
    # refused at that address all the same.
    update = {"id": "c8", "email": "x@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    body = json.dumps(update).encode()
    sig = base64.b64encode(hmac_sha256(SECRET, body)).decode()
    headers = {"x-shop": "tokyo", "x-sig": sig, "x-topic": "customers/update", "x-event": "e8"}
    answer = httpx.post(f"{app_url}/webhooks/hooked/s3cr3t-9x", content=body, headers=headers)
    assert answer.status_code == 404 and "s3cr3t-9x" not in answer.text
    assert httpx.post(f"{app_url}/webhooks/nope/s3cr3t-9x", content=b"{}").status_code == 404
    assert post(app_url, "customers/update", update, "e8").json() == {"status": "queued"}


def test_redact_erase_and_data_request(app_url: str, store_url: str, tmp_path: Path) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    post(app_url, "customers/update", update, "e1")
    post(app_url, "orders/create", {"id": "o1", "customer": "c1"}, "e2")
    post(app_url, "customers/data_request", {"customer": "c1", "request": "r1"}, "e3")
    settled_store = Store(store_url)
    settled(settled_store)
    settled_store.close()
    # Named from the connection, the customer and the time; the request id goes inside.
    (export,) = (tmp_path / "data" / "exports" / "tokyo").iterdir()
    assert export.name.startswith("c1-") and "r1" not in export.name
    data = json.loads(export.read_text())
    assert data["customer"]["email"] == "a@example.jp" and data["request_id"] == "r1"
    assert export.stat().st_mode & 0o077 == 0
    # Applied at once unless the background applier claimed the event first: then it is
    # applied just after the answer, so wait until the inbox is settled.
    store = Store(store_url)
    post(app_url, "customers/redact", {"customer": "c1", "orders": ["o1"]}, "e4")
    settled(store)
    assert not export.exists()  # the redaction took the export too
    assert list(store.customers("tokyo")) == []
    assert [o.customer_id for o in store.orders("tokyo")] == [None]
    post(app_url, "shop/redact", {}, "e5")
    settled(store)
    assert list(store.orders("tokyo")) == []
    store.close()


def test_profiles_follow_webhooks_a_redaction_at_once(app_url: str, store_url: str) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    post(app_url, "customers/update", update, "p1")
    store = Store.open(store_url)
    try:
        # An ordinary change is refreshed a moment later, coalesced with any that follow.
        deadline = time.monotonic() + 15
        while True:
            with store.engine.connect() as conn:
                if profile_of(conn, "tokyo", "c1", shop=DEFAULT_SHOP) is not None:
                    break
            assert time.monotonic() < deadline, "the profile never appeared"
            time.sleep(0.1)
        post(app_url, "customers/redact", {"customer": "c1", "orders": []}, "p2")
        # A redaction is out of the profiles by the time the platform has its 200.
        with store.engine.connect() as conn:
            assert profile_of(conn, "tokyo", "c1", shop=DEFAULT_SHOP) is None
            assert find_profiles(conn, "a@example.jp", shop=DEFAULT_SHOP) == []
    finally:
        store.close()


def _settle(store_url: str) -> None:
    store = Store(store_url)
    try:
        settled(store)
    finally:
        store.close()


@pytest.mark.parametrize(
    "request_id", ["../../../../tmp/x", "/etc/passwd", "..", "r1\x00", "a" * 500]
)
def test_a_data_request_id_never_reaches_a_path(
    quiet_app_url: str, store_url: str, tmp_path: Path, request_id: str
) -> None:
    update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
    post(quiet_app_url, "customers/update", update, "e1")
    answer = post(
        quiet_app_url, "customers/data_request", {"customer": "c1", "request": request_id}, "e2"
    )
    assert answer.status_code == 200
    _settle(store_url)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".json"]
    assert [p.parent for p in written] == [tmp_path / "data" / "exports" / "tokyo"]
    assert json.loads(written[0].read_text())["request_id"] == request_id


def test_a_hostile_customer_id_writes_no_file(
    quiet_app_url: str, store_url: str, tmp_path: Path
) -> None:
    hostile = {"customer": "../../../../tmp/x", "request": "r1"}
    # Refused (how it is answered is the intake's business); no file anywhere.
    post(quiet_app_url, "customers/data_request", hostile, "../../../../tmp/e")
    _settle(store_url)
    assert [p for p in tmp_path.rglob("*.json")] == []


def _status_line(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    return sock.recv(4096).split(b"\r\n", 1)[0]


def test_an_oversized_body_is_refused_by_its_length_before_it_is_sent(app_url: str) -> None:
    port = int(app_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /webhooks/hooked HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n"
        )
        # Not one byte of the 50 MB follows: the answer must not wait for them.
        assert _status_line(sock) == b"HTTP/1.1 413 Request Entity Too Large"


def test_an_oversized_body_is_refused_while_it_streams(app_url: str) -> None:
    port = int(app_url.rsplit(":", 1)[1])
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /webhooks/hooked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        # A little over the 1 MiB default, and the body never ends: only a server that
        # counts while reading can answer.
        for _ in range(17):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert _status_line(sock) == b"HTTP/1.1 413 Request Entity Too Large"


def test_verification_runs_off_the_event_loop(app_url: str) -> None:
    RECEIVER.gate.clear()
    held: list[int] = []
    waiting = threading.Thread(
        target=lambda: held.append(
            httpx.post(
                f"{app_url}/webhooks/hooked", content=b"{}", headers={"x-topic": "wait"}, timeout=20
            ).status_code
        )
    )
    waiting.start()
    time.sleep(0.3)  # let the first request reach its verification
    # If verification ran on the event loop, the held one would block this one for good.
    released = httpx.post(
        f"{app_url}/webhooks/hooked", content=b"{}", headers={"x-topic": "release"}, timeout=5
    )
    waiting.join(15)
    assert released.status_code == 401 and held == [401]


def test_simultaneous_deliveries_of_one_event_apply_it_once(app_url: str, store_url: str) -> None:
    events = [f"sim-{store_url[:5]}-{n}" for n in range(20)]
    barrier = threading.Barrier(10)
    answers: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def deliver_all(copy: int) -> None:
        with httpx.Client(timeout=30) as client:
            for n, event in enumerate(events):
                body = {
                    "id": f"c{n}",
                    "email": f"{n}@example.jp",
                    "updated_at": "2026-05-01T10:00:00+09:00",
                }
                raw = json.dumps(body).encode()
                sig = base64.b64encode(hmac_sha256(SECRET, raw)).decode()
                barrier.wait()  # the ten copies of each event leave together
                answer = client.post(
                    f"{app_url}/webhooks/hooked",
                    content=raw,
                    headers={
                        "x-shop": "tokyo",
                        "x-sig": sig,
                        "x-topic": "customers/update",
                        "x-event": event,
                    },
                )
                with lock:
                    answers[(event, answer.json()["status"])] += 1

    threads = [threading.Thread(target=deliver_all, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    store = Store(store_url)
    try:
        settled(store)
        for event in events:
            assert answers[(event, "queued")] == 1 and answers[(event, "duplicate")] == 9, event
            assert RECEIVER.applied[event] == 1, event
        assert store.count(Stream.CUSTOMERS, "tokyo") == 20
    finally:
        store.close()


def test_a_genuine_but_malformed_event_is_accepted_and_rejected(
    app_url: str, store_url: str
) -> None:
    body = b"[1, 2]"
    sig = base64.b64encode(hmac_sha256(SECRET, body)).decode()
    headers = {"x-shop": "tokyo", "x-sig": sig, "x-topic": "customers/update", "x-event": "m1"}
    answer = httpx.post(f"{app_url}/webhooks/hooked", content=body, headers=headers)
    # 2xx: a retry cannot fix it, so the platform must not retry it for days.
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"
    again = httpx.post(f"{app_url}/webhooks/hooked", content=body, headers=headers)
    assert again.json() == {"status": "duplicate"}
    bad = {"id": "c5", "email": "x@", "updated_at": "2026-05-01T10:00:00+09:00", "bad": True}
    assert post(app_url, "customers/update", bad, "m2").json() == {"status": "queued"}
    store = Store(store_url)
    try:
        settled(store)
        seen = {e.event_id: e for e in inbox.events(store, "tokyo")}
        assert seen["m1"].status is EventStatus.REJECTED and seen["m1"].error == "not an object"
        assert seen["m2"].status is EventStatus.REJECTED and seen["m2"].attempts == 1
        # The reason names the record and field, not the value read.
        assert seen["m2"].error is not None and "x@" not in seen["m2"].error
        assert list(store.customers("tokyo")) == []
    finally:
        store.close()


def test_a_store_failure_is_503_and_claims_nothing(app_url: str, store_url: str) -> None:
    store = Store(store_url)
    # The inbox out of reach for a moment, as a store that is down would be.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_away")
    try:
        update = {"id": "c1", "email": "a@example.jp", "updated_at": "2026-05-01T10:00:00+09:00"}
        assert post(app_url, "customers/update", update, "s1").status_code == 503
        assert not store.webhook_seen("tokyo", "s1")  # so the retry is not a "duplicate"
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE webhook_inbox_away RENAME TO webhook_inbox")
        store.close()
    assert post(app_url, "customers/update", update, "s1").json() == {"status": "queued"}


def test_a_redaction_naming_another_customers_order_is_refused(
    app_url: str, store_url: str
) -> None:
    for n in (1, 2):
        update = {
            "id": f"c{n}",
            "email": f"{n}@example.jp",
            "updated_at": "2026-05-01T10:00:00+09:00",
        }
        post(app_url, "customers/update", update, f"u{n}")
    post(app_url, "orders/create", {"id": "o2", "customer": "c2"}, "o2")
    store = Store(store_url)
    try:
        settled(store)
        answer = post(app_url, "customers/redact", {"customer": "c1", "orders": ["o2"]}, "r1")
        assert answer.json() == {"status": "rejected"}
        assert [c.id for c in store.customers("tokyo")] == ["c1", "c2"]
        assert [o.customer_id for o in store.orders("tokyo")] == ["c2"]
        (event,) = inbox.events(store, "tokyo", status=EventStatus.REJECTED)
        assert event.event_id == "r1" and "o2" in (event.error or "")
    finally:
        store.close()


def _hooked_runtime(store_url: str) -> Runtime:
    host = Host.load(use_entry_points=False, extra={"hooked": HookPlugin()})
    conn = Connection("tokyo", "hooked", HookSettings(shop="tokyo", secret=SecretStr(SECRET)))
    crm = CrmSection(refresh_after_sync=False)
    return Runtime(host, Config(None, store_url, SchedulerSection(), {"tokyo": conn}, crm=crm))


def test_an_intake_only_app_queues_and_another_process_applies(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    tag = f"io-{store_url[:5]}"
    runtime = _hooked_runtime(store_url)
    web = create_app(runtime, apply=False)
    store = Store(store_url)
    with serve(web) as url:
        for n in range(5):
            body = {
                "id": f"{tag}-c{n}",
                "email": f"{n}@example.jp",
                "updated_at": "2026-05-01T10:00:00+09:00",
            }
            assert post(url, "customers/update", body, f"{tag}-{n}").json() == {"status": "queued"}
        # A privacy request is still applied before the answer, by the intake itself.
        redact = {"customer": f"{tag}-gone", "orders": []}
        assert post(url, "customers/redact", redact, f"{tag}-r").json() == {"status": "applied"}
        time.sleep(1.5)  # the in-process worker would have looked at the inbox by now
        assert inbox.pending(store) == 5
        assert all(RECEIVER.applied[f"{tag}-{n}"] == 0 for n in range(5))
    web.state.inbox.close()
    runtime.close()

    applier = _hooked_runtime(store_url)  # as `omnicrm webhooks work` would, on its own
    worker = InboxWorker(applier, poll=0.05)
    worker.start()
    try:
        settled(store)
    finally:
        worker.close()
        applier.close()
    assert all(RECEIVER.applied[f"{tag}-{n}"] == 1 for n in range(5))
    assert sorted(c.id for c in store.customers("tokyo")) == [f"{tag}-c{n}" for n in range(5)]
    store.close()


def test_two_drainers_never_apply_one_event_twice(store: Store, store_url: str) -> None:
    tag = f"two-{store_url[:5]}"
    arrivals = [
        inbox.Arrival(
            "tokyo",
            f"{tag}-{n}",
            "customers/update",
            json.dumps(
                {
                    "id": f"c{n}",
                    "email": f"{n}@example.jp",
                    "updated_at": "2026-05-01T10:00:00+09:00",
                }
            ).encode(),
        )
        for n in range(300)
    ]
    inbox.enqueue_many(store, arrivals)
    # Two appliers with stores of their own, as two `webhooks work` processes; small
    # batches so that their claims interleave.
    runtimes = [_hooked_runtime(store_url) for _ in range(4)]
    workers = [InboxWorker(r, batch=2, poll=0.01) for r in runtimes]
    for worker in workers:
        worker.start()
    try:
        settled(store, timeout=120)
    finally:
        for worker in workers:
            worker.close()
        for runtime in runtimes:
            runtime.close()
    assert {RECEIVER.applied[a.event_id] for a in arrivals} == {1}
    records = inbox.events(store, "tokyo", limit=1000)
    mine = [r for r in records if r.event_id.startswith(f"{tag}-")]
    assert len(mine) == 300
    assert {(r.status, r.attempts) for r in mine} == {(EventStatus.APPLIED, 1)}
    assert store.count(Stream.CUSTOMERS, "tokyo") == 300


def test_an_applier_in_another_process_waits_for_a_lull_in_arrivals(
    store: Store, store_url: str
) -> None:
    runtime = _hooked_runtime(store_url)
    body = b'{"id": "c", "email": "c@example.jp", "updated_at": "2026-05-01T10:00:00Z"}'
    with applying(runtime, poll=0.01) as worker:
        worker.max_defer = 60.0  # the lull decides here, not the cap
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < 1.5:  # a burst: an arrival every 10 ms
            inbox.enqueue(store, "tokyo", f"lull-{store.dialect}-{n}", "customers/update", body)
            n += 1
            time.sleep(0.01)
        during = n - inbox.pending(store)
        settled(store)
    runtime.close()
    # Without watching the store the worker (polling every 10 ms) keeps up with the burst.
    assert during < n / 2, f"{during} of {n} applied during the burst"
    assert {r.status for r in inbox.events(store, "tokyo", limit=n)} == {EventStatus.APPLIED}


def test_the_group_commit_verifies_and_claims_an_id_once_per_batch(
    store: Store, store_url: str
) -> None:
    runtime = _hooked_runtime(store_url)
    group = GroupCommit(runtime)

    def arrival(name: str) -> inbox.Arrival:
        return inbox.Arrival("tokyo", f"group-{name}", "customers/update", b"{}")

    def refused() -> inbox.Arrival | None:
        raise WebhookRejected("not genuine")

    async def deliver() -> list[int | BaseException | None]:
        answers = await asyncio.gather(
            group.accept(lambda: arrival("a")),
            group.accept(lambda: arrival("a")),  # a second delivery of the same id
            group.accept(lambda: arrival("b")),
            group.accept(lambda: None),  # verified, nothing to queue
            group.accept(refused),
            return_exceptions=True,
        )
        return list(answers)

    try:
        first, second, other, nothing, failed = asyncio.run(deliver())
        again = group.enqueue(arrival("b"))
    finally:
        group.close()
        runtime.close()
    # Of the two deliveries of one id in a batch exactly one is queued.
    assert [first, second].count(None) == 1
    assert {type(first), type(second)} == {int, type(None)}
    assert isinstance(other, int) and nothing is None and again is None
    assert isinstance(failed, WebhookRejected)
    assert inbox.pending(store) == 2
