"""The plugin author's kit: a conformance test class every channel plugin runs (and
:class:`DispatcherConformance` for dispatchers), a host
loaded with the plugin for its own tests, and a base for the platform emulator its tests
(and ``omnicrm demo``) talk to.

::

    from omnicrm.testing import ChannelConformance, load_host
    import my_plugin

    class TestMyChannel(ChannelConformance):
        channel = "myshop"
        plugin = my_plugin          # or None to use the installed entry points

    def test_registers_myshop() -> None:
        host = load_host(my_plugin)
        assert host.channel_type("myshop").title == "MyShop"

It is also a pytest plugin (entry point ``pytest11``), so its fixtures are available in
any test suite once omnicrm is installed. :class:`Emulator` imports no pytest: a sandbox
built on it runs in ``omnicrm demo``, where the test tools are not installed.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnicrm.testing._host import load_host
    from omnicrm.testing.conformance import ChannelConformance, stream_context
    from omnicrm.testing.dispatcher import DispatcherConformance
    from omnicrm.testing.emulator import Emulator, env_number

# Each name imported on first use, so `from omnicrm.testing import Emulator` does not
# import pytest (which the conformance suite needs).
_EXPORTS = {
    "ChannelConformance": "omnicrm.testing.conformance",
    "DispatcherConformance": "omnicrm.testing.dispatcher",
    "Emulator": "omnicrm.testing.emulator",
    "env_number": "omnicrm.testing.emulator",
    "load_host": "omnicrm.testing._host",
    "stream_context": "omnicrm.testing.conformance",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'omnicrm.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "ChannelConformance",
    "DispatcherConformance",
    "Emulator",
    "env_number",
    "load_host",
    "stream_context",
]
