"""``OMNICRM_TRACE_PLUGINS=1``: every hook call logged with its plugin and duration.

Kept apart from the host so the command line can turn the logger on without loading
pluggy for a ``--help``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

TRACE_ENV = "OMNICRM_TRACE_PLUGINS"
TRACE_LOGGER = "omnicrm.plugins.trace"

log = logging.getLogger(TRACE_LOGGER)


def tracing_from_env() -> bool:
    """Whether ``OMNICRM_TRACE_PLUGINS`` asks for every hook call to be logged."""
    return os.environ.get(TRACE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class HookTracer:
    """Logs each hook call with the plugins it reached and how long it took (at INFO).

    Its ``before`` and ``after`` go to ``PluginManager.add_hookcall_monitoring``.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def before(
        self, hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        starts = self._local.__dict__.setdefault("starts", [])
        starts.append(time.perf_counter())

    def after(
        self,
        outcome: pluggy.Result[Any],
        hook: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        elapsed = time.perf_counter() - self._local.starts.pop()
        plugins = ", ".join(impl.plugin_name for impl in impls) or "no plugin"
        failed = "" if outcome.exception is None else f", raised {type(outcome.exception).__name__}"
        # Names and timings only: the arguments may carry a customer's personal data.
        log.info("hook %s [%s] %.3f ms%s", hook, plugins, elapsed * 1000, failed)
