"""Logging for the command line: one readable line per event, libraries kept quiet.

By default only warnings show, except where a command watches syncs without a terminal
UI (``run``, ``demo --no-tui``, ``sync`` piped): there each run's start, progress and
end show too. ``-v`` shows omnicrm's own INFO lines; ``-vv`` everything, the libraries'
chatter (alembic, APScheduler, SQLAlchemy) included.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

from rich.logging import RichHandler
from rich.text import Text

from omnicrm.cli._common import err_console
from omnicrm.core.tracing import TRACE_LOGGER, tracing_from_env

# Logged at INFO by omnicrm: what an operator watching syncs wants to see.
RUN_LOGGERS = ("omnicrm.sync", "omnicrm.scheduler")
# httpx logs every URL at INFO, and some carry secrets (signed bulk download links):
# these stay at WARNING whatever the verbosity.
SECRET_LOGGERS = ("httpx", "httpcore")
# APScheduler warns of missed and skipped runs, which omnicrm.scheduler logs (and
# records) in its own words: its lines show only with -vv.
ECHOED_LOGGERS = ("apscheduler",)

_zone: dt.tzinfo | None = None  # None: the machine's; the shop's once a command knows it
_verbose = 0
_installed: list[logging.Handler] = []  # ours on the root logger (tests invoke many times)


def _stamp(created: float) -> str:
    return dt.datetime.fromtimestamp(created, _zone).astimezone(_zone).strftime("%H:%M:%S %Z")


class _Formatter(logging.Formatter):
    """``2026-12-02 09:41:05 JST INFO omnicrm.sync: ...``, in the zone set by log_zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, _zone).astimezone(_zone)
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


class _Handler(RichHandler):
    """A RichHandler whose clock reads in the zone set by log_zone."""

    def __init__(self) -> None:
        super().__init__(
            console=err_console,
            show_path=False,
            log_time_format=lambda moment: Text(_stamp(moment.timestamp())),
        )


def setup_logging(verbose: int) -> None:
    """Install the one handler of omnicrm's own and set the levels for ``verbose``."""
    global _verbose, _zone
    _verbose, _zone = verbose, None
    root = logging.getLogger()
    while _installed:
        root.removeHandler(_installed.pop())
    handler: logging.Handler
    if err_console.is_terminal:
        handler = _Handler()
    else:  # piped or in a service: plain lines, never wrapped at the console's width
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _installed.append(handler)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    own = {0: logging.NOTSET, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.getLogger("omnicrm").setLevel(own)
    for name in RUN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in SECRET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ECHOED_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose >= 2 else logging.ERROR)
    # Asked for by name: shown whatever the verbosity.
    logging.getLogger(TRACE_LOGGER).setLevel(logging.INFO if tracing_from_env() else logging.NOTSET)


def log_runs(zone: dt.tzinfo | None = None) -> None:
    """Show each sync's start, progress and end (a command watching syncs without a
    terminal UI); timestamps in ``zone``, the shop's."""
    global _zone
    _zone = zone
    if _verbose < 2:
        for name in RUN_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
