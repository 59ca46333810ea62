"""The conformance kit itself: it runs per stream and names the stream that breaks."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A plugin author's test module: the synthetic channel, but its orders come newest first.
BROKEN_ORDERS = """

import omnicrm
from omnicrm.testing import ChannelConformance
from tests import synthetic_plugin


class NewestFirst:
    omnicrm_register = staticmethod(synthetic_plugin.omnicrm_register)
    omnicrm_sync_customers = staticmethod(synthetic_plugin.omnicrm_sync_customers)

    @staticmethod
    @omnicrm.hookimpl
    def omnicrm_import_orders(ctx):
        return reversed(list(synthetic_plugin.omnicrm_import_orders(ctx)))


class TestBroken(ChannelConformance):
    channel = "synthetic"
    plugin = NewestFirst
"""


def _outcomes(pytester: pytest.Pytester) -> dict[str, str]:
    """Each test's outcome by the name pytest reports (``test_x[orders]``)."""
    # textual-snapshot's session hooks share state with this outer session's: keep it out
    recorded = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:textual-snapshot")
    return {
        report.nodeid.rsplit("::", 1)[1]: report.outcome
        for report in recorded.getreports("pytest_runtest_logreport")
        if report.when == "call"
    }


def test_each_check_runs_once_per_stream_and_a_failure_names_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_ORDERS)
    outcomes = _outcomes(pytester)
    assert outcomes["test_cursors_ascend[orders]"] == "failed"
    assert outcomes["test_cursors_ascend[customers]"] == "passed"
    for check in ("test_records_validate", "test_primary_keys_are_unique"):
        assert outcomes[f"{check}[customers]"] == outcomes[f"{check}[orders]"] == "passed"
    assert outcomes["test_streams_are_discoverable"] == "passed"


def test_a_sound_plugin_passes_every_check_of_every_stream(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sound=BROKEN_ORDERS.replace("plugin = NewestFirst", "plugin = synthetic_plugin")
    )
    outcomes = _outcomes(pytester)
    per_stream = [name for name in outcomes if name.endswith(("[customers]", "[orders]"))]
    assert len(per_stream) == 2 * 7, sorted(outcomes)
    assert set(outcomes.values()) == {"passed"}, outcomes


# A channel that reconciles orders, but answers that nothing is ever gone.
BLIND_RECONCILER = """

import omnicrm
from omnicrm.testing import ChannelConformance
from tests import synthetic_plugin


class Blind:
    omnicrm_sync_customers = staticmethod(synthetic_plugin.omnicrm_sync_customers)
    omnicrm_import_orders = staticmethod(synthetic_plugin.omnicrm_import_orders)

    @staticmethod
    @omnicrm.hookimpl
    def omnicrm_register(register):
        register.channel_type(
            omnicrm.ChannelType(
                name="synthetic",
                settings=synthetic_plugin.SyntheticSettings,
                sandbox=synthetic_plugin.sandbox,
                reconciles=(omnicrm.Stream.ORDERS,),
            )
        )

    @staticmethod
    @omnicrm.hookimpl
    def omnicrm_reconcile(ctx, stored):
        return []


class TestBlind(ChannelConformance):
    channel = "synthetic"
    plugin = Blind
"""


def test_a_reconciler_that_misses_a_deleted_record_fails_on_its_stream(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_blind=BLIND_RECONCILER)
    outcomes = _outcomes(pytester)
    assert outcomes["test_reconciliation_finds_only_what_is_gone[orders]"] == "failed"
    assert outcomes["test_reconciliation_finds_only_what_is_gone[customers]"] == "passed"
