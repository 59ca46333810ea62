"""The plugin host: entry-point loading, fail-soft failures, registration and routing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from omnicrm import (
    ChannelType,
    Consent,
    ConsentState,
    Customer,
    DeliveryStatus,
    Dispatcher,
    DispatchOutcome,
    Medium,
    Message,
    Purchase,
    RecommendationRequest,
    Recommender,
    Registrar,
    ScoredProduct,
    Stream,
    StreamContext,
    hookimpl,
)
from omnicrm.core.host import Host
from omnicrm.errors import ConfigError, PluginError
from tests import synthetic_plugin
from tests.conftest import install_plugin


class Empty(BaseModel):
    pass


class Shop:
    """A channel plugin whose records say which plugin produced them."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @hookimpl
    def omnicrm_register(self, register: Registrar) -> None:
        register.channel_type(ChannelType(self.channel, Empty, streams=(Stream.CUSTOMERS,)))

    @hookimpl
    def omnicrm_sync_customers(self, ctx: StreamContext[Empty]) -> Iterator[Customer]:
        yield Customer(id=self.channel, updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def ctx(channel: str) -> StreamContext[Empty]:
    import logging

    return StreamContext(
        connection="c",
        channel=channel,
        stream=Stream.CUSTOMERS,
        settings=Empty(),
        since=None,
        until=dt.datetime.now(dt.UTC),
        state={},
        full=True,
        logger=logging.getLogger("t"),
    )


def test_installed_plugins_load_from_entry_points(synthetic_installed: Path) -> None:
    host = Host.load()
    info = {p.name: p for p in host.plugins}["synthetic"]
    assert info.version == "1.0" and info.distribution == "synthetic"
    assert info.provides == ("channel:synthetic",)
    assert info.hooks == ("omnicrm_import_orders", "omnicrm_register", "omnicrm_sync_customers")
    assert "synthetic" in host.channel_types


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(
    synthetic_installed: Path,
) -> None:
    (synthetic_installed / "broken_plugin.py").write_text(
        "raise RuntimeError('missing dependency: foo')\n", encoding="utf-8"
    )
    install_plugin(synthetic_installed, "broken", "broken_plugin")
    host = Host.load()
    assert [(f.name, f.error) for f in host.failures] == [
        ("broken", "RuntimeError: missing dependency: foo")
    ]
    assert "synthetic" in host.channel_types


def test_plugins_named_in_the_environment_are_disabled(
    synthetic_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNICRM_DISABLE_PLUGINS", "other, synthetic")
    host = Host.load()
    assert host.disabled == ["synthetic"]
    assert "synthetic" not in host.channel_types


def test_a_plugin_raising_in_register_is_left_out() -> None:
    class Bad:
        @hookimpl
        def omnicrm_register(self, register: Registrar) -> None:
            register.channel_type(ChannelType("half", Empty, streams=(Stream.CUSTOMERS,)))
            raise ValueError("boom")

        @hookimpl
        def omnicrm_sync_customers(self, ctx: Any) -> Iterator[Customer]:
            yield from ()

    host = Host.load(use_entry_points=False, extra={"bad": Bad(), "synthetic": synthetic_plugin})
    assert [f.name for f in host.failures] == ["bad"]
    assert "half" not in host.channel_types  # what it registered before failing is undone
    assert [p.name for p in host.plugins] == ["synthetic"]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (
            type("Typo", (), {"omnicrm_sync_customer": hookimpl(lambda self, ctx: [])})(),
            "unknown hook 'omnicrm_sync_customer'",
        ),
        (
            type(
                "NoHook",
                (),
                {
                    "omnicrm_register": hookimpl(
                        lambda self, register: register.channel_type(ChannelType("x", Empty))
                    )
                },
            )(),
            "needs hook(s) omnicrm_sync_customers, omnicrm_import_orders",
        ),
        (
            type(
                "Junk",
                (),
                {
                    "omnicrm_register": hookimpl(
                        lambda self, register: register.channel_type("shopify")
                    )
                },
            )(),
            "not a ChannelType",
        ),
        (
            type(
                "Mixup",
                (),
                {
                    "omnicrm_register": hookimpl(
                        lambda self, register: register.dispatcher(Recommender("r"))
                    ),
                    "omnicrm_recommend": hookimpl(lambda self, request: []),
                },
            )(),
            "register.dispatcher(Recommender(name='r', title='')): not a Dispatcher",
        ),
        (
            type(
                "OldForm",
                (),
                {
                    "omnicrm_register": hookimpl(
                        lambda self, register: register(ChannelType("x", Empty))
                    )
                },
            )(),
            "call register.channel_type(...), register.dispatcher(...) or "
            "register.recommender(...) instead",
        ),
    ],
)
def test_plugins_breaking_the_contract_fail_with_a_reason(plugin: object, message: str) -> None:
    host = Host.load(use_entry_points=False, extra={"p": plugin})
    assert len(host.failures) == 1 and message in host.failures[0].error
    assert not host.plugins


