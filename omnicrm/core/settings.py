"""Settings the framework itself needs: where data lives, durations, the scheduler's
section and a loaded connection. The ``omnicrm.toml`` file model that composes them with
the CRM's sections lives in :mod:`omnicrm.app.config`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from omnicrm.core._public import public

DATA_DIR_ENV = "OMNICRM_DATA_DIR"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DURATION = dt.timedelta(days=3650)  # ten years: beyond it a schedule means nothing


def data_dir() -> Path:
    """Where omnicrm keeps its data (the embedded database; a plugin's files, such as a
    connection's OAuth tokens): ``$OMNICRM_DATA_DIR`` or the user data dir."""
    return Path(os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir("omnicrm"))


def default_store_url() -> str:
    """SQLite in the user's data dir: the zero-set-up default."""
    return f"sqlite:///{data_dir() / 'omnicrm.db'}"


def parse_duration(value: Any) -> dt.timedelta:
    """'90s', '15m', '1h30m', '2d' or a number of seconds; at most MAX_DURATION."""
    if isinstance(value, dt.timedelta):
        return value
    hint = "write e.g. '90s', '15m', '1h30m', '2d'"
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if math.isfinite(value) or isinstance(value, int) else math.nan
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION.findall(text)
        if parts and _DURATION.sub("", text).strip() == "":
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds is None:
        raise ValueError(f"not a duration: {value!r} ({hint})")
    if not 0 <= seconds <= MAX_DURATION.total_seconds():  # NaN fails this too
        shown = value if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
        raise ValueError(f"duration {shown!r} is out of range: 0s to {MAX_DURATION.days}d ({hint})")
    return dt.timedelta(seconds=seconds)


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


def check_cron(value: str | None) -> str | None:
    """``value`` if it is a valid crontab expression (or None); a ValueError naming it if not."""
    if value is not None:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"bad cron expression {value!r}: {exc}") from None
    return value


def _cron_or_off(value: str | None) -> str | None:
    if value is not None and value.strip().lower() == "off":
        return None
    return check_cron(value)


CronOrOff = Annotated[str | None, AfterValidator(_cron_or_off)]
"""A settings field holding a job's cron expression, or ``"off"`` (None) for no job."""


def known_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; a ValueError naming it otherwise."""
    try:
        zoneinfo.ZoneInfo(value)
    # OSError: with the tzdata package, a name too long for a file name.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown timezone {value!r} (e.g. 'Asia/Tokyo')") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(known_timezone)]
"""A settings field holding an IANA time zone name, checked when the settings load."""


class SchedulerSection(BaseModel):
    """How the scheduler runs: its timezone, its worker threads, its misfire grace."""

    model_config = ConfigDict(extra="forbid")

    timezone: TimeZoneName = "Asia/Tokyo"
    max_workers: int = Field(default=4, ge=1, le=64)
    misfire_grace: Duration = dt.timedelta(minutes=10)
    reconcile: CronOrOff = Field(
        default="0 3 * * *",
        description="Cron of the id reconciliation of every connection whose channel type "
        'reconciles (deletes the platform never announced); "off" to turn it off.',
    )


public(data_dir, TimeZoneName)
