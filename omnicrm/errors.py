"""The exceptions omnicrm raises, and what the sync engine does with each.

::

    OmnicrmError                 base of everything below
    ├── ConfigError              omnicrm.toml or a connection's settings are wrong:
    │                            names the file, line and key; loading a bad config
    │                            makes the CLI exit 2
    ├── PluginError              a plugin failed to load or broke the plugin contract
    ├── LockedError              another run of the same connection holds its lock
    ├── TemplateError            a message template does not parse, names an unknown
    │                            field, or failed to render: names the part, the line
    │                            and the names
    ├── StoreError               the store failed (unreachable, credentials refused,
    │                            disk full, read-only): one line naming the store
    │                            (password hidden), the cause and what to do; the CLI
    │                            exits 2 when the store cannot be opened, else 1
    └── SyncError                raised by a channel while it syncs; raised as it is, a
        │                        platform error that fits no subclass: the run fails
        ├── TransientError       network blips, timeouts, HTTP 5xx: the engine backs off
        │   │                    and resumes the stream from its last committed checkpoint
        │   └── RateLimitedError the platform said "slow down" (HTTP 429, THROTTLED):
        │                        waited out like a transient error, honouring retry_after;
        │                        if retries run out the run ends as ``rate_limited``
        ├── AuthError            credentials rejected or a scope missing: the run fails
        │                        at once, no retry
        └── DataError            a record the platform sent cannot be read: the run fails
                                 at once, naming the record

A run that fails leaves the stream's cursor where its last committed batch left it,
so the next run picks up exactly there. A channel's own config problem found at sync
time (a shop URL that does not exist) is a ``ConfigError`` and fails the run likewise.
"""

from __future__ import annotations

from pathlib import Path


class OmnicrmError(Exception):
    """Base class of every error omnicrm raises on purpose."""


class ConfigError(OmnicrmError):
    """Configuration is wrong. Carries where (file, line, key) and why."""

    def __init__(
        self,
        reason: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = Path(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file) + (f":{self.line}" if self.line else "")
        if self.key:
            where = f"{where} [{self.key}]" if where else f"[{self.key}]"
        return f"{where}: {self.reason}" if where else self.reason


class PluginError(OmnicrmError):
    """A plugin failed to load, or did something the plugin contract forbids."""


class LockedError(OmnicrmError):
    """Another run of the same connection is in progress."""


class TemplateError(OmnicrmError):
    """A message template is wrong: ``part`` (subject, body, html), ``line`` and the
    unknown ``names`` say where and what, so a campaign can refuse it before sending."""

    def __init__(
        self,
        reason: str,
        *,
        part: str | None = None,
        line: int | None = None,
        names: tuple[str, ...] = (),
    ) -> None:
        self.reason = reason
        self.part = part
        self.line = line
        self.names = names
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.part or ""
        if self.line:
            where = f"{where} line {self.line}".strip()
        return f"{where}: {self.reason}" if where else self.reason


class StoreError(OmnicrmError):
    """The store failed. The message names the store (never its password), the cause
    (never a record's values) and the next step; ``opening`` is true when the store could
    not be opened at all, which is a matter of configuration or of the server."""

    def __init__(self, message: str, *, opening: bool = False, cause: str = "") -> None:
        super().__init__(message)
        self.opening = opening
        self.cause = cause or message


class SyncError(OmnicrmError):
    """Base of the errors a channel raises while syncing."""


class TransientError(SyncError):
    """A failure that is likely to pass: retried with backoff."""


class RateLimitedError(TransientError):
    """The platform asked us to slow down; ``retry_after`` is its hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(SyncError):
    """Credentials were rejected or lack a needed permission. Not retried."""


class DataError(SyncError):
    """A record from the platform could not be read. Not retried."""


__all__ = [
    "AuthError",
    "ConfigError",
    "DataError",
    "LockedError",
    "OmnicrmError",
    "PluginError",
    "RateLimitedError",
    "StoreError",
    "SyncError",
    "TemplateError",
    "TransientError",
]
