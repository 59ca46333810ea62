"""The webhook app for tests: serving it, and waiting for its inbox (events are applied
behind the answer)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from omnicrm.app.config import Config, Connection, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.store.inbox import pending
from tests.support.http import serve


@contextmanager
def quiet_webhook_app(
    host: Host, store_url: str, connections: Mapping[str, Connection]
) -> Iterator[str]:
    """The webhook app of ``connections`` on loopback, without profile refreshes (none
    is left running for the next test); yields its base URL."""
    config = Config(
        None,
        store_url,
        SchedulerSection(),
        dict(connections),
        crm=CrmSection(refresh_after_sync=False),
    )
    runtime = Runtime(host, config)
    web = create_app(runtime)
    with serve(web) as url:
        yield url
    web.state.inbox.close()
    runtime.close()


def settled(store: Store, timeout: float = 20.0) -> None:
    """Return once every queued webhook event was applied (its inbox row is gone)."""
    deadline = time.monotonic() + timeout
    while pending(store):
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending(store)} webhook event(s) still queued")
        time.sleep(0.02)


@contextmanager
def serving(runtime: Runtime) -> Iterator[str]:
    """The webhook app of ``runtime`` on loopback (its URL); closed with the runtime."""
    web = create_app(runtime)
    try:
        with serve(web) as url:
            yield url
    finally:
        web.state.inbox.close()
        runtime.close()
