"""The cyclic garbage collector tuned for a batch job (a sync, an import, the scheduler).

A sync keeps a batch of records, each with its raw payload (hundreds of small dicts and
lists), alive until the batch is written. With CPython's default thresholds (700, 10,
10) young collections run every few hundred allocations, find those records still alive,
and promote them; they then die in the old generation, and the full collections that
promotion triggers rescan every object the process holds, the loaded plugins and
modules included. A Shopify bulk import of 100,000 orders spent about 8 s of its 49 s in
57 such full collections (benchmarks/README.md, `shopify_sync.py import`).

:func:`settle_heap` freezes what is alive once the command has loaded (modules,
plugins, configuration: never garbage, so never worth rescanning) and makes young
collections rarer, so a batch mostly dies before it is ever promoted. Reference
cycles are still collected, a little later.

:func:`without_gc` pauses the collector for work that builds millions of objects in no
reference cycle (identity resolution, a refresh of a whole shop).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)
OLDER_THRESHOLDS = (50, 50)  # collections of the younger generation between older ones


def settle_heap() -> None:
    """Freeze the objects alive now out of the collector's scans and space its young
    collections out; call once a long-running command has loaded what it needs."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (nested pauses keep it paused).

    Whatever the block allocates and still holds when it ends is scanned by the first
    young collection after it: let what is no longer needed go inside the block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
