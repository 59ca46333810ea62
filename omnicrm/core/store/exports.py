"""Data-request export files: where they go, what they are called, and their removal.

A file name is built only from what the store has validated: the connection's name,
the customer's id and the time of the export, e.g.
``exports/tokyo/gid_shopify_Customer_1042-6f1c0a9e-20260501T101500123456Z.json``.
Nothing a request says (its id, a header) reaches a path. The id is turned into
letters, digits, ``_`` and ``-`` and followed by a hash of the exact id, so two ids
never share a file and a redaction finds every export of its customer by name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from omnicrm.core.store.private import private_dir, write_new
from omnicrm.errors import DataError

# What config allows as a connection name; checked again here, as it becomes a folder.
_CONNECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# A platform's record id: letters, digits and the punctuation of ids and GIDs
# (gid://shopify/Customer/1042), never a control character or a space.
_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=#-]{0,254}")
_STAMP = re.compile(r"\d{8}T\d{12}Z(?:-\d+)?")


def check_connection(connection: str) -> str:
    """``connection`` if it is a valid connection name, else a DataError."""
    if not _CONNECTION.fullmatch(connection):
        raise DataError("a data request names a connection that is not a valid name")
    return connection


def file_key(customer_id: str) -> str:
    """The part of an export's file name that stands for ``customer_id``."""
    if not _RECORD_ID.fullmatch(customer_id):
        raise DataError("a data request names a customer id that is not a valid record id")
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", customer_id)[:80]
    digest = hashlib.sha256(customer_id.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def write_export(
    directory: Path, connection: str, customer_id: str, data: dict[str, Any], now: dt.datetime
) -> Path:
    """Write ``data`` as a new owner-only JSON file under ``directory``; its path."""
    folder = private_dir(directory / check_connection(connection))
    stem = f"{file_key(customer_id)}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}"
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()
    for attempt in range(100):
        path = folder / (f"{stem}.json" if attempt == 0 else f"{stem}-{attempt}.json")
        try:
            write_new(path, body)
        except FileExistsError:
            continue  # two exports of one customer in the same microsecond
        return path
    raise DataError(f"could not find a free export file name in {folder}")


def remove_exports(directory: Path, connection: str, customer_id: str | None = None) -> int:
    """Delete the export files of ``customer_id`` (None: of every customer) of
    ``connection``; how many.

    Files are found by name, and any other JSON file in the connection's folder whose
    content names the customer goes too (exports written before files were named
    this way).
    """
    folder = directory / check_connection(connection)
    if not folder.is_dir():
        return 0
    pattern = None
    if customer_id is not None and _RECORD_ID.fullmatch(customer_id):
        pattern = re.compile(re.escape(file_key(customer_id)) + "-" + _STAMP.pattern + r"\.json")
    removed = 0
    for path in folder.iterdir():
        if not path.is_file() or path.is_symlink():
            continue
        if (
            customer_id is None
            or (pattern and pattern.fullmatch(path.name))
            or _names(path, customer_id)
        ):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _names(path: Path, customer_id: str | None) -> bool:
    """Whether the JSON file at ``path`` is an export of ``customer_id``."""
    if path.suffix != ".json":
        return False
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("customer_id") == customer_id
