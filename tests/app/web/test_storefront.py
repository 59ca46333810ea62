"""The storefront endpoint over real HTTP: who may ask (key, token, App Proxy
signature, origin), what a visitor is shown, what the script reports."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.datastructures import QueryParams

from omnicrm.app.runtime import Runtime
from omnicrm.app.web import storefront
from omnicrm.app.webhook_app import create_app
from omnicrm.core.host import Host
from omnicrm.engage.onsite.tokens import app_proxy_signature, customer_token
from omnicrm.engage.schema import onsite_events, onsite_visitors
from omnicrm.engage.settings import RecommendSettings
from tests.support.http import serve
from tests.support.storefront import (
    KEY,
    PROXY_SECRET,
    SHOPIFY_DOMAIN,
    TOKEN_SECRET,
    make_runtime,
    popup,
    seed,
)

ORIGIN = "https://tokyo-tea.jp"
HANAKO = "visitor-hanako-000001"  # C1: a prospect, the popup's segment
TARO = "visitor-taro-0000001"  # C2: has bought


@pytest.fixture(scope="module")
def host() -> Host:
    return Host.load(extra={}, use_entry_points=True)


@pytest.fixture
def site(store_url: str, host: Host) -> Iterator[tuple[str, Runtime]]:
    runtime = make_runtime(store_url, offers={"second": popup()}, domains=[ORIGIN], host=host)
    seed(runtime.store, dt.datetime.now(dt.UTC))
    app = create_app(runtime)
    with serve(app) as url:
        yield url, runtime
    app.state.inbox.close()
    runtime.close()


def token(customer: str, secret: str = TOKEN_SECRET, ttl: int = 600) -> str:
    return customer_token(customer, int(time.time()) + ttl, secret)


def offers(url: str, visitor: str, *, origin: str | None = ORIGIN, **params: str) -> httpx.Response:
    query = {"key": KEY, "visitor": visitor, **params}
    headers = {"Origin": origin} if origin else {}
    return httpx.get(f"{url}/storefront/offers", params=query, headers=headers)


def proxied(url: str, path: str, secret: str = PROXY_SECRET, **params: str) -> httpx.Response:
    """A request as Shopify's App Proxy forwards it: its parameters added and signed."""
    pairs = [
        *params.items(),
        ("shop", SHOPIFY_DOMAIN),
        ("path_prefix", "/apps/omnicrm"),
        ("timestamp", str(int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret)))
    return httpx.get(f"{url}/storefront/{path}?{urllib.parse.urlencode(pairs)}")


def test_the_script_is_served_as_javascript(site: tuple[str, Runtime]) -> None:
    url, _ = site
    answer = httpx.get(f"{url}/storefront/omnicrm.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/javascript")
    assert "data-omnicrm-recommendations" in answer.text
    # It asks nothing of anyone but omnicrm: no absolute URL of another host in it.
    assert "http://" not in answer.text.replace("https://CRM", "")
    assert "https://" not in answer.text.replace("https://CRM", "")


def test_a_signed_in_prospect_sees_the_popup_on_the_second_visit(
    site: tuple[str, Runtime],
) -> None:
    url, _ = site
    first = offers(url, HANAKO, token=token("C1"), new_visit="1", page="/")
    assert first.status_code == 200, first.text
    assert first.json()["offers"] == []
    second = offers(url, HANAKO, token=token("C1"), new_visit="1", page="/").json()
    assert [(o["offer"], o["kind"]) for o in second["offers"]] == [("second", "popup")]
    assert second["offers"][0]["coupon"] in {"WELCOME10", "WELCOME15"}
    assert second["customer"] == {"first_name": "花子"}
    # A buyer and an anonymous visitor are not in the offer's audience.
    for visitor, extra in ((TARO, {"token": token("C2")}), ("visitor-nobody-000001", {})):
        for _ in range(2):
            seen = offers(url, visitor, new_visit="1", **extra).json()
        assert seen["offers"] == []