def test_a_name_registered_twice_fails_the_second_plugin() -> None:
    host = Host.load(use_entry_points=False, extra={"a": Shop("tokyo"), "b": Shop("tokyo")})
    assert [p.name for p in host.plugins] == ["a"]
    assert "already registered by 'a'" in host.failures[0].error


def test_stream_calls_reach_only_the_owning_plugin() -> None:
    host = Host.load(use_entry_points=False, extra={"a": Shop("osaka"), "b": Shop("kyoto")})
    assert [c.id for c in host.open_stream(ctx("osaka"))] == ["osaka"]  # type: ignore[union-attr]
    assert [c.id for c in host.open_stream(ctx("kyoto"))] == ["kyoto"]  # type: ignore[union-attr]
    host.remove("a")
    with pytest.raises(ConfigError, match="unknown channel 'osaka'"):
        host.open_stream(ctx("osaka"))


class Mail:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    @hookimpl
    def omnicrm_register(self, register: Registrar) -> None:
        register.dispatcher(Dispatcher("smtp", Medium.EMAIL, Empty))

    @hookimpl
    def omnicrm_dispatch_message(self, message: Message, settings: Empty) -> DispatchOutcome:
        self.sent.append(message)
        return DispatchOutcome(DeliveryStatus.SENT, provider_id=f"id-{len(self.sent)}")


class AlsoBought:
    @hookimpl
    def omnicrm_register(self, register: Registrar) -> None:
        register.recommender(Recommender("also-bought"))

    @hookimpl
    def omnicrm_recommend(self, request: RecommendationRequest) -> list[ScoredProduct]:
        buyers = {p.customer_id for p in request.history if p.product_id == request.product_id}
        counts: dict[str, int] = {}
        for p in request.history:
            if p.customer_id in buyers and p.product_id != request.product_id:
                counts[p.product_id] = counts.get(p.product_id, 0) + 1
        return sorted((ScoredProduct(n, pid) for pid, n in counts.items()), reverse=True)


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OPTED_IN = [Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_IN, updated_at=NOW)]


def test_dispatch_goes_to_the_dispatcher_and_checks_the_medium() -> None:
    mail = Mail()
    host = Host.load(use_entry_points=False, extra={"mail": mail})
    message = Message("m1", Medium.EMAIL, "c1", "a@example.jp", "こんにちは", subject="件名")
    sent = host.dispatch("smtp", message, Empty(), consents=OPTED_IN)
    assert sent == DispatchOutcome(DeliveryStatus.SENT, "id-1")
    with pytest.raises(PluginError, match="sends email, not line"):
        host.dispatch(
            "smtp", Message("m2", Medium.LINE, "c1", "U1", "hi"), Empty(), consents=OPTED_IN
        )
    with pytest.raises(ConfigError, match="unknown dispatcher 'fax'"):
        host.dispatch("fax", message, Empty(), consents=OPTED_IN)
    assert mail.sent == [message]


