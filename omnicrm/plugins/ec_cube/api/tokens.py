"""OAuth2 authorization-code tokens of an EC-CUBE connection, kept outside omnicrm.toml.

The operator authorises once (``omnicrm connect CONNECTION``); from then on the plugin
renews the one-hour access token with the refresh token. The Api42 plugin (league's
OAuth2 server) rotates the refresh token on every use and revokes the old one, so the
new pair is written to disk before it is used or returned: a process that dies after
the refresh finds the rotated pair on its next start. The file is replaced atomically
(written beside, fsync'd, renamed, the directory fsync'd), so a crash mid-write leaves
the previous pair whole, never half a file; it is created with mode 0600. Renewals are
serialised across processes by a lock file (the scheduler and the webhook worker share
a connection): the second one finds the pair the first wrote and uses it instead of
spending a refresh token that was already revoked.

Tokens are never logged or printed; :class:`Tokens` hides them from ``repr``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from omnicrm import data_dir
from omnicrm.errors import AuthError, ConfigError, TransientError
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings

RENEW_EARLY = dt.timedelta(seconds=60)
"""An access token is renewed this long before it expires."""


@dataclass(frozen=True)
class Tokens:
    """An access token, the refresh token that renews it, and when each runs out."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: dt.datetime
    refresh_expires_at: dt.datetime

    def access_valid(self, now: dt.datetime | None = None) -> bool:
        """Whether the access token has more than a minute left."""
        return (now or dt.datetime.now(dt.UTC)) + RENEW_EARLY < self.access_expires_at

    def to_json(self) -> dict[str, str]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "access_expires_at": self.access_expires_at.isoformat(),
            "refresh_expires_at": self.refresh_expires_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any, where: Path) -> Tokens:
        try:
            return cls(
                access_token=str(data["access_token"]),
                refresh_token=str(data["refresh_token"]),
                access_expires_at=dt.datetime.fromisoformat(data["access_expires_at"]),
                refresh_expires_at=dt.datetime.fromisoformat(data["refresh_expires_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{where}: not an EC-CUBE token file ({type(exc).__name__} on "
                f"{exc.args[0] if exc.args else '?'}); run `omnicrm connect` again"
            ) from None


def default_token_file(connection: str) -> Path:
    """Where a connection's tokens are kept unless its settings say otherwise."""
    return data_dir() / "tokens" / f"ec_cube-{connection}.json"


def token_file(settings: EccubeSettings, connection: str) -> Path:
    """The token file of ``connection``."""
    return settings.token_file or default_token_file(connection)


class TokenStore:
    """One connection's token file: read, replaced atomically, locked while renewing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Tokens | None:
        """The stored tokens, or None before the connection was authorised."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(
                f"{self.path}: not JSON; run `omnicrm connect` again to authorise"
            ) from None
        return Tokens.from_json(data, self.path)

    def save(self, tokens: Tokens, *, before_replace: Callable[[], None] | None = None) -> None:
        """Replace the file with ``tokens``, durably, readable by the owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(tokens.to_json(), out)
                out.flush()
                os.fsync(out.fileno())
            if before_replace is not None:
                before_replace()
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the connection's renewal lock (across processes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def new_state() -> str:
    """A random ``state`` for one authorisation."""
    return secrets.token_urlsafe(24)


def authorize_url(settings: EccubeSettings, state: str) -> str:
    """The URL the operator opens to authorise the API client."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": settings.redirect_uri,
            "scope": settings.scope,
            "state": state,
        }
    )
    return f"{settings.authorize_url}?{query}"


def _token_request(
    http: httpx.Client, settings: EccubeSettings, form: dict[str, str], what: str
) -> Tokens:
    data = {
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        **form,
    }
    try:
        reply = http.post(settings.token_url, data=data, timeout=settings.timeout)
    except httpx.RequestError as exc:
        raise TransientError(
            f"cannot reach EC-CUBE's token endpoint for {what} ({type(exc).__name__})"
        ) from None
    if reply.status_code >= 500:
        raise TransientError(
            f"EC-CUBE's token endpoint answered {what} with HTTP {reply.status_code}"
        )
    try:
        body = reply.json()
    except ValueError:
        raise TransientError(f"EC-CUBE's token endpoint sent malformed JSON for {what}") from None
    if reply.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise AuthError(
            f"EC-CUBE refused {what} ({str(error or reply.status_code)[:60]}): run "
            "`omnicrm connect` to authorise the connection again"
        )
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
        raise TransientError(f"EC-CUBE's answer to {what} lacks access_token or refresh_token")
    try:
        lifetime = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    now = dt.datetime.now(dt.UTC)
    return Tokens(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=now + dt.timedelta(seconds=lifetime),
        refresh_expires_at=now + dt.timedelta(days=settings.refresh_token_days),
    )


def exchange_code(http: httpx.Client, settings: EccubeSettings, code: str) -> Tokens:
    """Trade an authorisation code for the first pair of tokens."""
    form = {
        "grant_type": "authorization_code",
        "redirect_uri": settings.redirect_uri,
        "code": code,
    }
    return _token_request(http, settings, form, "the authorisation code")


class TokenSource:
    """Hands out a valid access token for one connection, renewing it when due."""

    def __init__(
        self,
        settings: EccubeSettings,
        connection: str,
        http: httpx.Client,
        *,
        after_save: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.store = TokenStore(token_file(settings, connection))
        self._http = http
        self._tokens: Tokens | None = None
        self._after_save = after_save  # tests: a crash right after the rotation is saved
        self.renewals = 0

    def _stored(self) -> Tokens:
        tokens = self.store.load()
        if tokens is None:
            raise AuthError(
                f"connection {self.connection!r} is not authorised: run "
                f"`omnicrm connect {self.connection}`"
            )
        return tokens

    def access_token(self) -> str:
        """A token with more than a minute left (renewed first if needed)."""
        tokens = self._tokens or self._stored()
        if not tokens.access_valid():
            tokens = self.renew(tokens.access_token)
        self._tokens = tokens
        return tokens.access_token

    def renew(self, refused: str | None = None) -> Tokens:
        """Renew the access token (``refused``: the one the API turned down)."""
        with self.store.locked():
            current = self._stored()
            if current.access_token != refused and current.access_valid():
                self._tokens = current  # another process renewed it meanwhile
                return current
            fresh = _token_request(
                self._http,
                self.settings,
                {"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                "the refresh token",
            )
            # The old refresh token is revoked now: keep the new one before anything else.
            self.store.save(fresh)
            self.renewals += 1
            if self._after_save is not None:
                self._after_save()
        self._tokens = fresh
        return fresh