def test_answers_carry_no_personal_data_but_the_first_name(site: tuple[str, Runtime]) -> None:
    url, _ = site
    for _ in range(2):
        answer = offers(url, HANAKO, token=token("C1"), new_visit="1", product="TEA-01")
    text = answer.text
    assert "花子" in text
    for personal in ("山田", "example.jp", "C1", "profile"):
        assert personal not in text


def test_a_redaction_drops_what_the_server_keeps_of_the_person(
    site: tuple[str, Runtime],
) -> None:
    url, runtime = site
    for _ in range(2):
        answer = offers(url, HANAKO, token=token("C1"), new_visit="1").json()
    assert answer["customer"] == {"first_name": "花子"} and answer["offers"]
    runtime.redact_customer("web", "C1")  # as a redaction webhook applies it, in-process
    after = offers(url, HANAKO, token=token("C1")).json()
    assert "花子" not in json.dumps(after, ensure_ascii=False)
    # Her browser's visits went with her: it is a first visit again, no popup.
    assert after["offers"] == []
    with runtime.store.engine.connect() as conn:
        visits = conn.execute(
            select(onsite_visitors.c.visits).where(onsite_visitors.c.id == HANAKO)
        ).scalar_one()
    assert visits == 1


def test_recommendations_are_available_products_of_the_shop(site: tuple[str, Runtime]) -> None:
    url, _ = site
    found = offers(url, HANAKO, token=token("C1"), product="TEA-01").json()["recommendations"]
    products = [item["product"] for item in found]
    assert products and products[0] == "TEA-02"
    assert "CUP-01" not in products  # sold out
    assert found[0]["name"] == "ほうじ茶 100g" and found[0]["price"] == "1500"
    assert found[0]["url"] == "https://tokyo-tea.jp/products/tea-02"


def test_the_block_merges_with_the_shops_weights(store_url: str, host: Host) -> None:
    off = RecommendSettings(weights={"also-bought": 0, "segment-popular": 0.2})
    runtime = make_runtime(store_url, offers={}, domains=[ORIGIN], host=host, recommend=off)
    seed(runtime.store, dt.datetime.now(dt.UTC))
    app = create_app(runtime)
    try:
        with serve(app) as url:
            # Only also-bought answers for a product (TEA-02 with the default weights):
            # weighted 0, it is not asked and nothing is offered.
            found = offers(url, TARO, token=token("C2"), product="TEA-01").json()
            assert found["recommendations"] == []
            # Segment popularity, still on, answers for a prospect.
            shown = offers(url, HANAKO, token=token("C1")).json()["recommendations"]
            assert {item["product"] for item in shown} == {"TEA-01", "TEA-02"}
    finally:
        app.state.inbox.close()
        runtime.close()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"key": "pk-somebody-else-1"}, 401),
        ({"key": ""}, 401),
        ({"token": "C1.9999999999.0000"}, 401),  # forged
        ({"token": "ignored"}, 401),  # malformed
        ({"visitor": "short"}, 400),
    ],
    ids=["unknown-key", "no-key", "forged-token", "bad-token", "bad-visitor"],
)
def test_a_forged_key_or_token_is_refused(
    site: tuple[str, Runtime], params: dict[str, str], status: int
) -> None:
    url, _ = site
    query = {"key": KEY, "visitor": HANAKO, **params}
    answer = httpx.get(f"{url}/storefront/offers", params=query, headers={"Origin": ORIGIN})
    assert answer.status_code == status, answer.text
    assert "access-control-allow-origin" not in answer.headers


def test_a_token_signed_with_another_secret_or_expired_is_refused(
    site: tuple[str, Runtime],
) -> None:
    url, _ = site
    assert offers(url, HANAKO, token=token("C1", secret="guess")).status_code == 401
    assert offers(url, HANAKO, token=token("C1", ttl=-10)).status_code == 401


