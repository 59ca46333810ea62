"""omnicrm.testing.load_host: a plugin's own tests load omnicrm's host with it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import omnicrm
from omnicrm import Customer, Stream
from omnicrm.errors import PluginError
from omnicrm.testing import load_host, stream_context
from tests import synthetic_plugin


def test_loads_only_the_plugins_given() -> None:
    host = load_host(synthetic_plugin)
    assert [p.name for p in host.plugins] == ["tests.synthetic_plugin"]
    assert list(host.channel_types) == ["synthetic"]
    settings = synthetic_plugin.SyntheticSettings(customers=3, orders=0)
    ctx = stream_context("synthetic", settings, Stream.CUSTOMERS)
    assert all(isinstance(r, Customer) for r in host.open_stream(ctx))


def test_a_plugin_that_fails_to_load_fails_the_test_with_its_reason() -> None:
    class Forgetful:
        @omnicrm.hookimpl
        def omnicrm_register(self, register: omnicrm.Registrar) -> None:
            register.recommender(omnicrm.Recommender("popular"))

    with pytest.raises(PluginError, match=r"Forgetful: .*needs hook\(s\) omnicrm_recommend"):
        load_host(Forgetful())


def test_two_objects_of_one_class_load_under_distinct_names(caplog: Any) -> None:
    class Rec:
        def __init__(self, name: str) -> None:
            self.name = name

        @omnicrm.hookimpl
        def omnicrm_register(self, register: omnicrm.Registrar) -> None:
            register.recommender(omnicrm.Recommender(self.name))

        @omnicrm.hookimpl
        def omnicrm_recommend(self, request: Any) -> list[Any]:
            return []

    caplog.set_level(logging.INFO, logger="omnicrm.plugins.trace")
    host = load_host(Rec("a"), Rec("b"), trace=True)
    assert [p.name for p in host.plugins] == ["Rec", "Rec-2"]
    assert sorted(host.recommenders) == ["a", "b"]
    assert caplog.messages[0].startswith("hook omnicrm_register [Rec] ")
