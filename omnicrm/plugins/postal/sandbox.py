"""The postal dispatcher's sandbox: a directory to write to, for the tests and the demo.

A print service is not reachable from here, and need not be: what the dispatcher makes
are files. The sandbox is a temporary directory removed at the end, or ``keep_in`` kept
for the operator to open (``omnicrm demo`` keeps each shop's under the data dir).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def sandbox(*, client: int = 0, keep_in: Path | None = None) -> Iterator[Mapping[str, Any]]:
    """Settings writing to a temporary directory, or to ``keep_in``; ``client`` (a demo
    shop's number) changes nothing: each file is named after its shop."""
    del client
    if keep_in is not None:
        keep_in.mkdir(parents=True, exist_ok=True)
        yield {"directory": str(keep_in)}
        return
    with tempfile.TemporaryDirectory(prefix="omnicrm-postal-") as directory:
        yield {"directory": directory}
