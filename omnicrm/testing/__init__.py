"""The plugin author's kit: a conformance test class every channel plugin runs, and a
host loaded with the plugin for its own tests.

::

    from omnicrm.testing import ChannelConformance
    import my_plugin

    class TestMyChannel(ChannelConformance):
        channel = "myshop"
        plugin = my_plugin          # or None to use the installed entry points

    def test_registers_myshop() -> None:
        host = load_host(my_plugin)
        assert host.channel_type("myshop").title == "MyShop"

It is also a pytest plugin (entry point ``pytest11``), so its fixtures are available in
any test suite once omnicrm is installed.
"""

from omnicrm.core._public import public
from omnicrm.testing._host import load_host
from omnicrm.testing.conformance import ChannelConformance, stream_context

public(ChannelConformance, stream_context, module="omnicrm.testing")

__all__ = ["ChannelConformance", "load_host", "stream_context"]