def test_only_the_shops_origins_may_call(site: tuple[str, Runtime]) -> None:
    url, _ = site
    allowed = offers(url, HANAKO)
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in allowed.headers["vary"]
    refused = offers(url, HANAKO, origin="https://evil.example")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    preflight = httpx.options(
        f"{url}/storefront/events",
        params={"key": KEY},
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    bad = httpx.options(
        f"{url}/storefront/events", params={"key": KEY}, headers={"Origin": "https://evil.example"}
    )
    assert bad.status_code == 403


def test_the_app_proxy_signature_names_the_shop_and_customer(site: tuple[str, Runtime]) -> None:
    url, runtime = site
    visitor = "visitor-hina-00000001"
    answer = proxied(url, "offers", visitor=visitor, logged_in_customer_id="77", new_visit="1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer"] == {"first_name": "陽菜"}
    with runtime.store.engine.connect() as conn:
        joined = conn.execute(
            select(onsite_visitors.c.connection, onsite_visitors.c.record_id).where(
                onsite_visitors.c.id == visitor
            )
        ).one()
    assert tuple(joined) == ("shopify", "gid://shopify/Customer/77")
    anonymous = proxied(url, "offers", visitor=visitor, logged_in_customer_id="")
    assert anonymous.json()["customer"] is None
    forged = proxied(url, "offers", secret="guess", visitor=visitor, logged_in_customer_id="77")
    assert forged.status_code == 401


def test_events_are_recorded_and_bad_ones_refused(site: tuple[str, Runtime]) -> None:
    url, runtime = site
    body: dict[str, Any] = {
        "visitor": HANAKO,
        "events": [
            {"kind": "impression", "offer": "second", "variant": "A"},
            {"kind": "click", "offer": "second", "variant": "A"},
            {"kind": "view", "product": "TEA-01"},
        ],
    }
    sent = httpx.post(
        f"{url}/storefront/events",
        params={"key": KEY, "token": token("C1")},
        headers={"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"},
        content=json.dumps(body),
    )
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"recorded": 3}
    assert sent.headers["access-control-allow-origin"] == ORIGIN
    with runtime.store.engine.connect() as conn:
        kinds = conn.execute(
            select(onsite_events.c.kind).where(onsite_events.c.visitor == HANAKO)
        ).scalars()
        assert sorted(kinds) == ["click", "impression", "view"]
        joined = conn.execute(
            select(onsite_visitors.c.record_id).where(onsite_visitors.c.id == HANAKO)
        ).scalar_one()
    assert joined == "C1"
    wrong = httpx.post(
        f"{url}/storefront/events",
        params={"key": KEY},
        content=b'{"visitor": "visitor-hanako-000001", "events": [{"kind": "buy"}]}',
    )
    assert wrong.status_code == 400 and "events[0].kind" in wrong.text
    forged = httpx.post(f"{url}/storefront/events", params={"key": "pk-forged-0000"}, content=b"{}")
    assert forged.status_code == 401
    huge = httpx.post(f"{url}/storefront/events", params={"key": KEY}, content=b" " * 20_000)
    assert huge.status_code == 413


def test_one_failing_write_does_not_fail_the_others_of_its_batch(store_url: str) -> None:
    from omnicrm.app.web.storefront import _GroupWriter
    from omnicrm.engage.onsite import visitors

    runtime = make_runtime(store_url, offers={}, domains=[])
    writer = _GroupWriter(runtime)
    now = dt.datetime.now(dt.UTC)

    def good(conn: Any) -> int:
        visitors.touch(conn, "tokyo-tea", "visitor-kept-000001", now=now, new_visit=True)
        return 1

    def bad(conn: Any) -> int:
        raise RuntimeError("broken write")

    # Submitted together, they are likely to share a batch; either way each gets its own fate.
    results: list[Future[int]] = [Future() for _ in range(3)]
    for work, done in zip((good, bad, good), results, strict=True):
        writer.put(work, done, None, None)
    assert results[0].result(10) == 1 and results[2].result(10) == 1
    with pytest.raises(RuntimeError, match="broken write"):
        results[1].result(10)
    with runtime.store.engine.connect() as conn:
        assert conn.execute(select(onsite_visitors.c.visits)).scalars().all() == [2]
    runtime.close()


