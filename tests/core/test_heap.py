"""settle_heap: what is loaded is frozen out of the collector's scans, and a batch of
records dies young instead of being promoted into full collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from omnicrm.core.heap import settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def batch() -> list[dict[str, object]]:
    """A sync batch in miniature: records with nested raw payloads."""
    return [{"id": i, "raw": {"lines": [{"sku": str(j)} for j in range(5)]}} for i in range(2000)]


def full_collections_during(work: int) -> int:
    before = gc.get_stats()[2]["collections"]
    for _ in range(work):
        kept = batch()
        del kept
    return int(gc.get_stats()[2]["collections"] - before)


@pytest.mark.usefixtures("restored_gc")
def test_loaded_objects_are_frozen_and_batches_no_longer_reach_full_collections() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    default = full_collections_during(300)
    settle_heap()
    assert gc.get_freeze_count() > 0
    settled = full_collections_during(300)
    assert settled < default, (default, settled)
