"""Authorising a connection once: the URL to open, and the code it comes back with.

The operator opens :func:`~.tokens.authorize_url` in a browser, logs in to the shop's
admin and approves; EC-CUBE redirects to the API client's ``redirect_uri`` with
``code`` and ``state``. The code is typed back (the code alone, or the whole address
the browser landed on), or caught by :func:`catch_redirect` when the redirect URI is a
loopback address: a one-request HTTP listener on its port. Either way ``state`` must
be the one sent, so a code meant for another attempt is refused.
"""

from __future__ import annotations

import http.server
import socket
import time
from urllib.parse import parse_qs, urlsplit

from omnicrm.errors import AuthError, ConfigError

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def code_from(text: str, state: str) -> str:
    """The code in what the operator typed: a bare code, or the redirected URL (whose
    ``state`` must match)."""
    text = text.strip()
    if not text:
        raise AuthError("no authorisation code given")
    if "?" not in text and "=" not in text:
        return text
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    if "error" in query:
        raise AuthError(f"EC-CUBE did not authorise: {query['error'][0][:60]}")
    if query.get("state", [state]) != [state]:
        raise AuthError("the redirect's state is not this attempt's: open the URL printed now")
    codes = query.get("code")
    if not codes or not codes[0]:
        raise AuthError("the address holds no code= parameter")
    return codes[0]


def loopback_port(redirect_uri: str) -> tuple[str, int, str]:
    """Host, port and path of a loopback ``redirect_uri``; ConfigError otherwise."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK or parts.port is None:
        raise ConfigError(
            f"redirect_uri {redirect_uri!r} is not a loopback http address with a port "
            "(e.g. http://127.0.0.1:8765/callback): type the code instead"
        )
    return parts.hostname or "127.0.0.1", parts.port, parts.path or "/"


def catch_redirect(redirect_uri: str, state: str, timeout: float = 300.0) -> str:
    """Listen on the loopback ``redirect_uri`` until the browser lands there; the code."""
    host, port, path = loopback_port(redirect_uri)
    caught: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != path:
                self.send_error(404)
                return
            try:
                caught["code"] = code_from(self.path, state)
                message, status = "omnicrm: authorised. You can close this tab.", 200
            except AuthError as exc:
                caught["error"] = str(exc)
                message, status = f"omnicrm: {exc}", 400
            body = message.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the request line holds the code: never logged

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    with Server((host.strip("[]"), port), Handler) as server:
        deadline = time.monotonic() + timeout
        server.timeout = 0.5
        while not caught:
            if time.monotonic() > deadline:
                raise AuthError(f"no redirect reached {redirect_uri} within {timeout:g}s")
            server.handle_request()
    if "error" in caught:
        raise AuthError(caught["error"])
    return caught["code"]