def test_a_value_asked_for_at_once_is_made_once() -> None:
    # The first answers after a start each need the shop's segments and history: one
    # thread reads them while the others wait, rather than every thread reading them.
    from omnicrm.app.web.storefront import _Ttl

    cache = _Ttl()
    began, release = threading.Event(), threading.Event()
    made: list[str] = []

    def slow() -> str:
        made.append("first")
        began.set()
        release.wait(10)
        return "segments"

    def again() -> str:
        made.append("again")
        return "read twice"

    found: list[str] = []
    first = threading.Thread(target=lambda: found.append(cache.get(("segments", "s"), slow)))
    first.start()
    assert began.wait(10)
    second = threading.Thread(target=lambda: found.append(cache.get(("segments", "s"), again)))
    second.start()
    time.sleep(0.2)  # the second is waiting for the first's value
    release.set()
    first.join(10)
    second.join(10)
    assert made == ["first"]
    assert found == ["segments", "segments"]


def test_a_value_whose_making_failed_is_made_again() -> None:
    from omnicrm.app.web.storefront import _Ttl

    cache = _Ttl()

    def broken() -> str:
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError):
        cache.get(("catalogue", "s"), broken)
    assert cache.get(("catalogue", "s"), lambda: "catalogue") == "catalogue"


# -- GET and OPTIONS /storefront/offers are answered ahead of Starlette's middleware and
# router (omnicrm.app.webhook_app._App): the same answers as through the router.


def _router_app(runtime: Runtime) -> Starlette:
    """The storefront's routes in a plain Starlette app: every request through its
    middleware and router, as before the requests answered ahead of them."""
    return Starlette(routes=storefront.endpoints(runtime).routes)


