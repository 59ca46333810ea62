"""What every HTTP channel needs to speak omnicrm's error language (exported from ``omnicrm``).

:func:`error_for_status` turns an HTTP answer into the error from :mod:`omnicrm.errors`
that tells the sync engine what to do; :func:`retry_after` reads the ``Retry-After``
header in either form HTTP allows.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import math

import httpx

from omnicrm.core._public import public
from omnicrm.errors import (
    AuthError,
    ConfigError,
    OmnicrmError,
    RateLimitedError,
    SyncError,
    TransientError,
)

MAX_RETRY_AFTER = 3600.0
"""The longest wait :func:`retry_after` reports: a larger hint is capped to it, so a
platform's (or a proxy's) absurd value cannot park a connection for days."""

# 408 Request Timeout and 425 Too Early ask the client to send the same request again.
_RETRY_AGAIN = frozenset({408, 425})


def retry_after(
    value: httpx.Response | str | None,
    *,
    now: dt.datetime | None = None,
    maximum: float = MAX_RETRY_AFTER,
) -> float | None:
    """Seconds to wait that a ``Retry-After`` header asks for, or None without a usable one.

    ``value`` is a response (its header is read) or the header's text: delay-seconds
    (``"7"``, also ``"2.5"`` as some platforms send) or an HTTP-date. The result lies in
    ``0..maximum``; a date in the past gives 0. Anything unreadable gives None rather than
    an error: the hint is advice, and the caller falls back to its own backoff.
    ``now`` is the clock a date is measured against (default: the current time).
    """
    header = value.headers.get("Retry-After") if isinstance(value, httpx.Response) else value
    text = (header or "").strip()
    if not text:
        return None
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), maximum)


def _seconds_until(text: str, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" in an HTTP-date still means UTC
        when = when.replace(tzinfo=dt.UTC)
    return (when - (now or dt.datetime.now(dt.UTC))).total_seconds()


def error_for_status(
    response: httpx.Response,
    service: str,
    *,
    action: str | None = None,
    detail: str | None = None,
    config_key: str | None = None,
) -> OmnicrmError | None:
    """The error from :mod:`omnicrm.errors` an HTTP answer means, or None for a success.

    ============  ==========================================================================
    1xx-3xx       None: not an error
    401, 403      :class:`~omnicrm.errors.AuthError`: credentials rejected, not retried
    404           :class:`~omnicrm.errors.ConfigError` (key ``config_key``): the address in
                  the settings leads nowhere
    408, 425      :class:`~omnicrm.errors.TransientError`: send it again later
    429           :class:`~omnicrm.errors.RateLimitedError`, ``retry_after`` from the header
    5xx           :class:`~omnicrm.errors.TransientError`: retried with backoff
    other 4xx     :class:`~omnicrm.errors.SyncError`: the platform refused what the plugin
                  sent, which no retry fixes; the run fails
    ============  ==========================================================================

    ``service`` names the platform in the message (``"MiniShop"``), ``action`` what was
    asked if the message should say (``"the Customers query"``), and ``detail`` the
    platform's own message, read by the caller from its error body (default: the reason
    phrase). Raise the result::

        error = error_for_status(response, "MiniShop", config_key="base_url")
        if error is not None:
            raise error

    The message never holds the request's headers or query, so no key leaks through it.
    """
    status = response.status_code
    if status < 400:
        return None
    said = f"HTTP {status}: {detail or response.reason_phrase or 'no message'}"
    on = f" on {action}" if action else ""
    if status in (401, 403):
        return AuthError(
            f"{service} rejected the credentials{on} ({said}); check the connection's settings"
        )
    if status == 404:
        try:
            where = str(response.request.url.copy_with(query=None, fragment=None))
        except RuntimeError:  # a response built by hand has no request
            where = f"the {service} address"
        return ConfigError(
            f"{where} does not exist (HTTP 404): is the {service} address in the "
            "connection's settings right?",
            key=config_key,
        )
    if status == 429:
        wait = retry_after(response)
        return RateLimitedError(
            f"{service} rate limit hit{on} (HTTP 429, Retry-After: {wait})",
            retry_after=wait,
        )
    if status >= 500 or status in _RETRY_AGAIN:
        return TransientError(f"{service} server error{on} ({said})")
    return SyncError(f"{service} refused {action or 'the request'} ({said})")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this
    machine: ``localhost``, 127.0.0.0/8 or ::1. Settings allow plain http, or a password
    over an unencrypted connection, only to such a host (a sandbox, a local tool)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


public(retry_after, error_for_status, is_loopback)