@pytest.mark.parametrize(
    "consents",
    [
        [],
        [Consent(medium=Medium.EMAIL, state=ConsentState.OPTED_OUT, updated_at=NOW)],
        [Consent(medium=Medium.EMAIL, state=ConsentState.PENDING, updated_at=NOW)],
        [Consent(medium=Medium.LINE, state=ConsentState.OPTED_IN, updated_at=NOW)],
    ],
)
def test_no_message_leaves_without_consent_to_its_medium(consents: list[Consent]) -> None:
    mail = Mail()
    host = Host.load(use_entry_points=False, extra={"mail": mail})
    message = Message("m1", Medium.EMAIL, "c1", "a@example.jp", "セールのお知らせ")
    outcome = host.dispatch("smtp", message, Empty(), consents=consents)
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error == "customer c1 has not opted in to email"
    assert mail.sent == []


def test_a_plugin_that_registers_nothing_is_reported() -> None:
    class Unmarked:
        def omnicrm_register(self, register: Registrar) -> None:  # no @hookimpl: never called
            register.channel_type(ChannelType("lost", Empty, streams=(Stream.CUSTOMERS,)))

        @hookimpl
        def omnicrm_sync_customers(self, ctx: Any) -> Iterator[Customer]:
            yield from ()

    host = Host.load(use_entry_points=False, extra={"unmarked": Unmarked()})
    assert "registered nothing" in host.failures[0].error


def test_recommendations_come_from_the_named_recommender_within_the_limit() -> None:
    host = Host.load(use_entry_points=False, extra={"rec": AlsoBought()})
    history = [
        Purchase("c1", "tea"),
        Purchase("c1", "cup"),
        Purchase("c2", "tea"),
        Purchase("c2", "cup"),
        Purchase("c2", "pot"),
        Purchase("c3", "pot"),
    ]
    request = RecommendationRequest("also-bought", history, product_id="tea", limit=1)
    assert host.recommend(request) == [ScoredProduct(2, "cup")]
    with pytest.raises(ValueError, match="exactly one"):
        RecommendationRequest("also-bought", history)


def test_recommendations_are_ranked_best_first_whatever_order_the_plugin_used() -> None:
    class Unsorted(AlsoBought):
        @hookimpl
        def omnicrm_recommend(self, request: RecommendationRequest) -> list[ScoredProduct]:
            return [ScoredProduct(0.1, "b"), ScoredProduct(0.9, "a"), ScoredProduct(0.5, "c")]

    host = Host.load(use_entry_points=False, extra={"rec": Unsorted()})
    request = RecommendationRequest("also-bought", [], customer_id="c1", limit=2)
    assert [s.product_id for s in host.recommend(request)] == ["a", "c"]


def test_traced_hosts_log_each_hook_call_with_its_plugin_and_duration(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="omnicrm.plugins.trace")
    monkeypatch.delenv("OMNICRM_TRACE_PLUGINS", raising=False)
    quiet = Host.load(use_entry_points=False, extra={"a": Shop("osaka")})
    list(quiet.open_stream(ctx("osaka")))
    assert caplog.messages == []

    monkeypatch.setenv("OMNICRM_TRACE_PLUGINS", "1")
    host = Host.load(use_entry_points=False, extra={"a": Shop("osaka"), "b": Shop("kyoto")})
    list(host.open_stream(ctx("kyoto")))
    traced = [m.split(" ms")[0].rsplit(" ", 1) for m in caplog.messages]
    assert [call for call, _ in traced] == [
        "hook omnicrm_register [a]",
        "hook omnicrm_register [b]",
        "hook omnicrm_sync_customers [b]",
    ]
    assert all(float(ms) >= 0 for _, ms in traced)


def test_a_traced_hook_that_raises_says_so(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Shop):
        @hookimpl
        def omnicrm_sync_customers(self, ctx: StreamContext[Empty]) -> Iterator[Customer]:
            raise RuntimeError("platform down")

    host = Host.load(use_entry_points=False, extra={"f": Failing("nara")}, trace=True)
    caplog.set_level("INFO", logger="omnicrm.plugins.trace")
    with pytest.raises(RuntimeError, match="platform down"):
        host.open_stream(ctx("nara"))
    [message] = caplog.messages
    assert message.startswith("hook omnicrm_sync_customers [f] ")
    assert message.endswith(" ms, raised RuntimeError")
