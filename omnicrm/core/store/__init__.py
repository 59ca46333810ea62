"""The store: source records, sync state, run history and webhook events."""

from omnicrm.core.store.store import Run, RunStatus, Store, StreamState

__all__ = ["Run", "RunStatus", "Store", "StreamState"]