def _shape(answer: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    # Date differs from one answer to the next; uvicorn writes it and Server.
    headers = [(k, v) for k, v in answer.headers.multi_items() if k not in ("date", "server")]
    return answer.status_code, headers, answer.content


@pytest.mark.parametrize(
    ("params", "origin"),
    [
        ({"key": "pk-forged-0000", "visitor": HANAKO}, ORIGIN),
        ({"visitor": HANAKO}, ORIGIN),
        ({"key": KEY, "visitor": "short"}, ORIGIN),
        ({"key": KEY, "visitor": HANAKO, "token": "C1.9999999999.0000"}, None),
        ({"key": KEY, "visitor": HANAKO}, "https://evil.example"),
        ({"key": KEY, "visitor": HANAKO, "page": "/" * 2001}, ORIGIN),
    ],
    ids=["unknown-key", "no-key", "bad-visitor", "forged-token", "other-origin", "long-page"],
)
def test_a_refusal_ahead_of_the_router_is_the_routers_answer(
    site: tuple[str, Runtime], params: dict[str, str], origin: str | None
) -> None:
    url, runtime = site
    headers = {"Origin": origin} if origin else {}
    ahead = httpx.get(f"{url}/storefront/offers", params=params, headers=headers)
    with serve(_router_app(runtime)) as router_url:
        routed = httpx.get(f"{router_url}/storefront/offers", params=params, headers=headers)
    assert ahead.status_code in (400, 401, 403)
    assert ahead.json()["error"]
    assert ahead.headers["content-type"] == "application/json"
    assert ahead.headers["vary"] == "Origin" and ahead.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in ahead.headers
    assert _shape(ahead) == _shape(routed)


def test_an_answer_ahead_of_the_router_has_the_routers_headers(
    site: tuple[str, Runtime],
) -> None:
    url, runtime = site
    ahead = offers(url, "visitor-ahead-0000001", new_visit="1", product="TEA-01")
    with serve(_router_app(runtime)) as router_url:
        routed = offers(router_url, "visitor-routed-000001", new_visit="1", product="TEA-01")
    assert ahead.status_code == routed.status_code == 200
    assert ahead.headers["access-control-allow-origin"] == ORIGIN
    assert [k for k, _ in _shape(ahead)[1]] == [k for k, _ in _shape(routed)[1]]
    assert ahead.json()["recommendations"] == routed.json()["recommendations"]
    # The key may come in a header instead of the query.
    by_header = httpx.get(
        f"{url}/storefront/offers",
        params={"visitor": "visitor-ahead-0000001"},
        headers={"Origin": ORIGIN, "X-Omnicrm-Key": KEY},
    )
    assert by_header.status_code == 200, by_header.text
    # HEAD is not answered ahead: the router answers it, without a body.
    head = httpx.head(f"{url}/storefront/offers", params={"key": KEY, "visitor": HANAKO})
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("path", ["offers", "events"])
@pytest.mark.parametrize("origin", [ORIGIN, "https://evil.example", None])
def test_a_preflight_of_offers_is_the_same_as_of_events(
    site: tuple[str, Runtime], path: str, origin: str | None
) -> None:
    url, runtime = site
    headers = {"Access-Control-Request-Method": "GET", **({"Origin": origin} if origin else {})}
    ahead = httpx.options(f"{url}/storefront/{path}", params={"key": KEY}, headers=headers)
    with serve(_router_app(runtime)) as router_url:
        routed = httpx.options(
            f"{router_url}/storefront/{path}", params={"key": KEY}, headers=headers
        )
    assert ahead.status_code == (204 if origin == ORIGIN else 403)
    if origin == ORIGIN:
        assert ahead.headers["access-control-allow-origin"] == ORIGIN
        assert ahead.headers["access-control-allow-methods"] == "GET, POST"
    assert _shape(ahead) == _shape(routed)


def test_an_app_proxy_query_with_a_repeated_parameter_is_verified_whole(
    site: tuple[str, Runtime],
) -> None:
    url, _ = site
    pairs = [
        ("visitor", "visitor-hina-00000002"),
        ("logged_in_customer_id", "77"),
        ("tag", "sencha"),
        ("tag", "matcha"),
        ("shop", SHOPIFY_DOMAIN),
        ("path_prefix", "/apps/omnicrm"),
        ("timestamp", str(int(time.time()))),
    ]
    signature = app_proxy_signature(pairs, PROXY_SECRET)
    signed = httpx.get(
        f"{url}/storefront/offers?{urllib.parse.urlencode([*pairs, ('signature', signature)])}"
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["customer"] == {"first_name": "陽菜"}
    # One value of the repeated parameter dropped: the signature no longer matches.
    cut = [pair for pair in pairs if pair != ("tag", "sencha")]
    forged = httpx.get(
        f"{url}/storefront/offers?{urllib.parse.urlencode([*cut, ('signature', signature)])}"
    )
    assert forged.status_code == 401
    assert forged.json() == {"error": "not verified"}


def test_an_internal_error_is_a_500_logged_and_the_server_goes_on(
    site: tuple[str, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    url, runtime = site
    # The store fails under the answer: the visitors' table is gone for a moment.
    engine = runtime.store.engine
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE onsite_visitors RENAME TO onsite_visitors_away"))
    try:
        with caplog.at_level(logging.ERROR, logger="omnicrm.storefront"):
            broken = offers(url, "visitor-unread-000001", token=token("C1"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE onsite_visitors_away RENAME TO onsite_visitors"))
    assert broken.status_code == 500
    assert broken.text == "Internal Server Error"  # no traceback to the client
    assert any(
        record.exc_info and "/storefront/offers failed" in record.getMessage()
        for record in caplog.records
    )
    assert httpx.get(f"{url}/storefront/omnicrm.js").status_code == 200
    assert offers(url, "short").status_code == 400


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=80),
        st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=5).map(
            lambda pairs: urllib.parse.urlencode(pairs).encode()
        ),
        st.text(alphabet="ab=&%+2F;é", max_size=30).map(lambda t: t.encode("latin-1")),
    )
)
def test_a_query_is_read_as_starlette_reads_it(raw: bytes) -> None:
    assert storefront.query_pairs(raw) == list(QueryParams(raw).multi_items())
