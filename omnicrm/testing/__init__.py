"""The plugin author's kit: a conformance test class every channel plugin runs.

::

    from omnicrm.testing import ChannelConformance
    import my_plugin

    class TestMyChannel(ChannelConformance):
        channel = "myshop"
        plugin = my_plugin          # or None to use the installed entry points

It is also a pytest plugin (entry point ``pytest11``), so its fixtures are available in
any test suite once omnicrm is installed.
"""

from omnicrm.testing.conformance import ChannelConformance, stream_context

__all__ = ["ChannelConformance", "stream_context"]
