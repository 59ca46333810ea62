"""A host loaded with the plugins under test, for a plugin's own test suite."""

from __future__ import annotations

from omnicrm.core._public import public
from omnicrm.core.host import Host
from omnicrm.errors import PluginError


def load_host(*plugins: object, entry_points: bool = False, trace: bool | None = None) -> Host:
    """The omnicrm host with ``plugins`` (modules or objects with hooks) loaded.

    The installed plugins are loaded too only when ``entry_points`` is true. A plugin
    that fails to load raises a PluginError saying why, rather than being left out as
    the application would, so a test fails at its cause. ``trace`` logs every hook call
    (default: ``OMNICRM_TRACE_PLUGINS``). The host offers ``channel_type(name)``,
    ``open_stream(ctx)`` (see :func:`stream_context`), ``dispatch(...)`` and
    ``recommend(request)``: the calls the engine makes.
    """
    extra: dict[str, object] = {}
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        base, n = name, 1
        while name in extra:  # two objects of one class: both load, under distinct names
            n += 1
            name = f"{base}-{n}"
        extra[name] = plugin
    host = Host.load(extra=extra, use_entry_points=entry_points, disabled=(), trace=trace)
    if host.failures:
        failed = "; ".join(f"{f.name}: {f.error}" for f in host.failures)
        raise PluginError(f"plugins failed to load: {failed}")
    return host


public(load_host, module="omnicrm.testing")
