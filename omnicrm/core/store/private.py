"""Files and folders that hold personal data: owner-only from the moment they exist.

Each is created with its final mode (``os.open``/``os.mkdir`` with 0o600/0o700), never
created with the umask's mode and narrowed afterwards: another user could open it in
between, and an open file stays readable after a ``chmod``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents owner-only; existing ones are left as
    they are (they are the user's)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        # One made by someone else meanwhile is theirs, like any existing folder.
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (SQLite then opens it, and
    gives its -wal and -shm files the same mode). An existing file, or a link to one,
    is left as it is."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new owner-only file at ``path``, all of it or nothing.

    The bytes go to a hidden temporary file in the same folder, which is then linked
    into place: ``path`` appears whole, and an existing file is never overwritten
    (FileExistsError).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
