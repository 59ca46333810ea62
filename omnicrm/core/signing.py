"""The installation's signing secret, and short URL-safe signatures made with it.

Links omnicrm puts in front of customers (a message's unsubscribe, open and click links)
carry a signature, so a link nobody was sent cannot be made up: an id alone, guessed or
counted up, is refused. The secret is the installation's: given in the config (the app
layer reads ``[web] secret``) or, if not, made on first use and kept in the data dir
(:data:`SECRET_FILE`, mode 0600), so every process of the installation (the sender, the
web app) signs and checks alike. It is never printed or logged.

A signature binds its ``purpose`` as well as its parts: a signature made for one use
(opening) is refused for another (unsubscribing).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from omnicrm.core.settings import data_dir
from omnicrm.errors import ConfigError

SECRET_FILE = "link-secret"
"""The file in the data dir holding the generated secret (hex), when the config gives none."""
MIN_SECRET = 32
"""The fewest bytes a secret has."""
SIGNATURE_BYTES = 16
"""A signature's length before encoding (128 bits; 22 characters in a link)."""


def installation_secret(directory: Path | None = None) -> bytes:
    """The secret kept in ``directory`` (the data dir), made there on first use.

    Made atomically: written to a private temporary file and linked into place only if
    no other process did so first, so two processes starting at once end up with the
    same secret, and a crash never leaves half a file.
    """
    folder = directory or data_dir()
    path = folder / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(prefix=".link-secret-", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(MIN_SECRET) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use its
            os.link(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < MIN_SECRET:
        raise ConfigError(
            f"{path}: not a signing secret (delete it to have a new one made; links "
            "sent before stop working)"
        )
    return secret


def check_secret(value: str) -> bytes:
    """A secret given in the config, as bytes; ValueError if it is too short."""
    secret = value.encode("utf-8")
    if len(secret) < MIN_SECRET:
        raise ValueError(
            f"must be at least {MIN_SECRET} characters (e.g. `python -c "
            '"import secrets; print(secrets.token_hex(32))"`)'
        )
    return secret


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes | None:
    """:func:`b64` undone; None if ``text`` is not such base64."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None


def signature(secret: bytes, purpose: str, *parts: str) -> str:
    """The signature of ``parts`` for ``purpose``: HMAC-SHA256, each part prefixed by its
    length (so no two lists of parts sign the same), cut to :data:`SIGNATURE_BYTES`."""
    message = "".join(f"{len(p)}:{p}" for p in (purpose, *parts)).encode("utf-8")
    return b64(hmac.new(secret, message, hashlib.sha256).digest()[:SIGNATURE_BYTES])


def verify(secret: bytes, given: str, purpose: str, *parts: str) -> bool:
    """Whether ``given`` is the signature of ``parts`` for ``purpose`` (compared in
    constant time)."""
    expected = signature(secret, purpose, *parts)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))
