"""What the store says when it fails: never its password, never a record's values.

A database error is shown as one line naming the store (its URL with the password
hidden), the cause (the driver's primary message only: PostgreSQL's DETAIL and CONTEXT
quote the failing row, and SQLAlchemy's message lists the bound values) and what to do.
"""

from __future__ import annotations

import errno
import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError

from omnicrm.errors import ConfigError, StoreError

_URL_SHAPE = "driver://user:password@host:port/database"
# Everything up to the last '@' is the user and password; no '@' follows it.
_LAST_AT = re.compile(r"^(?P<scheme>[\w+]+)://(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.S)
# A data exception's primary message may end by quoting the value: ...: "taro@example.jp"
_QUOTED_VALUE = re.compile(r':\s*".*$', re.S)
_MAX_CAUSE = 300


def parse_url(url: str) -> URL:
    """``url`` parsed, taking a password as written even when it holds ``@ : / %``.

    SQLAlchemy ends the password at its first ``@``, which would make the rest of the
    password part of the host name (and print it in the driver's errors). Errors never
    echo the URL.
    """
    try:
        parsed: URL | None = make_url(url)
    except Exception:
        parsed = None
    if parsed is not None and "@" not in f"{parsed.host or ''}{parsed.database or ''}":
        return parsed
    found = _LAST_AT.match(url)
    if found is None:
        raise ConfigError(f"not a database URL: expected {_URL_SHAPE}", key="store.url")
    username, has_password, password = found["userinfo"].partition(":")
    try:
        place = make_url(f"{found['scheme']}://{found['rest']}")
    except Exception:
        raise ConfigError(
            f"not a database URL: expected {_URL_SHAPE} after the password", key="store.url"
        ) from None
    return URL.create(
        place.drivername,
        username=unquote(username) or None,
        password=unquote(password) if has_password else None,
        host=place.host,
        port=place.port,
        database=place.database,
        query=place.query,
    )


def shown(url: URL) -> str:
    """The URL as it may be printed: the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def _without_password(text: str, url: URL | None) -> str:
    password = None if url is None or url.password is None else str(url.password)
    if not password:
        return text
    # The whole password in every spelling, then any piece a misread URL could show.
    pieces = {password, quote(password, safe=""), quote_plus(password)}
    pieces.update(p for p in re.split(r"[@:/%?#]", password) if len(p) >= 3)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def _driver_text(orig: BaseException) -> str:
    """The driver's message, without the lines and quotes that carry values."""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if primary:
        text = str(primary)
        if sqlstate.startswith("22"):  # a data exception: the value may be quoted
            text = _QUOTED_VALUE.sub("", text)
        return text
    if isinstance(orig, OSError) and orig.strerror:
        return orig.strerror + (f": {orig.filename}" if orig.filename else "")
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    if sqlstate:  # no diagnostics, yet from the server: its first line is the message
        lines = lines[:1]
    return "; ".join(lines) or type(orig).__name__


def cause(exc: BaseException, url: URL | None = None) -> str:
    """What went wrong, in one line, with no record values and no password."""
    orig = getattr(exc, "orig", None)
    text = _driver_text(orig if isinstance(orig, BaseException) else exc)
    text = " ".join(_without_password(text, url).split())
    return text if len(text) <= _MAX_CAUSE else text[: _MAX_CAUSE - 3] + "..."


def hide_values(exc: BaseException, url: URL | None = None) -> None:
    """Rewrite a driver error's message in place to what :func:`cause` shows.

    Its class, SQLSTATE and diagnostics stay for the code that inspects them; only what
    ``str()`` (and so every log line and traceback) prints loses the row's values.
    """
    if type(exc).__module__.startswith("psycopg"):
        exc.args = (cause(exc, url),)


def on_engine_error(context: ExceptionContext) -> None:
    """The engine's ``handle_error`` hook: hide values before anyone prints the error."""
    hide_values(context.original_exception, context.engine.url if context.engine else None)


def is_failure(exc: BaseException) -> bool:
    """The store itself failed (gone, full, read-only), as opposed to refusing a value."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, OperationalError | InterfaceError | InternalError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    # Connection, resources, operator intervention, system errors.
    return isinstance(exc, DBAPIError) and sqlstate[:2] in ("08", "53", "57", "58")


def _next_step(exc: BaseException, text: str, opening: bool) -> str:
    orig: Any = getattr(exc, "orig", None) or exc
    lowered = text.lower()
    code = getattr(orig, "errno", None)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if "full" in lowered or "no space" in lowered or code == errno.ENOSPC or sqlstate == "53100":
        return "free disk space, then run again (a sync resumes from its last checkpoint)"
    if (
        "readonly" in lowered
        or "read-only" in lowered
        or "unable to open database file" in lowered
        or code in (errno.EROFS, errno.EACCES, errno.EPERM)
    ):
        return "make the store's file and folder writable, or point [store] url elsewhere"
    if opening:
        return (
            "check [store] url in omnicrm.toml (host, port, database, user, password) "
            "and that the database server is running"
        )
    return "check that the database server is running and reachable, then run again"


def store_error(exc: BaseException, url: URL | None, *, opening: bool = False) -> StoreError:
    """``exc`` as the one-line StoreError the operator sees."""
    text = cause(exc, url)
    where = "cannot open the store" if opening else "the store failed"
    if url is not None:
        where = f"{where} {shown(url)}"
    return StoreError(
        f"{where}: {text}; {_next_step(exc, text, opening)}", opening=opening, cause=text
    )
