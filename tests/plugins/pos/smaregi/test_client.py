"""The Smaregi client against the sandbox over HTTP: token, paging, faults."""

from __future__ import annotations

import math

import pytest

from omnicrm.errors import AuthError, RateLimitedError, SyncError, TransientError
from omnicrm.plugins.pos.seed import StoreData
from omnicrm.plugins.pos.smaregi.client import SmaregiClient
from omnicrm.plugins.pos.smaregi.sandbox.server import SmaregiSandbox
from omnicrm.plugins.pos.smaregi.settings import SmaregiSettings


def client(settings: SmaregiSettings, waits: list[float] | None = None) -> SmaregiClient:
    log = waits if waits is not None else []
    return SmaregiClient(settings, sleep=log.append, backoff=0.01)


def test_pages_every_member_once(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    with client(settings) as api:
        pages = list(api.pages("/customers", {"sort": "customerId"}, 7))
        assert api.tokens == 1  # one token serves every page
    codes = [record["customerCode"] for page in pages for record in page]
    assert sorted(codes) == sorted(m.code for m in seeded.members)
    assert all(len(page) == 7 for page in pages[:-1])
    listed = [r for r in sandbox.requests if "/customers" in r]
    assert len(listed) == math.ceil(len(codes) / 7) + (len(codes) % 7 == 0)
    assert all(isinstance(v, str) for v in pages[0][0].values() if v is not None)


def test_the_token_is_renewed_before_it_expires(sandbox: SmaregiSandbox, seeded: StoreData) -> None:
    # A token is renewed 60 s before it expires: one living 60 s is renewed at once.
    sandbox.token_lifetime = 60
    settings = SmaregiSettings.model_validate(sandbox.settings())
    with client(settings) as api:
        api.get("/stores", {})
        api.get("/stores", {})
        assert api.tokens == 2


def test_a_refused_token_is_renewed_once(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    with client(settings) as api:
        api.get("/stores", {})
        sandbox.tokens.clear()  # revoked on Smaregi's side
        assert [s["storeName"] for s in api.get("/stores", {})] == ["渋谷店", "梅田店"]
        assert api.tokens == 2


def test_wrong_credentials_are_an_auth_error(sandbox: SmaregiSandbox) -> None:
    settings = SmaregiSettings.model_validate({**sandbox.settings(), "client_secret": "wrong"})
    with client(settings) as api, pytest.raises(AuthError, match="client credentials") as caught:
        api.get("/stores", {})
    assert "wrong" not in str(caught.value)


def test_limit_and_range_rules_are_refused_with_smaregis_message(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    with client(settings) as api:
        with pytest.raises(SyncError, match="between 1 and 1000"):
            api.get("/customers", {"limit": 1001})
        with pytest.raises(SyncError, match="between 1 and 100"):
            api.get(
                "/transactions",
                {
                    "upd_date_time-from": "2026-11-01T00:00:00+09:00",
                    "upd_date_time-to": "2026-11-20T00:00:00+09:00",
                    "with_details": "all",
                    "limit": 101,
                },
            )
        with pytest.raises(SyncError, match="31 days"):
            api.get(
                "/transactions",
                {
                    "upd_date_time-from": "2026-10-01T00:00:00+09:00",
                    "upd_date_time-to": "2026-11-02T00:00:00+09:00",
                },
            )
        with pytest.raises(SyncError, match="upd_date_time"):
            api.get("/transactions", {})


def test_server_errors_and_cut_bodies_are_retried(
    settings: SmaregiSettings, sandbox: SmaregiSandbox
) -> None:
    waits: list[float] = []
    with client(settings, waits) as api:
        api.get("/stores", {})
        sandbox.fail_next(2, status=503)
        assert len(api.get("/stores", {})) == 2
        sandbox.malform_next(1)
        assert len(api.get("/stores", {})) == 2
        assert len(waits) == 3 and waits[1] > waits[0]  # backed off, growing
        sandbox.fail_next(10, status=500)
        with pytest.raises(TransientError, match="gave up after 4 attempts"):
            api.get("/stores", {})
    sandbox.clear_faults()


def test_a_cut_page_is_asked_for_again(
    settings: SmaregiSettings, sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    """A page's body is parsed by the reader, not the fetching thread: a cut one still
    counts as a failed attempt, is asked for again, and the attempts are still capped."""
    waits: list[float] = []
    with client(settings, waits) as api:
        api.get("/stores", {})
        sandbox.malform_next(1)
        pages = list(api.pages("/customers", {"sort": "customerId"}, 7))
        assert len(waits) == 1
        assert [r["customerCode"] for page in pages for r in page] == [
            m.code for m in sorted(seeded.members, key=lambda m: m.index)
        ]
        sandbox.malform_next(10)
        with pytest.raises(TransientError, match=r"malformed JSON.*gave up after 4 attempts"):
            list(api.pages("/customers", {"sort": "customerId"}, 7))
        assert len(waits) == 1 + 3
    sandbox.clear_faults()


def test_timeouts_are_retried(sandbox: SmaregiSandbox) -> None:
    settings = SmaregiSettings.model_validate({**sandbox.settings(), "timeout": 0.3})
    with client(settings) as api:
        api.get("/stores", {})
        sandbox.delay_next(1, seconds=1.0)
        assert len(api.get("/stores", {})) == 2


def test_429_waits_for_retry_after(settings: SmaregiSettings, sandbox: SmaregiSandbox) -> None:
    waits: list[float] = []
    with SmaregiClient(settings, sleep=waits.append, on_rate_limit=waits.append) as api:
        api.get("/stores", {})
        sandbox.rate_limit_next(1, retry_after=3)
        assert len(api.get("/stores", {})) == 2
        assert waits == [3.0]
        sandbox.rate_limit_next(1, retry_after=600)
        with pytest.raises(RateLimitedError) as caught:
            api.get("/stores", {})
        assert caught.value.retry_after == 600
