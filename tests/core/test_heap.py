"""settle_heap: what is loaded is frozen out of the collector's scans, and a batch of
records dies young instead of being promoted into full collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from omnicrm.core.heap import settle_heap, without_gc


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


def test_without_gc_pauses_the_collector_and_a_nested_pause_keeps_it_paused() -> None:
    assert gc.isenabled()
    with without_gc():
        assert not gc.isenabled()
        with without_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause did not resume it
    assert gc.isenabled()


def test_without_gc_resumes_the_collector_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), without_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_without_gc_leaves_a_collector_paused_by_the_caller_paused() -> None:
    gc.disable()
    try:
        with without_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
